"""Lesson 07's checkers accept correct proposal labels / losses / post-processing (ours and
torchvision's) and reject the usual mistakes with a message that names them."""
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from minifrcnn.boxes import BoxCoder, box_iou, clip_boxes_to_image
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.head import (
    _variant,
    check_head_loss,
    check_postprocess,
    check_proposal_labels,
    reference_postprocess,
    reference_proposal_labels,
)
from minifrcnn.head import head_loss
from minifrcnn.nms import batched_nms


def torchvision_heads(fg_iou=0.5, bg_iou=0.5, score_threshold=0.05, nms_threshold=0.3, detections_per_image=100):
    return RoIHeads(None, None, None, fg_iou, bg_iou, 128, 0.25, (10.0, 10.0, 5.0, 5.0), score_threshold,
                    nms_threshold, detections_per_image)


def tv_labels(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=0.5):
    heads = torchvision_heads(fg_iou, bg_iou)
    return heads.assign_targets_to_proposals([proposals], [gt_boxes], [gt_labels])[1][0]


def tv_postprocess(logits, deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
                   detections_per_image=100):
    heads = torchvision_heads(score_threshold=score_threshold, nms_threshold=nms_threshold,
                              detections_per_image=detections_per_image)
    boxes, scores, labels = heads.postprocess_detections(logits, deltas, [proposals], [image_size])
    return {"boxes": boxes[0], "scores": scores[0], "labels": labels[0]}


def learner_labels(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=0.5, strict=False, first=False,
                   index=False, band=True, no_gt=True, dtype=None):
    """A learner's label assignment with one switchable mistake at a time."""
    if gt_boxes.shape[0] == 0 and no_gt:
        return torch.zeros(len(proposals), dtype=torch.int64)
    iou = box_iou(gt_boxes, proposals)
    best, matches = iou.max(dim=0)
    if first:  # the first ground truth above the threshold instead of the best one
        above = iou >= fg_iou
        first_above = torch.where(above.any(0), above.int().argmax(0), matches)
        matches = first_above
    labels = (matches + 1) if index else gt_labels[matches].clone()
    foreground = best > fg_iou if strict else best >= fg_iou
    labels[~foreground] = 0
    if band:
        labels[(best >= bg_iou) & ~foreground] = -1
    return labels if dtype is None else labels.to(dtype)


@pytest.mark.parametrize("fn", [reference_proposal_labels, tv_labels, learner_labels],
                         ids=["minifrcnn", "torchvision", "learner"])
def test_check_proposal_labels_accepts_correct(fn, capsys):
    assert check_proposal_labels(fn) == 9
    assert "Well done" in capsys.readouterr().out


def in_place(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=0.5):
    labels = reference_proposal_labels(proposals, gt_boxes, gt_labels, fg_iou, bg_iou)
    gt_labels.zero_()
    return labels


def not_written(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_iou=0.5):
    raise NotImplementedError


@pytest.mark.parametrize("wrong, words", [
    (lambda *a, **k: learner_labels(*a, **k, strict=True), ["case 2 ", "exactly 0.5", "IoU >= 0.5"]),
    (lambda *a, **k: learner_labels(*a, **k, index=True), ["case 1 ", "index (+1?), not its class"]),
    (lambda *a, **k: learner_labels(*a, **k, first=True), ["case 4 ", "first above the threshold"]),
    (lambda *a, **k: learner_labels(*a, **k, no_gt=False), ["case 5 ", "raised", "torch.zeros(R"]),
    (lambda *a, **k: learner_labels(*a, **k, band=False), ["case 7 ", "should be ignored (-1)"]),
    (lambda *a, **k: learner_labels(*a, **k, dtype=torch.float32), ["case 1 ", "dtype", "int64"]),
    (lambda p, g, lab, fg_iou=0.5, bg_iou=0.5: learner_labels(p, g, lab), ["case 7 ", "ignored (-1)"]),
    (in_place, ["in place"]),
    (not_written, ["not written yet"]),
])
def test_check_proposal_labels_rejects_mistakes(wrong, words):
    with pytest.raises(ExerciseError) as info:
        check_proposal_labels(wrong)
    message = str(info.value)
    assert all(w in message for w in words), message


def learner_postprocess(logits, deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
                        detections_per_image=100):
    """Written from the lesson's recipe, with torchvision's ops."""
    k = logits.shape[1]
    boxes = BoxCoder((10.0, 10.0, 5.0, 5.0)).decode(deltas, proposals)
    boxes = torchvision.ops.clip_boxes_to_image(boxes, image_size)[:, 1:].reshape(-1, 4)
    scores = F.softmax(logits, dim=1)[:, 1:].reshape(-1)
    labels = torch.arange(1, k).repeat(len(logits))
    keep = scores > score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = torchvision.ops.remove_small_boxes(boxes, 1e-2)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = torchvision.ops.batched_nms(boxes, scores, labels, nms_threshold)[:detections_per_image]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


@pytest.mark.parametrize("fn", [reference_postprocess, tv_postprocess, learner_postprocess, _variant],
                         ids=["minifrcnn", "torchvision", "learner", "variant-without-mistake"])
def test_check_postprocess_accepts_correct(fn):
    assert check_postprocess(fn) == 8


def without_small_box_removal(logits, deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
                              detections_per_image=100):
    boxes = clip_boxes_to_image(BoxCoder((10.0, 10.0, 5.0, 5.0)).decode(deltas, proposals), image_size)
    scores = F.softmax(logits, -1)
    labels = torch.arange(logits.shape[1]).expand_as(scores)
    boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
    keep = scores > score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, nms_threshold)[:detections_per_image]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def as_tuple(*args, **kwargs):
    d = reference_postprocess(*args, **kwargs)
    return d["boxes"], d["scores"], d["labels"]


def fixed_thresholds(logits, deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
                     detections_per_image=100):
    return reference_postprocess(logits, deltas, proposals, image_size)


@pytest.mark.parametrize("wrong, words", [
    (lambda *a, **k: _variant(*a, **k, argmax=True), ["case 1 ", "only each proposal's best class"]),
    (lambda *a, **k: _variant(*a, **k, agnostic=True), ["NMS within each class"]),
    (lambda *a, **k: _variant(*a, **k, clip=False), ["clip_boxes_to_image"]),
    (lambda *a, **k: _variant(*a, **k, weights=(1.0, 1.0, 1.0, 1.0)), ["case 1 ", "BoxCoder((10, 10, 5, 5))"]),
    (lambda *a, **k: _variant(*a, **k, sigmoid=True), ["not a sigmoid"]),
    (lambda *a, **k: _variant(*a, **k, label_offset=-1), ["off by one"]),
    (without_small_box_removal, ["case 5 ", "you return 4 detections, expected 2", "remove_small_boxes"]),
    (fixed_thresholds, ["case 6 ", "detections_per_image"]),
    (as_tuple, ["dict with keys"]),
])
def test_check_postprocess_rejects_mistakes(wrong, words):
    with pytest.raises(ExerciseError) as info:
        check_postprocess(wrong)
    message = str(info.value)
    assert all(w in message for w in words), message


def test_check_postprocess_rejects_in_place_changes():
    def softmax_in_place(logits, deltas, proposals, image_size, **kwargs):
        out = reference_postprocess(logits, deltas, proposals, image_size, **kwargs)
        logits.sub_(logits.max())
        return out

    with pytest.raises(ExerciseError, match="in place"):
        check_postprocess(softmax_in_place)


def test_symptoms_are_specific():
    """Each mistake matches its own variant only on the cases that tell them apart: the
    unchanged variant is the reference itself."""
    from minifrcnn.course.exercises.head import postprocess_cases
    for case in postprocess_cases():
        expected = reference_postprocess(*case.args, **case.kwargs)
        got = _variant(*case.args, **case.kwargs)
        for key in expected:
            assert torch.equal(got[key], expected[key]), (case.name, key)


# ----------------------------------------------------------------------------- the head's loss

def tv_head_loss(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    assert beta == 1 / 9, "torchvision's fastrcnn_loss has beta 1/9"
    return fastrcnn_loss(class_logits, box_deltas, [labels], [regression_targets])


def _own_box(deltas, labels, fg):
    return deltas.reshape(len(deltas), -1, 4)[fg, labels[fg]]


def loss_per_foreground(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    fg = torch.where(labels > 0)[0]
    box = F.smooth_l1_loss(_own_box(box_deltas, labels, fg), regression_targets[fg], beta=beta, reduction="sum")
    return F.cross_entropy(class_logits, labels), box / max(1, len(fg))


def loss_mean_over_coordinates(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    fg = torch.where(labels > 0)[0]
    return F.cross_entropy(class_logits, labels), F.smooth_l1_loss(
        _own_box(box_deltas, labels, fg), regression_targets[fg], beta=beta)


def loss_with_background(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    everyone = box_deltas.reshape(len(box_deltas), -1, 4)[torch.arange(len(labels)), labels]
    return F.cross_entropy(class_logits, labels), F.smooth_l1_loss(
        everyone, regression_targets, beta=beta, reduction="sum") / len(labels)


def loss_ignoring_beta(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    return head_loss(class_logits, box_deltas, labels, regression_targets)


def test_the_head_loss_checker_passes_ours_and_names_the_usual_mistakes():
    assert check_head_loss(head_loss) == 6
    with pytest.raises(ExerciseError, match="case 5"):  # torchvision's has no beta: it fails only Fast R-CNN's case
        check_head_loss(tv_head_loss)
    for fn, says in ((loss_per_foreground, "divided by the number of foreground RoIs"),
                     (loss_mean_over_coordinates, "a mean over the coordinates"),
                     (loss_with_background, "background RoIs are in the box loss"),
                     (loss_ignoring_beta, "beta is not passed on")):
        with pytest.raises(ExerciseError, match=says):
            check_head_loss(fn)
