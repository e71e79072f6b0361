"""Test-time ablations (the paper's table 2 and section 4.1): one trained detector, its
proposals picked in other ways; lesson 11.

The variants (:class:`ProposalVariant`) change how the proposals are chosen from the RPN's
outputs and nothing else: the number of test proposals (50 / 100 / 300 / 1000), no NMS
(the top-N boxes by objectness), no objectness scores (N boxes drawn at random: the paper's
"no cls"), no box regression (the anchors themselves: "no reg"). :func:`rpn_outputs` runs
the detector's own stages (``model.prepare``, its backbone, its RPN's head) once per image;
each variant then only reruns the proposal selection (:func:`select_proposals`) and the
detection head. :func:`ablate_proposals` scores every variant, :func:`proposal_recall`
gives recall against the number of proposals for each.
"""
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..boxes import RPN_BOX_WEIGHTS, BoxCoder, clip_boxes_to_image, remove_small_boxes
from ..evaluation import evaluate_coco, evaluate_voc
from ..rpn import filter_proposals
from .train_rpn import recall_vs_proposals


def score(detections, targets, num_classes):
    """``{"map50": VOC mAP@0.5, "ap": COCO AP@[.5:.95]}`` of detections against ground truths."""
    return {"map50": evaluate_voc(detections, targets, num_classes)["map"],
            "ap": evaluate_coco(detections, targets, num_classes)["ap"]}



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


def select_proposals(anchors, objectness, deltas, image_sizes, variant, settings, generator=None, box_coder=None):
    """Proposals of a batch for one :class:`ProposalVariant`.

    Args:
        anchors (Tensor): ``(A, 4)``; objectness (Tensor): ``(N, A)`` logits; deltas
            (Tensor): ``(N, A, 4)``; image_sizes: ``(h, w)`` per image.
        variant (ProposalVariant).
        settings (ProposalSettings): the model's (pre-NMS top-n, NMS threshold, min size).
        generator (torch.Generator, optional): for ``"random"``.
        box_coder (BoxCoder, optional): the RPN's (``model.rpn.box_coder``); default the
            RPN's weights, ``RPN_BOX_WEIGHTS``.

    Returns:
        list of Tensor: ``(K_i, 4)`` proposals per image, ``K_i <= variant.top_n``.
    """
    coder = box_coder or BoxCoder(RPN_BOX_WEIGHTS)
    pre_nms = min(max(settings.pre_nms_top_n_test, variant.top_n), objectness.shape[1])
    nms_thresh = None if variant.mode == "no_nms" else settings.nms_thresh
    result = []
    for logits, image_deltas, size in zip(objectness, deltas, image_sizes):
        if variant.mode == "random":  # no cls layer: every anchor's box is equally likely
            boxes = clip_boxes_to_image(coder.decode(image_deltas, anchors)[:, 0], size)
            boxes = boxes[remove_small_boxes(boxes, settings.min_box_size)]
            order = torch.randperm(len(boxes), generator=generator)[:variant.top_n].to(boxes.device)
            result.append(boxes[order])
            continue
        scores, idx = logits.topk(pre_nms)
        if variant.mode == "no_regression":  # no reg layer: the proposals are the anchors
            boxes = anchors[idx]
        else:
            boxes = coder.decode(image_deltas[idx], anchors[idx])[:, 0]
        # the proposal layer's own steps (clip, drop small boxes, NMS unless "no_nms", top-N),
        # on the logits: the order that the layer's probabilities give
        result.append(filter_proposals(boxes, scores, size, variant.top_n, nms_thresh, settings.min_box_size)[0])
    return result


@torch.no_grad()
def rpn_outputs(model, dataset, batch_size=25, device=None):
    """Run ``model``'s backbone and RPN head once over ``dataset`` (eval mode) and keep
    everything the proposal variants and the detection head need.

    Returns:
        dict: per batch ``features`` ``(B, C, H, W)``, ``anchors`` ``(A, 4)``, ``objectness``
        ``(B, A)``, ``deltas`` ``(B, A, 4)``, ``sizes`` and ``original_sizes``; plus
        ``targets`` (ground truths in the resized frame, for recall) and ``ground_truths``
        (as given, for mAP). ``device``: move the model there first (default: where it is;
        the images follow the model).
    """
    if device is not None:
        model.to(device)
    model.eval()
    batches, targets, ground_truths = [], [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch, scaled, original_sizes = model.prepare([image for image, _ in items],
                                                      [{"boxes": t["boxes"], "labels": t["labels"]} for _, t in items])
        features = model.backbone(batch.tensors)
        out = model.rpn.predict(batch, features, propose=False)
        batches.append(dict(features=features, anchors=out["anchors"], objectness=out["objectness"],
                            deltas=out["deltas"], sizes=batch.image_sizes, original_sizes=original_sizes))
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
                                     model.rpn.settings, generator, model.rpn.box_coder)
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


# What lesson 11 runs live: the paper's rows with at most 300 proposals (the head's cost grows
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
            chosen = select_proposals(b["anchors"], b["objectness"], b["deltas"], b["sizes"], variant,
                                      model.rpn.settings, generator, model.rpn.box_coder)
            proposals += [p.cpu() for p in chosen]
        result[mode] = recall_vs_proposals(proposals, outputs["targets"], top_ns, iou_thresholds)
    return result
