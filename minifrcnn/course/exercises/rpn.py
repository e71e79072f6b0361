"""Checkers for lessons 04 and 05: the RPN head's output layout (04); non-maximum suppression and the
proposal layer's filtering (05).

``check_flatten(fn)`` runs a learner's ``fn(objectness (N, k, H, W), deltas (N, 4k, H, W)) ->
(objectness (N, H*W*k), deltas (N, H*W*k, 4))`` on maps of several shapes and compares it with
``minifrcnn.rpn.flatten_head_outputs`` (itself equal to torchvision's ``concat_box_prediction_layers``),
naming the usual mistakes: channel-major rows instead of cell-major, deltas viewed as ``(N, 4, k, H, W)``.

``check_nms(fn)`` runs a learner's ``fn(boxes, scores, iou_threshold) -> keep`` on random
and edge-case inputs and compares the kept indices, in order, with ``minifrcnn.nms.nms``
(itself equal to ``torchvision.ops.nms``). When they differ, the message names the case,
the first index that differs, and the usual cause: ``>=`` instead of ``>``, a non-greedy
rule (suppressing by boxes that were themselves suppressed), an unstable sort of tied
scores, indices returned in index order instead of score order.

``check_filter_proposals(fn)`` does the same for one image's proposal filtering:
``fn(boxes, logits, image_size, pre_nms_top_n, post_nms_top_n, nms_thresh, min_size)
-> (boxes, scores)`` against :func:`reference_filter_proposals`.
"""
import torch

from ...boxes import box_iou, clip_boxes_to_image, remove_small_boxes
from ...nms import nms
from ...rpn import flatten_head_outputs
from ._check import Case, ExerciseError, call_learner, compare, describe, falls_back_to

__all__ = ["check_flatten", "check_nms", "check_filter_proposals", "reference_filter_proposals", "nms_cases"]


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _flatten_cases(seed=0):
    g = torch.Generator().manual_seed(seed)

    def maps(n, k, h, w):
        return torch.randn(n, k, h, w, generator=g), torch.randn(n, 4 * k, h, w, generator=g)

    return [Case("one image, 9 anchors, a 16 x 16 map", maps(1, 9, 16, 16)),
            Case("two images, 3 anchors, a 5 x 7 map (H != W)", maps(2, 3, 5, 7)),
            Case("one anchor per cell", maps(2, 1, 4, 3)),
            Case("a 1 x 1 map", maps(3, 9, 1, 1))]


def _flatten_symptom(got, objectness, deltas):
    """The usual cause of a wrong layout, when recognisable."""
    n, k, h, w = objectness.shape
    got_obj, got_deltas = got
    if isinstance(got_obj, torch.Tensor) and got_obj.shape == (n, h * w * k) and \
            torch.equal(got_obj, objectness.reshape(n, -1)) and k > 1:
        return ("objectness rows are channel-major (all cells of anchor 0, then anchor 1, ...): the anchors "
                "are cell-major, so permute to (N, H, W, k) before reshaping.")
    wrong = deltas.view(n, 4, k, h, w).permute(0, 3, 4, 2, 1).reshape(n, -1, 4)
    if isinstance(got_deltas, torch.Tensor) and got_deltas.shape == wrong.shape and torch.equal(got_deltas, wrong):
        return ("the deltas are grouped by anchor (channels 4a..4a+3 belong to anchor a): view them as "
                "(N, k, 4, H, W), not (N, 4, k, H, W).")
    return None


@falls_back_to(flatten_head_outputs)
def check_flatten(fn, seed=0):
    """Check ``fn(objectness (N, k, H, W), deltas (N, 4k, H, W)) -> (objectness (N, H*W*k),
    deltas (N, H*W*k, 4))`` (lesson 04): row ``(i W + j) k + a`` is anchor ``a`` of cell ``(i, j)``."""
    what = "your flatten"
    cases = _flatten_cases(seed)
    for i, case in enumerate(cases, 1):
        got = call_learner(fn, case, what, f"case {i} ({case.name})")
        expected = flatten_head_outputs(*case.args)
        problem = compare(got, expected, 0.0, 0.0)
        if problem:
            symptom = _flatten_symptom(got, *case.args) if isinstance(got, (tuple, list)) and len(got) == 2 else None
            raise ExerciseError(f"case {i} ({case.name}): {problem}\n  inputs: {describe(case.args)}"
                                + (f"\n  symptom: {symptom}" if symptom else
                                   "\n  hint: row (i * W + j) * k + a holds objectness channel a and delta "
                                   "channels 4a..4a+3 of cell (i, j)."))
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


def _random_boxes(n, generator, size=100.0, max_wh=40.0):
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * max_wh + 1
    return torch.cat((xy, xy + wh), dim=1)


def nms_cases(seed=0):
    """Random and edge cases ``(boxes, scores, iou_threshold)`` for :func:`check_nms`."""
    g = torch.Generator().manual_seed(seed)
    return [
        Case("two boxes, IoU 0.81, threshold 0.5: the lower-scored one goes",
             (_t([[0, 0, 10, 10], [1, 1, 10, 10]]), torch.tensor([0.9, 0.8]), 0.5),
             "keep the best box, then drop every box whose IoU with it is above the threshold."),
        Case("the best box comes last in the input",
             (_t([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]]), torch.tensor([0.2, 0.9, 0.5]), 0.5),
             "visit boxes in decreasing score order, and return the kept indices in that order "
             "(here [1, 2]), not sorted by index."),
        Case("a chain: A suppresses B, B overlaps C, but A does not overlap C",
             (_t([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]]), torch.tensor([0.9, 0.8, 0.7]), 0.3),
             "a suppressed box suppresses nothing: B is removed by A, so C survives (greedy NMS). "
             "Compare each box only with boxes you have KEPT, not with every higher-scored box."),
        Case("IoU exactly equal to the threshold (0.5): both boxes stay",
             (_t([[0, 0, 2, 1], [0, 0, 1, 1]]), torch.tensor([0.9, 0.8]), 0.5),
             "a box is suppressed only if IoU > threshold (strictly), as in torchvision."),
        Case("random boxes, threshold 0.7 (the RPN's)",
             (_random_boxes(60, g), torch.rand(60, generator=g), 0.7),
             "sort by score (highest first); for each box still alive, keep it and suppress the "
             "later boxes that overlap it by more than the threshold."),
        Case("random boxes, threshold 0.3",
             (_random_boxes(60, g), torch.rand(60, generator=g), 0.3), "use the iou_threshold argument."),
        Case("tied scores: equal scores are visited in index order",
             (_random_boxes(40, g, size=30), torch.randint(0, 3, (40,), generator=g).float(), 0.5),
             "sort with torch.sort(scores, descending=True, stable=True): without stable=True, "
             "boxes with equal scores come out in an arbitrary order and other boxes survive."),
        Case("identical boxes with identical scores: only the first stays",
             (_t([[5, 5, 20, 20]] * 4), torch.full((4,), 0.5), 0.7),
             "identical boxes have IoU 1; with equal scores the lowest index is the one kept."),
        Case("no boxes at all", (torch.zeros(0, 4), torch.zeros(0), 0.7),
             "return an empty int64 tensor: torch.tensor(keep, dtype=torch.int64) works for []."),
        Case("zero-area boxes never suppress each other",
             (_t([[3, 3, 3, 3], [3, 3, 3, 3], [0, 0, 10, 10]]), torch.tensor([0.9, 0.8, 0.7]), 0.5),
             "two points have intersection 0 and union 0: their IoU is not above the threshold "
             "(torchvision: 0 / 0 = NaN, and NaN > t is False; minifrcnn's box_iou gives 0)."),
    ]


def _symptom(got, expected, case):
    """Why ``got`` (a list of indices) differs from ``expected``, when recognisable."""
    boxes, scores, threshold = case.args
    if sorted(got) == sorted(expected):
        return ("you keep the right boxes but in the wrong order: return them highest score "
                "first (the order you visited them in).")
    iou = box_iou(boxes, boxes)
    missing = [j for j in expected if j not in got]
    for j in missing:
        equal = [i for i in got if iou[i, j] == threshold]
        if equal:
            return (f"box {j} was removed, but its IoU with kept box {equal[0]} is exactly the "
                    f"threshold {threshold}: suppress only if IoU > threshold, not >=.")
    for other in (0.3, 0.5, 0.7):
        if other != threshold and got == nms(boxes, scores, other).tolist():
            return (f"these are the boxes NMS keeps at threshold {other}, not {threshold}: use "
                    f"the iou_threshold argument instead of a fixed number.")
    if set(got) < set(expected):
        return (f"box {missing[0]} was removed although no KEPT box overlaps it by more than "
                f"{threshold}: a box that was itself suppressed must not suppress others.")
    if set(got) > set(expected):
        extra = [i for i in got if i not in expected][0]
        return (f"box {extra} should have been suppressed by a higher-scored kept box (IoU > "
                f"{threshold}). Did you compare it with the kept boxes?")
    if scores.unique().numel() < scores.numel():
        return ("with tied scores the visiting order decides: sort with stable=True so equal "
                "scores keep their index order.")
    return None


@falls_back_to(nms)
def check_nms(fn, seed=0):
    """Check ``fn(boxes (N, 4), scores (N,), iou_threshold) -> keep (K,) int64`` (lesson 05).

    Returns:
        int: the number of cases passed; raises ``ExerciseError`` otherwise.
    """
    what = "your nms"
    cases = nms_cases(seed)
    for i, case in enumerate(cases, 1):
        args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in case.args)
        got = call_learner(fn, Case(case.name, args, case.hint), what, f"case {i} ({case.name})")
        expected = nms(*case.args)
        if not isinstance(got, torch.Tensor) or got.dim() != 1:
            raise ExerciseError(f"case {i} ({case.name}): {what} should return a 1-D tensor of indices, "
                                f"got {describe(got)}")
        if got.dtype == torch.bool:
            raise ExerciseError(f"case {i} ({case.name}): {what} returned a bool mask; return the kept "
                                f"INDICES (int64), highest score first, as torchvision.ops.nms does.")
        if got.is_floating_point():
            raise ExerciseError(f"case {i} ({case.name}): {what} returned {got.dtype} values; return int64 "
                                f"indices into boxes (boxes[keep] are the kept boxes).")
        if got.tolist() != expected.tolist():
            symptom = _symptom(got.tolist(), expected.tolist(), case)
            raise ExerciseError(f"case {i} ({case.name}): you keep {got.tolist()[:12]}"
                                f"{'...' if len(got) > 12 else ''}, expected {expected.tolist()[:12]}"
                                f"{'...' if len(expected) > 12 else ''}\n  inputs: {describe(case.args)}"
                                f"\n  hint: {case.hint}" + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(not torch.equal(a, c) for a, c in zip(case.args[:2], args[:2])):
            raise ExerciseError(f"case {i} ({case.name}): the indices are right, but {what} changed its "
                                f"input boxes or scores in place.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


# ----------------------------------------------------------------------------- proposal filtering


def reference_filter_proposals(boxes, logits, image_size, pre_nms_top_n, post_nms_top_n, nms_thresh=0.7,
                               min_size=1e-3):
    """The proposal layer for one image, after decoding (torchvision's order).

    Args:
        boxes (Tensor): ``(A, 4)`` decoded boxes, one per anchor.
        logits (Tensor): ``(A,)`` objectness logits.
        image_size (tuple): ``(height, width)``.

    Returns:
        (Tensor, Tensor): the kept boxes ``(K, 4)`` and their probabilities ``(K,)``,
        highest first.
    """
    top = logits.topk(min(pre_nms_top_n, logits.numel())).indices
    boxes, scores = clip_boxes_to_image(boxes[top], image_size), torch.sigmoid(logits[top])
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores = boxes[keep], scores[keep]
    keep = nms(boxes, scores, nms_thresh)[:post_nms_top_n]
    return boxes[keep], scores[keep]


def _proposal_cases(seed=0):
    g = torch.Generator().manual_seed(seed)

    def inputs(n, spread=12.0):
        xy = torch.rand(n, 2, generator=g) * 140 - 20  # some boxes cross the border
        wh = torch.rand(n, 2, generator=g) * 50 + 2
        return torch.cat((xy, xy + wh), 1), torch.randn(n, generator=g) * spread

    boxes, logits = inputs(300)
    outside = torch.tensor([[-30.0, -30, -5, -5], [140, 10, 160, 30], [10, 10, 40, 40], [20, 20, 50, 50]])
    return [
        Case("300 boxes, top 100 -> NMS 0.7 -> top 20", (boxes, logits, (128, 128), 100, 20), "",
             {"nms_thresh": 0.7}),
        Case("keep the top-N by objectness BEFORE NMS", (boxes, logits, (128, 128), 30, 1000), "",
             {"nms_thresh": 0.7}),
        Case("post-NMS top-N cuts the NMS output", (boxes, logits, (128, 128), 300, 5), "",
             {"nms_thresh": 0.5}),
        Case("boxes outside the image: clipped to zero size, then dropped",
             (outside, torch.tensor([3.0, 2.0, 1.0, 0.0]), (100, 120), 10, 10), "", {"nms_thresh": 0.7}),
        Case("a 100x120 image (height first in image_size)", (boxes, logits, (100, 120), 200, 50), "",
             {"nms_thresh": 0.7}),
        Case("min_size 8: small boxes dropped", (boxes, logits, (128, 128), 300, 300), "",
             {"nms_thresh": 0.7, "min_size": 8.0}),
    ]


_STEP_HINTS = (
    "the order is: top-N logits (pre_nms_top_n) -> sigmoid -> clip to the image -> drop boxes "
    "smaller than min_size -> NMS -> first post_nms_top_n. Use logits.topk, clip_boxes_to_image, "
    "remove_small_boxes and nms from minifrcnn.")


def _outside(boxes, image_size):
    """True if some box leaves an image of ``image_size = (height, width)``."""
    height, width = image_size
    return bool(boxes.min() < 0 or boxes[:, 2].max() > width or boxes[:, 3].max() > height)


@falls_back_to(reference_filter_proposals)
def check_filter_proposals(fn, seed=0):
    """Check ``fn(boxes, logits, image_size, pre_nms_top_n, post_nms_top_n, nms_thresh=0.7,
    min_size=1e-3) -> (boxes, scores)`` against :func:`reference_filter_proposals`."""
    what = "your filter_proposals"
    cases = _proposal_cases(seed)
    for i, case in enumerate(cases, 1):
        got = call_learner(fn, Case(case.name, case.args, _STEP_HINTS, case.kwargs), what, f"case {i} ({case.name})")
        expected = reference_filter_proposals(*case.args, **case.kwargs)
        problem = compare(got, expected, 1e-5, 1e-5)
        if problem:
            hint = _STEP_HINTS
            if isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], torch.Tensor):
                if got[1].numel() and (got[1].min() < 0 or got[1].max() > 1):
                    hint = "scores must be probabilities: apply torch.sigmoid to the logits."
                elif isinstance(got[0], torch.Tensor) and got[0].numel() and _outside(got[0], case.args[2]):
                    hint = ("boxes leave the image: clip them with clip_boxes_to_image(boxes, (height, "
                            "width)) before NMS.")
            raise ExerciseError(f"case {i} ({case.name}): {problem}\n  hint: {hint}")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
