"""The paper's ablations at course scale (section 4 and its tables): lesson 10.

Two kinds of ablation, as in the paper:

* **Test-time ablations** change how one trained detector proposes boxes, nothing else: the
  number of test proposals (50 / 100 / 300 / 1000), no NMS (the top-N anchors by objectness),
  no objectness scores (N proposals drawn at random), no box regression (the anchors
  themselves are the proposals). :func:`ablate_proposals` runs the backbone and the RPN's
  head once per image and each variant's proposal selection (:func:`select_proposals`) and
  the detection head on the cached outputs; :func:`proposal_recall` gives recall against the
  number of proposals for each variant.
* **Training-time ablations** train one detector per row (:data:`TRAINING_ROWS`): anchors
  (1 scale x 1 ratio ... 3 x 3), the RPN's box-loss weight lambda (:func:`lambda_to_weight`),
  shared vs unshared convolutional layers (the paper's 4-step alternating training,
  ``minifrcnn.course.schemes``), one stage (:class:`OneStageDetector`) vs two. They take about half
  an hour of CPU: :func:`run_ablations` (``python -m minifrcnn ablations``) trains them all and
  writes ``data/results/ablations.json`` and the baseline's weights ``data/results/baseline.pt``;
  it is resumable row by row. :func:`run_row` re-runs one row.

Plus :func:`time_parts`, the paper's timing table (conv layers / proposals / region-wise
layers, per image).
"""
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..anchors import AnchorGenerator
from ..boxes import RPN_BOX_WEIGHTS, BoxCoder, clip_boxes_to_image, remove_small_boxes
from ..data import DATA_DIR, cache, load_digits
from ..detector import DetectorConfig, FasterRCNN, ImagePreparation, make_backbone, prepare_inputs
from ..evaluation import evaluate_coco, evaluate_voc
from ..head import HeadSettings, assign_targets, postprocess
from ..matching import BalancedSampler, Matcher
from ..nms import batched_nms
from ..rpn import ImageBatch
from ..training import TrainSettings, load_checkpoint, train
from ..utils import get_device, seed_everything
from .schemes import evaluate_model as schemes_evaluate_model
from .schemes import split_steps, train_alternating
from .train_rpn import recall_vs_proposals

RESULTS_DIR = DATA_DIR / "results"
RESULTS_FILE = RESULTS_DIR / "ablations.json"
BASELINE_WEIGHTS = RESULTS_DIR / "baseline.pt"
PAPER_URL = "https://arxiv.org/abs/1506.01497"


# ----------------------------------------------------------------------------- scoring


def score(detections, targets, num_classes):
    """``{"map50": VOC mAP@0.5, "ap": COCO AP@[.5:.95]}`` of detections against ground truths."""
    return {"map50": evaluate_voc(detections, targets, num_classes)["map"],
            "ap": evaluate_coco(detections, targets, num_classes)["ap"]}


# ----------------------------------------------------------------------------- test-time ablations

PROPOSAL_MODES = ("nms", "no_nms", "random", "no_regression")


@dataclass(frozen=True)
class ProposalVariant:
    """How proposals are picked from the RPN's outputs at test time (paper, table 2).

    Attributes:
        mode (str): ``"nms"`` the proposal layer (top ``pre_nms_top_n`` by objectness,
            decode, clip, NMS, the first ``top_n``); ``"no_nms"`` the ``top_n`` best-scored
            boxes, no NMS; ``"random"`` no objectness: ``top_n`` decoded boxes drawn at random
            (the paper's "no cls"); ``"no_regression"`` the anchors themselves, scored and
            NMS-ed as usual (the paper's "no reg").
        top_n (int): proposals per image.
    """

    mode: str
    top_n: int

    def __post_init__(self):
        if self.mode not in PROPOSAL_MODES:
            raise ValueError(f"mode must be one of {PROPOSAL_MODES}, got {self.mode!r}")
        if self.top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {self.top_n}")


def select_proposals(anchors, objectness, deltas, image_sizes, variant, settings, generator=None):
    """Proposals of a batch for one :class:`ProposalVariant`.

    Args:
        anchors (Tensor): ``(A, 4)``; objectness (Tensor): ``(N, A)`` logits; deltas
            (Tensor): ``(N, A, 4)``; image_sizes: ``(h, w)`` per image.
        variant (ProposalVariant).
        settings (ProposalSettings): the model's (pre-NMS top-n, NMS threshold, min size).
        generator (torch.Generator, optional): for ``"random"``.

    Returns:
        list of Tensor: ``(K_i, 4)`` proposals per image, ``K_i <= variant.top_n``.
    """
    coder = BoxCoder(RPN_BOX_WEIGHTS)
    pre_nms = min(max(settings.pre_nms_top_n_test, variant.top_n), objectness.shape[1])
    result = []
    for logits, image_deltas, size in zip(objectness, deltas, image_sizes):
        if variant.mode == "random":  # no cls layer: every anchor's box is equally likely
            boxes = clip_boxes_to_image(coder.decode(image_deltas, anchors)[:, 0], size)
            boxes = boxes[remove_small_boxes(boxes, settings.min_size)]
            order = torch.randperm(len(boxes), generator=generator)[:variant.top_n].to(boxes.device)
            result.append(boxes[order])
            continue
        scores, idx = logits.topk(pre_nms)
        if variant.mode == "no_regression":  # no reg layer: the proposals are the anchors
            boxes = clip_boxes_to_image(anchors[idx], size)
        else:
            boxes = clip_boxes_to_image(coder.decode(image_deltas[idx], anchors[idx])[:, 0], size)
        keep = remove_small_boxes(boxes, settings.min_size)
        boxes, scores = boxes[keep], scores[keep]
        if variant.mode != "no_nms":
            keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.int64), settings.nms_thresh,
                               max_kept=variant.top_n)
            boxes = boxes[keep]
        result.append(boxes[:variant.top_n])
    return result


@torch.no_grad()
def rpn_outputs(model, dataset, batch_size=25, device=None):
    """Run ``model``'s backbone and RPN head once over ``dataset`` (eval mode) and keep
    everything the proposal variants and the detection head need.

    Returns:
        dict: per batch ``features`` ``(B, C, H, W)``, ``anchors`` ``(A, 4)``, ``objectness``
        ``(B, A)``, ``deltas`` ``(B, A, 4)``, ``sizes`` and ``original_sizes``; plus
        ``targets`` (ground truths in the resized frame, for recall) and ``ground_truths``
        (as given, for mAP).
    """
    device = device or next(model.parameters()).device
    model.eval()
    batches, targets, ground_truths = [], [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        images = [image.to(device) for image, _ in items]
        boxes = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for _, t in items]
        batch, sizes, scaled = model.transform(images, boxes)
        features = model.backbone(batch)
        out = model.rpn.predict(ImageBatch(batch, sizes), features, propose=False)
        batches.append(dict(features=features, anchors=out["anchors"], objectness=out["objectness"],
                            deltas=out["deltas"], sizes=sizes,
                            original_sizes=[tuple(image.shape[-2:]) for image in images]))
        targets += [t["boxes"].cpu() for t in scaled]
        ground_truths += [t for _, t in items]
    return dict(batches=batches, targets=targets, ground_truths=ground_truths)


@torch.no_grad()
def detections_with(model, outputs, variant, generator=None):
    """Detections of every image for one proposal variant, from :func:`rpn_outputs`;
    also returns the number of proposals of each image."""
    detections, counts = [], []
    for b in outputs["batches"]:
        proposals = select_proposals(b["anchors"], b["objectness"], b["deltas"], b["sizes"], variant,
                                     model.rpn.settings, generator)
        found, _ = model.head(b["features"], proposals, b["sizes"])
        found = model.transform.postprocess(found, b["sizes"], b["original_sizes"])
        detections += [{k: v.cpu() for k, v in d.items()} for d in found]
        counts += [len(p) for p in proposals]
    return detections, counts


# (table, row, variant, paper mAP, paper's setting). The number of proposals: the paper's
# VGG-16 shared model (section 4.1). The other three: its ZF table 2 (an RPN trained
# without sharing, proposals for an SS-trained detector; its "RPN 300" reference is 56.8).
TEST_TIME_ROWS = (
    ("proposals", "50", ProposalVariant("nms", 50), 66.3, "VGG-16, 50 proposals"),
    ("proposals", "100", ProposalVariant("nms", 100), 68.9, "VGG-16, 100 proposals"),
    ("proposals", "300", ProposalVariant("nms", 300), 69.9, "VGG-16, 300 proposals"),
    ("proposals", "1000", ProposalVariant("nms", 1000), 69.8, "VGG-16, 1000 proposals"),
    ("components", "NMS, 300", ProposalVariant("nms", 300), 56.8, "ZF, RPN 300 (NMS, cls, reg)"),
    ("components", "no NMS, 300", ProposalVariant("no_nms", 300), None, "not in the paper"),
    ("components", "no NMS, 1000", ProposalVariant("no_nms", 1000), 55.2, "ZF, no NMS, 6000"),
    ("components", "no cls, 100", ProposalVariant("random", 100), 44.6, "ZF, no cls, 100 random"),
    ("components", "no cls, 300", ProposalVariant("random", 300), 51.4, "ZF, no cls, 300 random"),
    ("components", "no cls, 1000", ProposalVariant("random", 1000), 55.8, "ZF, no cls, 1000 random"),
    ("components", "no reg, 300", ProposalVariant("no_regression", 300), 52.1, "ZF, no reg, 300"),
    ("components", "no reg, 1000", ProposalVariant("no_regression", 1000), 51.3, "ZF, no reg, 1000"),
)


# What lesson 10 runs live: the paper's rows with at most 300 proposals (the head's cost grows
# with their number); the script computes every row once (``results["test_time"]``).
LESSON_TEST_TIME_ROWS = tuple(r for r in TEST_TIME_ROWS if r[2].top_n <= 300 and r[3] is not None)


def ablate_proposals(model, dataset, rows=TEST_TIME_ROWS, seed=0, device=None, outputs=None):
    """mAP of one trained detector under each test-time variant (the paper's table 2).

    Args:
        model (FasterRCNN): trained.
        dataset: ``(image, target)`` items (e.g. the test split, cached).
        rows: ``(table, row, ProposalVariant, paper mAP, paper setting)`` tuples.
        seed (int): seeds the random proposals (``"random"`` mode).
        outputs (dict, optional): :func:`rpn_outputs` of the same model and data, to reuse.

    Returns:
        list of dict: ``table``, ``row``, ``mode``, ``top_n``, ``proposals`` (mean per
        image), ``map50``, ``ap``, ``paper``, ``paper_setting``, ``seconds``. A variant
        listed twice is computed once.
    """
    outputs = outputs or rpn_outputs(model, dataset, device=device)
    num_classes = model.config.num_classes
    done, results = {}, []
    for table, row, variant, paper, paper_setting in rows:
        if variant not in done:
            start = time.perf_counter()
            generator = torch.Generator().manual_seed(seed)
            detections, counts = detections_with(model, outputs, variant, generator)
            done[variant] = dict(proposals=float(np.mean(counts)), **score(detections, outputs["ground_truths"],
                                                                            num_classes),
                                 seconds=time.perf_counter() - start)
        results.append(dict(table=table, row=row, mode=variant.mode, top_n=variant.top_n, **done[variant],
                            paper=paper, paper_setting=paper_setting))
    return results


@torch.no_grad()
def proposal_recall(model, outputs, modes=PROPOSAL_MODES, top_ns=(10, 20, 50, 100, 200, 300, 500, 1000),
                    iou_thresholds=(0.5, 0.7), seed=0):
    """Recall of the ground truth against the number of proposals per image, for each
    proposal mode (the paper's figure 2 / TPAMI figures 4-6, for our RPN).

    Args:
        outputs (dict): :func:`rpn_outputs` of ``model``.

    Returns:
        dict: mode -> {IoU threshold -> ``np.ndarray`` of recalls, one per ``top_ns``}.
    """
    result = {}
    for mode in modes:
        generator = torch.Generator().manual_seed(seed)
        variant = ProposalVariant(mode, max(top_ns))
        proposals = []
        for b in outputs["batches"]:
            proposals += [p.cpu() for p in select_proposals(b["anchors"], b["objectness"], b["deltas"], b["sizes"],
                                                            variant, model.rpn.settings, generator)]
        result[mode] = recall_vs_proposals(proposals, outputs["targets"], top_ns, iou_thresholds)
    return result


def results_table(rows, columns=("map50", "ap"), paper=True):
    """A text table of result dicts (``table``, ``row``, metrics, ``paper``), one line each."""
    lines = [f"{'table':<12}{'row':<16}" + "".join(f"{c:>10}" for c in columns)
             + (f"{'paper mAP':>11}  paper's setting" if paper else "")]
    for r in rows:
        values = "".join(f"{r[c]:>10.3f}" if isinstance(r[c], float) else f"{r[c]!s:>10}" for c in columns)
        line = f"{r['table']:<12}{r['row']:<16}{values}"
        if paper:
            line += (f"{r['paper']:>11.1f}" if r.get("paper") is not None else f"{'-':>11}") + \
                f"  {r.get('paper_setting', '')}"
        lines.append(line)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- timing

# Paper, section 4.1 (table 5 of the TPAMI version): ms per image on a K40 GPU.
PAPER_TIMING = {"VGG-16": {"conv": 141, "proposals": 10, "region-wise": 47, "total": 198},
                "ZF": {"conv": 31, "proposals": 3, "region-wise": 25, "total": 59}}


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_parts(model, images, device=None, warmup=3, repeats=3):
    """Inference time of each part of a detector, per image, like the paper's timing table.

    Each image runs alone (a batch of one, as in the paper): **conv** = image preparation
    + backbone, **proposals** = RPN head + proposal layer (NMS included), **region-wise**
    = RoI op + box head + post-processing (per-class NMS included). The first ``warmup``
    images run untimed; then every image is timed ``repeats`` times.

    Args:
        model (FasterRCNN).
        images (list of Tensor): ``(3, H, W)``.
        device: default ``minifrcnn.get_device()`` (a GPU when present).

    Returns:
        dict: median milliseconds per image for ``"conv"``, ``"proposals"``,
        ``"region-wise"`` and ``"total"`` (the median of the totals), plus ``"device"``,
        ``"threads"``, ``"images"``.
    """
    device = get_device(device) if device is None or isinstance(device, str) else device
    was_training = model.training
    model.to(device).eval()
    parts = {"conv": [], "proposals": [], "region-wise": [], "total": []}

    def run(image):
        _synchronize(device)
        t0 = time.perf_counter()
        batch, sizes, _ = model.transform([image])
        features = model.backbone(batch)
        _synchronize(device)
        t1 = time.perf_counter()
        proposals, _ = model.rpn(ImageBatch(batch, sizes), features)
        _synchronize(device)
        t2 = time.perf_counter()
        detections, _ = model.head(features, proposals, sizes)
        model.transform.postprocess(detections, sizes, [tuple(image.shape[-2:])])
        _synchronize(device)
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    images = [image.to(device) for image in images]
    for image in images[:warmup]:
        run(image)
    for _ in range(repeats):
        for image in images:
            conv, proposals, region = run(image)
            for name, seconds in (("conv", conv), ("proposals", proposals), ("region-wise", region),
                                  ("total", conv + proposals + region)):
                parts[name].append(seconds * 1000)
    model.train(was_training)
    result = {name: float(np.median(values)) for name, values in parts.items()}
    result.update(device=str(device), threads=torch.get_num_threads(), images=len(images))
    return result


def timing_table(measured):
    """The paper's timing table with measured columns beside it.

    Args:
        measured (dict): column name -> :func:`time_parts` result.
    """
    columns = {**{f"paper {k} (K40)": v for k, v in PAPER_TIMING.items()}, **measured}
    widths = [max(12, len(name) + 2) for name in columns]
    lines = [f"{'ms per image':<14}" + "".join(f"{name:>{w}}" for name, w in zip(columns, widths))]
    for part in ("conv", "proposals", "region-wise", "total"):
        lines.append(f"{part:<14}" + "".join(f"{c[part]:>{w}.1f}" for c, w in zip(columns.values(), widths)))
    lines.append(f"{'fps':<14}" + "".join(f"{1000 / c['total']:>{w}.1f}" for c, w in zip(columns.values(), widths)))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- one-stage detector


class DenseHead(nn.Module):
    """The RPN's head with classes: a 3x3 conv, then per anchor ``K`` class logits
    (background included) and ``4K`` class-specific box deltas.

    Shapes: ``(N, C, H, W)`` -> ``(N, k*K, H, W)`` and ``(N, 4*k*K, H, W)``.
    """

    def __init__(self, in_channels, num_anchors, num_classes):
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * num_classes * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):  # as the RPN head (section 3.1.3)
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, features):
        """Returns ``(N, A, K)`` logits and ``(N, A, 4K)`` deltas, anchors in the RPN's order."""
        hidden = F.relu(self.conv(features))
        logits, deltas = self.cls_logits(hidden), self.bbox_pred(hidden)
        n, _, h, w = features.shape
        k, classes = self.num_anchors, self.num_classes
        logits = logits.view(n, k, classes, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * k, classes)
        deltas = deltas.view(n, k, classes * 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * k, classes * 4)
        return logits, deltas


class OneStageDetector(nn.Module):
    """The paper's one-stage baseline (section 4.1, "one-stage detection vs. two-stage
    proposal + detection"): the sliding-window head classifies every anchor into the
    ``K`` classes directly and regresses a box per class; its outputs, post-processed as
    the Fast R-CNN head's (score > 0.05, per-class NMS, top 100), are the detections.
    There is no second stage and no RoI op.

    The paper's version is Fast R-CNN run on dense sliding windows (3 scales x 3 ratios,
    RoI-pooled features); this one is an RPN with classes (as OverFeat or, later, SSD), on
    the same backbone and anchors. Its anchors are labelled and sampled by **Fast R-CNN's**
    rule, as the paper's dense windows are: foreground at IoU >= ``box_fg_iou`` (0.5) with
    the object's class (and the best anchor of each object), background below
    ``box_bg_iou``, ``box_batch_size`` anchors an image with up to ``box_positive_fraction``
    foreground. (The RPN's rule, 0.7 / 0.3 and 256 anchors, leaves about one foreground
    anchor in 30, so each digit class is 0.3 % of the samples: trained that way for the
    course's budget the classifier never rose above "background", 0.08 mAP@0.5.)
    Same call as :class:`minifrcnn.detector.FasterRCNN`.
    """

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or DetectorConfig.course()
        self.transform = ImagePreparation(config)
        self.backbone = make_backbone(config)
        self.anchor_generator = AnchorGenerator(config.anchor_sizes, config.aspect_ratios)
        self.head = DenseHead(self.backbone.out_channels, self.anchor_generator.num_anchors_per_location,
                              config.num_classes)
        self.matcher = Matcher(config.box_fg_iou, config.box_bg_iou, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(config.box_batch_size, config.box_positive_fraction)
        self.box_coder = BoxCoder(RPN_BOX_WEIGHTS)
        self.settings = replace(HeadSettings(), **{k: v for k, v in asdict(config.head_settings()).items()
                                                   if k in ("score_threshold", "nms_threshold",
                                                            "detections_per_image")})

    def anchor_labels(self, anchors, boxes, labels):
        """``(A,)`` int64 class of each anchor (0 background, -1 ignored) and ``(A, 4)``
        matched ground-truth boxes."""
        return assign_targets(anchors, boxes, labels, self.matcher)  # the head's rule, on anchors

    def loss(self, anchors, logits, deltas, targets):
        """Cross-entropy over the sampled anchors and smooth L1 (beta 1/9) on the true
        class's box of the sampled foreground, divided by the number sampled (as the RPN)."""
        all_classes, all_targets, all_sampled = [], [], []
        for t in targets:
            classes, matched = self.anchor_labels(anchors, t["boxes"], t["labels"])
            positive, negative = self.sampler(classes)
            all_classes.append(classes)
            all_targets.append(self.box_coder.encode(matched, anchors))
            all_sampled.append(positive | negative)
        classes, box_targets = torch.stack(all_classes), torch.stack(all_targets)
        sampled = torch.stack(all_sampled)
        loss_classifier = F.cross_entropy(logits[sampled], classes[sampled])
        foreground = sampled & (classes > 0)
        fg_deltas = deltas[foreground].reshape(-1, self.config.num_classes, 4)
        fg_deltas = fg_deltas[torch.arange(len(fg_deltas)), classes[foreground]]
        loss_box = F.smooth_l1_loss(fg_deltas, box_targets[foreground], beta=1 / 9,
                                    reduction="sum") / max(1, int(sampled.sum()))
        return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box}

    def forward(self, images, targets=None):
        batch, sizes, targets, original_sizes = prepare_inputs(self, images, targets)
        features = self.backbone(batch)
        logits, deltas = self.head(features)
        anchors = self.anchor_generator(tuple(batch.shape[-2:]), tuple(features.shape[-2:]),
                                        dtype=features.dtype, device=features.device)
        if self.training:
            return self.loss(anchors, logits, deltas, targets)
        detections = []
        top_n = min(self.config.rpn_pre_nms_top_n_test, len(anchors))
        for image_logits, image_deltas, size in zip(logits, deltas, sizes):
            # Post-process only the anchors most likely to be an object (as the RPN's
            # pre-NMS top-n): the same detections, at a tenth of the cost.
            foreground = 1 - F.softmax(image_logits, -1)[:, 0]
            idx = foreground.topk(top_n).indices
            detections.append(postprocess(image_logits[idx], image_deltas[idx], anchors[idx], size,
                                          self.box_coder, self.settings))
        return self.transform.postprocess(detections, sizes, original_sizes)


# ----------------------------------------------------------------------------- training-time ablations


def lambda_to_weight(lam):
    """The course's RPN box-loss weight (``DetectorConfig.rpn_box_loss_weight``) for the
    paper's lambda.

    The paper's RPN loss (equation 1) is ``L_cls / N_cls + lambda * L_reg / N_reg`` with
    ``N_cls = 256`` (sampled anchors) and ``N_reg ~ 2400`` (anchor positions of a ~1000 x 600
    image), so the box loss weighs ``lambda * 256 / 2400 ~ lambda / 9.4`` relative to
    torchvision's (and the course's) ``L_reg / N_cls``. We round this to ``lambda / 10``:
    the paper's default lambda = 10 is the course's weight 1. (The course's 16 x 16 feature
    map has ``N_reg = 256`` positions; taking that literally would make the weight lambda
    itself, and the paper's lambda = 10 a box loss ten times heavier than its default.)
    """
    return lam / 10


@dataclass(frozen=True)
class Row:
    """One row of a training-time ablation table.

    Attributes:
        table (str), name (str): where it goes.
        kind (str): what is trained: ``"joint"`` (:class:`FasterRCNN`, approximate joint
            training), ``"one_stage"`` (:class:`OneStageDetector`), ``"alternating"`` (the
            paper's 4-step training; ``output`` picks the model).
        output (str): ``"model"``, or for ``"alternating"`` ``"unshared"`` (step 2: the RPN
            of step 1 and the Fast R-CNN of step 2, two backbones) / ``"shared"`` (step 4).
            Each of the 4 steps trains for the row's number of steps (the paper's steps each
            run a full schedule), so this row costs about 1.5 joint trainings (steps 3 and 4
            train the heads only).
        changes (tuple): ``DetectorConfig`` changes from the course defaults, a tuple of
            ``(field, value or callable(base config) -> value)``.
        paper (float): the paper's mAP for the same row (VOC 2007 test).
        paper_setting (str): what the paper measured.
    """

    table: str
    name: str
    kind: str = "joint"
    output: str = "model"
    changes: tuple = ()
    paper: float = None
    paper_setting: str = ""

    def config(self, base=None):
        base = base or DetectorConfig.course()
        return replace(base, **{k: (v(base) if callable(v) else v) for k, v in self.changes})


def _middle_size(config):
    return (config.anchor_sizes[len(config.anchor_sizes) // 2],)


# The paper's numbers: PASCAL VOC 2007 test, VGG-16 trained on 07 (anchors, lambda, sharing:
# TPAMI tables 8, 9 and 3), ZF (one vs two stages, table 10).
TRAINING_ROWS = (
    Row("baseline", "course", paper=69.9, paper_setting="VGG-16, RPN 300, shared, 07"),
    Row("anchors", "1x1", changes=(("anchor_sizes", _middle_size), ("aspect_ratios", (1.0,))),
        paper=65.8, paper_setting="128 px, 1:1"),
    Row("anchors", "1x3", changes=(("anchor_sizes", _middle_size),),
        paper=68.8, paper_setting="128 px, {2:1, 1:1, 1:2}"),
    Row("anchors", "3x1", changes=(("aspect_ratios", (1.0,)),),
        paper=69.8, paper_setting="{128, 256, 512} px, 1:1"),
    Row("anchors", "3x3", paper=69.9, paper_setting="the default"),
    Row("lambda", "0.1", changes=(("rpn_box_loss_weight", lambda_to_weight(0.1)),), paper=67.2),
    Row("lambda", "1", changes=(("rpn_box_loss_weight", lambda_to_weight(1)),), paper=68.9),
    Row("lambda", "10", changes=(("rpn_box_loss_weight", lambda_to_weight(10)),), paper=69.9,
        paper_setting="the default"),
    Row("lambda", "100", changes=(("rpn_box_loss_weight", lambda_to_weight(100)),), paper=69.1),
    Row("sharing", "unshared", kind="alternating", output="unshared", paper=68.5,
        paper_setting="VGG-16, 4-step, after step 2"),
    Row("sharing", "shared", kind="alternating", output="shared", paper=69.9,
        paper_setting="VGG-16, 4-step, after step 4"),
    Row("sharing", "joint", paper=70.0, paper_setting="VGG-16, joint training"),
    Row("stages", "one-stage", kind="one_stage", paper=53.9, paper_setting="ZF, dense, class-specific"),
    Row("stages", "two-stage", paper=58.7, paper_setting="ZF, RPN + Fast R-CNN"),
    # Section 3.1.3: the shared conv layers start from an ImageNet classifier; it never trains from scratch.
    Row("pretraining", "from scratch", changes=(("backbone_weights", None), ("backbone_frozen_stages", 0)),
        paper_setting="not in the paper: it always starts from ImageNet"),
    Row("pretraining", "pretrained", paper_setting="ImageNet-pretrained ZF / VGG-16"),
    # Which pretrained layers to fine-tune: the paper tunes conv3_1 and up on VGG-16 (section 3.1.3);
    # Fast R-CNN's table 5 measured it (VGG-16, VOC 2007): fc6 and up 61.4, conv3_1 and up 66.9, conv2_1 and up 67.2.
    Row("fine-tuning", "all stages", changes=(("backbone_frozen_stages", 0),), paper=67.2,
        paper_setting="Fast R-CNN, VGG-16: conv2_1 and up"),
    Row("fine-tuning", "stages 2-3", changes=(("backbone_frozen_stages", 1),), paper=66.9,
        paper_setting="Fast R-CNN, VGG-16: conv3_1 and up (the paper's choice)"),
    Row("fine-tuning", "stage 3", changes=(("backbone_frozen_stages", 2),),
        paper_setting="between conv3_1 and fc6"),
    Row("fine-tuning", "none (fixed)", changes=(("backbone_frozen_stages", 3),), paper=61.4,
        paper_setting="Fast R-CNN, VGG-16: fc6 and up (conv layers fixed)"),
)
TABLES = tuple(dict.fromkeys(row.table for row in TRAINING_ROWS))


def default_steps():
    """Training steps per row: the course's ``TrainSettings().steps`` (the baseline is the
    course's detector exactly), about 3 minutes per row on 2 idle CPU cores."""
    return TrainSettings().steps


def _plain(value):
    """JSON's view of a value (tuples -> lists), to compare settings with a file's."""
    return json.loads(json.dumps(value))


def row_settings(row, steps=None, seed=0, limit=0):
    """Everything that determines a row's result, as plain JSON values."""
    settings = replace(TrainSettings(), steps=steps or default_steps(), seed=seed)
    result = {"kind": row.kind, "output": row.output, "config": asdict(row.config()), "train": asdict(settings),
              "limit": limit, "eval_split": "test"}
    if row.kind == "alternating":
        result["steps_per_stage"] = split_steps(settings.steps, settings.steps)
    return _plain(result)


def run_key(settings):
    """Rows with the same run key come from one training run (e.g. the baseline, anchors
    3 x 3 and lambda 10; both outputs of the alternating training)."""
    same = {k: v for k, v in settings.items() if k != "output"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:16]


def find_row(table, name):
    for row in TRAINING_ROWS:
        if row.table == table and row.name == name:
            return row
    names = "\n  ".join(f"{r.table!r}, {r.name!r}" for r in TRAINING_ROWS)
    raise KeyError(f"no ablation row ({table!r}, {name!r}); the rows are:\n  {names}")


def expected_rows(steps=None, seeds=(0,), limit=0):
    """The rows the script writes, with their settings (what a results file must hold)."""
    return [{"table": row.table, "name": row.name,
             "settings": [row_settings(row, steps, seed, limit) for seed in seeds]} for row in TRAINING_ROWS]


def _load(split, limit):
    dataset = load_digits(split)
    if limit:
        dataset = [dataset[i] for i in range(min(limit, len(dataset)))]
    return cache(dataset)


def loss_curve(history, window=10):
    """A training history (one dict of losses per step) as the mean of every ``window``
    steps, per loss: ``{"window": 10, "loss": [...], "loss_objectness": [...], ...}``, rounded
    to 4 digits (small enough for the results file, enough for a plot)."""
    names = [k for k in history[0] if k.startswith("loss")] if history else []
    curve = {"window": window}
    for name in names:
        values = np.asarray([h[name] for h in history if name in h], dtype=np.float64)
        usable = len(values) // window * window
        curve[name] = [round(float(v), 4) for v in values[:usable].reshape(-1, window).mean(axis=1)]
    return curve


def train_run(kind, config, settings, train_data, device, progress=False):
    """Train what ``kind`` names; returns ``({output name: model}, loss curve)`` (see
    :func:`loss_curve`; the 4-step training's stages one after the other)."""
    seed_everything(settings.seed)
    if kind in ("joint", "one_stage"):
        model = FasterRCNN(config) if kind == "joint" else OneStageDetector(config)
        history = train(model, train_data, settings, device=device, progress=progress)
        return {"model": model}, loss_curve(history)
    if kind == "alternating":  # each of the 4 steps trains for the row's steps, as the paper's steps
        result = train_alternating(train_data, config, settings, steps_per_stage=settings.steps, device=device,
                                   progress=progress)
        history = [{"loss": h["loss"]} for stage in result.histories.values() for h in stage]
        return {"unshared": result.unshared_model, "shared": result.model}, loss_curve(history)
    raise ValueError(f"unknown kind {kind!r}: 'joint', 'one_stage' or 'alternating'")


def evaluate_model(model, test_data):
    """``{"map50", "ap", "eval_seconds"}`` of ``model`` on cached ``(image, target)`` items
    (:func:`minifrcnn.course.schemes.evaluate_model`, under the results file's key names)."""
    result = schemes_evaluate_model(model, test_data)
    return {"map50": result["map50"], "ap": result["ap"], "eval_seconds": result["seconds"]}


def run_row(table, name, steps=None, seed=0, limit=0, device=None, progress=True, train_data=None,
            test_data=None):
    """Train and evaluate one training-time ablation row, e.g. ``run_row("anchors", "1x1",
    steps=300)``; returns ``{"map50", "ap", "train_seconds", "eval_seconds",
    "settings", "model"}``. ``limit`` uses the first images of each split only."""
    row = find_row(table, name)
    settings = row_settings(row, steps, seed, limit)
    device = get_device(device) if device is None or isinstance(device, str) else device
    train_data = train_data if train_data is not None else _load("train", limit)
    test_data = test_data if test_data is not None else _load("test", limit)
    start = time.perf_counter()
    models, _ = train_run(row.kind, row.config(), TrainSettings(**_train_settings(settings)), train_data, device,
                          progress)
    seconds = time.perf_counter() - start
    model = models[row.output]
    return {**evaluate_model(model, test_data), "train_seconds": seconds,
            "settings": settings, "model": model}


def _train_settings(settings):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings["train"].items()}


def _config(settings):
    return DetectorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings["config"].items()})


def save_half(model, path):
    """Save ``model``'s state dict with floating tensors as float16 (half the size);
    :func:`minifrcnn.training.load_weights` loads it back (``load_state_dict`` converts)."""
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return _sha256(path)


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_results(path=RESULTS_FILE):
    """The results file written by :func:`run_ablations`."""
    return json.loads(Path(path).read_text())


def load_baseline(results=None, weights=None, device="cpu"):
    """The baseline detector of the results file (its recorded configuration) with the
    saved weights (float16 on disk, float32 here), in eval mode."""
    results = results if isinstance(results, dict) else load_results(results or RESULTS_FILE)
    weights = Path(weights or BASELINE_WEIGHTS)
    model = FasterRCNN(_config(results["baseline_weights"]))
    state = load_checkpoint(weights)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval()


def environment(device):
    """Versions and machine, for the results file."""
    import torchvision

    from .. import __version__
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
           "minifrcnn": __version__, "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
           "threads": torch.get_num_threads(), "device": str(device)}
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def _summarise(per_seed):
    """Mean (and spread, with several seeds) of the per-seed metrics."""
    out = {}
    for key in ("map50", "ap", "train_seconds", "eval_seconds"):
        values = [r[key] for r in per_seed]
        out[key] = float(np.mean(values))
        if len(values) > 1 and key in ("map50", "ap"):
            out[key + "_std"] = float(np.std(values, ddof=1))
    return out


def _runs_of(old):
    """``{run key: {output: per-seed metrics}}`` of a results file (older files only have rows)."""
    if "runs" in old:
        return {key: dict(outputs) for key, outputs in old["runs"].items()}
    runs = {}
    for row in old.get("rows", []):
        for metrics in row.get("per_seed", []):
            runs.setdefault(metrics["run"], {})[row["output"]] = metrics
    return runs


def _row_entry(row, expected, runs):
    """A row of the results file from the runs trained so far: one entry per seed done."""
    per_seed = [{**runs[run_key(s)][row.output], "run": run_key(s)}
                for s in expected["settings"] if run_key(s) in runs]
    if not per_seed:
        return None
    return {"table": row.table, "name": row.name, "kind": row.kind, "output": row.output,
            "changes": _plain({k: (v(DetectorConfig.course()) if callable(v) else v) for k, v in row.changes}),
            "paper": row.paper, "paper_setting": row.paper_setting, **_summarise(per_seed),
            "seeds_done": len(per_seed), "per_seed": per_seed, "settings": expected["settings"]}


def run_ablations(out=RESULTS_FILE, steps=None, seeds=(0, 1, 2), limit=0, force=False, only=None, device=None,
                  command=None, weights=None, log=None):
    """Train and evaluate every training-time ablation row, once per seed; write the results file.

    Resumable run by run: every training run is written to the file as soon as it is scored,
    and a run already in the file with the same settings is kept (unless ``force``). Rows
    with the same settings share one run (the baseline is also anchors 3 x 3, lambda 10, ...).
    The seeds go one after the other over all the rows, so an interrupted call leaves every
    row with the same number of seeds, give or take one. The baseline's weights (seed
    ``seeds[0]``) are saved as float16 next to the file (``baseline.pt``), and its mAP with
    those rounded weights is recorded.

    Args:
        out (Path): the JSON file.
        steps (int): training steps per run (per step of the 4-step training); default
            :func:`default_steps`.
        seeds (sequence of int): one training per seed and row; each row has every seed's
            numbers, their mean and their standard deviation (the noise of one run).
        limit (int): use the first ``limit`` images of the train and test splits (smoke test).
        force (bool): re-run the selected rows' runs even if they are in the file.
        only (sequence of str): ``"table"`` or ``"table/name"``: run these rows only (the
            others are kept from the file, if there).
        command (str): the command line, for the record.

    Returns:
        dict: the results (as written).
    """
    log = log or (lambda message: print(message, flush=True))
    out = Path(out)
    weights = Path(weights) if weights else out.parent / "baseline.pt"
    steps = steps or default_steps()
    seeds = [int(s) for s in seeds]
    device = get_device(device) if device is None or isinstance(device, str) else device
    old = load_results(out) if out.exists() else {}
    results = {
        "description": "Training-time ablations of the paper (section 4) at course scale: digits, "
                       "DetectorConfig.course(), TrainSettings() with the steps and seeds below; mAP on the "
                       "test split. Written by minifrcnn.course.ablations.run_ablations; lesson 10 reads it.",
        "paper": PAPER_URL,
        "command": command or "minifrcnn.course.ablations.run_ablations(...)",
        "steps": steps, "seeds": seeds, "limit": limit,
        "environment": environment(device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "lambda_to_weight": "rpn_box_loss_weight = lambda / 10 (see minifrcnn.course.ablations.lambda_to_weight)",
        "baseline_weights": old.get("baseline_weights"),
        "test_time": old.get("test_time"),
    }
    wanted = expected_rows(steps, seeds, limit)
    selected = lambda row: not only or row.table in only or f"{row.table}/{row.name}" in only  # noqa: E731
    keys = {run_key(s) for expected in wanted for s in expected["settings"]}
    runs = {key: outputs for key, outputs in _runs_of(old).items() if key in keys}  # stale runs are dropped
    baseline_settings = wanted[0]["settings"][0]
    recorded = results["baseline_weights"] or {}
    if not (weights.exists() and recorded.get("sha256") == _sha256(weights)
            and recorded.get("settings") == baseline_settings):
        runs.pop(run_key(baseline_settings), None)  # no saved weights for it: train it again
    train_data = test_data = None
    fresh = set()  # run keys trained in this call
    rows_run = []  # "table/name" of the rows whose runs were (re)computed in this call
    start_all = time.perf_counter()

    def write():
        results["rows"] = [entry for entry in (_row_entry(r, e, runs) for r, e in zip(TRAINING_ROWS, wanted))
                           if entry is not None]
        results["runs"] = runs
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write(out, results)

    for seed_index, seed in enumerate(seeds):
        for i, (row, expected) in enumerate(zip(TRAINING_ROWS, wanted), 1):
            tag = f"[seed {seed}, {i}/{len(TRAINING_ROWS)}] {row.table} / {row.name}"
            settings = expected["settings"][seed_index]
            key = run_key(settings)
            if not selected(row):
                if seed_index == 0:
                    log(f"{tag}: not selected")
                continue
            if key in runs and row.output in runs[key] and (key in fresh or not force):
                if key not in fresh:
                    log(f"{tag}: kept from {out.name} (mAP@0.5 {runs[key][row.output]['map50']:.3f})")
                continue
            if train_data is None:
                train_data, test_data = _load("train", limit), _load("test", limit)
            t0 = time.perf_counter()
            load = _load_average()
            models, curve = train_run(row.kind, _config(settings), TrainSettings(**_train_settings(settings)),
                                      train_data, device)
            seconds = time.perf_counter() - t0
            runs[key] = {name: {**evaluate_model(m, test_data), "train_seconds": seconds, "seed": seed,
                                "load_average_before": load, "load_average_after": _load_average(),
                                "loss_curve": curve} for name, m in models.items()}
            fresh.add(key)
            if row.table == "baseline" and seed == seeds[0]:
                sha = save_half(models["model"], weights)
                rounded = load_baseline({"baseline_weights": {"config": settings["config"]}}, weights)
                scored = evaluate_model(rounded, test_data)
                results["baseline_weights"] = {
                    "path": weights.name, "sha256": sha, "bytes": weights.stat().st_size, "dtype": "float16",
                    "settings": settings, "config": settings["config"], "map50": scored["map50"], "ap": scored["ap"]}
            rows_run.append(f"{row.table}/{row.name}")
            write()
            log(f"{tag}: mAP@0.5 {runs[key][row.output]['map50']:.3f}  AP {runs[key][row.output]['ap']:.3f}  "
                f"(paper {row.paper})  train {seconds:.0f} s, {time.perf_counter() - start_all:.0f} s so far")
    write()
    if _test_time_section(results, weights, test_data, limit, log):
        rows_run.append("test-time")
    results["seconds"] = time.perf_counter() - start_all  # this call's (a resumed run: the rest only)
    # Every call that changed the file, oldest first: "command" above is only the last one.
    results["history"] = old.get("history", [])
    if rows_run:
        results["history"].append({"command": results["command"], "started": results["started"],
                                   "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "seconds": round(results["seconds"], 1),
                                   "rows_run": list(dict.fromkeys(rows_run))})
    results["training_seconds_all_rows"] = sum(  # every training run of the file, once
        next(iter(outputs.values()))["train_seconds"] + sum(m["eval_seconds"] for m in outputs.values())
        for outputs in runs.values())
    write()
    return results


def _test_time_section(results, weights, test_data, limit, log):
    """Every test-time ablation of the saved baseline (its float16 weights, the test split),
    unless the file already has them for the same weights. Returns whether it ran them."""
    baseline = results.get("baseline_weights")
    if baseline is None or not weights.exists():
        return False
    previous = results.get("test_time") or {}
    if previous.get("sha256") == baseline["sha256"] and previous.get("rows_defined") == _plain(
            [[t, r, asdict(v)] for t, r, v, _, _ in TEST_TIME_ROWS]):
        return False
    start = time.perf_counter()
    test_data = test_data if test_data is not None else _load("test", limit)
    model = load_baseline(results, weights)
    results["test_time"] = {"sha256": baseline["sha256"], "seed": 0, "images": len(test_data),
                            "rows_defined": _plain([[t, r, asdict(v)] for t, r, v, _, _ in TEST_TIME_ROWS]),
                            "rows": ablate_proposals(model, test_data, seed=0)}
    log(f"test-time ablations of the baseline: {time.perf_counter() - start:.0f} s")
    return True


# The row each table's changes are measured from (the paper's default setting).
REFERENCE_ROWS = {"baseline": "course", "anchors": "3x3", "lambda": "10", "sharing": "shared", "stages": "two-stage",
                  "pretraining": "pretrained",
                  "fine-tuning": {0: "all stages", 1: "stages 2-3", 2: "stage 3", 3: "none (fixed)"}[
                      DetectorConfig.course().backbone_frozen_stages],
                  "proposals": "300", "components": "NMS, 300"}


def noise_band(results, z=2.0):
    """How far apart two rows' mean mAP@0.5 must be to count as a real difference: ``z``
    standard errors of a difference of two means of ``n`` seeds, ``z * sigma * sqrt(2 / n)``,
    where ``sigma`` is the spread of one training run, measured: the standard deviation over
    seeds, pooled over the rows of the results file that were trained with several seeds, and
    ``n`` the fewest seeds of any row (a file still being completed may have the baseline's
    seeds only: then ``n`` is 1 and the band is the widest).

    Returns:
        (float, float): the band and ``sigma`` (mAP@0.5, not points). With no row trained on
        several seeds there is no spread to measure: ``(None, None)``.
    """
    stds = [r["map50_std"] for r in results["rows"] if "map50_std" in r]
    if not stds:
        return None, None
    sigma = float(np.sqrt(np.mean(np.square(stds))))
    seeds = min(r["seeds_done"] for r in results["rows"])
    return z * sigma * float(np.sqrt(2 / seeds)), sigma


def compare_with_paper(rows, table, noise, paper_noise=0.5):
    """Each row's change of mAP@0.5 from its table's reference row (:data:`REFERENCE_ROWS`),
    ours (in points, x100) beside the paper's, with a verdict.

    Args:
        rows (list of dict): results rows (``table``, ``name`` or ``row``, ``map50``, ``paper``).
        table (str): which table.
        noise (float): changes of our mAP@0.5 below this are within the noise of training
            (:func:`noise_band` measures it from the seeds).
        paper_noise (float): the paper's changes below this many points count as none.

    Returns:
        list of dict: ``row``, ``ours`` and ``paper`` (changes in points), ``verdict``.
    """
    rows = [dict(r, row=r.get("row", r.get("name"))) for r in rows if r["table"] == table]
    reference = next(r for r in rows if r["row"] == REFERENCE_ROWS[table])
    out = []
    for r in rows:
        ours = 100 * (r["map50"] - reference["map50"])
        paper = None if r["paper"] is None or reference["paper"] is None else r["paper"] - reference["paper"]
        if r is reference:
            verdict = "reference"
        elif abs(ours) < 100 * noise:
            verdict = ("within noise; not in the paper" if paper is None else
                       "no clear change, as in the paper" if abs(paper) < paper_noise else "within noise here")
        elif paper is None:
            verdict = "a clear change; not in the paper"
        elif abs(paper) < paper_noise:
            verdict = "a change here, none in the paper"
        else:
            verdict = "same direction" if (ours > 0) == (paper > 0) else "opposite direction"
        out.append({"row": r["row"], "map50": r["map50"], "ours": ours, "paper_map": r["paper"], "paper": paper,
                    "verdict": verdict})
    return out


def comparison_table(rows, table, noise, **kwargs):
    """:func:`compare_with_paper` as text: mAP@0.5, change from the reference, the paper's."""
    lines = [f"{table + ': row':<24}{'mAP@0.5':>9}{'change':>9}{'paper':>8}{'change':>9}  verdict "
             f"(noise: +-{100 * noise:.1f} points)",
             f"{'':<24}{'(ours)':>9}{'(points)':>9}{'mAP':>8}{'(points)':>9}"]
    for c in compare_with_paper(rows, table, noise, **kwargs):
        paper_map = f"{c['paper_map']:>8.1f}" if c["paper_map"] is not None else f"{'-':>8}"
        paper = f"{c['paper']:>+9.1f}" if c["paper"] is not None else f"{'-':>9}"
        lines.append(f"{c['row']:<24}{c['map50']:>9.3f}{c['ours']:>+9.1f}{paper_map}{paper}  {c['verdict']}")
    return "\n".join(lines)


def training_table(results, table=None):
    """The rows of a results file as a text table beside the paper's numbers."""
    rows = [dict(r, row=r["name"]) for r in results["rows"] if table is None or r["table"] == table]
    return results_table(rows)


def main_args(args):
    """``python -m minifrcnn ablations`` (see ``minifrcnn.__main__``)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_ablations(args.out, steps=args.steps, seeds=args.seeds, limit=args.limit, force=args.force,
                            only=args.only, device=args.device, command=getattr(args, "command_line", None))
    print(training_table(results))
    print(f"-> {args.out} ({results['seconds']:.0f} s)")
    return results


__all__ = ["ProposalVariant", "select_proposals", "rpn_outputs", "detections_with", "ablate_proposals",
           "proposal_recall", "TEST_TIME_ROWS", "time_parts", "timing_table", "PAPER_TIMING", "OneStageDetector",
           "lambda_to_weight", "Row", "TRAINING_ROWS", "run_row", "run_ablations", "load_results",
           "load_baseline", "expected_rows", "results_table", "training_table", "compare_with_paper",
           "comparison_table", "noise_band", "loss_curve", "LESSON_TEST_TIME_ROWS", "REFERENCE_ROWS"]
