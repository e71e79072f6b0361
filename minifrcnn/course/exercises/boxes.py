"""Checkers for the box exercises of lessons 00 and 01.

Each ``check_*`` function runs a learner's function on random and edge-case inputs,
compares it with the finished version (``minifrcnn.boxes``, or the reference below),
prints one line on success and otherwise raises an ``ExerciseError`` that names the
failing case, says how the result differs and gives a hint.

Two things are checked on top of the numbers, because they are the usual silent bugs:
the learner's function must not change its input boxes in place, and a float64 input
must give a float64 result.
"""
import torch

from ... import boxes as B
from ._check import Case, check_against, falls_back_to

__all__ = ["coco_to_xyxy", "check_coco_to_xyxy", "check_box_area", "check_iou"]


def coco_to_xyxy(boxes):
    """COCO ``(x, y, w, h)`` boxes ``(R, 4)`` -> ``(x1, y1, x2, y2)`` ``(R, 4)``.

    The reference for lesson 00's exercise (``torchvision.ops.box_convert(boxes,
    "xywh", "xyxy")`` does the same).
    """
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


# ----------------------------------------------------------------------------- inputs

def _random_boxes(n, generator, size=128.0, dtype=torch.float32):
    """``n`` random valid xyxy boxes inside a ``size`` x ``size`` image."""
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size * 0.8
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * size * 0.4 + 1
    return torch.cat((xy, xy + wh), dim=1).to(dtype)


def _random_xywh(n, generator, dtype=torch.float32):
    xyxy = _random_boxes(n, generator, dtype=dtype)
    return torch.cat((xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]), dim=1)


def _t(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


# ----------------------------------------------------------------------------- symptoms

def _shape_symptom(got, expected, args):
    """Common to every checker: a result of the wrong shape, explained."""
    if not isinstance(got, torch.Tensor) or got.shape == expected.shape:
        return None
    if expected.dim() == 2 and got.shape == expected.shape[::-1] and expected.shape[0] != expected.shape[1]:
        return (f"the axes are swapped: shape {tuple(got.shape)} instead of (N, M) = "
                f"{tuple(expected.shape)}; row i must be boxes1[i].")
    if expected.dim() == 2 and got.dim() == 1:
        return ("a 1-D result: box i was compared with box i only. IoU is pairwise: broadcast "
                "boxes1[:, None, :2] (N, 1, 2) against boxes2[:, :2] (M, 2) to get (N, M, 2).")
    if expected.dim() == 1 and got.dim() == 2:
        return "a 2-D result: index columns with boxes[:, k] (shape (R,)), not boxes[:, k:k+1] (R, 1)."
    return None


# ----------------------------------------------------------------------------- lesson 00

@falls_back_to(coco_to_xyxy)
def check_coco_to_xyxy(fn):
    """Check ``fn(boxes (R, 4) xywh) -> (R, 4) xyxy`` (lesson 00)."""
    g = torch.Generator().manual_seed(0)
    cases = [
        Case("one box [10, 20, 30, 40] -> [10, 20, 40, 60]", (_t([10, 20, 30, 40]),),
             "x2 = x + w and y2 = y + h; x1 and y1 stay as they are."),
        Case("random boxes", (_random_xywh(7, g),),
             "COCO's (x, y) is the top-left corner, not the centre: do not subtract w / 2."),
        Case("zero width and height", (_t([[5, 5, 0, 0], [3, 4, 0, 6]]),),
             "a box with w = 0 has x2 == x1."),
        Case("no boxes: shape (0, 4)", (torch.zeros(0, 4),),
             "an image without objects has boxes of shape (0, 4); index columns with boxes[:, k] "
             "and the empty case works by itself."),
        Case("float64 boxes", (_random_xywh(5, g, torch.float64),),
             "keep the input's dtype."),
    ]

    def symptoms(got, expected, args):
        shape = _shape_symptom(got, expected, args)
        if shape or len(got) == 0:
            return shape
        if not torch.allclose(got[:, :2].to(args[0].dtype), args[0][:, :2]):
            return ("x1, y1 differ from the input's x, y: COCO's (x, y) is the top-left corner, "
                    "not the centre, so there is no w / 2 to subtract.")
        if torch.allclose(got[:, 2:].to(args[0].dtype), args[0][:, 2:]):
            return "x2, y2 equal w, h: add the corner, x2 = x + w."
        return None

    return check_against(fn, coco_to_xyxy, cases, what="your coco_to_xyxy", symptoms=symptoms)


# ----------------------------------------------------------------------------- lesson 01

@falls_back_to(B.box_area)
def check_box_area(fn):
    """Check ``fn(boxes (R, 4) xyxy) -> (R,) areas`` (lesson 01)."""
    g = torch.Generator().manual_seed(1)
    cases = [
        Case("one 10 x 20 box", (_t([0, 0, 10, 20]),),
             "area = (x2 - x1) * (y2 - y1), with no +1: a box from 0 to 10 is 10 pixels wide."),
        Case("random boxes", (_random_boxes(9, g),),
             "the result has one area per box: shape (R,), not (R, 1)."),
        Case("zero-area boxes", (_t([[5, 5, 5, 9], [1, 2, 7, 2], [3, 3, 3, 3]]),),
             "a box with x2 == x1 has area 0 (no +1)."),
        Case("no boxes: shape (0, 4)", (torch.zeros(0, 4),),
             "boxes of shape (0, 4) have areas of shape (0,)."),
        Case("float64 boxes", (_random_boxes(4, g, dtype=torch.float64),),
             "keep the input's dtype."),
    ]

    def symptoms(got, expected, args):
        shape = _shape_symptom(got, expected, args)
        if shape:
            return shape
        b = args[0]
        if torch.allclose(got, (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)):
            return ("this is the original Caffe code's '+1' pixel-inclusive area; minifrcnn "
                    "and torchvision use (x2 - x1) * (y2 - y1).")
        return None

    return check_against(fn, B.box_area, cases, what="your box_area", symptoms=symptoms)


def _iou_symptoms(out, expected, args):
    """A targeted hint from what a wrong IoU matrix looks like."""
    shape = _shape_symptom(out, expected, args)
    if shape or not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.shape != expected.shape:
        return shape
    e = expected.to(out.dtype)
    if torch.allclose(out, e / (1 + e), atol=1e-5):
        return ("your values are I / (A1 + A2): the intersection is counted twice in the union. "
                "union = area1 + area2 - intersection.")
    if torch.allclose(out, torch.where(e < 1, e / (1 - e).clamp(min=1e-12), torch.zeros_like(e)), atol=1e-5):
        return ("your values are I / (A1 + A2 - 2 I): the intersection is subtracted twice. "
                "union = area1 + area2 - intersection.")
    if torch.isnan(out).any():
        return ("NaN: two zero-area boxes have union 0 and 0 / 0 = NaN. Return 0 where the "
                "union is 0 (torch.where(union > 0, inter / union, 0)).")
    if (out < 0).any():
        return ("negative IoU: when two boxes do not overlap, x2 - x1 of the intersection is "
                "negative. Clamp the intersection width and height at 0 (.clamp(min=0)).")
    if (out > 1 + 1e-6).any():
        return ("IoU > 1: the union is too small. union = area1 + area2 - intersection "
                "(subtract the intersection once), and the intersection uses max of the "
                "top-left corners and min of the bottom-right corners.")
    return None


@falls_back_to(B.box_iou)
def check_iou(fn):
    """Check ``fn(boxes1 (N, 4), boxes2 (M, 4)) -> (N, M)`` pairwise IoU (lesson 01)."""
    g = torch.Generator().manual_seed(2)
    same = _t([[3, 4, 20, 30], [10, 10, 40, 50]])  # they overlap, so no clamp is needed here
    cases = [
        Case("two 10x10 boxes, half overlapping: IoU 50 / 150", (_t([0, 0, 10, 10]), _t([5, 0, 15, 10])),
             "intersection 5 x 10 = 50, union 100 + 100 - 50 = 150, IoU 1/3. No +1 in widths: "
             "a box from 0 to 10 is 10 pixels wide."),
        Case("identical boxes: IoU 1 on the diagonal", (same, same),
             "identical boxes have intersection = area = union, so IoU 1."),
        Case("disjoint boxes: IoU 0", (_t([[0, 0, 10, 10], [50, 50, 60, 70]]),
                                       _t([[20, 0, 30, 10], [20, 20, 30, 30], [0, 80, 5, 90]])),
             "no overlap must give 0: clamp the intersection width and height at 0, otherwise "
             "two negative sides multiply into a positive 'intersection'."),
        Case("boxes touching at an edge: IoU 0", (_t([[0, 0, 10, 10]]), _t([[10, 0, 20, 10], [0, 10, 10, 20]])),
             "boxes that share only an edge have intersection 0 (no +1 pixel convention)."),
        Case("one box inside another", (_t([[0, 0, 40, 40]]), _t([[10, 10, 20, 20], [0, 0, 40, 20]])),
             "IoU of a 10x10 box inside a 40x40 box is 100 / 1600 = 0.0625."),
        Case("zero-area boxes", (_t([[5, 5, 5, 5], [0, 0, 10, 10]]), _t([[5, 5, 5, 5], [2, 2, 2, 8]])),
             "a zero-area box against another zero-area box has union 0: return 0, not NaN "
             "(torchvision returns NaN here; minifrcnn returns 0)."),
        Case("random boxes, N = 5, M = 7", (_random_boxes(5, g), _random_boxes(7, g)),
             "the result is pairwise, shape (N, M): broadcast boxes1[:, None, :2] (N, 1, 2) "
             "against boxes2[:, :2] (M, 2)."),
        Case("no boxes1: shape (0, 4)", (torch.zeros(0, 4), _random_boxes(3, g)),
             "an image without objects: the result has shape (0, M). Broadcasting handles "
             "this by itself; a Python loop over boxes usually does not."),
        Case("no boxes2: shape (0, 4)", (_random_boxes(3, g), torch.zeros(0, 4)),
             "no anchors: the result has shape (N, 0)."),
        Case("float64 boxes", (_random_boxes(4, g, dtype=torch.float64),
                               _random_boxes(5, g, dtype=torch.float64)),
             "keep the input's dtype."),
    ]
    return check_against(fn, B.box_iou, cases, what="your iou", symptoms=_iou_symptoms)
