"""Checker for lesson 11: proposal recall at N proposals per image.

``check_recall_at_n(fn)`` runs a learner's ``fn(proposals, gt_boxes, n, iou_threshold=0.5)
-> float`` on hand-made and random cases and compares it with :func:`reference_recall_at_n`
(``minifrcnn.course.train_rpn.recall_vs_proposals``, the measurement behind the paper's recall
figures). ``proposals`` and ``gt_boxes`` are lists with one ``(K_i, 4)`` / ``(G_i, 4)``
tensor per image, the proposals best first. The recall is the fraction of *all*
ground-truth boxes (over every image) that at least one of the first ``n`` proposals of
their image overlaps with IoU >= ``iou_threshold``. When the result is wrong the checker
tries the usual mistakes (a mean of per-image recalls, ``>`` for ``>=``, every proposal
instead of the first ``n``, one proposal per object, the fraction of proposals that hit)
and names the one that fits.
"""
import torch

from ...boxes import box_iou
from ..train_rpn import recall_vs_proposals
from ._check import Case, ExerciseError, call_learner, describe, falls_back_to

__all__ = ["check_recall_at_n", "reference_recall_at_n", "recall_cases"]


def reference_recall_at_n(proposals, gt_boxes, n, iou_threshold=0.5):
    """The finished version: recall of all ground-truth boxes at ``n`` proposals per image."""
    return float(recall_vs_proposals(proposals, gt_boxes, (n,), (iou_threshold,))[iou_threshold][0])


def _variant(proposals, gt_boxes, n, iou_threshold=0.5, strict=False, per_image=False, all_proposals=False,
             unique=False, precision=False):
    """The recall with one switchable mistake, to recognise a learner's."""
    found, total, per_image_recalls, hits, shown = 0, 0, [], 0, 0
    for p, g in zip(proposals, gt_boxes):
        p = p if all_proposals else p[:n]
        shown += len(p)
        if len(g) == 0:
            continue
        iou = box_iou(g.to(p), p) if len(p) else torch.zeros(len(g), 0)
        ok = (iou > iou_threshold) if strict else (iou >= iou_threshold)
        if unique:  # each proposal may find one object only (greedy, best first)
            taken, count = torch.zeros(ok.shape[1], dtype=torch.bool), 0
            for row in ok:
                free = torch.where(row & ~taken)[0]
                if len(free):
                    taken[free[0]] = True
                    count += 1
        else:
            count = int(ok.any(dim=1).sum()) if ok.shape[1] else 0
        hits += int(ok.any(dim=0).sum()) if ok.shape[1] else 0
        found, total = found + count, total + len(g)
        per_image_recalls.append(count / len(g))
    if precision:
        return hits / shown
    if per_image:
        return sum(per_image_recalls) / len(per_image_recalls)
    return found / total


_MISTAKES = [
    (dict(per_image=True), "you average the recall of each image: count the found objects and the objects over "
                           "ALL images, then divide once (an image with 6 digits weighs 6 times one with 1)."),
    (dict(strict=True), "an IoU exactly at the threshold counts as found: use >= iou_threshold, not >."),
    (dict(all_proposals=True), "you use every proposal: keep only the first n of each image (proposals[i][:n])."),
    (dict(unique=True), "one proposal may find several objects: recall asks, for each object, whether ANY of "
                        "the first n proposals overlaps it enough (max over the proposals), without matching."),
    (dict(precision=True), "you count the proposals that hit an object (a precision); recall counts the OBJECTS "
                           "that some proposal hits: take the best IoU of each ground-truth box (max over dim 1 "
                           "of box_iou(gt_boxes, proposals))."),
]


def _t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


def _random_boxes(n, generator, size=128.0, min_wh=10.0, max_wh=60.0, dtype=torch.float32):
    xy = torch.rand(n, 2, generator=generator, dtype=dtype) * (size - max_wh)
    wh = torch.rand(n, 2, generator=generator, dtype=dtype) * (max_wh - min_wh) + min_wh
    return torch.cat((xy, xy + wh), dim=1)


def _random_images(count, generator, dtype=torch.float32):
    """Images of 1-6 objects and 30 proposals: noisy copies of the objects among random boxes,
    in a random order (as an RPN's, some near-duplicates, some misses)."""
    proposals, gts = [], []
    for _ in range(count):
        g = _random_boxes(int(torch.randint(1, 7, (1,), generator=generator)), generator, dtype=dtype)
        copies = g.repeat(3, 1)
        sizes = (copies[:, 2:] - copies[:, :2]).repeat(1, 2)
        noisy = copies + torch.randn(copies.shape, generator=generator, dtype=dtype) * 0.15 * sizes
        noisy = torch.cat((torch.minimum(noisy[:, :2], noisy[:, 2:] - 2), noisy[:, 2:]), dim=1)
        p = torch.cat((noisy, _random_boxes(30 - len(noisy), generator, dtype=dtype)))
        proposals.append(p[torch.randperm(len(p), generator=generator)])
        gts.append(g)
    return proposals, gts


def recall_cases(seed=0):
    """Hand-made and random cases ``(proposals, gt_boxes, n)`` for :func:`check_recall_at_n`."""
    g = torch.Generator().manual_seed(seed)
    digit = _t([[10, 10, 40, 40]])
    three = _t([[10, 10, 40, 40], [60, 60, 90, 90], [20, 80, 40, 120]])
    misses = _t([[100, 0, 120, 20], [0, 100, 20, 120]])
    random_p, random_g = _random_images(20, g)
    random_p64, random_g64 = _random_images(12, g, dtype=torch.float64)
    return [
        Case("one digit, the first proposal is on it", ([_t([[11, 10, 40, 41], [90, 90, 120, 120]])], [digit], 1),
             "for each ground-truth box: its best IoU with the first n proposals of its image; found if >= the "
             "threshold. Recall = found / number of ground-truth boxes."),
        Case("only the 3rd proposal finds the digit, n = 2", ([torch.cat((misses, digit))], [digit], 2),
             "only the first n proposals of each image count (proposals[i][:n])."),
        Case("only the 3rd proposal finds the digit, n = 3", ([torch.cat((misses, digit))], [digit], 3),
             "the first n proposals include the n-th."),
        Case("IoU exactly 0.5 counts as found", ([_t([[0, 0, 20, 10]])], [_t([[0, 0, 10, 10]])], 1),
             "found means IoU >= iou_threshold (here IoU = 100 / 200 = 0.5 exactly)."),
        Case("recall counts objects over all images, not per image",
             ([digit, torch.cat((three[:1], misses))], [digit, three], 5),
             "image 1: 1 of 1 digit found, image 2: 1 of 3: recall = 2 / 4 = 0.5, not (1 + 1/3) / 2."),
        Case("an image without digits adds nothing", ([misses, digit, digit], [_t([]), digit, three], 10),
             "an image with no ground truth has no object to find: skip it (box_iou would be (0, K))."),
        Case("an image without proposals misses its digits", ([digit, _t([])], [digit, three], 300),
             "with no proposals, box_iou is (G, 0) and .max(dim=1) raises: count its objects as not found."),
        Case("one proposal between two touching digits finds both",
             ([_t([[1, 0, 21, 20]])], [_t([[0, 0, 20, 20], [2, 0, 22, 20]])], 1),
             "recall does not match proposals to objects one to one: any proposal with IoU >= threshold finds "
             "an object, even if it also finds another."),
        Case("n larger than the number of proposals", ([torch.cat((misses, digit))], [digit], 1000),
             "p[:n] keeps every proposal when n is larger than their number."),
        Case("20 random images at IoU 0.7, n = 10", (random_p, random_g, 10),
             "the same rule at another threshold: use the iou_threshold argument.", {"iou_threshold": 0.7}),
        Case("12 random images, float64 boxes, n = 20", (random_p64, random_g64, 20),
             "float64 boxes: box_iou works in any float dtype."),
    ]


def _as_float(value, label):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ExerciseError(f"{label}: return the recall as one number (a float, e.g. found / total), "
                        f"got {describe(value)}")


def _copy(case):
    return Case(case.name, tuple([b.clone() for b in a] if isinstance(a, list) else a for a in case.args),
                case.hint, case.kwargs)


@falls_back_to(reference_recall_at_n)
def check_recall_at_n(fn, seed=0):
    """Check ``fn(proposals (list of (K_i, 4)), gt_boxes (list of (G_i, 4)), n, iou_threshold=0.5)
    -> float`` against :func:`reference_recall_at_n` (lesson 11).

    Returns:
        int: the number of cases passed; raises ``ExerciseError`` otherwise.
    """
    what = "your recall_at_n"
    cases = recall_cases(seed)
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        copies = _copy(case)
        got = _as_float(call_learner(fn, copies, what, label), label)
        expected = reference_recall_at_n(*case.args, **case.kwargs)
        if not abs(got - expected) <= 1e-6:
            symptom = None
            for mistake, explanation in _MISTAKES:
                try:
                    if abs(_variant(*case.args, **case.kwargs, **mistake) - got) <= 1e-6:
                        symptom = explanation
                        break
                except Exception:
                    continue
            objects = sum(len(g) for g in case.args[1])
            raise ExerciseError(
                f"{label}: your recall is {got:.6g}, expected {expected:.6g} ({round(expected * objects)} of "
                f"{objects} objects found with the first {case.args[2]} proposals of each image, IoU >= "
                f"{case.kwargs.get('iou_threshold', 0.5)})\n  inputs: {describe(case.args)}\n  hint: {case.hint}"
                + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(not torch.equal(a, c) for before, after in zip(case.args[:2], copies.args[:2])
               for a, c in zip(before, after)):
            raise ExerciseError(f"{label}: the recall is right, but {what} changed its inputs in place: "
                                f"slice and compare without writing into the boxes.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
