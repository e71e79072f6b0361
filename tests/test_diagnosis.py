"""minifrcnn.course.diagnosis: every detection gets exactly one kind, by hand-made cases and
against evaluate_voc's true positives on random data."""
import numpy as np
import pytest
import torch

from minifrcnn.course.diagnosis import KINDS, classify_detections, diagnose
from minifrcnn.evaluation import evaluate_voc

DIGIT_3, DIGIT_7 = 4, 8  # labels: digit d is d + 1


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_each_kind_by_hand():
    gt_boxes = boxes([10, 10, 50, 50], [70, 70, 110, 110])
    gt_labels = torch.tensor([DIGIT_3, DIGIT_7])
    det = boxes([11, 10, 51, 50],    # on the 3, labelled 3: correct
                [10, 12, 50, 52],    # on the 3 again, lower score: duplicate
                [10, 10, 30, 50],    # half the 3, labelled 3: mislocalised (IoU 0.5, not > 0.5)
                [70, 71, 110, 111],  # on the 7, labelled 3: confusion
                [0, 80, 20, 120])    # nowhere: background
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = torch.tensor([DIGIT_3, DIGIT_3, DIGIT_3, DIGIT_3, DIGIT_7])
    result = classify_detections(det, scores, labels, gt_boxes, gt_labels)
    assert result["kinds"] == ["correct", "duplicate", "mislocalised", "confusion", "background"]
    assert result["gt_index"].tolist() == [0, 0, 0, 1, -1]
    assert result["iou"][2] == pytest.approx(0.5)
    assert result["missed"].tolist() == [False, True]  # the 7 was only ever called a 3
    assert result["counts"] == {"correct": 1, "duplicate": 1, "mislocalised": 1, "confusion": 1, "background": 1,
                                "missed": 1}


def test_score_order_decides_which_is_the_duplicate():
    gt_boxes, gt_labels = boxes([10, 10, 50, 50]), torch.tensor([DIGIT_3])
    det = boxes([12, 10, 52, 50], [10, 10, 50, 50])
    labels = torch.tensor([DIGIT_3, DIGIT_3])
    for scores, expected in (([0.9, 0.8], ["correct", "duplicate"]), ([0.8, 0.9], ["duplicate", "correct"])):
        assert classify_detections(det, torch.tensor(scores), labels, gt_boxes, gt_labels)["kinds"] == expected


def test_the_most_overlapped_object_decides_between_mislocalised_and_confusion():
    # A 7-detection sits on a 3 (IoU 0.875) and touches a 7 (IoU 0.07): a confusion.
    gt_boxes = boxes([10, 10, 50, 50], [40, 10, 80, 50])
    gt_labels = torch.tensor([DIGIT_3, DIGIT_7])
    det, labels = boxes([10, 10, 45, 50]), torch.tensor([DIGIT_7])
    result = classify_detections(det, torch.tensor([0.9]), labels, gt_boxes, gt_labels)
    assert result["kinds"] == ["confusion"] and result["gt_index"].tolist() == [0]
    # The same box labelled 3 is correct.
    result = classify_detections(det, torch.tensor([0.9]), torch.tensor([DIGIT_3]), gt_boxes, gt_labels)
    assert result["kinds"] == ["correct"]
    # A loose 7-detection overlapping the 7 (IoU 0.47) more than the 3 (0.22): mislocalised.
    det = boxes([32, 0, 72, 60])
    result = classify_detections(det, torch.tensor([0.9]), torch.tensor([DIGIT_7]), gt_boxes, gt_labels)
    assert result["kinds"] == ["mislocalised"] and result["gt_index"].tolist() == [1]
    assert result["iou"][0] == pytest.approx(1280 / 2720)


def test_background_threshold():
    gt_boxes, gt_labels = boxes([10, 10, 50, 50]), torch.tensor([DIGIT_3])
    det = boxes([45, 10, 85, 50])  # IoU 5/75 = 0.067 with the 3
    for background_iou, kind in ((0.1, "background"), (0.05, "mislocalised")):
        result = classify_detections(det, torch.tensor([0.9]), torch.tensor([DIGIT_3]), gt_boxes, gt_labels,
                                     background_iou=background_iou)
        assert result["kinds"] == [kind]


def test_empty_inputs():
    empty = classify_detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64),
                                boxes([1, 1, 5, 5]), torch.tensor([1]))
    assert empty["kinds"] == [] and empty["missed"].tolist() == [True] and empty["counts"]["missed"] == 1
    no_gt = classify_detections(boxes([1, 1, 5, 5]), torch.tensor([0.5]), torch.tensor([2]), torch.zeros(0, 4),
                                torch.zeros(0, dtype=torch.int64))
    assert no_gt["kinds"] == ["background"] and no_gt["gt_index"].tolist() == [-1]


def test_bad_inputs_raise_clearly():
    with pytest.raises(ValueError, match="2 boxes, 1 scores"):
        classify_detections(boxes([1, 1, 5, 5], [2, 2, 6, 6]), torch.tensor([0.5]), torch.tensor([1, 1]),
                            torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="background_iou"):
        classify_detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), torch.zeros(0, 4), torch.zeros(0),
                            background_iou=0.6)


def random_images(seed, num_images=15, num_classes=4):
    gen = torch.Generator().manual_seed(seed)
    detections, ground_truths = [], []
    for _ in range(num_images):
        g = int(torch.randint(0, 5, (1,), generator=gen))
        xy = torch.rand(g, 2, generator=gen) * 80
        gt = torch.cat((xy, xy + 10 + torch.rand(g, 2, generator=gen) * 30), 1)
        gt_labels = torch.randint(1, num_classes, (g,), generator=gen)
        d = int(torch.randint(0, 10, (1,), generator=gen))
        src = torch.randint(0, max(g, 1), (d,), generator=gen)
        if g:
            det = gt[src] + torch.randn(d, 4, generator=gen) * 6
            labels = gt_labels[src].clone()
        else:
            det = torch.rand(d, 4, generator=gen) * 60
            labels = torch.randint(1, num_classes, (d,), generator=gen)
        det = torch.cat((det[:, :2].minimum(det[:, 2:]), det[:, :2].maximum(det[:, 2:]) + 1), 1)
        flip = torch.rand(d, generator=gen) < 0.2
        labels[flip] = torch.randint(1, num_classes, (int(flip.sum()),), generator=gen)
        detections.append({"boxes": det, "scores": torch.rand(d, generator=gen), "labels": labels})
        ground_truths.append({"boxes": gt, "labels": gt_labels})
    return detections, ground_truths


@pytest.mark.parametrize("seed", range(4))
def test_correct_detections_are_evaluate_voc_true_positives(seed):
    """The number of correct detections per class equals the final recall of evaluate_voc
    times the number of objects; every detection gets one kind; misses are the rest."""
    detections, ground_truths = random_images(seed)
    voc = evaluate_voc(detections, ground_truths, 4)
    result = diagnose(detections, ground_truths)
    for label, (precision, recall) in voc["curves"].items():
        num_gt = sum(int((g["labels"] == label).sum()) for g in ground_truths)
        correct = sum(sum(k == "correct" for k, lab in zip(r["kinds"], r["labels"]) if lab == label)
                      for r in result["per_image"])
        assert correct == round((recall[-1] if len(recall) else 0) * num_gt)
    counts = result["counts"]
    assert sum(counts[k] for k in KINDS) == sum(len(d["scores"]) for d in detections)
    assert counts["missed"] == counts["objects"] - counts["correct"]
    assert len(result["errors"]) == counts["objects"] - counts["correct"] + sum(counts[k] for k in KINDS[1:])


def test_diagnose_threshold_and_error_order():
    detections, ground_truths = random_images(7)
    all_ = diagnose(detections, ground_truths)
    strict = diagnose(detections, ground_truths, score_threshold=0.5)
    assert all(np.all(r["scores"] > 0.5) for r in strict["per_image"])
    assert strict["counts"]["correct"] <= all_["counts"]["correct"]
    kinds = [e["kind"] for e in all_["errors"]]
    order = ["duplicate", "mislocalised", "confusion", "background", "missed"]
    assert kinds == sorted(kinds, key=order.index)
    for kind in order[:-1]:
        scores = [e["score"] for e in all_["errors"] if e["kind"] == kind]
        assert scores == sorted(scores, reverse=True)
    causes = {e["cause"] for e in all_["errors"] if e["kind"] == "missed"}
    assert causes and causes <= {"confusion", "mislocalised", "not found"}
