"""The box exercise checkers: they accept the package's own functions and reject the
plausible wrong implementations a learner writes, naming the failing case."""
import pytest
import torch
import torchvision.ops as tv_ops

from minifrcnn import boxes as B
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.boxes import check_box_area, check_coco_to_xyxy, check_iou, coco_to_xyxy


def _inter_wh(b1, b2):
    return torch.min(b1[:, None, 2:], b2[:, 2:]) - torch.max(b1[:, None, :2], b2[:, :2])


# ----------------------------------------------------------------------------- wrong IoUs

def iou_no_clamp(b1, b2):
    wh = _inter_wh(b1, b2)  # negative for disjoint boxes
    inter = wh[..., 0] * wh[..., 1]
    return inter / (B.box_area(b1)[:, None] + B.box_area(b2) - inter)


def iou_forgot_subtract(b1, b2):
    inter = _inter_wh(b1, b2).clamp(min=0).prod(-1)
    return inter / (B.box_area(b1)[:, None] + B.box_area(b2))


def iou_subtract_twice(b1, b2):
    inter = _inter_wh(b1, b2).clamp(min=0).prod(-1)
    union = B.box_area(b1)[:, None] + B.box_area(b2) - 2 * inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


def iou_elementwise(b1, b2):  # pairs box i with box i only: shape (N,)
    n = min(len(b1), len(b2))
    return B.box_iou(b1[:n], b2[:n]).diagonal()


def iou_transposed(b1, b2):
    return B.box_iou(b2, b1)


def iou_plus_one(b1, b2):  # the original Caffe code's pixel-inclusive convention
    area = lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    inter = (_inter_wh(b1, b2) + 1).clamp(min=0).prod(-1)
    return inter / (area(b1)[:, None] + area(b2) - inter)


def iou_float32_always(b1, b2):
    return B.box_iou(b1.float(), b2.float())


def iou_loop_breaks_on_empty(b1, b2):
    rows = [torch.stack([B.box_iou(a[None], b[None])[0, 0] for b in b2]) for a in b1]
    return torch.stack(rows)  # torch.stack([]) raises for an empty input


def iou_not_written(b1, b2):
    raise NotImplementedError


@pytest.mark.parametrize("fn", [B.box_iou, lambda a, b: B.box_iou(a.double(), b.double()).to(a.dtype)])
def test_check_iou_accepts_the_package(fn, capsys):
    assert check_iou(fn) == 10
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, case, words", [
    (tv_ops.box_iou, "zero-area", "NaN"),
    (iou_no_clamp, "disjoint", "clamp"),
    (iou_forgot_subtract, "half overlapping", "counted twice"),
    (iou_subtract_twice, "half overlapping", "subtracted twice"),
    (iou_elementwise, "half overlapping", "pairwise"),
    (iou_transposed, "disjoint", "swapped"),
    (iou_plus_one, "half overlapping", "+1"),
    (iou_float32_always, "float64", "float64"),
    (iou_loop_breaks_on_empty, "no boxes", "raised"),
    (iou_not_written, "not written", "not written"),
])
def test_check_iou_rejects_wrong_implementations(wrong, case, words):
    with pytest.raises(ExerciseError) as info:
        check_iou(wrong)
    message = str(info.value)
    assert case in message and words in message, message


def test_check_iou_hint_for_negative_values():
    def no_clamp_x_only(b1, b2):
        wh = _inter_wh(b1, b2)
        inter = wh[..., 0] * wh[..., 1].clamp(min=0)
        union = B.box_area(b1)[:, None] + B.box_area(b2) - inter
        return torch.where(union > 0, inter / union, torch.zeros_like(inter))

    with pytest.raises(ExerciseError, match="negative IoU"):
        check_iou(no_clamp_x_only)


# ----------------------------------------------------------------------------- box_area

def area_plus_one(b):
    return (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)


def area_keepdim(b):
    return (b[:, 2:3] - b[:, 0:1]) * (b[:, 3:4] - b[:, 1:2])


def area_squares(b):
    return (b[:, 2] - b[:, 0]) ** 2


def area_yxyx(b):  # reads the boxes as (y1, x1, y2, x2): still right! the product is symmetric
    return (b[:, 3] - b[:, 1]) * (b[:, 2] - b[:, 0])


def test_check_box_area_accepts(capsys):
    assert check_box_area(B.box_area) == 5
    assert check_box_area(tv_ops.box_area) == 5
    assert check_box_area(area_yxyx) == 5


@pytest.mark.parametrize("wrong, case, words", [
    (area_plus_one, "one 10 x 20 box", "Caffe"),
    (area_keepdim, "one 10 x 20 box", "boxes[:, k:k+1]"),
    (area_squares, "one 10 x 20 box", "expected 200"),
    (lambda b: B.box_area(b).float(), "float64", "float64 inputs gave a torch.float32"),
])
def test_check_box_area_rejects(wrong, case, words):
    with pytest.raises(ExerciseError) as info:
        check_box_area(wrong)
    assert case in str(info.value) and words in str(info.value), str(info.value)


# ----------------------------------------------------------------------------- coco_to_xyxy

def test_coco_to_xyxy_reference_equals_torchvision():
    boxes = torch.rand(20, 4, dtype=torch.float64) * 50
    assert torch.equal(coco_to_xyxy(boxes), tv_ops.box_convert(boxes, "xywh", "xyxy"))


def coco_in_place(b):
    b[:, 2:] += b[:, :2]
    return b


def coco_as_centre(b):
    return B.cxcywh_to_xyxy(b)


def test_check_coco_to_xyxy_accepts():
    assert check_coco_to_xyxy(lambda b: tv_ops.box_convert(b, "xywh", "xyxy")) == 5
    assert check_coco_to_xyxy(lambda b: torch.cat((b[:, :2], b[:, :2] + b[:, 2:]), dim=1)) == 5


@pytest.mark.parametrize("wrong, case, words", [
    (coco_in_place, "one box", "in place"),
    (coco_as_centre, "one box", "not the centre"),
    (lambda b: b[:, :2] + b[:, 2:], "one box", "shape (1, 2)"),
    (lambda b: torch.tensor([[x, y, x + w, y + h] for x, y, w, h in b.tolist()]), "no boxes", "shape"),
])
def test_check_coco_to_xyxy_rejects(wrong, case, words):
    with pytest.raises(ExerciseError) as info:
        check_coco_to_xyxy(wrong)
    assert case in str(info.value) and words in str(info.value), str(info.value)


def test_checker_does_not_swallow_learner_prints(capsys):
    def chatty(b1, b2):
        print("debug: shapes", tuple(b1.shape), tuple(b2.shape))
        return B.box_iou(b1, b2)

    check_iou(chatty)
    assert "debug: shapes" in capsys.readouterr().out
