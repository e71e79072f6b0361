"""Checkers for lesson 03: labelling anchors from an IoU matrix, and encoding box deltas.

``check_anchor_labels(fn)`` runs a learner's ``fn(iou, high=0.7, low=0.3) -> labels`` on
random and edge-case IoU matrices and compares it, anchor by anchor, with
``match_labels(Matcher(high, low, allow_low_quality_matches=True)(iou))``. When an anchor
is wrong, the message says which anchor, what its IoUs are, and which rule of the paper
(section 3.1.2) it breaks: a generic "wrong" teaches nothing.

``check_encode(fn)`` does the same for ``fn(targets, references, weights) -> deltas``
against ``BoxCoder(weights).encode``, naming the wrong delta (tx, ty, tw or th).
"""
import torch

from ...anchors import AnchorGenerator
from ...boxes import BoxCoder, box_iou
from ...matching import Matcher, match_labels
from ._check import Case, ExerciseError, call_learner, describe, falls_back_to

_KIND = {1.0: "positive (1)", 0.0: "negative (0)", -1.0: "ignored (-1)"}


def reference_anchor_labels(iou, high=0.7, low=0.3):
    """The finished version: labels ``(A,)`` float32, 1 positive, 0 negative, -1 ignored."""
    return match_labels(Matcher(high, low, allow_low_quality_matches=True)(iou))


def _kind(value):
    return _KIND.get(float(value), f"{float(value):g} (labels must be 1, 0 or -1)")


def _explain_anchor(iou, anchor, got, expected, high, low):
    """A sentence saying why ``anchor`` should be ``expected`` and not ``got``."""
    column = iou[:, anchor]
    best, best_gt = column.max(dim=0)
    # Compare in the IoU's own dtype, as the labelling does: float32(0.7) < 0.7 in float64.
    below_high, at_high = bool(best < high), bool(best == torch.tensor(high, dtype=iou.dtype))
    below_low, at_low = bool(best < low), bool(best == torch.tensor(low, dtype=iou.dtype))
    best_iou, best_gt = float(best), int(best_gt)
    best_per_gt = iou.max(dim=1).values
    best_for = [g for g in range(iou.shape[0]) if column[g] == best_per_gt[g]]
    start = (f"anchor {anchor} (best IoU {best_iou:.4g}, with ground truth {best_gt}) "
             f"should be {_kind(expected)}, you labelled it {_kind(got)}.")
    if expected == 1 and below_high and best_for:
        g = best_for[0]
        ties = int((iou[g] == best_per_gt[g]).sum())
        why = (f" It is the best anchor for ground truth {g} (IoU {float(best_per_gt[g]):.4g}), so the "
               f"best-anchor rule makes it positive whatever its IoU. ")
        if ties > 1:
            return start + why + (f"Ground truth {g} has {ties} anchors tied for its best IoU: all of them "
                                  f"are positive (argmax keeps only one; compare with the maximum instead).")
        return start + why + "Did you apply the best-anchor rule, and apply it after the thresholds?"
    if expected == 1 and at_high:
        return start + f" Its IoU is exactly {high}: positive means IoU >= {high}, not > {high}."
    if expected == 1:
        return start + f" Its IoU is above the positive threshold of this case, high = {high}."
    if expected == -1 and got == 0:
        if at_low:
            return start + f" Its IoU is exactly {low}: negative means IoU < {low}, so it is ignored."
        return start + (f" Its IoU is between {low} and {high}: it is ignored, not negative. "
                        f"'Everything else is negative' is the lesson notes' mistake: such an "
                        f"anchor half-covers an object, and calling it background would contradict "
                        f"nearly identical positive anchors.")
    if expected == 0 and got == -1 and below_low:
        return start + f" Its best IoU is below {low} with every ground truth: that is a negative."
    if expected == -1 and got == 1 and below_high:
        return start + (f" Its IoU is below {high} and it is not the best anchor of any ground truth"
                        f" (best-anchor rule: compare each ground truth's maximum over anchors, "
                        f"iou.max(dim=1), not over ground truths).")
    if expected == 0 and got == 1:
        return start + (" It overlaps nothing well and is not the best anchor of any ground truth.")
    return start


def _shape_problem(got, expected, case, what):
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"case '{case.name}': {what} should return a tensor, got "
                            f"{type(got).__name__}")
    if got.shape != expected.shape:
        raise ExerciseError(f"case '{case.name}': result has shape {tuple(got.shape)}, expected "
                            f"{tuple(expected.shape)}" + (f"\n  hint: {case.hint}" if case.hint else ""))


def anchor_label_cases(seed=0):
    """Random and edge-case IoU matrices ``(G, A)`` for :func:`check_anchor_labels`."""
    gen = torch.Generator().manual_seed(seed)
    cases = [Case("random IoU values, 4 ground truths x 30 anchors", (torch.rand(4, 30, generator=gen),),
                  "positive: IoU >= 0.7 with some ground truth, or the best anchor of one; "
                  "negative: IoU < 0.3 with all; the rest ignored.")]
    # Real boxes against course anchors: most anchors overlap nothing.
    anchors = AnchorGenerator((16, 32), (0.5, 1.0, 2.0))((64, 64), (8, 8))
    xy = torch.rand(3, 2, generator=gen) * 40
    wh = torch.rand(3, 2, generator=gen) * 20 + 6
    cases.append(Case("real boxes against 384 anchors", (box_iou(torch.cat((xy, xy + wh), 1), anchors),),
                      "most anchors overlap no ground truth at all: they are negative."))
    cases.append(Case("no ground-truth boxes (an image of pure background)", (torch.zeros(0, 12),),
                      "with G = 0, iou has shape (0, A): every anchor is negative. iou.max(dim=0) "
                      "fails on an empty dimension, so handle G = 0 first."))
    cases.append(Case("two anchors tie for a ground truth's best IoU",
                      (torch.tensor([[0.9, 0.1, 0.0, 0.2, 0.0],
                                     [0.0, 0.45, 0.45, 0.2, 0.1]]),),
                      "ties are all kept: compare each row with its maximum (iou == iou.max(dim=1, "
                      "keepdim=True).values), argmax returns only one of them."))
    cases.append(Case("a ground truth whose best IoU is below 0.3",
                      (torch.tensor([[0.0, 0.8, 0.1, 0.0],
                                     [0.25, 0.0, 0.1, 0.05]]),),
                      "its best anchor is still positive: the best-anchor rule overrides the negative "
                      "threshold too, so apply it last."))
    cases.append(Case("every anchor in the ignore band",
                      (torch.tensor([[0.5, 0.6, 0.35, 0.4, 0.3, 0.69],
                                     [0.31, 0.4, 0.65, 0.5, 0.45, 0.3]]),),
                      "no anchor reaches 0.7: only each ground truth's best anchor is positive, "
                      "the others are ignored (-1), not negative."))
    cases.append(Case("IoUs exactly at the thresholds",
                      (torch.tensor([[0.7, 0.3, 0.9, 0.2, 0.0]]),),
                      "positive means IoU >= 0.7 (0.7 itself is positive); negative means IoU < 0.3 "
                      "(0.3 itself is ignored)."))
    cases.append(Case("other thresholds: high=0.6, low=0.2",
                      (torch.rand(3, 25, generator=gen),), "use the high and low arguments, do not "
                      "hard-code 0.7 and 0.3.", {"high": 0.6, "low": 0.2}))
    return cases


@falls_back_to(reference_anchor_labels)
def check_anchor_labels(fn, seed=0):
    """Check ``fn(iou, high=0.7, low=0.3) -> labels`` (lesson 03's exercise).

    Args:
        fn (callable): takes ``iou`` ``(G, A)`` (ground truths x anchors) and returns the
            labels ``(A,)``: 1 positive, 0 negative, -1 ignored (any numeric dtype).

    Returns:
        int: the number of cases passed; raises ``ExerciseError`` naming the first wrong
        anchor and the rule it breaks otherwise.
    """
    what = "your labelling function"
    cases = anchor_label_cases(seed)
    for case in cases:
        iou = case.args[0]
        high, low = case.kwargs.get("high", 0.7), case.kwargs.get("low", 0.3)
        got = call_learner(fn, case, what, f"case '{case.name}'")
        expected = reference_anchor_labels(iou, high, low)
        _shape_problem(got, expected, case, what)
        got = got.detach().to(torch.float32)
        wrong = (got != expected).nonzero()
        if len(wrong):
            a = int(wrong[0, 0])
            raise ExerciseError(f"case '{case.name}': {len(wrong)} of {len(got)} labels differ. "
                                + _explain_anchor(iou, a, float(got[a]), float(expected[a]), high, low)
                                + f"\n  inputs: {describe(case.args)}"
                                + (f", high={high}, low={low}" if case.kwargs else "")
                                + f"\n  hint: {case.hint}")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


_DELTA_HINTS = {
    0: "tx = (x* - xa) / wa with x the box CENTRE (x1 + w / 2), divided by the ANCHOR's width, "
       "then multiplied by the weight wx.",
    1: "ty = (y* - ya) / ha with y the box CENTRE (y1 + h / 2), divided by the ANCHOR's height, "
       "then multiplied by the weight wy.",
    2: "tw = log(w* / wa): the log of the target width over the anchor width, times the weight ww.",
    3: "th = log(h* / ha): the log of the target height over the anchor height, times the weight wh.",
}
_DELTA_NAMES = ("tx", "ty", "tw", "th")


def encode_cases(seed=0):
    """Random and edge cases ``(targets, references, weights)`` for :func:`check_encode`."""
    gen = torch.Generator().manual_seed(seed)

    def boxes(n, lo=4.0, hi=60.0):
        xy = torch.rand(n, 2, generator=gen) * 64
        wh = torch.rand(n, 2, generator=gen) * (hi - lo) + lo
        return torch.cat((xy, xy + wh), 1)

    same = boxes(3)
    return [
        Case("random boxes, RPN weights (1, 1, 1, 1)", (boxes(6), boxes(6), (1.0, 1.0, 1.0, 1.0)),
             "follow equation 2 of the paper with box centres and sizes."),
        Case("random boxes, head weights (10, 10, 5, 5)", (boxes(6), boxes(6), (10.0, 10.0, 5.0, 5.0)),
             "multiply (tx, ty, tw, th) by (wx, wy, ww, wh) = (10, 10, 5, 5)."),
        Case("a target equal to its reference", (same, same.clone(), (1.0, 1.0, 1.0, 1.0)),
             "identical boxes need no change: all four deltas are 0."),
        Case("a wide, flat target on a tall reference",
             (torch.tensor([[10.0, 20.0, 70.0, 30.0]]), torch.tensor([[30.0, 0.0, 40.0, 60.0]]),
              (1.0, 1.0, 1.0, 1.0)),
             "width and height are different: x uses widths, y uses heights; (x1, y1, x2, y2) order."),
        Case("weights that differ per coordinate (1, 2, 3, 4)", (boxes(4), boxes(4), (1.0, 2.0, 3.0, 4.0)),
             "each delta has its own weight: (wx, wy, ww, wh) in that order."),
    ]


def reference_encode(targets, references, weights):
    """The exercise's ``encode(targets, references, weights)``: ``BoxCoder(weights).encode``."""
    return BoxCoder(weights).encode(targets, references)


@falls_back_to(reference_encode)
def check_encode(fn, seed=0):
    """Check ``fn(targets, references, weights) -> deltas (R, 4)`` against ``BoxCoder.encode``."""
    what = "your encode function"
    cases = encode_cases(seed)
    for case in cases:
        targets, references, weights = case.args
        got = call_learner(fn, case, what, f"case '{case.name}'")
        expected = BoxCoder(weights).encode(targets, references)
        _shape_problem(got, expected, case, what)
        if not got.is_floating_point():
            raise ExerciseError(f"case '{case.name}': deltas must be floating point, got {got.dtype}")
        close = torch.isclose(got.detach().to(expected.dtype), expected, atol=1e-5, rtol=1e-4)
        if not close.all():
            r, c = (int(v) for v in (~close).nonzero()[0])
            raise ExerciseError(
                f"case '{case.name}': {_DELTA_NAMES[c]} of box {r} is {float(got[r, c]):.6g}, expected "
                f"{float(expected[r, c]):.6g} ({int((~close).sum())} of {close.numel()} values differ)\n"
                f"  target {targets[r].tolist()}, reference {references[r].tolist()}, weights {weights}\n"
                f"  hint: {_DELTA_HINTS[c]} ({case.hint})")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
