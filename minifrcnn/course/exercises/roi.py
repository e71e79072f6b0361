"""Checker for lesson 06's exercise: RoI max pooling of one RoI.

``check_roi_pool_one(fn)`` runs ``fn(feature (C, H, W), box (4,), output_size,
spatial_scale) -> (C, PH, PW)`` on random and edge cases (boxes at the border, outside
the map, smaller than a bin, on half cells, negative features) and compares it with
:func:`minifrcnn.roi_ops.roi_pool_one`, which equals ``torchvision.ops.roi_pool``.
The features are float64, so plain Python arithmetic (``x * spatial_scale``,
``roi_h / PH``) gives exactly torchvision's bin edges.
"""
import torch

from ...roi_ops import roi_pool_one
from ._check import Case, check_against, falls_back_to

__all__ = ["check_roi_pool_one"]


def _feature(generator, channels=3, height=8, width=8):
    return torch.randn(channels, height, width, generator=generator, dtype=torch.float64)


def _box(*xyxy):
    return torch.tensor(xyxy, dtype=torch.float64)


def _symptom(got, expected):
    """A targeted hint from what a wrong result looks like, or None."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        if isinstance(got, torch.Tensor) and got.dim() == 2:
            return "a 2-D result: pool every channel, the result is (C, PH, PW)."
        return None
    got = got.to(expected.dtype)
    if torch.isinf(got).any():
        return ("-inf in the result: a bin with no cells inside the map must give 0 (check "
                "hend > hstart and wend > wstart before taking the max).")
    if ((got == 0) & (expected < 0)).any():
        return ("0 where the maximum is negative: start the running maximum at -inf (or use "
                "region.max()), not at 0.")
    return None


@falls_back_to(roi_pool_one)
def check_roi_pool_one(fn):
    """Check ``fn(feature (C, H, W), box (4,), output_size, spatial_scale) -> (C, PH, PW)``."""
    g = torch.Generator().manual_seed(5)
    cases = [
        Case("a box well inside the map, 2x2 output", (_feature(g), _box(20, 36, 100, 90), 2, 1 / 16),
             "x1 = round(20 / 16) = 1 ... ; the RoI is (x2 - x1 + 1) cells wide: the end cell is included."),
        Case("the paper's 7x7 output at stride 16", (_feature(g, 4, 12, 10), _box(10, 25, 150, 170), 7, 1 / 16),
             "bin p covers cells floor(p * bin_h) to ceil((p + 1) * bin_h) (end excluded), plus the "
             "RoI's first cell, where bin_h = roi_h / PH is a real number."),
        Case("a non-square output, (3, 5)", (_feature(g), _box(10, 12, 118, 100), (3, 5), 1 / 16),
             "output_size is (PH, PW): PH bins down, PW bins across; an int means (n, n)."),
        Case("a box smaller than a bin: 7x7 bins from 1x2 cells", (_feature(g), _box(42, 41, 54, 60), 7, 1 / 16),
             "with fewer cells than bins the bins overlap: several outputs repeat one cell."),
        Case("a box half outside the map", (_feature(g), _box(-50, 70, 60, 195), 4, 1 / 16),
             "clip each bin's edges to [0, H] and [0, W] (after adding the RoI's start)."),
        Case("a box wholly outside the map: every bin is empty", (_feature(g), _box(210, 10, 260, 60), 3, 1 / 16),
             "an empty bin (no cell inside the map) gives 0."),
        Case("a corner on half a cell: 40 px = 2.5 cells", (_feature(g), _box(40, 40, 104, 104), 2, 1 / 16),
             "torchvision rounds halves away from zero (C's round: 2.5 -> 3); Python's round() "
             "and torch.round round halves to even (2.5 -> 2). Use math.floor(v + 0.5)."),
        Case("negative features", (-_feature(g).abs() - 1, _box(16, 16, 90, 80), 3, 1 / 16),
             "every value is negative, so the maximum is negative too: do not start the max at 0."),
        Case("an inverted box (x2 < x1) is one cell", (_feature(g), _box(90, 60, 30, 20), 2, 1 / 16),
             "a malformed RoI is forced to 1x1 cell: roi_w = max(x2 - x1 + 1, 1)."),
        Case("stride 8, a 16x12 map", (_feature(g, 2, 16, 12), _box(5, 30, 70, 121), (4, 3), 1 / 8),
             "spatial_scale = 1 / stride: multiply the box by it before rounding."),
    ]
    return check_against(fn, roi_pool_one, cases, atol=1e-12, rtol=1e-12, what="your roi_pool_one",
                         symptoms=lambda got, expected, args: _symptom(got, expected))
