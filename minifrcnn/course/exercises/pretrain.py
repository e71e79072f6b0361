"""Checkers for lesson 08's exercises: the crop around a digit that pretraining classifies,
and the class evidence map (the classifier's linear layer applied at every cell).

``check_crop_boxes(fn)`` runs ``fn(boxes (N, 4), fraction (N,), shift (N, 2)) -> (N, 4)``
against :func:`minifrcnn.pretrain.crop_boxes`; ``check_class_evidence(fn)`` runs
``fn(features (C, H, W), weight (K, C), bias (K,)) -> (K, H, W)`` against
:func:`minifrcnn.pretrain.class_evidence`. Both name the usual mistakes.
"""
import torch

from ...pretrain import class_evidence, crop_boxes
from ._check import Case, check_against, falls_back_to

__all__ = ["check_crop_boxes", "check_class_evidence"]


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def _crop_symptom(got, expected, args):
    boxes, fraction, shift = args
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return None
    got = got.to(expected.dtype)
    if torch.allclose(got, torch.cat([expected[:, :2], expected[:, 2:] - expected[:, :2]], dim=1), atol=1e-6):
        return "the result is (x, y, width, height): return the corners (x1, y1, x2, y2)."
    sides = got[:, 2:] - got[:, :2]
    if not torch.allclose(sides[:, 0], sides[:, 1], atol=1e-6):
        return "the crops are not square: use the digit's longer side for both width and height."
    wh = boxes[:, 2:] - boxes[:, :2]
    if torch.allclose(sides[:, 0], wh.min(dim=1).values / fraction, atol=1e-6):
        return "the side comes from the digit's shorter side: take the longer one, so the whole digit fits."
    if torch.allclose(sides[:, 0], wh.max(dim=1).values * fraction, atol=1e-6):
        return "side = longer * fraction makes the crop smaller than the digit: divide by the fraction."
    centres = (got[:, :2] + got[:, 2:]) / 2
    digit_centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    if torch.allclose(centres, digit_centres + shift, atol=1e-6) and shift.abs().sum() > 0:
        return "the shift is a share of the crop's side: move the centre by shift * side, not by shift pixels."
    return None


@falls_back_to(crop_boxes)
def check_crop_boxes(fn):
    """Check ``fn(boxes (N, 4), fraction (N,), shift (N, 2)) -> (N, 4)`` square crop boxes."""
    g = torch.Generator().manual_seed(7)
    xy = torch.rand(20, 2, generator=g, dtype=torch.float64) * 90
    random = torch.cat([xy, xy + 8 + torch.rand(20, 2, generator=g, dtype=torch.float64) * 50], dim=1)
    cases = [
        Case("a square digit, centred, fraction 0.5",
             (_boxes([40, 40, 60, 60]), torch.tensor([0.5], dtype=torch.float64),
              torch.zeros(1, 2, dtype=torch.float64)),
             "a 20 px digit that fills half the crop: a 40 px crop around the digit's centre (50, 50)."),
        Case("a tall digit: the crop is a square of its height", (
            _boxes([10, 20, 22, 60]), torch.tensor([0.8], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)),
             "side = max(width, height) / fraction, the same in x and y."),
        Case("a wide digit", (_boxes([5, 30, 75, 50]), torch.tensor([0.7], dtype=torch.float64),
                              torch.zeros(1, 2, dtype=torch.float64)), "the longer side is the width here."),
        Case("a shifted crop", (_boxes([40, 40, 60, 60]), torch.tensor([0.5], dtype=torch.float64),
                                torch.tensor([[0.1, -0.15]], dtype=torch.float64)),
             "the centre moves by shift * side: +4 px in x and -6 px in y for a 40 px crop."),
        Case("20 random digits, fractions and shifts", (
            random, 0.3 + 0.55 * torch.rand(20, generator=g, dtype=torch.float64),
            (torch.rand(20, 2, generator=g, dtype=torch.float64) * 2 - 1) * 0.15),
             "work on all rows at once: (N, 4) in, (N, 4) out."),
        Case("a digit at the image's corner: the crop may go outside", (
            _boxes([0, 0, 14, 20]), torch.tensor([0.4], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)),
             "do not clip: RoI Align pads outside the image (with the mean colour, after normalising)."),
        Case("no digits", (torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, dtype=torch.float64),
                           torch.zeros(0, 2, dtype=torch.float64)), "an empty (0, 4) result."),
    ]
    return check_against(fn, crop_boxes, cases, atol=1e-9, rtol=1e-9, what="your crop_boxes",
                         symptoms=_crop_symptom)


def _evidence_symptom(got, expected, args):
    features, weight, bias = args
    if not isinstance(got, torch.Tensor):
        return None
    if got.shape == expected.shape[:1]:
        return "a (K,) result is the classifier's logits: keep the map, one (H, W) score map per class."
    if got.shape == expected.transpose(1, 2).shape and got.shape != expected.shape:
        return "H and W are swapped: the result is (K, H, W), like the features' (C, H, W)."
    if got.shape != expected.shape:
        return None
    got = got.to(expected.dtype)
    if torch.allclose(got, expected - bias[:, None, None], atol=1e-6):
        return "the bias is missing: add bias[k] to every cell of map k."
    if torch.allclose(got, expected.softmax(0), atol=1e-6):
        return "no softmax: the maps are the linear layer's raw scores (logits), whose mean is the logits."
    return None


@falls_back_to(class_evidence)
def check_class_evidence(fn):
    """Check ``fn(features (C, H, W), weight (K, C), bias (K,)) -> (K, H, W)``."""
    g = torch.Generator().manual_seed(3)

    def case(c, h, w, k=10):
        return (torch.randn(c, h, w, generator=g, dtype=torch.float64),
                torch.randn(k, c, generator=g, dtype=torch.float64), torch.randn(k, generator=g, dtype=torch.float64))

    cases = [
        Case("one channel, 2 x 3 cells, 2 classes", case(1, 2, 3, 2),
             "score[k, y, x] = weight[k, 0] * f[0, y, x] + bias[k]."),
        Case("the course's 128 channels on a 6 x 6 map, 10 digits", case(128, 6, 6),
             "sum over the channels: torch.einsum('kc,chw->khw', weight, features) does it in one call."),
        Case("a non-square map: 4 x 7", case(16, 4, 7), "keep (H, W) in the features' order."),
        Case("one cell", case(8, 1, 1), "a 1 x 1 map: the map is the logits themselves."),
    ]
    return check_against(fn, class_evidence, cases, atol=1e-9, rtol=1e-9, what="your class_evidence",
                         symptoms=_evidence_symptom)
