"""minifrcnn.evaluation: COCO numbers equal faster-coco-eval's; VOC AP checked by hand."""
import contextlib
import io

import numpy as np
import pytest
import torch

from minifrcnn.evaluation import evaluate_coco, evaluate_voc, to_coco, voc_ap

faster_coco_eval = pytest.importorskip("faster_coco_eval")

NUM_CLASSES = 4  # background + 3


def random_dataset(seed, num_images=12, max_gt=5, max_det=12, ties=False):
    """Ground truth, and detections made by jittering it (hits, duplicates, misses, noise)."""
    gen = torch.Generator().manual_seed(seed)
    detections, ground_truths = [], []
    for _ in range(num_images):
        num_gt = int(torch.randint(0, max_gt + 1, (1,), generator=gen))
        xy = torch.rand(num_gt, 2, generator=gen, dtype=torch.float64) * 80
        gt_boxes = torch.cat((xy, xy + 8 + torch.rand(num_gt, 2, generator=gen, dtype=torch.float64) * 40), 1)
        gt_labels = torch.randint(1, NUM_CLASSES, (num_gt,), generator=gen)
        num_det = int(torch.randint(0, max_det + 1, (1,), generator=gen))
        source = torch.randint(0, max(num_gt, 1), (num_det,), generator=gen)
        if num_gt:
            boxes = gt_boxes[source] + torch.randn(num_det, 4, generator=gen, dtype=torch.float64) * 4
            labels = gt_labels[source].clone()
        else:
            boxes = torch.rand(num_det, 4, generator=gen, dtype=torch.float64) * 60
            labels = torch.randint(1, NUM_CLASSES, (num_det,), generator=gen)
        boxes = torch.cat((boxes[:, :2].minimum(boxes[:, 2:]), boxes[:, :2].maximum(boxes[:, 2:]) + 1), 1)
        wrong = torch.rand(num_det, generator=gen) < 0.15  # some confusions
        labels[wrong] = torch.randint(1, NUM_CLASSES, (int(wrong.sum()),), generator=gen)
        scores = torch.rand(num_det, generator=gen, dtype=torch.float64)
        if ties:
            scores = (scores * 4).round() / 4  # many equal scores
        detections.append({"boxes": boxes, "scores": scores, "labels": labels})
        ground_truths.append({"boxes": gt_boxes, "labels": gt_labels})
    return detections, ground_truths


def reference_coco(detections, ground_truths):
    from faster_coco_eval import COCO, COCOeval_faster
    gt_dict, results = to_coco(detections, ground_truths, NUM_CLASSES)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_dict)
        coco_dt = coco_gt.loadRes(results) if results else COCO()
        evaluator = COCOeval_faster(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_coco_ap_equals_faster_coco_eval(seed, ties):
    detections, ground_truths = random_dataset(seed, ties=ties)
    ours = evaluate_coco(detections, ground_truths, NUM_CLASSES)
    reference = reference_coco(detections, ground_truths)
    assert ours["ap"] == pytest.approx(reference.stats[0], abs=1e-6)
    assert ours["ap50"] == pytest.approx(reference.stats[1], abs=1e-6)
    assert ours["ap75"] == pytest.approx(reference.stats[2], abs=1e-6)
    precision = reference.eval["precision"][:, :, :, 0, -1]  # area "all", maxDets 100
    np.testing.assert_allclose(ours["precision"], precision, atol=1e-6)


def test_coco_limits_detections_per_image():
    detections, ground_truths = random_dataset(3, num_images=3, max_det=40)
    ours = evaluate_coco(detections, ground_truths, NUM_CLASSES, max_detections=100)
    reference = reference_coco(detections, ground_truths)
    assert ours["ap"] == pytest.approx(reference.stats[0], abs=1e-6)
    small = evaluate_coco(detections, ground_truths, NUM_CLASSES, max_detections=1)
    assert small["ap"] != ours["ap"]


def test_perfect_detections_score_one():
    _, ground_truths = random_dataset(1)
    detections = [{"boxes": g["boxes"], "labels": g["labels"], "scores": torch.ones(len(g["labels"]))}
                  for g in ground_truths]
    assert evaluate_coco(detections, ground_truths, NUM_CLASSES)["ap"] == pytest.approx(1.0)
    voc = evaluate_voc(detections, ground_truths, NUM_CLASSES)
    assert voc["map"] == pytest.approx(1.0) and set(voc["ap"]) == {1, 2, 3}


def test_voc_ap_by_hand():
    # 3 ground truths; detections in score order: TP, FP, TP, FP, TP.
    # precision 1, .5, .667, .5, .6 at recall .333, .333, .667, .667, 1.
    # envelope: 1 up to 1/3, then .667 up to 2/3, then .6 up to 1.
    recall = np.array([1, 1, 2, 2, 3]) / 3
    precision = np.array([1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    assert voc_ap(recall, precision) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_voc_duplicates_are_false_positives_and_threshold_is_strict():
    gt = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([1])}]
    det = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [0.0, 0, 10, 20]]),
            "scores": torch.tensor([0.9, 0.8, 0.95]), "labels": torch.tensor([1, 1, 1])}]
    result = evaluate_voc(det, gt, 2)
    # Best score first: the 10x20 box has IoU exactly 0.5 -> not > 0.5 -> FP; then TP; then duplicate FP.
    precision, recall = result["curves"][1]
    assert recall.tolist() == [0.0, 1.0, 1.0] and precision.tolist() == pytest.approx([0.0, 0.5, 1 / 3])
    assert result["ap"][1] == pytest.approx(0.5)


def test_classes_without_ground_truth_are_left_out_and_empty_inputs_work():
    gt = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    det = [{"boxes": torch.tensor([[0.0, 0, 5, 5]]), "scores": torch.tensor([0.5]), "labels": torch.tensor([2])}]
    assert evaluate_voc(det, gt, NUM_CLASSES) == {"ap": {}, "map": 0.0, "curves": {}}
    assert evaluate_coco(det, gt, NUM_CLASSES)["ap"] == -1.0
    gt = [{"boxes": torch.tensor([[0.0, 0, 5, 5]]), "labels": torch.tensor([1])}]
    no_det = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}]
    assert evaluate_voc(no_det, gt, NUM_CLASSES)["ap"] == {1: 0.0}
    assert evaluate_coco(no_det, gt, NUM_CLASSES)["ap"] == 0.0


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="2 detection entries for 1 images"):
        evaluate_voc([{}, {}], [{}], NUM_CLASSES)


@pytest.mark.parametrize("seed", range(4))
def test_match_voc_gives_evaluate_voc_curves(seed):
    """Pooling match_voc's flags over images, per class, rebuilds evaluate_voc's curves and AP."""
    from minifrcnn.evaluation import match_voc
    detections, ground_truths = random_dataset(seed, ties=seed % 2 == 1)
    voc = evaluate_voc(detections, ground_truths, NUM_CLASSES)
    for label, (precision, recall) in voc["curves"].items():
        scores, flags, num_gt = [], [], 0
        for det, gt in zip(detections, ground_truths):
            mine, theirs = det["labels"] == label, gt["labels"] == label
            is_tp, compared = match_voc(det["boxes"][mine], det["scores"][mine], gt["boxes"][theirs])
            assert ((compared >= 0) == bool(theirs.any())).all() and (compared < int(theirs.sum())).all()
            scores.append(det["scores"][mine].numpy())
            flags.append(is_tp)
            num_gt += int(theirs.sum())
        scores, flags = np.concatenate(scores), np.concatenate(flags)
        order = np.argsort(-scores, kind="mergesort")
        tp = np.cumsum(flags[order])
        np.testing.assert_allclose(recall, tp / num_gt)
        np.testing.assert_allclose(precision, tp / np.arange(1, len(tp) + 1))
        assert voc_ap(tp / num_gt, precision) == pytest.approx(voc["ap"][label])


def test_match_voc_by_hand():
    from minifrcnn.evaluation import match_voc
    gt = torch.tensor([[0.0, 0, 10, 10], [3, 0, 13, 10]])
    # In score order: the 0.9 takes box 0 (IoU 1); the 0.8 overlaps box 0 most (IoU 0.90) -> a duplicate
    # although box 1 (IoU 0.6) is free: VOC does not fall back. The 0.7 takes box 1.
    boxes = torch.tensor([[0.5, 0, 10.5, 10], [0.0, 0, 10, 10], [3, 0, 13, 10]])
    is_tp, compared = match_voc(boxes, torch.tensor([0.8, 0.9, 0.7]), gt)
    assert is_tp.tolist() == [False, True, True] and compared.tolist() == [0, 0, 1]
    is_tp, compared = match_voc(boxes, torch.tensor([0.8, 0.9, 0.7]), torch.zeros(0, 4))
    assert not is_tp.any() and (compared == -1).all()
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        match_voc(boxes, torch.tensor([0.8, 0.9]), gt)


def test_pr_curves_envelope_area_is_the_ap():
    """draw_pr_curves' thick line is the envelope whose area is VOC's AP."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minifrcnn.course.draw import draw_pr_curves
    detections, ground_truths = random_dataset(2)
    voc = evaluate_voc(detections, ground_truths, NUM_CLASSES)
    fig, ax = plt.subplots()
    lines = draw_pr_curves(ax, voc["curves"], voc["ap"], class_names=["bg", "a", "b", "c"])
    assert len(lines) == len(voc["curves"]) and lines[0].get_label().startswith("a (AP ")
    for line, label in zip(lines, sorted(voc["curves"])):
        r, p = line.get_xdata(), line.get_ydata()  # steps "pre": p[i] holds over (r[i-1], r[i]]
        assert np.sum(np.diff(r) * p[1:]) == pytest.approx(voc["ap"][label])
        assert (np.diff(p) <= 1e-12).all()  # non-increasing
    plt.close(fig)
