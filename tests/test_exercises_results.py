"""Lesson 11's checker accepts a correct recall-at-N (ours, a learner's, one built on
torchvision's box_iou) and rejects the usual mistakes with a message that names them."""
from functools import partial

import pytest
import torch
import torchvision

from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.results import _variant, check_recall_at_n, recall_cases, reference_recall_at_n
from minifrcnn.course.train_rpn import recall_vs_proposals


def learner_recall(proposals, gt_boxes, n, iou_threshold=0.5):
    found = total = 0
    for p, g in zip(proposals, gt_boxes):
        total += len(g)
        p = p[:n]
        if len(g) and len(p):
            found += int((torchvision.ops.box_iou(g, p).max(dim=1).values >= iou_threshold).sum())
    return found / total


def tensor_recall(proposals, gt_boxes, n, iou_threshold=0.5):
    best = [torchvision.ops.box_iou(g, p[:n]).max(dim=1).values if len(p) else torch.zeros(len(g))
            for p, g in zip(proposals, gt_boxes) if len(g)]
    return (torch.cat(best) >= iou_threshold).double().mean()  # a 0-dim tensor is fine too


@pytest.mark.parametrize("fn", [reference_recall_at_n, _variant, learner_recall, tensor_recall],
                         ids=["minifrcnn", "variant-without-mistake", "learner", "tensor"])
def test_accepts_correct(fn, capsys):
    assert check_recall_at_n(fn) == len(recall_cases())
    assert "Well done" in capsys.readouterr().out


def test_reference_is_the_packages_recall():
    for case in recall_cases():
        proposals, gt_boxes, n = case.args
        threshold = case.kwargs.get("iou_threshold", 0.5)
        expected = recall_vs_proposals(proposals, gt_boxes, (n,), (threshold,))[threshold][0]
        assert reference_recall_at_n(*case.args, **case.kwargs) == pytest.approx(float(expected))


def not_written(proposals, gt_boxes, n, iou_threshold=0.5):
    raise NotImplementedError


def in_place(proposals, gt_boxes, n, iou_threshold=0.5):
    result = reference_recall_at_n(proposals, gt_boxes, n, iou_threshold)
    for p in proposals:
        p.clamp_(min=1)
    return result


def per_image_list(proposals, gt_boxes, n, iou_threshold=0.5):
    return [reference_recall_at_n([p], [g], n, iou_threshold) for p, g in zip(proposals, gt_boxes) if len(g)]


def skips_images_without_proposals(proposals, gt_boxes, n, iou_threshold=0.5):
    return learner_recall(*zip(*[(p, g) for p, g in zip(proposals, gt_boxes) if len(p)]), n, iou_threshold)


def fixed_threshold(proposals, gt_boxes, n, iou_threshold=0.5):
    return reference_recall_at_n(proposals, gt_boxes, n)


@pytest.mark.parametrize("wrong, words", [
    (partial(_variant, per_image=True), ["case 5 ", "0.666667, expected 0.5", "average the recall of each image"]),
    (partial(_variant, strict=True), ["case 4 ", ">= iou_threshold, not >"]),
    (partial(_variant, all_proposals=True), ["case 2 ", "first n of each image"]),
    (partial(_variant, unique=True), ["case 8 ", "without matching"]),
    (partial(_variant, precision=True), ["(a precision)"]),
    (skips_images_without_proposals, ["case 7 ", "no proposals"]),
    (fixed_threshold, ["case 10 ", "iou_threshold argument"]),
    (per_image_list, ["one number"]),
    (in_place, ["in place"]),
    (not_written, ["not written yet"]),
])
def test_rejects_mistakes(wrong, words):
    with pytest.raises(ExerciseError) as info:
        check_recall_at_n(wrong)
    message = str(info.value)
    assert all(w in message for w in words), message
