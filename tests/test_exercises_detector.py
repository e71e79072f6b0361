"""Lesson 09's checker: it passes a right matching and explains typical wrong ones."""
import numpy as np
import pytest
import torch

from minifrcnn.boxes import box_iou
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.detector import check_average_precision, check_match, match_cases, reference_match
from minifrcnn.evaluation import evaluate_voc, voc_ap


def learner_match(boxes, scores, gt_boxes, iou_threshold=0.5, input_order=False, reuse=False, at_least=False,
                  first_above=False, coco=False, crash_without_gt=False, ints=False, in_place=False):
    """A learner's solution, as the lesson's solution cell, with switchable mistakes."""
    is_tp = torch.zeros(len(boxes), dtype=torch.bool)
    if len(gt_boxes) == 0 and not crash_without_gt:
        return is_tp.long() if ints else is_tp
    iou = box_iou(boxes, gt_boxes)
    taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
    if in_place:
        scores.mul_(1.0).add_(0.0)
        boxes[:, 0].clamp_(min=1.0)
    order = range(len(boxes)) if input_order else torch.sort(scores, descending=True, stable=True).indices.tolist()
    for d in order:
        row = iou[d].masked_fill(taken, -1) if coco else iou[d]
        if first_above and (row > iou_threshold).any():
            best = int(torch.where(row > iou_threshold)[0][0])
        else:
            best = int(row.argmax())
        hit = row[best] >= iou_threshold if at_least else row[best] > iou_threshold
        if hit and (reuse or not taken[best]):
            taken[best] = is_tp[d] = True
    return is_tp.long() if ints else is_tp


def test_reference_and_learner_solution_pass(capsys):
    assert check_match(reference_match) == len(match_cases())
    assert check_match(learner_match) == len(match_cases())
    assert "Well done" in capsys.readouterr().out


def test_reference_is_evaluate_voc_rule():
    """AP computed from reference_match's flags equals evaluate_voc's (one class, one image)."""
    for case in match_cases():
        boxes, scores, gt_boxes = case.args
        if len(boxes) == 0 or len(gt_boxes) == 0:
            continue
        threshold = case.kwargs.get("iou_threshold", 0.5)
        det = [{"boxes": boxes, "scores": scores, "labels": torch.ones(len(boxes), dtype=torch.int64)}]
        gt = [{"boxes": gt_boxes, "labels": torch.ones(len(gt_boxes), dtype=torch.int64)}]
        precision, recall = evaluate_voc(det, gt, 2, iou_threshold=threshold)["curves"][1]
        is_tp = reference_match(boxes, scores, gt_boxes, threshold)
        order = torch.sort(scores, descending=True, stable=True).indices
        expected_recall = torch.cumsum(is_tp[order].double(), 0) / len(gt_boxes)
        assert recall.tolist() == pytest.approx(expected_recall.tolist())


@pytest.mark.parametrize("mistake, words", [
    ("input_order", "best score first"),
    ("reuse", "matched twice"),
    ("at_least", "strictly"),
    ("first_above", "overlaps MOST"),
    ("coco", "COCO's rule"),
])
def test_typical_mistakes_are_named(mistake, words):
    with pytest.raises(ExerciseError, match=words) as error:
        check_match(lambda *a, **k: learner_match(*a, **k, **{mistake: True}))
    assert "case" in str(error.value) and "hint:" in str(error.value)


def test_not_written_yet():
    def stub(boxes, scores, gt_boxes, iou_threshold=0.5):
        raise NotImplementedError
    with pytest.raises(ExerciseError, match="not written yet"):
        check_match(stub)


def test_crash_without_ground_truth_names_the_case():
    with pytest.raises(ExerciseError, match="without digits") as error:
        check_match(lambda *a, **k: learner_match(*a, **k, crash_without_gt=True))
    assert "return all False first" in str(error.value)


def test_integers_instead_of_booleans():
    with pytest.raises(ExerciseError, match="return booleans"):
        check_match(lambda *a, **k: learner_match(*a, **k, ints=True))


def test_changing_inputs_in_place():
    with pytest.raises(ExerciseError, match="changed its inputs in place"):
        check_match(lambda *a, **k: learner_match(*a, **k, in_place=True))


def test_a_list_is_accepted():
    assert check_match(lambda *a, **k: learner_match(*a, **k).tolist()) == len(match_cases())


# ----------------------------------------------------------------------------- average precision

def test_the_average_precision_checker_passes_ours_and_names_the_usual_mistakes():
    def by_envelope(recall, precision):
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * envelope))

    assert check_average_precision(voc_ap) == check_average_precision(by_envelope) == 7

    def raw_area(recall, precision):
        return float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))

    def eleven_points(recall, precision):
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))

    def mean_of_empty(recall, precision):
        return float(np.mean(precision)) if len(precision) else float("nan")

    for fn, says in ((raw_area, "take the envelope first"), (eleven_points, "11-point"),
                     (mean_of_empty, "case 2 ")):
        with pytest.raises(ExerciseError, match=says):
            check_average_precision(fn)
