"""Training the RPN alone (the paper's 4-step training, step 1) and measuring its proposals.

Paper, section 3.2: "In the first step, we train the RPN as described in Section 3.1.3",
end-to-end with its backbone; the detector comes later (lessons 06-09). Here the backbone is
the small CPU net of ``minifrcnn.backbone`` trained from scratch on the course's digits.

* :class:`RPNModel`: backbone + :class:`minifrcnn.rpn.RPN`, called with a list of images.
* :func:`make_rpn_model`: the course's settings in one call.
* :func:`train_rpn`: a seeded, deterministic loop with a tqdm progress bar and a live
  loss plot, through the course's one training loop (:func:`minifrcnn.training.train`).
* :func:`collect_proposals`, :func:`recall_vs_proposals`, :func:`recall_vs_iou`: the
  paper's recall measurements (figure 2 and figures 4-6 of the TPAMI version).
* :func:`train_course_rpn`, :func:`load_course_rpn`: lesson 04's run, shipped as
  ``data/results/rpn.pt`` so that the lessons after it start from the same RPN without
  training it again::

      python -m minifrcnn.course.train_rpn     # data/results/rpn.pt, ~30 s on one thread
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..anchors import AnchorGenerator
from ..backbone import SmallBackbone
from ..boxes import box_iou
from ..data import DATA_DIR, cache, load_digits
from ..rpn import RPN, ImageBatch, ProposalSettings, RPNHead
from ..training import LiveLossPlot, TrainSettings, train
from ..utils import seed_everything

# The course's anchor design (lesson 02): 3 sizes x 3 ratios on a stride-8 map. The digits
# are 10-60 px (square root of the area), so the paper's 128-512 px anchors would miss them.
COURSE_ANCHOR_SIZES = (16, 32, 64)
COURSE_ASPECT_RATIOS = (0.5, 1.0, 2.0)


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
        batch = ImageBatch.from_images(images)
        features = self.backbone(batch.tensors)
        propose = not self.training if propose is None else propose
        return self.rpn(batch, features, targets, propose=propose)

    @torch.no_grad()
    def predict(self, images):
        """:meth:`minifrcnn.rpn.RPN.predict` on images, plus ``features``."""
        batch = ImageBatch.from_images(images)
        features = self.backbone(batch.tensors)
        out = self.rpn.predict(batch, features)
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


def train_rpn(model, dataset, num_epochs=5, batch_size=4, lr=3e-3, weight_decay=1e-4, warmup_steps=100,
              optimizer="adam", momentum=0.9, device="cpu", seed=0, progress=True, live_plot=True,
              plot_every=50, max_steps=None):
    """Train an :class:`RPNModel` with :func:`minifrcnn.training.train`, seeded and
    deterministic on CPU.

    The paper trains with SGD (learning rate 0.001, momentum 0.9) for 60k mini-batches
    from an ImageNet-trained backbone. Our backbone starts from scratch and has a minute:
    Adam (``optimizer="adam"``, AdamW with a small weight decay) gets far further in that
    budget (lesson 04 gives the numbers). The schedule: a linear warm-up over ``warmup_steps``
    (a new head with a full learning rate can diverge in its first steps), then constant,
    divided by 10 for the last 20 % of the steps.

    Args:
        model (RPNModel).
        dataset: items ``(image, {"boxes": ...})`` (e.g. ``minifrcnn.data.cache(load_digits())``).
        num_epochs (int), batch_size (int), lr (float), weight_decay (float).
        optimizer (str): "adam" (AdamW) or "sgd" (with ``momentum``).
        seed (int): seeds the shuffling and the anchor sampling.
        progress (bool): show a tqdm progress bar.
        live_plot (bool): redraw a :class:`minifrcnn.training.LiveLossPlot` every
            ``plot_every`` steps.
        max_steps (int, optional): stop early (e.g. for tests).

    Returns:
        dict: ``"loss_objectness"``, ``"loss_rpn_box_reg"``, ``"total"`` (lists, one value per
        step), ``"seconds"`` (wall time), ``"steps"``, ``"plot"`` (the LiveLossPlot).
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    steps = num_epochs * (len(dataset) // batch_size)
    settings = TrainSettings(steps=steps if max_steps is None else min(max_steps, steps), batch_size=batch_size,
                             lr=lr, momentum=momentum, weight_decay=weight_decay, warmup_steps=warmup_steps,
                             schedule="step", step_at=0.8, clip_grad_norm=0.0, seed=seed,
                             optimizer="adamw" if optimizer == "adam" else "sgd")
    plot = LiveLossPlot(every=plot_every, enabled=live_plot)
    start = time.perf_counter()
    train(model, dataset, settings, device=device, progress=progress, live_plot=plot)
    history = {name: plot.values[name] for name in plot.names}
    history.update(seconds=time.perf_counter() - start, steps=settings.steps, plot=plot)
    return history


# ----------------------------------------------------------------------------- lesson 04's RPN, shipped

COURSE_RPN_FILE = DATA_DIR / "results" / "rpn.pt"
# Lesson 04's run: 5 epochs of the 1,200 training images, 4 a step (1,500 steps), AdamW, seed 0, on one
# thread (the lesson sets torch.set_num_threads(1)): the same numbers as the lesson's, step for step, on a CPU.
COURSE_RPN_RECIPE = dict(num_epochs=5, batch_size=4, lr=3e-3, seed=0)


def train_course_rpn(train_data, seed=COURSE_RPN_RECIPE["seed"], device="cpu", max_steps=None, progress=False,
                     live_plot=False, plot_every=150, **rpn_kwargs):
    """Lesson 04's RPN: :func:`make_rpn_model` (with ``rpn_kwargs``, e.g. another ``bg_iou_thresh``) trained by
    :data:`COURSE_RPN_RECIPE`, with another ``seed`` if given. Returns ``(model, history)`` (see
    :func:`train_rpn`)."""
    seed_everything(seed)
    model = make_rpn_model(**rpn_kwargs)
    history = train_rpn(model, train_data, device=device, progress=progress, live_plot=live_plot,
                        plot_every=plot_every, max_steps=max_steps, **{**COURSE_RPN_RECIPE, "seed": seed})
    return model, history


def load_course_rpn(path=COURSE_RPN_FILE, device="cpu"):
    """The RPN lesson 04 trains, from ``data/results/rpn.pt``, in eval mode."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run python -m minifrcnn.course.train_rpn to make it")
    model = make_rpn_model()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    return model.to(device).eval()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minifrcnn.course.train_rpn",
                                     description="Train lesson 04's RPN and save it (data/results/rpn.pt).")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1, as lesson 04)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (tests)")
    parser.add_argument("--out", default=str(COURSE_RPN_FILE))
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads {args.threads}: use 1 or more")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps {args.max_steps}: use 1 or more (or leave it out: all 1,500 steps)")
    torch.set_num_threads(args.threads)
    model, history = train_course_rpn(cache(load_digits("train")), max_steps=args.max_steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m minifrcnn.course.train_rpn" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    torch.save({"model": model.cpu().state_dict(), "recipe": COURSE_RPN_RECIPE, "steps": history["steps"],
                "threads": args.threads, "command": command}, out)
    print(f"{history['steps']} steps in {history['seconds']:.0f} s, loss {np.mean(history['total'][:50]):.3f} -> "
          f"{np.mean(history['total'][-50:]):.3f}; wrote {out}")
    return 0


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
    batch = ImageBatch.from_images(images)
    return batch, model.backbone(batch.tensors)


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


if __name__ == "__main__":
    sys.exit(main())
