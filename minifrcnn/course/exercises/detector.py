"""Checkers for lesson 09: the matching of detections to ground truth that AP is built on, and AP itself.

``check_match(fn)`` runs a learner's ``fn(boxes, scores, gt_boxes, iou_threshold=0.5) ->
is_tp`` (one class, one image: ``(D, 4)``, ``(D,)``, ``(G, 4)`` -> ``(D,)`` bool, in the
input order) on hand-made and random cases and compares it with
:func:`reference_match` (``minifrcnn.evaluation.match_voc``, the rule of ``evaluate_voc``):
best score first (stable on ties); each detection is compared with the ground truth it
overlaps most; a true positive if that IoU is > ``iou_threshold`` and the box is still
free. When the flags differ it tries the usual mistakes (matching in the input order, no
"taken" flag, IoU >= instead of >, the first box above the threshold instead of the best,
COCO's fall-back to the next free box) and names the one that fits.

``check_average_precision(fn)`` checks ``fn(recall, precision) -> AP`` (numpy arrays after each
detection, best score first) against ``minifrcnn.evaluation.voc_ap``, the area under the
precision envelope, and recognises the area under the raw curve and VOC 2007's 11 points.
"""
import numpy as np
import torch

from ...boxes import box_iou
from ...evaluation import match_voc, voc_ap
from ._check import Case, ExerciseError, call_learner, compare, describe, falls_back_to

__all__ = ["check_match", "reference_match", "match_cases", "check_average_precision", "average_precision_cases"]


def _t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def _s(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def reference_match(boxes, scores, gt_boxes, iou_threshold=0.5):
    """The finished version: ``(D,)`` bool, True for VOC's true positives (input order)."""
    return torch.as_tensor(match_voc(boxes, scores, gt_boxes, iou_threshold)[0])


def _variant(boxes, scores, gt_boxes, iou_threshold=0.5, input_order=False, reuse=False, at_least=False,
             first_above=False, fall_back=False):
    """The matching with one switchable mistake, to recognise a learner's."""
    num_det = len(boxes)
    is_tp = torch.zeros(num_det, dtype=torch.bool)
    if len(gt_boxes) == 0 or num_det == 0:
        return is_tp
    iou = box_iou(boxes.double(), gt_boxes.double())
    taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
    order = range(num_det) if input_order else torch.sort(scores, descending=True, stable=True).indices.tolist()

    def good(value):
        return value >= iou_threshold if at_least else value > iou_threshold

    for d in order:
        if first_above:
            above = torch.where(good(iou[d]))[0]
            best = int(above[0]) if len(above) else int(iou[d].argmax())
        elif fall_back:  # COCO: the best *free* box
            free = iou[d].masked_fill(taken, -1)
            best = int(free.argmax())
        else:
            best = int(iou[d].argmax())
        if good(iou[d, best]) and (reuse or not taken[best]):
            taken[best] = is_tp[d] = True
    return is_tp


_MISTAKES = [
    (dict(input_order=True), "you match the detections in the order they come. AP matches them best score "
                             "first: a detection only gets an object if no better-scored detection took it. "
                             "Loop over torch.sort(scores, descending=True, stable=True).indices."),
    (dict(fall_back=True), "when the best-overlapping ground truth was taken, you moved on to the next free "
                           "one. That is COCO's rule; VOC's (this exercise's, and evaluate_voc's) compares a "
                           "detection with its best-overlapping box only: taken means a duplicate."),
    (dict(reuse=True), "an object was matched twice. Keep a 'taken' flag per ground-truth box: the second "
                       "detection on the same object is a duplicate, a false positive."),
    (dict(at_least=True), "IoU exactly at the threshold counted as a match. VOC needs IoU > 0.5 (strictly)."),
    (dict(first_above=True), "you took the first ground truth above the threshold. Compare each detection "
                             "with the ground truth it overlaps MOST (argmax of its row of IoUs)."),
]


def match_cases(seed=0):
    """Hand-made and random cases ``(boxes, scores, gt_boxes)`` for :func:`check_match`."""
    g = torch.Generator().manual_seed(seed)
    digit = _t([[20, 20, 60, 60]])
    xy = torch.rand(6, 2, generator=g) * 80
    random_gt = torch.cat((xy, xy + 12 + torch.rand(6, 2, generator=g) * 30), dim=1)
    source = torch.randint(0, 6, (40,), generator=g)
    sizes = (random_gt[source, 2:] - random_gt[source, :2]).repeat(1, 2)
    noisy = random_gt[source] + torch.randn(40, 4, generator=g) * 0.15 * sizes
    random_det = torch.cat((torch.minimum(noisy[:, :2], noisy[:, 2:] - 2), noisy[:, 2:]), dim=1)
    random_scores = torch.rand(40, generator=g)
    return [
        Case("one digit, one detection at IoU 0.68: a true positive",
             (_t([[24, 24, 64, 64]]), _s([0.9]), digit),
             "compare the detection with the ground truth: IoU > 0.5 and the box is free -> True."),
        Case("two detections on one digit, the better-scored one second in the list",
             (_t([[22, 22, 62, 62], [20, 21, 60, 61]]), _s([0.6, 0.9]), digit),
             "go through the detections best score first: the 0.9 takes the digit, the 0.6 is a duplicate."),
        Case("three detections on one digit: one true positive, two duplicates",
             (_t([[20, 20, 60, 60], [21, 20, 61, 60], [20, 22, 60, 62]]), _s([0.9, 0.8, 0.7]), digit),
             "a ground-truth box can be matched once: mark it taken."),
        Case("IoU exactly 0.5 is not a match",
             (_t([[0, 0, 20, 10]]), _s([0.9]), _t([[0, 0, 10, 10]])),
             "VOC: a true positive needs IoU > 0.5, strictly."),
        Case("two overlapping digits: a detection overlaps the first by 0.67 and the second by 0.90",
             (_t([[28, 20, 68, 60], [20, 20, 60, 60]]), _s([0.9, 0.8]), _t([[20, 20, 60, 60], [30, 20, 70, 60]])),
             "compare a detection with the ground truth it overlaps most, not the first one above 0.5."),
        Case("the best-overlapping digit is already taken: a duplicate, even though another digit overlaps "
             "by 0.67",
             (_t([[20, 20, 60, 60], [24, 20, 64, 60]]), _s([0.9, 0.8]), _t([[20, 20, 60, 60], [32, 20, 72, 60]])),
             "VOC compares a detection with its best-overlapping ground truth only; if that one is taken, "
             "the detection is a false positive (COCO's matching would try the next free box)."),
        Case("equal scores: the one first in the list goes first",
             (_t([[22, 20, 62, 60], [20, 20, 60, 60]]), _s([0.7, 0.7]), digit),
             "sort with a stable sort (torch.sort(scores, descending=True, stable=True)) so that ties keep "
             "their order, as evaluate_voc does."),
        Case("an image without digits of this class: every detection is a false positive",
             (_t([[10, 10, 40, 40], [50, 50, 90, 90]]), _s([0.9, 0.3]), torch.zeros(0, 4)),
             "with no ground truth the IoU matrix is (D, 0) and argmax fails: return all False first."),
        Case("no detections", (torch.zeros(0, 4), torch.zeros(0), digit),
             "return an empty (0,) bool tensor."),
        Case("40 noisy detections of 6 digits, random scores",
             (random_det, random_scores, random_gt),
             "best score first; each detection against its best-overlapping digit; IoU > threshold and free."),
        Case("the same at a stricter IoU threshold, 0.7", (random_det, random_scores, random_gt),
             "use the iou_threshold argument.", {"iou_threshold": 0.7}),
    ]


@falls_back_to(reference_match)
def check_match(fn, seed=0):
    """Check ``fn(boxes (D, 4), scores (D,), gt_boxes (G, 4), iou_threshold=0.5) -> (D,) bool``
    (lesson 09): which detections of one class in one image are true positives.

    Returns:
        int: the number of cases passed; raises ``ExerciseError`` otherwise.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message says it all
    what = "your match"
    cases = match_cases(seed)
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        copies = Case(case.name, tuple(a.clone() for a in case.args), case.hint, case.kwargs)
        got = call_learner(fn, copies, what, label)
        if not isinstance(got, torch.Tensor):
            try:
                got = torch.as_tensor(np.asarray(got, dtype=bool) if len(got) == 0 else got)
            except Exception:
                raise ExerciseError(f"{label}: return a (D,) bool tensor, got {describe(got)}") from None
        if got.dtype != torch.bool and got.numel() and set(got.unique().tolist()) <= {0, 1}:
            raise ExerciseError(f"{label}: return booleans (True for a true positive), got {got.dtype}: "
                                f"e.g. torch.zeros(D, dtype=torch.bool).")
        expected = reference_match(*case.args, **case.kwargs)
        problem = compare(got, expected, 0, 0, "is_tp")
        if problem:
            symptom = None
            if got.shape == expected.shape and got.dtype == torch.bool:
                for mistake, explanation in _MISTAKES:
                    if torch.equal(got.bool(), _variant(*case.args, **case.kwargs, **mistake)):
                        symptom = explanation
                        break
            iou = box_iou(case.args[0], case.args[2]) if len(case.args[0]) and len(case.args[2]) else None
            detail = ""
            if iou is not None and len(iou) <= 4:
                detail = "\n  IoU (detections x ground truth): " + str([[round(v, 3) for v in row]
                                                                       for row in iou.tolist()])
            raise ExerciseError(f"{label}: {problem}\n  inputs: {describe(case.args)}"
                                f"\n  scores: {[round(v, 3) for v in case.args[1].tolist()][:6]}{detail}"
                                f"\n  expected: {expected.tolist()[:12]}, you gave {got.tolist()[:12]}"
                                f"\n  hint: {case.hint}" + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(not torch.equal(a, c) for a, c in zip(case.args, copies.args)):
            raise ExerciseError(f"{label}: the flags are right, but {what} changed its inputs in place "
                                f"(e.g. sorting the boxes in place): work on copies.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


# ----------------------------------------------------------------------------- average precision


def _curve(flags, num_objects):
    """``(recall, precision)`` numpy arrays after each detection, from true-positive flags in score order."""
    flags = np.asarray(flags, dtype=bool)
    tp = np.cumsum(flags)
    return tp / max(1, num_objects), tp / np.arange(1, len(flags) + 1)


def average_precision_cases(seed=0):
    rng = np.random.default_rng(seed)
    return [
        Case("every detection right, every object found", _curve([True] * 4, 4), "AP is 1."),
        Case("right, wrong, right (2 objects)", _curve([True, False, True], 2),
             "half the recall at precision 1, the other half at 2/3: AP = 0.5 + 0.5 * 2/3."),
        Case("precision rises again after a dip", _curve([True, False, False, True, True], 4),
             "the envelope: at each recall, the best precision at that recall or any higher one."),
        Case("no detection", (np.zeros(0), np.zeros(0)), "no detection: AP 0 (not an error)."),
        Case("only wrong detections", _curve([False] * 3, 2), "nothing found: AP 0."),
        Case("some objects never found", _curve([True, True, False], 5),
             "the recall stops at 2/5: the area beyond it counts as 0."),
        Case("500 random detections", _curve(rng.random(500) < 0.4, 250), "a long curve: the same rule."),
    ]


def _raw_area(recall, precision):
    return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))


def _eleven_point(recall, precision):
    return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                          for t in np.linspace(0, 1, 11)]))


@falls_back_to(voc_ap)
def check_average_precision(fn):
    """Check ``fn(recall (D,), precision (D,)) -> float``, numpy arrays after each detection, best score
    first, against :func:`minifrcnn.evaluation.voc_ap`: the area under the precision envelope (lesson 09)."""
    __tracebackhide__ = True
    what = "your average precision"
    cases = average_precision_cases()
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        got = call_learner(fn, Case(case.name, tuple(a.copy() for a in case.args), case.hint), what, label)
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise ExerciseError(f"{label}: return one number (a float), got {describe(got)}") from None
        expected = voc_ap(*case.args)
        if not np.isclose(got, expected, rtol=1e-9, atol=1e-12):
            symptom = None
            if len(case.args[0]) and np.isclose(got, _raw_area(*case.args)):
                symptom = ("the area under the raw precision: take the envelope first (the best precision at "
                           "any higher recall).")
            elif len(case.args[0]) and np.isclose(got, _eleven_point(*case.args)):
                symptom = "that is VOC 2007's 11-point average; take the exact area under the envelope."
            elif np.isnan(got):
                symptom = "NaN: with no detection, return 0."
            raise ExerciseError(f"{label}: AP is {got:.6g}, expected {expected:.6g}\n"
                                f"  recall {np.round(case.args[0][:6], 3).tolist()}, precision "
                                f"{np.round(case.args[1][:6], 3).tolist()}{' ...' if len(case.args[0]) > 6 else ''}\n"
                                f"  hint: {case.hint}" + (f"\n  symptom: {symptom}" if symptom else ""))
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
