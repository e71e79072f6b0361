"""Training the RPN alone (the paper's 4-step training, step 1) and measuring its proposals.

Paper, section 3.2: "In the first step, we train the RPN as described in Section 3.1.3",
end-to-end with its backbone; the detector comes later (lesson 05). Here the backbone is
the small CPU net of ``minifrcnn.backbone`` trained from scratch on the course's digits.

* :class:`RPNModel`: backbone + :class:`minifrcnn.rpn.RPN`, called with a list of images.
* :func:`make_rpn_model`: the course's settings in one call.
* :func:`train_rpn`: a seeded, deterministic loop with a tqdm progress bar and a live
  loss plot (:class:`LiveLossPlot`) that redraws in the notebook every few steps.
* :func:`collect_proposals`, :func:`recall_vs_proposals`, :func:`recall_vs_iou`: the
  paper's recall measurements (figure 2 and figures 4-6 of the TPAMI version).
"""
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .anchors import AnchorGenerator
from .backbone import SmallBackbone
from .boxes import box_iou
from .rpn import RPN, ProposalSettings, RPNHead

# The course's anchor design (lesson 02): 3 sizes x 3 ratios on a stride-8 map. The digits
# are 10-60 px (square root of the area), so the paper's 128-512 px anchors would miss them.
COURSE_ANCHOR_SIZES = (16, 32, 64)
COURSE_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def batch_images(images):
    """Stack a list of ``(3, h, w)`` images into ``(N, 3, H, W)``, zero-padding at the right
    and bottom to the largest size; returns ``(batch, [(h, w), ...])``. A tensor passes."""
    if isinstance(images, torch.Tensor):
        return images, [tuple(images.shape[-2:])] * images.shape[0]
    sizes = [tuple(image.shape[-2:]) for image in images]
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    batch = images[0].new_zeros(len(images), images[0].shape[0], height, width)
    for slot, image in zip(batch, images):
        slot[:, :image.shape[-2], :image.shape[-1]].copy_(image)
    return batch, sizes


class _Sizes:
    """The two fields of torchvision's ``ImageList`` the RPN reads."""

    def __init__(self, tensors, image_sizes):
        self.tensors, self.image_sizes = tensors, image_sizes


class RPNModel(nn.Module):
    """Backbone + RPN: the first half of Faster R-CNN, trained on its own.

    ``model(images, targets)`` -> ``(proposals, losses)`` as :class:`minifrcnn.rpn.RPN`;
    ``images`` is a list of ``(3, H, W)`` tensors (or one ``(N, 3, H, W)`` tensor).
    In training mode the proposals are skipped (None) unless ``propose=True``: the
    losses do not need them.
    """

    def __init__(self, backbone, rpn):
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn

    def forward(self, images, targets=None, propose=None):
        batch, sizes = batch_images(images)
        features = self.backbone(batch)
        propose = not self.training if propose is None else propose
        return self.rpn(_Sizes(batch, sizes), features, targets, propose=propose)

    @torch.no_grad()
    def predict(self, images):
        """:meth:`minifrcnn.rpn.RPN.predict` on images, plus ``features``."""
        batch, sizes = batch_images(images)
        features = self.backbone(batch)
        out = self.rpn.predict(_Sizes(batch, sizes), features)
        out["features"] = features
        return out


def make_rpn_model(anchor_sizes=COURSE_ANCHOR_SIZES, aspect_ratios=COURSE_ASPECT_RATIOS, backbone=None,
                   settings=None, **rpn_kwargs):
    """An :class:`RPNModel` with the course's defaults: :class:`SmallBackbone` (stride 8),
    3 x 3 anchors, :meth:`ProposalSettings.course`, the paper's 0.7 / 0.3 / 256 / 0.5."""
    backbone = backbone or SmallBackbone()
    anchors = AnchorGenerator(anchor_sizes, aspect_ratios)
    head = RPNHead(backbone.out_channels, anchors.num_anchors_per_location)
    return RPNModel(backbone, RPN(anchors, head, settings or ProposalSettings.course(), **rpn_kwargs))


def cache_dataset(dataset):
    """Read a whole data set into memory once: a list of ``(image, {"boxes", "labels"})``
    with plain tensors. Decoding the PNG files again every epoch would cost about as much
    as the RPN's training step on the course's tiny images."""
    items = []
    for image, target in dataset:
        items.append((image.as_subclass(torch.Tensor) if isinstance(image, torch.Tensor) else image,
                      {"boxes": target["boxes"].as_subclass(torch.Tensor).reshape(-1, 4),
                       "labels": target["labels"].as_subclass(torch.Tensor)}))
    return items


# ----------------------------------------------------------------------------- live plot


class LiveLossPlot:
    """A loss plot that redraws in place in a notebook (an IPython display handle), or
    does nothing outside one. Raw losses in light colours, a running mean on top.

    Args:
        names (sequence of str): the losses to plot (keys of the losses dict), plus "total".
        every (int): redraw every this many steps.
        window (int): running-mean window, in steps.
    """

    def __init__(self, names=("loss_objectness", "loss_rpn_box_reg", "total"), every=50, window=25,
                 figsize=(10, 3.2), enabled=True):
        self.names, self.every, self.window, self.figsize = tuple(names), every, window, figsize
        self.values = {name: [] for name in self.names}
        self.handle = None
        self.enabled = enabled
        self.figure = None

    def add(self, step, losses):
        for name in self.names:
            self.values[name].append(float(losses[name]))
        if self.enabled and (step + 1) % self.every == 0:
            self.draw()

    def running_mean(self, name):
        v = np.asarray(self.values[name], dtype=np.float64)
        if v.size == 0:
            return v
        c = np.cumsum(np.insert(v, 0, 0.0))
        n = np.minimum(np.arange(1, v.size + 1), self.window)
        return (c[1:] - c[np.arange(1, v.size + 1) - n]) / n

    def draw(self, final=False):
        figure, axes = plt.subplots(1, len(self.names), figsize=self.figsize)
        axes = np.atleast_1d(axes)
        for ax, name, color in zip(axes, self.names, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
            v = self.values[name]
            ax.plot(v, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(self.running_mean(name), color=color, linewidth=1.8, label=f"mean of {self.window}")
            ax.set_title(name + (f": {self.running_mean(name)[-1]:.3f}" if v else ""), fontsize=10)
            ax.set_xlabel("step")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        self.figure = figure
        try:
            from IPython import get_ipython
            from IPython.display import display
            if get_ipython() is not None:
                if self.handle is None:
                    self.handle = display(figure, display_id=True)
                else:
                    self.handle.update(figure)
        finally:
            plt.close(figure)  # shown as a PNG; no second copy at the end of the cell
        return figure


# ----------------------------------------------------------------------------- training


def train_rpn(model, dataset, num_epochs=5, batch_size=4, lr=3e-3, weight_decay=1e-4, warmup_steps=100,
              optimizer="adam", momentum=0.9, device="cpu", seed=0, progress=True, live_plot=True,
              plot_every=50, max_steps=None):
    """Train an :class:`RPNModel`, seeded and deterministic on CPU.

    The paper trains with SGD (learning rate 0.001, momentum 0.9) for 60k mini-batches
    from an ImageNet-trained backbone. Our backbone starts from scratch and has a minute:
    Adam (``optimizer="adam"``, AdamW with a small weight decay) gets far further in that
    budget (lesson 04 gives the numbers). The schedule: a linear warm-up over ``warmup_steps``
    (a new head with a full learning rate can diverge in its first steps), then constant,
    divided by 10 for the last 20 % of the steps.

    Args:
        model (RPNModel).
        dataset: items ``(image, {"boxes": ...})`` (e.g. ``cache_dataset(load_digits())``).
        num_epochs (int), batch_size (int), lr (float), weight_decay (float).
        optimizer (str): "adam" (AdamW) or "sgd" (with ``momentum``).
        seed (int): seeds the shuffling and the anchor sampling.
        progress (bool): show a tqdm progress bar.
        live_plot (bool): redraw a :class:`LiveLossPlot` every ``plot_every`` steps.
        max_steps (int, optional): stop early (e.g. for tests).

    Returns:
        dict: ``"loss_objectness"``, ``"loss_rpn_box_reg"``, ``"total"`` (lists, one value per
        step), ``"seconds"`` (wall time), ``"steps"``, ``"plot"`` (the LiveLossPlot).
    """
    from tqdm.auto import tqdm

    from .data import collate
    torch.manual_seed(seed)  # the sampler draws from the global generator, as torchvision's
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(seed), drop_last=True)
    total_steps = num_epochs * len(loader) if max_steps is None else min(max_steps, num_epochs * len(loader))
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    decay_at = int(0.8 * total_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup_steps) * (0.1 if s >= decay_at else 1.0))
    plot = LiveLossPlot(every=plot_every, enabled=live_plot)
    bar = tqdm(total=total_steps, disable=not progress, desc="training the RPN")
    start, step = time.perf_counter(), 0
    while step < total_steps:
        for images, targets in loader:
            images = [image.to(device) for image in images]
            targets = [{"boxes": t["boxes"].to(device)} for t in targets]
            _, losses = model(images, targets)
            loss = losses["loss_objectness"] + losses["loss_rpn_box_reg"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            plot.add(step, {**{k: v.detach() for k, v in losses.items()}, "total": loss.detach()})
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            step += 1
            if step >= total_steps:
                break
    bar.close()
    if live_plot and step % plot_every:  # the last steps since the last redraw
        plot.draw()
    model.eval()
    history = {name: plot.values[name] for name in plot.names}
    history.update(seconds=time.perf_counter() - start, steps=step, plot=plot)
    return history


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def collect_proposals(model, dataset, batch_size=20, device="cpu", settings=None):
    """Run a trained model over a data set in eval mode.

    Args:
        settings (ProposalSettings, optional): use these instead of the model's, e.g.
            ``dataclasses.replace(s, post_nms_top_n_test=2000)`` for a recall curve, or
            ``nms_thresh=1.0`` for "no NMS" (IoU > 1 never happens).

    Returns:
        dict: ``proposals`` / ``scores`` (lists, one ``(K, 4)`` / ``(K,)`` per image, best
        first), ``gt_boxes`` (list of ``(G, 4)``), ``images`` (the number of images).
    """
    model.to(device).eval()
    layer = model.rpn.proposal_layer
    saved = layer.settings
    if settings is not None:
        layer.settings = settings
    proposals, scores, gt_boxes = [], [], []
    try:
        for start in range(0, len(dataset), batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            out = model.rpn.predict(*_predict_inputs(model, [image.to(device) for image, _ in items]))
            proposals += [p.cpu() for p in out["proposals"]]
            scores += [s.cpu() for s in out["scores"]]
            gt_boxes += [torch.as_tensor(t["boxes"]).reshape(-1, 4).as_subclass(torch.Tensor) for _, t in items]
    finally:
        layer.settings = saved
    return dict(proposals=proposals, scores=scores, gt_boxes=gt_boxes, images=len(gt_boxes))


def _predict_inputs(model, images):
    batch, sizes = batch_images(images)
    return _Sizes(batch, sizes), model.backbone(batch)


def _best_iou_per_gt(proposals, gt_boxes, top_n):
    """For every ground-truth box of every image, its best IoU with the first ``top_n``
    proposals of its image: ``(total G,)``."""
    best = []
    for p, g in zip(proposals, gt_boxes):
        p = p[:top_n]
        if g.shape[0] == 0:
            continue
        best.append(box_iou(g.to(p), p).max(dim=1).values if p.shape[0] else torch.zeros(g.shape[0]))
    return torch.cat(best) if best else torch.zeros(0)


def recall_vs_proposals(proposals, gt_boxes, top_ns=(10, 20, 50, 100, 200, 300, 500, 1000),
                        iou_thresholds=(0.5, 0.7)):
    """Recall of the ground truth as a function of the number of proposals per image.

    Returns:
        dict: threshold -> ``np.ndarray`` of recalls, one per entry of ``top_ns``.
    """
    result = {t: [] for t in iou_thresholds}
    for n in top_ns:
        best = _best_iou_per_gt(proposals, gt_boxes, n)
        for t in iou_thresholds:
            result[t].append(float((best >= t).float().mean()) if best.numel() else float("nan"))
    return {t: np.asarray(v) for t, v in result.items()}


def recall_vs_iou(proposals, gt_boxes, top_n=300, iou_thresholds=np.linspace(0.5, 1.0, 11)):
    """Recall at ``top_n`` proposals per image as a function of the IoU threshold (the
    paper's recall-vs-IoU figure). Returns ``(iou_thresholds, recalls)`` arrays."""
    best = _best_iou_per_gt(proposals, gt_boxes, top_n)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    return thresholds, np.asarray([float((best >= t).float().mean()) for t in thresholds])
