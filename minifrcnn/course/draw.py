"""Drawing helpers for the lessons: images, boxes with class names, anchors and labels.

Every function takes a matplotlib ``Axes`` and draws on it, so a lesson can compose
pictures freely. Images may be a ``(3, H, W)`` or ``(H, W)`` tensor (float in [0, 1] or
uint8), an ``(H, W, 3)`` / ``(H, W)`` NumPy array, or a PIL image. Boxes are ``(R, 4)``
xyxy tensors or arrays.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.collections import LineCollection

# Colours of anchor labels (lesson 03). Colour-blind safe pairs from matplotlib's tab10.
LABEL_COLORS = {
    "positive": "tab:green",
    "negative": "tab:red",
    "ignored": "tab:orange",
    "sampled": "tab:blue",
}


def to_numpy_image(image):
    """Any supported image -> an ``(H, W, 3)`` or ``(H, W)`` NumPy array for ``imshow``."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dim() == 3:
            if image.shape[0] not in (1, 3):
                raise ValueError(f"image tensor must be (3, H, W) or (1, H, W), got {tuple(image.shape)}")
            image = image.permute(1, 2, 0)
        elif image.dim() != 2:
            raise ValueError(f"image tensor must be (3, H, W) or (H, W), got {tuple(image.shape)}")
        image = image.numpy()
    image = np.asarray(image)  # PIL images convert here
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3):
        raise ValueError(f"cannot show an array of shape {image.shape} as an image")
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32), 0, 1)  # float images are [0, 1]
    return image


def show_image(image, ax=None, title=None):
    """Show ``image`` on ``ax`` (a new figure if None), axes hidden. Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    array = to_numpy_image(image)
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def class_color(label):
    """A fixed colour for a class id (so "7" is the same colour in every picture)."""
    return plt.get_cmap("tab10")(int(label) % 10)


def _as_numpy_boxes(boxes):
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes


def _box_outlines(boxes):
    """``(R, 4)`` xyxy -> ``(R, 5, 2)`` closed polylines for a ``LineCollection``."""
    x1, y1, x2, y2 = boxes.T
    return np.stack([np.stack(p, axis=1) for p in
                     ((x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1))], axis=1)


def draw_box_outlines(ax, boxes, color="tab:blue", linewidth=1.0, alpha=1.0, linestyle="-"):
    """Draw many box outlines fast, as one ``LineCollection``. Returns the collection."""
    boxes = _as_numpy_boxes(boxes)
    lines = LineCollection(_box_outlines(boxes), colors=color, linewidths=linewidth,
                           alpha=alpha, linestyles=linestyle)
    ax.add_collection(lines)
    return lines


def draw_boxes(ax, boxes, labels=None, scores=None, class_names=None, color=None,
               linewidth=2.0, linestyle="-", fontsize=8):
    """Draw boxes with optional class names and scores, coloured by class.

    Args:
        ax (matplotlib.axes.Axes): where to draw (over an image shown with ``show_image``).
        boxes: ``(R, 4)`` xyxy.
        labels: ``(R,)`` class ids, or None.
        scores: ``(R,)`` confidences, or None; shown as ``"name 0.93"``.
        class_names (sequence of str): ``class_names[label]`` is written by each box.
        color: one colour for every box; default: a colour per class.

    Returns:
        list: the text artists (one per labelled box).
    """
    boxes = _as_numpy_boxes(boxes)
    n = len(boxes)
    labels = None if labels is None else [int(v) for v in np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)]
    scores = None if scores is None else [float(v) for v in np.asarray(torch.as_tensor(scores).cpu()).reshape(-1)]
    for name, values in (("labels", labels), ("scores", scores)):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} boxes")
    colors = [color if color is not None else class_color(labels[i] if labels else 0) for i in range(n)]
    if n:
        ax.add_collection(LineCollection(_box_outlines(boxes), colors=colors,
                                         linewidths=linewidth, linestyles=linestyle))
    texts = []
    for i in range(n):
        caption = []
        if labels is not None:
            caption.append(class_names[labels[i]] if class_names is not None else str(labels[i]))
        if scores is not None:
            caption.append(f"{scores[i]:.2f}")
        if caption:
            texts.append(ax.text(boxes[i, 0], boxes[i, 1], " ".join(caption), fontsize=fontsize,
                                 color="white", va="bottom", ha="left",
                                 bbox=dict(facecolor=colors[i], alpha=0.8, pad=1, edgecolor="none")))
    return texts


def draw_anchor_labels(ax, anchors, labels, show=("positive", "ignored", "negative"),
                       max_per_kind=None, linewidth=1.0):
    """Draw anchors coloured by their training label (lesson 03).

    Args:
        anchors: ``(A, 4)`` xyxy.
        labels: ``(A,)``: 1 positive, 0 negative, -1 ignored (see ``matching.match_labels``).
        show (sequence of str): which kinds to draw.
        max_per_kind (int, optional): draw at most this many of each kind (evenly spaced
            through the list), since thousands of negatives hide everything else.

    Returns:
        dict: kind -> number of anchors of that kind (before ``max_per_kind``).
    """
    anchors = _as_numpy_boxes(anchors)
    labels = np.asarray(torch.as_tensor(labels).cpu()).reshape(-1)
    masks = {"positive": labels >= 1, "negative": labels == 0, "ignored": labels == -1}
    counts = {kind: int(mask.sum()) for kind, mask in masks.items()}
    # Draw negatives first so that positives stay on top.
    for kind, width, alpha in (("negative", 0.5, 0.35), ("ignored", 0.8, 0.7), ("positive", 1.5, 1.0)):
        if kind not in show or counts[kind] == 0:
            continue
        boxes = anchors[masks[kind]]
        if max_per_kind is not None and len(boxes) > max_per_kind:
            boxes = boxes[np.linspace(0, len(boxes) - 1, max_per_kind).astype(int)]
        draw_box_outlines(ax, boxes, color=LABEL_COLORS[kind], linewidth=linewidth * width, alpha=alpha)
    return counts


def label_legend(ax, counts=None, loc="upper right", **legend_kwargs):
    """A legend for ``draw_anchor_labels`` colours, with counts when given.

    ``loc`` and ``legend_kwargs`` go to ``ax.legend`` (e.g. ``loc="upper center",
    bbox_to_anchor=(0.5, -0.02)`` puts it under the image, off the digits)."""
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=LABEL_COLORS[k],
                      label=f"{k} ({counts[k]})" if counts else k)
               for k in ("positive", "ignored", "negative")]
    options = dict(fontsize=8, framealpha=0.8)
    options.update(legend_kwargs)
    return ax.legend(handles=handles, loc=loc, **options)


def draw_pr_curves(ax, curves, ap=None, class_names=None, labels=None, linewidth=1.5):
    """Precision-recall curves, one per class (lesson 09).

    Args:
        curves (dict): label -> ``(precision (D,), recall (D,))`` after each detection, best
            score first: ``evaluation.evaluate_voc(...)["curves"]``.
        ap (dict, optional): label -> AP, shown in the legend.
        class_names (sequence of str, optional): ``class_names[label]`` in the legend.
        labels (sequence of int, optional): which classes to draw (default: all).

    Each curve is drawn as it is (thin, light) and as its precision envelope, the
    non-increasing curve whose area is VOC's AP (thick).

    Returns:
        list: the envelope lines, one per class drawn.
    """
    lines = []
    for label in (labels if labels is not None else sorted(curves)):
        precision, recall = (np.asarray(v, dtype=np.float64) for v in curves[label])
        color = class_color(label)
        name = class_names[label] if class_names is not None else str(label)
        if ap is not None and label in ap:
            name += f" (AP {ap[label]:.2f})"
        r = np.concatenate(([0.0], recall))
        p = np.concatenate(([precision[0] if len(precision) else 0.0], precision))
        ax.plot(r, p, color=color, linewidth=0.7, alpha=0.35)
        envelope = np.maximum.accumulate(p[::-1])[::-1]
        lines.append(ax.step(r, envelope, where="pre", color=color, linewidth=linewidth, label=name)[0])
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    return lines


def filter_grid(weight, columns=8, gap=1):
    """First-layer conv filters ``(O, 3, k, k)`` as one RGB picture (lesson 08): each filter
    scaled to [0, 1] on its own (its mid-grey is 0, its strongest weight black or white),
    ``columns`` per row, ``gap`` white pixels between them. Returns an ``(H, W, 3)`` array."""
    w = weight.detach().cpu().double()
    if w.dim() != 4 or w.shape[1] != 3:
        raise ValueError(f"expected RGB conv filters (O, 3, k, k), got {tuple(w.shape)}")
    scale = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
    w = (0.5 + 0.5 * w / scale).permute(0, 2, 3, 1).numpy()  # (O, k, k, 3) in [0, 1]
    count, k = w.shape[0], w.shape[1]
    rows = -(-count // columns)
    grid = np.ones((rows * (k + gap) - gap, columns * (k + gap) - gap, 3))
    for i in range(count):
        r, c = divmod(i, columns)
        grid[r * (k + gap):r * (k + gap) + k, c * (k + gap):c * (k + gap) + k] = w[i]
    return grid


def draw_filters(ax, weight, columns=8, title=None):
    """Show :func:`filter_grid` of ``weight`` on ``ax`` (nearest-neighbour: each weight one square)."""
    ax.imshow(filter_grid(weight, columns), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def tile(crops, columns, gap=2):
    """``(N, C, h, w)`` crops as one ``(rows * (h + gap) - gap, columns * (w + gap) - gap, C)`` array, white
    between them (each crop as it is: scale it to [0, 1] first)."""
    crops = crops.detach().cpu().float()
    count, channels, h, w = crops.shape
    rows = -(-count // columns)
    grid = np.ones((rows * (h + gap) - gap, columns * (w + gap) - gap, channels), dtype=np.float32)
    for i in range(count):
        r, c = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = crops[i].permute(1, 2, 0).numpy()
    return grid


def draw_crop_image_or_features(axes, image, boxes, features, spatial_scale, shown=12, crop_size=32, pooled=7):
    """Lesson 00: R-CNN crops the *image* once per proposal and runs the CNN on every crop;
    Fast R-CNN runs the CNN once and crops its *feature map* (RoI pooling, lesson 06).

    Args:
        axes (4 Axes): the image with the proposals, R-CNN's warped crops, the feature map with
            the same proposals projected onto it, Fast R-CNN's pooled crops.
        image (Tensor): ``(3, H, W)`` in [0, 1]; boxes (Tensor): ``(N, 4)`` proposals, in pixels.
        features (Tensor): ``(C, h, w)``, the CNN's output for the image.
        spatial_scale (float): feature cells per image pixel (1 / stride, times any resizing).
        shown (int): how many of the crops to show.
    """
    from torchvision.ops import roi_align

    image, boxes, features = image.detach().cpu(), boxes.detach().cpu(), features.detach().cpu()
    rois = torch.cat((torch.zeros(len(boxes), 1), boxes.float()), dim=1)
    crops = roi_align(image[None].float(), rois, crop_size, 1.0, 2, aligned=True)    # warped to a fixed size
    cells = roi_align(features[None].float(), rois, pooled, spatial_scale, 2, aligned=True).mean(dim=1,
                                                                                                   keepdim=True)
    low, high = cells.amin(), cells.amax()
    cells = ((cells - low) / (high - low).clamp(min=1e-12)).expand(-1, 3, -1, -1)
    show_image(image, axes[0], title=f"{len(boxes)} proposals on the image")
    draw_box_outlines(axes[0], boxes, color="tab:orange", linewidth=0.6, alpha=0.7)
    axes[1].imshow(tile(crops[:shown].clamp(0, 1), columns=4))
    axes[1].set_title(f"R-CNN: {len(boxes)} crops of the image ({min(shown, len(boxes))} shown),\n"
                      "the CNN runs on each", fontsize=10)
    feature_map = features.detach().float().mean(dim=0).cpu()
    axes[2].imshow(feature_map.numpy(), cmap="viridis", interpolation="nearest")
    draw_box_outlines(axes[2], boxes.float() * spatial_scale - 0.5, color="white", linewidth=0.6, alpha=0.7)
    axes[2].set_title(f"Fast R-CNN: the CNN runs once ({feature_map.shape[0]} x {feature_map.shape[1]} map),\n"
                      "the same proposals projected onto it", fontsize=10)
    axes[3].imshow(tile(cells[:shown], columns=4), interpolation="nearest")
    axes[3].set_title(f"{len(boxes)} {pooled} x {pooled} crops of the feature map ({min(shown, len(boxes))} shown)\n"
                      "(RoI pooling: no CNN pass)", fontsize=10)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return crops, cells
