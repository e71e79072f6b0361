"""Lesson 03's checkers: they pass correct code and fail wrong code with a message that names
the anchor (or delta) and the rule it breaks."""
import pytest
import torch

from minifrcnn.boxes import BoxCoder
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.matching import check_anchor_labels, check_encode
from minifrcnn.matching import Matcher, match_labels


def package_labels(iou, high=0.7, low=0.3):
    return match_labels(Matcher(high, low, allow_low_quality_matches=True)(iou))


def make_labeller(positive=">=", negative="<", rule="max", band=True, empty=True):
    """A labelling function with one chosen mistake (the defaults make it correct)."""
    def label(iou, high=0.7, low=0.3):
        labels = torch.zeros(iou.shape[1])
        if iou.shape[0] == 0 and empty:
            return labels
        best = iou.max(dim=0).values
        if band:
            labels[(best > low) if negative == "<=" else (best >= low)] = -1.0
        labels[(best > high) if positive == ">" else (best >= high)] = 1.0
        if rule == "max":
            labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1.0
        elif rule == "argmax":
            labels[iou.argmax(dim=1)] = 1.0
        elif rule == "first":   # the rule applied before the thresholds, which then override it
            keep = labels.clone()
            labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1.0
            labels[keep != 0] = keep[keep != 0]
            labels[best < low] = 0.0
        return labels
    return label


def failure(fn, checker=check_anchor_labels):
    with pytest.raises(ExerciseError) as info:
        checker(fn)
    return str(info.value)


def test_correct_labellers_pass(capsys):
    assert check_anchor_labels(package_labels) == 8
    assert check_anchor_labels(make_labeller()) == 8
    # Any numeric dtype is accepted.
    assert check_anchor_labels(lambda iou, high=0.7, low=0.3: package_labels(iou, high, low).long()) == 8
    assert "Well done" in capsys.readouterr().out


def test_no_best_anchor_rule():
    message = failure(make_labeller(rule=None))
    assert "best anchor for ground truth" in message
    assert "Did you apply the best-anchor rule, and apply it after the thresholds?" in message
    assert "should be positive (1), you labelled it ignored (-1)" in message


def test_best_anchor_rule_before_the_thresholds():
    message = failure(make_labeller(rule="first"))
    assert "best-anchor rule" in message and "after the thresholds" in message


def test_everything_else_negative():
    message = failure(make_labeller(band=False))
    assert "should be ignored (-1), you labelled it negative (0)" in message
    assert "'Everything else is negative' is the lesson notes' mistake" in message


def test_strict_greater_than_for_positives():
    message = failure(make_labeller(positive=">"))
    assert "IoUs exactly at the thresholds" in message
    assert "exactly 0.7: positive means IoU >= 0.7, not > 0.7" in message


def test_less_or_equal_for_negatives():
    message = failure(make_labeller(negative="<="))
    assert "exactly 0.3: negative means IoU < 0.3, so it is ignored" in message


def test_argmax_drops_ties():
    message = failure(make_labeller(rule="argmax"))
    assert "two anchors tie" in message and "tied for its best IoU" in message
    assert "argmax keeps only one" in message


def test_empty_image_crash_is_explained():
    message = failure(make_labeller(empty=False))
    assert "no ground-truth boxes" in message and "raised" in message and "G = 0" in message


def test_hard_coded_thresholds():
    message = failure(lambda iou, high=0.7, low=0.3: package_labels(iou))
    assert "other thresholds" in message and "do not hard-code" in message
    assert "above the positive threshold of this case, high = 0.6" in message and "high=0.6, low=0.2" in message


def test_not_written_and_wrong_shape():
    def stub(iou, high=0.7, low=0.3):
        raise NotImplementedError
    assert "not written yet" in failure(stub)
    assert "shape" in failure(lambda iou, high=0.7, low=0.3: package_labels(iou, high, low)[None])
    assert "should return a tensor" in failure(lambda iou, high=0.7, low=0.3: package_labels(iou, high, low).tolist())


def encode_with(mistake=None):
    def encode(targets, references, weights=(1.0, 1.0, 1.0, 1.0)):
        wx, wy, ww, wh = weights
        rw, rh = references[:, 2] - references[:, 0], references[:, 3] - references[:, 1]
        tw, th = targets[:, 2] - targets[:, 0], targets[:, 3] - targets[:, 1]
        if mistake == "corners":   # x1 instead of the centre
            rx, ry, tx, ty = references[:, 0], references[:, 1], targets[:, 0], targets[:, 1]
        else:
            rx, ry = references[:, 0] + rw / 2, references[:, 1] + rh / 2
            tx, ty = targets[:, 0] + tw / 2, targets[:, 1] + th / 2
        if mistake == "no weights":
            wx = wy = ww = wh = 1.0
        dw = (tw / rw - 1) if mistake == "no log" else torch.log(tw / rw)
        dx = (tx - rx) / (tw if mistake == "target width" else rw)
        return torch.stack((wx * dx, wy * (ty - ry) / rh, ww * dw, wh * torch.log(th / rh)), dim=1)
    return encode


def test_correct_encoders_pass():
    assert check_encode(lambda t, r, w=(1.0, 1.0, 1.0, 1.0): BoxCoder(w).encode(t, r)) == 5
    assert check_encode(encode_with(None)) == 5


@pytest.mark.parametrize("mistake, expected", [
    ("corners", ["tx of box 0", "CENTRE"]),
    ("no log", ["tw of box", "log"]),
    ("no weights", ["head weights (10, 10, 5, 5)", "tx of box 0"]),
    ("target width", ["tx of box", "ANCHOR's width"]),
])
def test_encode_mistakes_are_named(mistake, expected):
    message = failure(encode_with(mistake), check_encode)
    for text in expected:
        assert text in message, (text, message)
