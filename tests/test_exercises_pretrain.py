"""Lesson 08's checkers: they accept correct crop boxes and class evidence maps (the package's
and independent ones) and reject the plausible wrong ones, naming the mistake."""
import pytest
import torch

from minifrcnn.backbone import SmallBackbone
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.pretrain import check_class_evidence, check_crop_boxes
from minifrcnn.pretrain import DigitClassifier, class_evidence, crop_boxes


def loop_crop_boxes(boxes, fraction, shift):
    """A learner's version, one box at a time."""
    rows = []
    for (x1, y1, x2, y2), f, (dx, dy) in zip(boxes.tolist(), fraction.tolist(), shift.tolist()):
        side = max(x2 - x1, y2 - y1) / f
        cx, cy = (x1 + x2) / 2 + dx * side, (y1 + y2) / 2 + dy * side
        rows.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    return torch.tensor(rows, dtype=boxes.dtype).reshape(-1, 4)


def test_crop_checker_accepts_correct_versions(capsys):
    assert check_crop_boxes(crop_boxes) == 7
    assert check_crop_boxes(loop_crop_boxes) == 7
    assert "Well done" in capsys.readouterr().out


def shorter_side(boxes, fraction, shift):
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sides = (boxes[:, 2:] - boxes[:, :2]).min(dim=1).values / fraction
    centres = centres + shift * sides[:, None]
    return torch.cat([centres - sides[:, None] / 2, centres + sides[:, None] / 2], dim=1)


def times_fraction(boxes, fraction, shift):
    return crop_boxes(boxes, 1 / fraction, shift)


def pixel_shift(boxes, fraction, shift):
    side = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values / fraction
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 + shift
    return torch.cat([centres - side[:, None] / 2, centres + side[:, None] / 2], dim=1)


def xywh(boxes, fraction, shift):
    b = crop_boxes(boxes, fraction, shift)
    return torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], dim=1)


def not_square(boxes, fraction, shift):
    wh = (boxes[:, 2:] - boxes[:, :2]) / fraction[:, None]
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 + shift * wh
    return torch.cat([centres - wh / 2, centres + wh / 2], dim=1)


@pytest.mark.parametrize("wrong, words", [
    (shorter_side, ["shorter side"]),
    (times_fraction, ["divide by the fraction"]),
    (pixel_shift, ["shift * side"]),
    (xywh, ["(x1, y1, x2, y2)"]),
    (not_square, ["not square"]),
])
def test_crop_checker_names_the_mistake(wrong, words):
    with pytest.raises(ExerciseError) as error:
        check_crop_boxes(wrong)
    for word in words:
        assert word in str(error.value), str(error.value)


def test_crop_checker_says_when_the_stub_is_not_written():
    def my_crop_boxes(boxes, fraction, shift):
        raise NotImplementedError("exercise stub: fill in the TODO in my_crop_boxes")
    with pytest.raises(ExerciseError, match="not written yet"):
        check_crop_boxes(my_crop_boxes)


def test_class_evidence_averages_to_the_classifiers_logits():
    torch.manual_seed(0)
    classifier = DigitClassifier(SmallBackbone((8, 8, 16), (1, 1, 1))).eval()
    images = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        features = classifier.backbone(images)
        maps = torch.stack([class_evidence(f, classifier.fc.weight, classifier.fc.bias) for f in features])
        assert torch.allclose(maps.mean(dim=(2, 3)), classifier(images), atol=1e-5)


def loop_evidence(features, weight, bias):
    C, H, W = features.shape
    out = torch.zeros(len(weight), H, W, dtype=features.dtype)
    for y in range(H):
        for x in range(W):
            out[:, y, x] = weight @ features[:, y, x] + bias
    return out


def test_evidence_checker_accepts_correct_versions(capsys):
    assert check_class_evidence(class_evidence) == 4
    assert check_class_evidence(loop_evidence) == 4
    assert "Well done" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda f, w, b: torch.einsum("kc,chw->khw", w, f), ["bias is missing"]),
    (lambda f, w, b: class_evidence(f, w, b).softmax(0), ["no softmax"]),
    (lambda f, w, b: w @ f.mean(dim=(1, 2)) + b, ["logits: keep the map"]),
    (lambda f, w, b: class_evidence(f, w, b).transpose(1, 2), ["swapped"]),
])
def test_evidence_checker_names_the_mistake(wrong, words):
    with pytest.raises(ExerciseError) as error:
        check_class_evidence(wrong)
    for word in words:
        assert word in str(error.value), str(error.value)
