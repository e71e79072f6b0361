"""Checkers for lesson 02 (anchors): base anchors of one cell, and anchors over a grid.

When a learner's result is wrong, the checkers compare it with the usual mistakes
(size-major order, no rounding, ratio taken as w / h, anchors centred on the cell's
middle, anchor-major order...) and, if one matches, say so in the hint.
"""
import torch

from ...anchors import base_anchors, grid_anchors
from ._check import Case, check_against, falls_back_to


def _same(got, expected):
    """True if ``got`` is a tensor equal to ``expected`` up to float rounding."""
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape
            and torch.allclose(got.double(), expected.double(), atol=1e-4))


def _diagnose(got, case, mistakes):
    """The hint of the first mistake whose output equals ``got``, else None."""
    for make_wrong, hint in mistakes:
        try:
            wrong = make_wrong(*case.args, **case.kwargs)
        except Exception:  # a mistake that does not apply to this case
            continue
        if _same(got, wrong):
            return hint
    return None


def _check_with_diagnosis(student_fn, reference_fn, cases, mistakes, what, count):
    """``check_against``, with each case's hint replaced by a diagnosis when the learner's
    output equals one of the known ``mistakes`` (``(wrong_fn, hint)`` pairs), or has the
    wrong shape (``count(case)`` explains the expected number of rows)."""
    diagnosed = []
    for case in cases:
        try:
            got = student_fn(*case.args, **case.kwargs)
        except Exception:  # check_against reports it
            got = None
        expected = reference_fn(*case.args, **case.kwargs)
        hint = None
        if isinstance(got, torch.Tensor) and got.shape != expected.shape:
            hint = (f"expected shape ({expected.shape[0]}, 4): {count(case)} boxes of 4 coordinates "
                    f"(x1, y1, x2, y2).")
        elif not _same(got, expected):
            hint = _diagnose(got, case, mistakes)
        diagnosed.append(Case(case.name, case.args, hint or case.hint, case.kwargs))
    return check_against(student_fn, reference_fn, diagnosed, atol=1e-4, rtol=0, what=what)


# ----------------------------------------------------------------------------- base anchors

def _widths_heights(sizes, ratios):
    """Unrounded ``(k,)`` widths and heights, ratio-major."""
    sizes = torch.as_tensor(sizes, dtype=torch.float64)
    ratios = torch.as_tensor(ratios, dtype=torch.float64)
    widths = (sizes[None, :] / ratios.sqrt()[:, None]).reshape(-1)
    heights = (sizes[None, :] * ratios.sqrt()[:, None]).reshape(-1)
    return widths, heights


def _centred(widths, heights, rounded=True):
    boxes = torch.stack((-widths, -heights, widths, heights), dim=1) / 2
    return boxes.round() if rounded else boxes


def _size_major(sizes, ratios):
    cell = base_anchors(sizes, ratios)
    return cell.reshape(len(ratios), len(sizes), 4).transpose(0, 1).reshape(-1, 4)


def _unrounded(sizes, ratios):
    return _centred(*_widths_heights(sizes, ratios), rounded=False)


def _ratio_as_w_over_h(sizes, ratios):
    widths, heights = _widths_heights(sizes, ratios)
    return _centred(heights, widths)


def _corner_at_origin(sizes, ratios):  # also what (cx, cy, w, h) with cx = cy = 0 looks like
    widths, heights = _widths_heights(sizes, ratios)
    zeros = torch.zeros_like(widths)
    return torch.stack((zeros, zeros, widths, heights), dim=1)


def _corner_at_origin_rounded(sizes, ratios):
    widths, heights = _widths_heights(sizes, ratios)
    zeros = torch.zeros_like(widths)
    return torch.stack((zeros, zeros, widths.round(), heights.round()), dim=1)


def _round_sizes_first(sizes, ratios):
    widths, heights = _widths_heights(sizes, ratios)
    return _centred(widths.round(), heights.round(), rounded=False)


def _area_not_kept(sizes, ratios):  # h = r * s, w = s
    sizes = torch.as_tensor(sizes, dtype=torch.float64)
    ratios = torch.as_tensor(ratios, dtype=torch.float64)
    widths = sizes[None, :].expand(len(ratios), -1).reshape(-1)
    heights = (sizes[None, :] * ratios[:, None]).reshape(-1)
    return _centred(widths, heights)


BASE_MISTAKES = [
    (_size_major, "your anchors are size-major (every ratio of sizes[0] first); torchvision lists "
                  "them ratio-major: ratios[0] with every size, then ratios[1] with every size..., "
                  "i.e. index = ratio_i * len(sizes) + size_i. The RPN head's channels follow this order."),
    (_unrounded, "the values are right before rounding: round the corner coordinates to whole pixels "
                 "with torch.round (as torchvision does) as the last step."),
    (_round_sizes_first, "you rounded the widths and heights, then halved them: round the corners "
                         "(+-w/2, +-h/2) instead, as torchvision does."),
    (_ratio_as_w_over_h, "your wide and tall anchors are swapped: the aspect ratio is r = h / w, so "
                         "w = s / sqrt(r) and h = s * sqrt(r) (ratio 2 is tall)."),
    (_corner_at_origin, "the anchors must be centred on (0, 0), as (x1, y1, x2, y2) = "
                        "(-w/2, -h/2, w/2, h/2) rounded; yours have a corner at the origin (or are "
                        "(cx, cy, w, h))."),
    (_corner_at_origin_rounded, "the anchors must be centred on (0, 0), as (x1, y1, x2, y2) = "
                                "(-w/2, -h/2, w/2, h/2) rounded; yours have a corner at the origin "
                                "(or are (cx, cy, w, h))."),
    (_area_not_kept, "an anchor of size s has area s**2 whatever its ratio: w = s / sqrt(r), "
                     "h = s * sqrt(r), not w = s, h = r * s."),
]


def base_anchor_cases():
    """Cases for :func:`check_base_anchors`: the paper's, the course's, edges, random."""
    generator = torch.Generator().manual_seed(0)
    random_sizes = tuple((torch.rand(3, generator=generator) * 90 + 10).round().tolist())
    random_ratios = tuple(sorted((2 ** (torch.rand(2, generator=generator) * 4 - 2)).tolist()))
    order = "index = ratio_i * len(sizes) + size_i (ratio-major)"
    return [
        Case("the paper's 3 sizes x 3 ratios", ((128, 256, 512), (0.5, 1.0, 2.0)),
             f"expect 9 anchors, {order}; ratio r = h / w, w = s / sqrt(r), h = s * sqrt(r)."),
        Case("the course's 3 sizes x 3 ratios", ((16, 32, 64), (0.5, 1.0, 2.0)),
             "w = s / sqrt(r), h = s * sqrt(r), corners (-w/2, -h/2, w/2, h/2), rounded."),
        Case("one size, one ratio", ((32,), (1.0,)), "a single 32 x 32 square: [[-16, -16, 16, 16]]."),
        Case("2 sizes x 4 ratios", ((20, 40), (0.25, 0.5, 2.0, 4.0)),
             f"expect 8 anchors, {order}."),
        Case("odd sizes (halves to round)", ((15, 45), (1.0, 3.0)),
             "15 / 2 = 7.5: torch.round rounds halves to the even neighbour (8), as torchvision does."),
        Case("random sizes and ratios", (random_sizes, random_ratios),
             f"sizes {random_sizes}, ratios {random_ratios}: {order}."),
    ]


@falls_back_to(base_anchors)
def check_base_anchors(fn):
    """Check ``fn(sizes, aspect_ratios) -> (k, 4)`` against :func:`minifrcnn.anchors.base_anchors`.

    ``k = len(aspect_ratios) * len(sizes)`` anchors xyxy centred on ``(0, 0)``, rounded,
    ratio-major (torchvision's ``AnchorGenerator.generate_anchors`` order).
    """
    def count(case):
        sizes, ratios = case.args
        return f"k = len(aspect_ratios) * len(sizes) = {len(ratios)} * {len(sizes)}"

    return _check_with_diagnosis(fn, base_anchors, base_anchor_cases(), BASE_MISTAKES,
                                 what="your base anchors function", count=count)


# ----------------------------------------------------------------------------- grid anchors

def _strides(stride):
    return (stride, stride) if isinstance(stride, int) else tuple(stride)


def _shifted(cell, feature_size, stride, dx, dy, order="cells"):
    """Grid anchors with centres ``((j + dx) * sx, (i + dy) * sy)``, in one of the orders
    "cells" (right), "anchors" (anchor-major) or "columns" (column-major cells)."""
    (height, width), (sy, sx) = feature_size, _strides(stride)
    cell = cell.double()
    ys, xs = torch.meshgrid((torch.arange(height) + dy) * sy, (torch.arange(width) + dx) * sx,
                            indexing="ij")
    if order == "columns":
        ys, xs = ys.T, xs.T
    shifts = torch.stack((xs.reshape(-1), ys.reshape(-1)) * 2, dim=1).double()
    if order == "anchors":
        return (cell[:, None, :] + shifts[None, :, :]).reshape(-1, 4)
    return (shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4)


def _cell_middle(cell, feature_size, stride):
    return _shifted(cell, feature_size, stride, 0.5, 0.5)


def _anchor_major(cell, feature_size, stride):
    return _shifted(cell, feature_size, stride, 0, 0, order="anchors")


def _column_major(cell, feature_size, stride):
    return _shifted(cell, feature_size, stride, 0, 0, order="columns")


def _swapped_stride(cell, feature_size, stride):
    sy, sx = _strides(stride)
    if sy == sx:
        raise ValueError("not distinguishable")
    return _shifted(cell, feature_size, (sx, sy), 0, 0)


def _swapped_xy(cell, feature_size, stride):
    """Row index used for x and column index for y (a transposed grid)."""
    (height, width), (sy, sx) = feature_size, _strides(stride)
    ys, xs = torch.meshgrid(torch.arange(height) * sx, torch.arange(width) * sy, indexing="ij")
    shifts = torch.stack((ys.reshape(-1), xs.reshape(-1)) * 2, dim=1).double()
    return (shifts[:, None, :] + cell.double()[None, :, :]).reshape(-1, 4)


GRID_MISTAKES = [
    (_cell_middle, "your anchors are centred on the middle of each cell, ((j + 0.5) * stride, "
                   "(i + 0.5) * stride); torchvision (and this course) centres the anchors of cell "
                   "(i, j) on (j * stride, i * stride), the top-left corner of the cell's tile."),
    (_anchor_major, "your anchors are anchor-major (anchor 0 of every cell, then anchor 1...); they "
                    "must be cell-major: the k anchors of cell (0, 0), then the k of cell (0, 1)..., "
                    "i.e. shifts[:, None, :] + cell_anchors[None, :, :], shape (H*W, k, 4)."),
    (_column_major, "your cells are listed column by column; list them row by row (row-major): "
                    "torch.meshgrid(ys, xs, indexing='ij'), then flatten."),
    (_swapped_stride, "stride is (sy, sx): the first number is the vertical stride (rows, y), the "
                      "second the horizontal one (columns, x)."),
    (_swapped_xy, "x and y are swapped: column j gives x = j * sx, row i gives y = i * sy, and a box "
                  "is (x1, y1, x2, y2)."),
]


def grid_anchor_cases():
    """Cases for :func:`check_grid_anchors`."""
    course = base_anchors((16, 32, 64), (0.5, 1.0, 2.0))
    wide = base_anchors((24, 48), (0.5, 2.0))
    order = "anchor index = (i * W + j) * k + c: cell by cell, row by row, k anchors per cell."
    return [
        Case("one square anchor on a 2 x 3 map", (base_anchors((8,), (1.0,)), (2, 3), 16),
             "cell (i, j) -> centre (x, y) = (j * 16, i * 16); 2 * 3 * 1 = 6 anchors."),
        Case("the course's 9 anchors on a 4 x 4 map, stride 8", (course, (4, 4), 8),
             f"expect 4 * 4 * 9 = 144 anchors; {order}"),
        Case("a non-square 3 x 5 map", (wide, (3, 5), 16),
             f"H = 3 rows, W = 5 columns; {order}"),
        Case("different strides (sy, sx) = (16, 8)", (wide, (4, 2), (16, 8)),
             "stride is (sy, sx): row i -> y = i * sy, column j -> x = j * sx."),
        Case("a single cell", (course, (1, 1), 32), "one cell: the k anchors, unshifted."),
        Case("a 16 x 16 map, stride 8 (a 128 x 128 image)", (course, (16, 16), 8),
             f"expect 16 * 16 * 9 = 2304 anchors; {order}"),
    ]


@falls_back_to(grid_anchors)
def check_grid_anchors(fn):
    """Check ``fn(cell_anchors, feature_size, stride) -> (H * W * k, 4)`` against
    :func:`minifrcnn.anchors.grid_anchors` (``stride`` an int or ``(sy, sx)``)."""
    def count(case):
        cell, (height, width), _ = case.args
        return f"H * W * k = {height} * {width} * {cell.shape[0]}"

    return _check_with_diagnosis(fn, grid_anchors, grid_anchor_cases(), GRID_MISTAKES,
                                 what="your grid anchors function", count=count)

