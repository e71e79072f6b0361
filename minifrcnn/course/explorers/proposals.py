"""Lesson 05's proposals explorer: the proposal layer of a trained RPN, one stage at a time.

Sliders for the pre-NMS top-N, the NMS threshold, the post-NMS top-N and an objectness
threshold, and a toggle between the boxes before and after NMS, over test images with
their ground truth. The funnel on the right counts the boxes left after each stage
(anchors -> top-N -> clipped and big enough -> score threshold -> NMS -> top-N); the title
gives the recall of the ground truth at IoU 0.5 and 0.7 by the boxes shown.

Parts, as every explorer: :func:`proposal_state` (pure), :func:`draw_proposal_state`
(matplotlib), :func:`make_proposal_explorer` (widgets), plus :func:`proposal_samples`,
which runs a trained model once per image so that moving a slider only redoes the
(cheap) proposal layer. Paper: section 3.1 and 3.3; "Filtering proposals by objectness
threshold before NMS loses recall; top-N is the rule" (course pitfall).
"""
import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ...boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from ...nms import batched_nms
from ..draw import draw_box_outlines, show_image
from ._base import Explorer

STAGES = ("anchors", "pre-NMS top-N", "clipped, >= min size", "score >= threshold", "after NMS",
          "post-NMS top-N")


def proposal_state(anchors, objectness, deltas, image_size, gt_boxes, pre_nms_top_n=1000, post_nms_top_n=300,
                   nms_thresh=0.7, score_thresh=0.0, min_size=1e-3, after_nms=True):
    """Run the proposal layer for one image, keeping every intermediate count.

    Args:
        anchors (Tensor): ``(A, 4)``.
        objectness (Tensor): ``(A,)`` logits; deltas (Tensor): ``(A, 4)``.
        image_size (tuple): ``(height, width)``.
        gt_boxes (Tensor): ``(G, 4)``, for the recall.
        pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh, min_size: as in
            :func:`minifrcnn.rpn.generate_proposals` (the same result for ``after_nms``).
        after_nms (bool): show the final proposals (True) or, for comparison with the same
            budget, the ``post_nms_top_n`` best boxes *without* NMS (False).

    Returns:
        dict: ``counts`` (stage -> boxes left, in the order of ``STAGES``);
        ``proposals`` / ``scores`` (after NMS and top-N); ``before_boxes`` /
        ``before_scores`` (the best ``post_nms_top_n`` without NMS); ``boxes`` /
        ``box_scores`` (the ones shown); ``best_iou`` ``(G,)`` (each ground truth's best
        IoU with the boxes shown); ``recall`` (``{0.5: r, 0.7: r}``); and the settings.
    """
    objectness, deltas = objectness.detach(), deltas.detach()
    counts = {"anchors": anchors.shape[0]}
    top_n = min(pre_nms_top_n, objectness.numel())
    logits, idx = objectness.topk(top_n)
    counts["pre-NMS top-N"] = top_n
    boxes = BoxCoder().decode(deltas[idx], anchors[idx])[:, 0]
    scores = torch.sigmoid(logits)
    boxes = clip_boxes_to_image(boxes, image_size)
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores = boxes[keep], scores[keep]
    counts["clipped, >= min size"] = boxes.shape[0]
    keep = torch.where(scores >= score_thresh)[0]
    boxes, scores = boxes[keep], scores[keep]
    counts["score >= threshold"] = boxes.shape[0]
    keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.int64), nms_thresh)
    counts["after NMS"] = keep.numel()
    keep = keep[:post_nms_top_n]
    counts["post-NMS top-N"] = keep.numel()
    proposals, proposal_scores = boxes[keep], scores[keep]
    # Without NMS: the same budget of boxes, simply the best-scored ones (already sorted by topk).
    before_boxes, before_scores = boxes[:post_nms_top_n], scores[:post_nms_top_n]
    shown, shown_scores = (proposals, proposal_scores) if after_nms else (before_boxes, before_scores)
    gt_boxes = gt_boxes.to(shown)
    if gt_boxes.shape[0] and shown.shape[0]:
        best_iou = box_iou(gt_boxes, shown).max(dim=1).values
    else:
        best_iou = torch.zeros(gt_boxes.shape[0])
    recall = {t: float((best_iou >= t).float().mean()) if gt_boxes.shape[0] else float("nan") for t in (0.5, 0.7)}
    return dict(counts=counts, proposals=proposals, scores=proposal_scores, before_boxes=before_boxes,
                before_scores=before_scores, boxes=shown, box_scores=shown_scores, best_iou=best_iou,
                recall=recall, gt_boxes=gt_boxes, after_nms=after_nms, pre_nms_top_n=pre_nms_top_n,
                post_nms_top_n=post_nms_top_n, nms_thresh=nms_thresh, score_thresh=score_thresh,
                min_size=min_size)


def draw_proposals(ax, boxes, scores, cmap="viridis", max_drawn=None, linewidth=0.8):
    """Box outlines coloured (and made opaque) by score, the best on top. Returns
    the ``LineCollection`` (gid "proposals") or None when there are no boxes."""
    if boxes.shape[0] == 0:
        return None
    if max_drawn is not None:
        boxes, scores = boxes[:max_drawn], scores[:max_drawn]
    order = torch.argsort(scores)  # ascending: the best drawn last
    values = scores[order].detach().cpu().numpy()
    colors = plt.get_cmap(cmap)(values)
    colors[:, 3] = 0.15 + 0.85 * values  # low scores faint: hundreds of weak boxes would hide the rest
    lines = draw_box_outlines(ax, boxes[order], color=colors, linewidth=linewidth)
    lines.set_gid("proposals")
    return lines


def draw_funnel(ax, counts):
    """Horizontal bars: boxes left after each stage of the proposal layer."""
    names = list(counts)
    values = [counts[n] for n in names]
    bars = ax.barh(range(len(names)), values, color=["0.6"] + ["tab:blue"] * (len(names) - 2) + ["tab:green"])
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.8, max(values) * 3)
    for bar, value in zip(bars, values):
        ax.text(max(value, 1) * 1.08, bar.get_y() + bar.get_height() / 2, f"{value:,}", va="center", fontsize=8)
    ax.set_xlabel("boxes left (log scale)")
    ax.set_title("the proposal funnel", fontsize=10)
    return bars


def draw_proposal_state(figure, state, image=None, name=""):
    """Image + ground truth (white) + the boxes shown (coloured by objectness) on the left,
    the funnel on the right."""
    ax, ax_funnel = figure.subplots(1, 2, gridspec_kw={"width_ratios": (1.25, 1)})
    if image is not None:
        show_image(image, ax)
        height, width = image.shape[-2:]
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    draw_proposals(ax, state["boxes"], state["box_scores"])
    if state["gt_boxes"].shape[0]:
        draw_box_outlines(ax, state["gt_boxes"], color="white", linewidth=2.2, linestyle="--").set_gid("gt_boxes")
    mapper = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 1))
    figure.colorbar(mapper, ax=ax, fraction=0.046, pad=0.02, label="objectness")
    mode = "after NMS" if state["after_nms"] else "best boxes, NO NMS"
    r = state["recall"]
    ax.set_title(f"{name}{': ' if name else ''}{state['boxes'].shape[0]} boxes, {mode}\n"
                 f"recall @0.5 {r[0.5]:.2f}, @0.7 {r[0.7]:.2f} (white dashed: ground truth)", fontsize=9)
    draw_funnel(ax_funnel, state["counts"])
    figure.tight_layout()


@torch.no_grad()
def proposal_samples(model, dataset, indices, names=None):
    """Run a trained :class:`minifrcnn.course.train_rpn.RPNModel` once on some images.

    Returns:
        list of dict: ``name``, ``image`` ``(3, H, W)``, ``gt_boxes`` ``(G, 4)``,
        ``anchors`` ``(A, 4)``, ``objectness`` ``(A,)``, ``deltas`` ``(A, 4)``,
        ``image_size`` ``(H, W)``: everything :func:`proposal_state` needs.
    """
    model.eval()
    device = next(model.parameters()).device
    samples = []
    for n, i in enumerate(indices):
        image, target = dataset[i]
        out = model.predict([image.to(device)])
        samples.append(dict(name=names[n] if names else f"image {i}", image=image.cpu(),
                            gt_boxes=torch.as_tensor(target["boxes"]).as_subclass(torch.Tensor).reshape(-1, 4).cpu(),
                            anchors=out["anchors"].cpu(), objectness=out["objectness"][0].cpu(),
                            deltas=out["deltas"][0].cpu(), image_size=out["image_sizes"][0]))
    return samples


def make_proposal_explorer(samples, pre_nms_top_n=1000, post_nms_top_n=300, nms_thresh=0.7, score_thresh=0.0,
                           min_size=1e-3, figsize=(11, 5)):
    """The interactive proposals explorer.

    Args:
        samples (list of dict): from :func:`proposal_samples`.
        pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh: the starting values.

    Returns:
        Explorer: controls ``image``, ``nms_thresh``, ``pre_nms_top_n``, ``post_nms_top_n``,
        ``score_thresh``, ``after_nms``; ``state`` from :func:`proposal_state`.
    """
    samples = list(samples)
    num_anchors = samples[0]["anchors"].shape[0]
    style = {"description_width": "initial"}
    controls = {
        "image": widgets.Dropdown(options=[(s["name"], i) for i, s in enumerate(samples)], value=0,
                                  description="image"),
        "nms_thresh": widgets.FloatSlider(value=nms_thresh, min=0.3, max=1.0, step=0.05, description="NMS IoU >",
                                          continuous_update=False, style=style),
        "score_thresh": widgets.FloatSlider(value=score_thresh, min=0.0, max=0.99, step=0.01,
                                            description="objectness >=", continuous_update=False, style=style),
        "pre_nms_top_n": widgets.IntSlider(value=min(pre_nms_top_n, num_anchors), min=1, max=num_anchors,
                                           description="pre-NMS top-N", continuous_update=False, style=style),
        "post_nms_top_n": widgets.IntSlider(value=post_nms_top_n, min=1, max=1000, description="post-NMS top-N",
                                            continuous_update=False, style=style),
        "after_nms": widgets.ToggleButtons(options=[("before NMS", False), ("after NMS", True)], value=True),
    }

    def compute(image, nms_thresh, score_thresh, pre_nms_top_n, post_nms_top_n, after_nms):
        s = samples[image]
        state = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"],
                               pre_nms_top_n, post_nms_top_n, nms_thresh, score_thresh, min_size, after_nms)
        state.update(image=s["image"], name=s["name"])
        return state

    def draw(figure, state):
        draw_proposal_state(figure, state, image=state["image"], name=state["name"])

    return Explorer(controls, compute, draw, figsize=figsize, columns=3)
