"""Checkers for lesson 07: the Fast R-CNN head's training labels, its loss and its post-processing.

``check_proposal_labels(fn)`` runs a learner's ``fn(proposals, gt_boxes, gt_labels,
fg_iou=0.5, bg_iou=0.5) -> labels`` on hand-made and random cases and compares it, proposal
by proposal, with :func:`reference_proposal_labels` (``minifrcnn.head.assign_targets``,
itself equal to torchvision's ``RoIHeads.assign_targets_to_proposals``). The labels are
classes: the class of the best-overlapping ground truth if its IoU is >= ``fg_iou``
(foreground), 0 if it is below ``bg_iou`` (background), -1 in between (ignored); an image
with no ground truth is all background. When a proposal is wrong the message names it, its
IoUs, and the rule it breaks.

``check_head_loss(fn)`` checks ``fn(class_logits, box_deltas, labels, regression_targets,
beta=1/9) -> (classification, box)`` against ``minifrcnn.head.head_loss`` (equal to
torchvision's ``fastrcnn_loss``) on random batches, with and without foreground RoIs, and
names the usual mistakes: the box loss divided by the foreground RoIs instead of all sampled
ones, every class's box in the loss, background RoIs in the box loss, a mean instead of a sum.

``check_postprocess(fn)`` does the same for one image's post-processing,
``fn(class_logits, box_deltas, proposals, image_size, score_threshold=0.05,
nms_threshold=0.3, detections_per_image=100) -> {"boxes", "scores", "labels"}``, against
:func:`reference_postprocess` (``minifrcnn.head.postprocess``, equal to torchvision's
``RoIHeads.postprocess_detections``). When the detections differ it tries the usual
mistakes (one class per proposal, class-agnostic NMS, no clipping, box-coder weights
(1, 1, 1, 1), sigmoid instead of softmax, labels off by one) and names the one that fits.
"""
import torch
import torch.nn.functional as F

from ...boxes import HEAD_BOX_WEIGHTS, BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from ...head import HeadSettings, assign_targets, head_loss, postprocess
from ...matching import Matcher
from ...nms import batched_nms, nms
from ._check import Case, ExerciseError, call_learner, check_against, compare, describe, falls_back_to

__all__ = ["check_proposal_labels", "reference_proposal_labels", "proposal_label_cases",
           "check_head_loss", "head_loss_cases",
           "check_postprocess", "reference_postprocess", "postprocess_cases"]

HEAD_WEIGHTS = HEAD_BOX_WEIGHTS


def _t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def _labels(values):
    return torch.tensor(values, dtype=torch.int64)


def _random_boxes(n, generator, size=128.0, min_wh=8.0, max_wh=50.0, dtype=torch.float32):
    xy = torch.rand(n, 2, generator=generator, dtype=dtype) * (size - max_wh)
    wh = torch.rand(n, 2, generator=generator, dtype=dtype) * (max_wh - min_wh) + min_wh
    return torch.cat((xy, xy + wh), dim=1)


def _jittered(boxes, copies, generator, spread=0.15):
    """``copies`` noisy copies of every box: realistic proposals, many with IoU near 0.5."""
    boxes = boxes.repeat_interleave(copies, dim=0)
    sizes = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    noisy = boxes + torch.randn(boxes.shape, generator=generator, dtype=boxes.dtype) * spread * sizes
    x1, y1 = torch.minimum(noisy[:, 0], noisy[:, 2] - 2), torch.minimum(noisy[:, 1], noisy[:, 3] - 2)
    return torch.stack((x1, y1, noisy[:, 2], noisy[:, 3]), dim=1)


# ----------------------------------------------------------------------------- proposal labels


def reference_proposal_labels(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=0.5):
    """The finished version: ``(R,)`` int64 labels, class / 0 background / -1 ignored."""
    return assign_targets(proposals, gt_boxes, gt_labels, Matcher(fg_iou, bg_iou))[0]


def proposal_label_cases(seed=0):
    """Hand-made and random cases ``(proposals, gt_boxes, gt_labels)`` for
    :func:`check_proposal_labels`."""
    g = torch.Generator().manual_seed(seed)
    one_digit = _t([[20, 20, 60, 60]])
    random_gt = _random_boxes(5, g)
    random_gt64 = _random_boxes(4, g, dtype=torch.float64)
    random_props64 = torch.cat((_jittered(random_gt64, 60, g, 0.2), _random_boxes(260, g, dtype=torch.float64)))
    return [
        Case("one digit (class 3); proposals with IoU 1, 0.68, 0.39, 0.14 and 0",
             (_t([[20, 20, 60, 60], [24, 24, 64, 64], [30, 30, 70, 70], [40, 40, 80, 80], [90, 90, 120, 120]]),
              one_digit, _labels([3])),
             "IoU >= 0.5 with a ground truth: that ground truth's class; below 0.5: background, 0."),
        Case("IoU exactly 0.5 is foreground",
             (_t([[0, 0, 20, 10], [0, 0, 10, 20], [0, 0, 10, 20.5]]), _t([[0, 0, 10, 10]]), _labels([7])),
             "foreground means IoU >= fg_iou (here IoU = 100 / 200 = 0.5 exactly), not > fg_iou."),
        Case("labels are the ground truths' classes, not their indices",
             (_t([[10, 10, 40, 40], [62, 8, 98, 42], [12, 70, 48, 112]]),
              _t([[12, 10, 40, 42], [60, 10, 100, 40], [10, 70, 50, 110]]), _labels([8, 2, 5])),
             "a proposal matched to ground truth j gets gt_labels[j] (here 8, 2 or 5), not j or j + 1."),
        Case("a proposal over two digits takes the class of the one it overlaps most",
             (_t([[8, 0, 48, 40], [1, 0, 41, 40]]), _t([[0, 0, 40, 40], [10, 0, 50, 40]]), _labels([4, 9])),
             "take, for each proposal, the ground truth with the HIGHEST IoU (max over the ground "
             "truths, dim 0 of box_iou(gt_boxes, proposals)), not the first one above the threshold."),
        Case("an image with no digits: every proposal is background",
             (_t([[0, 0, 30, 30], [50, 50, 90, 100]]), torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)),
             "with no ground truth, box_iou is (0, R) and .max(dim=0) raises: return "
             "torch.zeros(R, dtype=torch.int64) first when there is no ground truth."),
        Case("the ground-truth boxes appended to the proposals are foreground (IoU 1)",
             (torch.cat((_random_boxes(30, g), random_gt)), random_gt, _labels([1, 10, 3, 3, 6])),
             "a ground-truth box has IoU 1 with itself: its label is its own class."),
        Case("an ignore band: fg_iou 0.5, bg_iou 0.3 -> IoU in [0.3, 0.5) is -1",
             (_t([[20, 20, 60, 60], [30, 30, 70, 70], [34, 34, 74, 74], [40, 40, 80, 80], [10, 25, 50, 65]]),
              one_digit, _labels([2])),
             "IoU >= fg_iou: class; IoU < bg_iou: 0; in between (bg_iou <= IoU < fg_iou): -1, ignored "
             "by the sampler. Use the fg_iou and bg_iou arguments.", {"fg_iou": 0.5, "bg_iou": 0.3}),
        Case("300 random proposals and 5 digits",
             (torch.cat((_jittered(random_gt, 40, g), _random_boxes(100, g))), random_gt, _labels([5, 1, 9, 2, 7])),
             "for each proposal: best IoU over the ground truths, its class if >= fg_iou, else 0."),
        Case("float64 boxes and an ignore band [0.1, 0.5)",
             (random_props64, random_gt64, _labels([10, 4, 4, 8])),
             "labels stay int64 whatever the boxes' dtype.", {"fg_iou": 0.5, "bg_iou": 0.1}),
    ]


def _label_symptom(got, expected, case):
    """Why the labels ``got`` differ from ``expected``, when recognisable."""
    proposals, gt_boxes, gt_labels = case.args
    fg_iou, bg_iou = case.kwargs.get("fg_iou", 0.5), case.kwargs.get("bg_iou", 0.5)
    if got.dtype != torch.int64:
        return "labels are class numbers: return int64 (gt_labels' dtype), e.g. gt_labels[matches].clone()."
    if gt_boxes.shape[0] == 0:
        return "no ground truth: every proposal is background (0)."
    iou = box_iou(gt_boxes, proposals)
    best, matches = iou.max(dim=0)
    wrong = (got != expected).nonzero()[0].item()
    b, m, e, o = float(best[wrong]), int(matches[wrong]), int(expected[wrong]), int(got[wrong])
    where = f"proposal {wrong} (best IoU {b:.4g} with ground truth {m}, class {int(gt_labels[m])})"
    if e > 0 and o in (m, m + 1) and o != e:
        return f"{where} got {o}: that is the ground truth's index (+1?), not its class gt_labels[{m}] = {e}."
    if e > 0 and o > 0:
        first = int(torch.where(iou[:, wrong] >= fg_iou)[0][0])
        if o == int(gt_labels[first]):
            return (f"{where} got the class of ground truth {first}, the first above the threshold: "
                    f"take the ground truth with the highest IoU.")
    if e > 0 and o <= 0 and best[wrong] == torch.tensor(fg_iou, dtype=best.dtype):
        return f"{where} is foreground: its IoU is exactly {fg_iou}, and foreground is IoU >= {fg_iou}."
    if e == -1 and o == 0:
        return f"{where} should be ignored (-1): its IoU is in [bg_iou, fg_iou) = [{bg_iou}, {fg_iou})."
    if e == 0 and o == -1:
        return f"{where} is background (0): its IoU is below bg_iou = {bg_iou}."
    return f"{where} should be {e}, you gave {o}."


@falls_back_to(reference_proposal_labels)
def check_proposal_labels(fn, seed=0):
    """Check ``fn(proposals (R, 4), gt_boxes (G, 4), gt_labels (G,), fg_iou=0.5, bg_iou=0.5)
    -> labels (R,) int64`` (lesson 07).

    Returns:
        int: the number of cases passed; raises ``ExerciseError`` otherwise.
    """
    what = "your proposal_labels"
    cases = proposal_label_cases(seed)
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        copies = Case(case.name, tuple(a.clone() for a in case.args), case.hint, case.kwargs)
        got = call_learner(fn, copies, what, label)
        expected = reference_proposal_labels(*case.args, **case.kwargs)
        problem = compare(got, expected, 0, 0, "labels")
        if problem:
            symptom = None
            if isinstance(got, torch.Tensor) and got.shape == expected.shape:
                try:
                    symptom = _label_symptom(got, expected, case)
                except Exception:
                    symptom = None
            raise ExerciseError(f"{label}: {problem}\n  inputs: {describe(case.args)}\n  hint: {case.hint}"
                                + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(not torch.equal(a, c) for a, c in zip(case.args, copies.args)):
            raise ExerciseError(f"{label}: the labels are right, but {what} changed its inputs in place "
                                f"(e.g. writing into gt_labels[matches]'s storage): build a new tensor.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


# ----------------------------------------------------------------------------- post-processing


def reference_postprocess(class_logits, box_deltas, proposals, image_size, score_threshold=0.05,
                          nms_threshold=0.3, detections_per_image=100):
    """The finished version: :func:`minifrcnn.head.postprocess` with weights (10, 10, 5, 5)."""
    settings = HeadSettings(score_thresh=score_threshold, nms_thresh=nms_threshold,
                            detections_per_img=detections_per_image)
    return postprocess(class_logits, box_deltas, proposals, image_size, BoxCoder(HEAD_WEIGHTS), settings)


def _variant(class_logits, box_deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
             detections_per_image=100, argmax=False, agnostic=False, clip=True, weights=HEAD_WEIGHTS,
             sigmoid=False, label_offset=0, drop_small=True):
    """The post-processing with one switchable mistake, to recognise a learner's."""
    num_classes = class_logits.shape[-1]
    boxes = BoxCoder(weights).decode(box_deltas, proposals)
    if clip:
        boxes = clip_boxes_to_image(boxes, image_size)
    scores = torch.sigmoid(class_logits) if sigmoid else F.softmax(class_logits, -1)
    labels = torch.arange(num_classes).expand_as(scores)
    if argmax:
        keep_class = F.one_hot(scores.argmax(-1), num_classes).bool()
        scores = torch.where(keep_class, scores, torch.zeros_like(scores))
    boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
    keep = torch.where(scores > score_threshold)[0]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if drop_small:
        keep = remove_small_boxes(boxes, 1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if agnostic:
        keep = nms(boxes, scores, nms_threshold)[:detections_per_image]
    else:
        keep = batched_nms(boxes, scores, labels, nms_threshold)[:detections_per_image]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep] + label_offset}


_MISTAKES = [
    (dict(argmax=True), "you keep only each proposal's best class. A proposal gives one candidate per "
                        "class: every (proposal, class) pair whose score is above the threshold is a "
                        "detection, even when the background or another class scores higher."),
    (dict(agnostic=True), "NMS ran over all classes at once: a '3' then suppresses an overlapping '8'. "
                          "Run NMS within each class (batched_nms(boxes, scores, labels, threshold))."),
    (dict(clip=False), "boxes leave the image: clip them with clip_boxes_to_image(boxes, (height, width)) "
                       "right after decoding."),
    (dict(drop_small=False), "a box clipped to nothing (zero width or height) is no detection: drop boxes "
                             "thinner than 1e-2 px with remove_small_boxes(boxes, 1e-2) before NMS."),
    (dict(weights=(1.0, 1.0, 1.0, 1.0)), "decode with the head's box-coder weights: BoxCoder((10, 10, 5, 5)), "
                                         "not the RPN's (1, 1, 1, 1)."),
    (dict(sigmoid=True), "scores are a softmax over the K classes (background included), not a sigmoid."),
    (dict(label_offset=-1), "labels are off by one: after dropping the background column, class c is "
                            "column c - 1; return c (1..K-1), as torch.arange(K)[1:] gives."),
]


def postprocess_cases(seed=0):
    """Cases ``(class_logits, box_deltas, proposals, image_size)`` for :func:`check_postprocess`."""
    g = torch.Generator().manual_seed(seed)

    def outputs(r, k, logit_scale=3.0, delta_scale=1.0):
        return torch.randn(r, k, generator=g) * logit_scale, torch.randn(r, 4 * k, generator=g) * delta_scale

    gt = _random_boxes(4, g)
    props = torch.cat((_jittered(gt, 25, g), _random_boxes(50, g)))
    logits, deltas = outputs(len(props), 4)
    many = _random_boxes(400, g, size=120)
    many_logits, many_deltas = outputs(400, 3, logit_scale=1.0)
    # Background wins everywhere; class 1 stays above 0.05.
    bg_wins = torch.tensor([[3.0, 1.0, -2.0], [2.5, 0.5, 0.0], [4.0, -1.0, 1.2]])
    two_classes = torch.tensor([[0.0, 2.0, 2.0]])
    same_digit = torch.tensor([[0.0, 5.0, 1.0], [0.0, 1.0, 5.0]])
    outside = _t([[100, 20, 140, 60], [-20, -10, 30, 40], [150, 10, 170, 40]])
    return [
        Case("150 proposals, 4 classes (3 digits + background)", (logits, deltas, props, (128, 128)),
             "softmax -> decode one box per class with BoxCoder((10, 10, 5, 5)) -> clip -> drop the "
             "background column -> score > threshold -> remove_small_boxes(1e-2) -> per-class NMS -> "
             "the first detections_per_image."),
        Case("background scores highest, yet class 1 is above 0.05",
             (bg_wins, torch.zeros(3, 12), _t([[10, 10, 40, 40], [60, 60, 90, 100], [20, 70, 50, 120]]), (128, 128)),
             "a (proposal, class) pair is a detection if its score > score_threshold, whatever the "
             "other classes score."),
        Case("one proposal, two classes above the threshold: two detections",
             (two_classes, torch.randn(1, 12, generator=g) * 0.5, _t([[30, 30, 70, 80]]), (128, 128)),
             "each class has its own box (columns 4c..4c+3 of the deltas) and its own score."),
        Case("the same digit scored '1' by one proposal and '2' by another: per-class NMS keeps both",
             (same_digit, torch.zeros(2, 12), _t([[30, 30, 70, 80], [31, 30, 71, 81]]), (128, 128)),
             "boxes of different classes never suppress each other.", {"nms_threshold": 0.3}),
        Case("boxes leaving a 100 x 140 image (height 100, width 140) are clipped; one clipped to nothing is dropped",
             (torch.tensor([[0.0, 4, 0], [0, 0, 4], [0, 4, 4]]), torch.zeros(3, 12), outside, (100, 140)),
             "clip to image_size = (height, width), then drop boxes thinner than 1e-2 px: the third "
             "proposal lies wholly right of the image."),
        Case("400 proposals: only the best detections_per_image = 20 are kept",
             (many_logits, many_deltas, many, (128, 128)), "NMS returns the kept boxes best first: keep the "
             "first detections_per_image of them.", {"detections_per_image": 20}),
        Case("torchvision's NMS threshold 0.5 and score threshold 0.2", (logits, deltas, props, (128, 128)),
             "use the nms_threshold and score_threshold arguments.",
             {"nms_threshold": 0.5, "score_threshold": 0.2}),
        Case("no proposals at all", (torch.zeros(0, 4), torch.zeros(0, 16), torch.zeros(0, 4), (128, 128)),
             "return empty tensors: boxes (0, 4), scores (0,), labels (0,) int64."),
    ]


def _as_detections(got, label):
    if not isinstance(got, dict) or not {"boxes", "scores", "labels"} <= set(got):
        what = sorted(got) if isinstance(got, dict) else describe(got)
        raise ExerciseError(f"{label}: return a dict with keys 'boxes', 'scores' and 'labels' (as "
                            f"torchvision's detectors do), got {what}")
    return got


# ----------------------------------------------------------------------------- the loss


def _loss_batch(generator, rois, num_classes, foreground, dtype=torch.float32):
    """A sampled batch: logits (S, K), deltas (S, 4K), labels (S,) with ``foreground`` of them
    > 0, regression targets (S, 4) of unit scale."""
    logits = torch.randn(rois, num_classes, generator=generator, dtype=dtype) * 2
    deltas = torch.randn(rois, 4 * num_classes, generator=generator, dtype=dtype)
    labels = torch.zeros(rois, dtype=torch.int64)
    labels[:foreground] = torch.randint(1, num_classes, (foreground,), generator=generator)
    labels = labels[torch.randperm(rois, generator=generator)]
    targets = torch.randn(rois, 4, generator=generator, dtype=dtype)
    return logits, deltas, labels, targets


def head_loss_cases(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Case("8 RoIs, 3 classes, 3 foreground", _loss_batch(g, 8, 3, 3),
             "cross-entropy over all 8 RoIs; the box term only for the 3 foreground ones, summed, divided by 8."),
        Case("64 RoIs, 11 classes, 20 foreground", _loss_batch(g, 64, 11, 20),
             "the box term uses the 4 deltas of each foreground RoI's own class: reshape (S, 4K) to (S, K, 4)."),
        Case("only background RoIs", _loss_batch(g, 16, 11, 0),
             "no foreground RoI: the box loss is 0 (a sum over nothing), not NaN (a mean over nothing)."),
        Case("only foreground RoIs", _loss_batch(g, 16, 5, 16), "every RoI has a box term."),
        Case("Fast R-CNN's beta = 1", _loss_batch(g, 32, 11, 6), "pass beta on to the smooth-L1 loss.",
             kwargs={"beta": 1.0}),
        Case("float64", _loss_batch(g, 16, 11, 4, dtype=torch.float64), "compute in the inputs' dtype."),
    ]


def _loss_symptom(got, expected, args, beta=1 / 9):
    """Which usual mistake gives the learner's box loss (or None)."""
    logits, deltas, labels, targets = args
    if abs(float(got[0]) - float(expected[0])) > 1e-4 * max(1.0, abs(float(expected[0]))):
        return "the classification loss is F.cross_entropy(class_logits, labels): the mean over all S RoIs."
    rois, classes = logits.shape
    per_class = deltas.reshape(rois, classes, 4)
    fg = torch.where(labels > 0)[0]
    own = per_class[fg, labels[fg]]
    total = F.smooth_l1_loss(own, targets[fg], beta=beta, reduction="sum")
    mistakes = [
        (total / rois, "beta is not passed on: F.smooth_l1_loss(..., beta=beta)."),  # right, but at beta 1/9
        (total / max(1, len(fg)),
         "the box loss is divided by the number of foreground RoIs: divide by all S sampled RoIs."),
        (F.smooth_l1_loss(own, targets[fg], beta=beta) if len(fg) else None,
         "the box loss is a mean over the coordinates (reduction='mean'): sum it, then divide by S."),
        (F.smooth_l1_loss(per_class[fg], targets[fg, None].expand(-1, classes, -1), beta=beta, reduction="sum") / rois,
         "every class's box is in the loss: only the RoI's own class (labels[fg]) has a target."),
        (F.smooth_l1_loss(per_class[torch.arange(rois), labels], targets, beta=beta, reduction="sum") / rois,
         "background RoIs are in the box loss: keep the foreground ones (labels > 0) only."),
        (F.smooth_l1_loss(own, targets[fg], beta=1.0, reduction="sum") / rois,
         "the smooth-L1 loss has beta = 1: use beta."),
    ]
    for value, explanation in mistakes:
        if value is not None and abs(float(got[1]) - float(value)) < 1e-5 * max(1.0, abs(float(value))):
            return explanation
    return None


@falls_back_to(head_loss)
def check_head_loss(fn):
    """Check ``fn(class_logits (S, K), box_deltas (S, 4K), labels (S,), regression_targets (S, 4),
    beta=1/9) -> (classification, box)`` against :func:`minifrcnn.head.head_loss` (lesson 07)."""
    return check_against(fn, head_loss, head_loss_cases(), atol=1e-5, rtol=1e-5, what="your head loss",
                         symptoms=_loss_symptom)


def _same(got, expected):
    return all(isinstance(got[k], torch.Tensor) and got[k].shape == expected[k].shape
               and torch.allclose(got[k].to(expected[k].dtype), expected[k], atol=1e-4, rtol=1e-5)
               for k in ("boxes", "scores", "labels"))


@falls_back_to(reference_postprocess)
def check_postprocess(fn, seed=0):
    """Check ``fn(class_logits (R, K), box_deltas (R, 4K), proposals (R, 4), image_size,
    score_threshold=0.05, nms_threshold=0.3, detections_per_image=100) -> {"boxes" (D, 4),
    "scores" (D,), "labels" (D,) int64}`` against :func:`reference_postprocess` (lesson 07)."""
    what = "your postprocess"
    cases = postprocess_cases(seed)
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        copies = Case(case.name, tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in case.args),
                      case.hint, case.kwargs)
        got = _as_detections(call_learner(fn, copies, what, label), label)
        expected = reference_postprocess(*case.args, **case.kwargs)
        problem = None
        if isinstance(got["boxes"], torch.Tensor) and len(got["boxes"]) != len(expected["boxes"]):
            problem = f"you return {len(got['boxes'])} detections, expected {len(expected['boxes'])}"
        for key, atol in (("boxes", 1e-4), ("scores", 1e-5), ("labels", 0)):
            problem = problem or compare(got[key], expected[key], atol, 1e-5, f'result["{key}"]')
        if problem:
            symptom = None
            for mistake, explanation in _MISTAKES:
                try:
                    if _same(got, _variant(*case.args, **case.kwargs, **mistake)):
                        symptom = explanation
                        break
                except Exception:
                    continue
            raise ExerciseError(f"{label}: {problem}\n  inputs: {describe(case.args)}\n  hint: {case.hint}"
                                + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(isinstance(a, torch.Tensor) and not torch.equal(a, c) for a, c in zip(case.args, copies.args)):
            raise ExerciseError(f"{label}: the detections are right, but {what} changed its inputs in place.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
