"""Lesson 02's exercise checkers: pass correct code, fail wrong code with a useful hint."""
import math

import pytest
import torch

from minifrcnn.anchors import base_anchors, grid_anchors
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.anchors import check_base_anchors, check_grid_anchors

# ----------------------------------------------------------------------------- learners' attempts

def loop_base_anchors(sizes, aspect_ratios):
    """A correct, loop-based solution (float64 maths)."""
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(rows, dtype=torch.float64).round()


def size_major_base_anchors(sizes, aspect_ratios):
    rows = []
    for s in sizes:  # wrong: sizes outside
        for r in aspect_ratios:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(rows).round()


def unrounded_base_anchors(sizes, aspect_ratios):
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(rows)


def w_over_h_base_anchors(sizes, aspect_ratios):
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            w, h = s * math.sqrt(r), s / math.sqrt(r)  # wrong: ratio taken as w / h
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(rows).round()


def corner_base_anchors(sizes, aspect_ratios):
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            rows.append([0, 0, w, h])  # wrong: not centred on (0, 0)
    return torch.tensor(rows)


def test_base_checker_passes_correct_code(capsys):
    assert check_base_anchors(base_anchors) == 6
    assert check_base_anchors(loop_base_anchors) == 6
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (size_major_base_anchors, "size-major"),
    (unrounded_base_anchors, "torch.round"),
    (w_over_h_base_anchors, "r = h / w"),
    (corner_base_anchors, "centred on (0, 0)"),
    (lambda sizes, ratios: loop_base_anchors(sizes, ratios)[:1], "len(aspect_ratios) * len(sizes) = 3 * 3"),
])
def test_base_checker_explains_mistakes(wrong, words):
    with pytest.raises(ExerciseError) as error:
        check_base_anchors(wrong)
    message = str(error.value)
    assert words in message
    assert "case 1 (the paper's 3 sizes x 3 ratios)" in message


def test_base_checker_not_written_yet():
    def stub(sizes, aspect_ratios):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        check_base_anchors(stub)


def test_base_checker_reports_exceptions():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        check_base_anchors(lambda sizes, ratios: 1 / 0)


# ----------------------------------------------------------------------------- grid anchors

def loop_grid_anchors(cell_anchors, feature_size, stride):
    """A correct, loop-based solution."""
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    rows = []
    for i in range(feature_size[0]):
        for j in range(feature_size[1]):
            for anchor in cell_anchors.tolist():
                rows.append([anchor[0] + j * sx, anchor[1] + i * sy, anchor[2] + j * sx, anchor[3] + i * sy])
    return torch.tensor(rows)


def cell_middle_grid_anchors(cell_anchors, feature_size, stride):
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    shift = torch.tensor([sx, sy, sx, sy]) / 2  # wrong: centred on the tile's middle
    return loop_grid_anchors(cell_anchors, feature_size, stride) + shift


def anchor_major_grid_anchors(cell_anchors, feature_size, stride):
    k = cell_anchors.shape[0]
    cells = feature_size[0] * feature_size[1]
    # wrong: for each anchor shape, all the cells
    anchors = loop_grid_anchors(cell_anchors, feature_size, stride).reshape(cells, k, 4)
    return anchors.transpose(0, 1).reshape(-1, 4)


def column_major_grid_anchors(cell_anchors, feature_size, stride):
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    rows = []
    for j in range(feature_size[1]):  # wrong: columns outside
        for i in range(feature_size[0]):
            for anchor in cell_anchors.tolist():
                rows.append([anchor[0] + j * sx, anchor[1] + i * sy, anchor[2] + j * sx, anchor[3] + i * sy])
    return torch.tensor(rows)


def test_grid_checker_passes_correct_code(capsys):
    assert check_grid_anchors(grid_anchors) == 6
    assert check_grid_anchors(loop_grid_anchors) == 6
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,words", [
    (cell_middle_grid_anchors, "middle of each cell"),
    (anchor_major_grid_anchors, "anchor-major"),
    (column_major_grid_anchors, "column by column"),
    (lambda cell, size, stride: loop_grid_anchors(cell, size, stride)[:-1], "H * W * k = 2 * 3 * 1"),
])
def test_grid_checker_explains_mistakes(wrong, words):
    with pytest.raises(ExerciseError) as error:
        check_grid_anchors(wrong)
    assert words in str(error.value)


def test_grid_checker_catches_swapped_strides():
    def swapped(cell_anchors, feature_size, stride):
        sy, sx = (stride, stride) if isinstance(stride, int) else stride
        return loop_grid_anchors(cell_anchors, feature_size, (sx, sy))  # wrong: (sx, sy)

    with pytest.raises(ExerciseError) as error:
        check_grid_anchors(swapped)
    message = str(error.value)
    assert "(16, 8)" in message and "stride is (sy, sx)" in message


def test_grid_checker_int_stride_only_fails_on_tuple_case():
    def int_only(cell_anchors, feature_size, stride):
        return loop_grid_anchors(cell_anchors, feature_size, int(stride))  # TypeError on a tuple

    with pytest.raises(ExerciseError, match="raised TypeError"):
        check_grid_anchors(int_only)
