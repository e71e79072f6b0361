"""Lessons 04-05 checkers accept a correct head-output layout, NMS and proposal filtering (ours and torchvision's)
and reject the usual mistakes with a message that names them."""
import pytest
import torch
import torchvision.ops as tv_ops

from minifrcnn.boxes import box_iou, clip_boxes_to_image, remove_small_boxes
from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.rpn import check_filter_proposals, check_flatten, check_nms, reference_filter_proposals
from minifrcnn.nms import nms, nms_loop
from minifrcnn.rpn import flatten_head_outputs


def greedy(boxes, scores, t, compare=lambda iou, t: iou > t, stable=True, by_index=False, fast=False):
    order = torch.sort(scores, descending=True, stable=stable).indices
    iou = box_iou(boxes, boxes)
    keep, removed = [], torch.zeros(len(scores), dtype=torch.bool)
    for pos, i in enumerate(order.tolist()):
        if removed[i] and not fast:
            continue
        if fast and any(compare(iou[j, i], t) for j in order[:pos].tolist()):
            continue  # "Fast NMS": suppressed by any higher box, kept or not
        keep.append(i)
        removed |= compare(iou[i], t)
    keep = torch.tensor(keep, dtype=torch.int64)
    return keep.sort().values if by_index else keep


@pytest.mark.parametrize("fn", [nms, nms_loop, tv_ops.nms, greedy], ids=["nms", "nms_loop", "torchvision", "greedy"])
def test_check_nms_accepts_correct(fn):
    assert check_nms(fn) == 10


@pytest.mark.parametrize("wrong, message", [
    (lambda b, s, t: greedy(b, s, t, compare=lambda iou, t: iou >= t), "not >="),
    (lambda b, s, t: greedy(b, s, t, fast=True), "itself suppressed"),
    (lambda b, s, t: greedy(b, s, t, by_index=True), "wrong order"),
    (lambda b, s, t: greedy(b, s, t, stable=False), "stable=True"),
    (lambda b, s, t: torch.isin(torch.arange(len(s)), nms(b, s, t)), "bool mask"),
    (lambda b, s, t: b[nms(b, s, t)], "1-D tensor"),
    (lambda b, s, t: nms(b, s, t).float(), "int64"),
    (lambda b, s, t: nms(b, s, 0.5), "iou_threshold argument"),
])
def test_check_nms_rejects_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_nms(wrong)


def test_check_nms_not_written():
    def todo(boxes, scores, iou_threshold):
        raise NotImplementedError
    with pytest.raises(ExerciseError, match="not written yet"):
        check_nms(todo)


def test_check_nms_rejects_in_place_changes():
    def sorts_in_place(boxes, scores, t):
        keep = nms(boxes, scores, t)
        scores.zero_()
        return keep
    with pytest.raises(ExerciseError, match="in place"):
        check_nms(sorts_in_place)


def test_check_filter_proposals():
    assert check_filter_proposals(reference_filter_proposals) == 6

    def no_sigmoid(boxes, logits, image_size, pre, post, nms_thresh=0.7, min_size=1e-3):
        b, s = reference_filter_proposals(boxes, logits, image_size, pre, post, nms_thresh, min_size)
        return b, torch.logit(s)

    with pytest.raises(ExerciseError, match="sigmoid"):
        check_filter_proposals(no_sigmoid)

    def no_clip(boxes, logits, image_size, pre, post, nms_thresh=0.7, min_size=1e-3):
        top = logits.topk(min(pre, len(logits))).indices
        b, s = boxes[top], torch.sigmoid(logits[top])
        keep = remove_small_boxes(b, min_size)
        b, s = b[keep], s[keep]
        keep = nms(b, s, nms_thresh)[:post]
        return b[keep], s[keep]

    with pytest.raises(ExerciseError, match="clip"):
        check_filter_proposals(no_clip)

    def nms_before_top_n(boxes, logits, image_size, pre, post, nms_thresh=0.7, min_size=1e-3):
        b, s = clip_boxes_to_image(boxes, image_size), torch.sigmoid(logits)
        keep = remove_small_boxes(b, min_size)
        b, s = b[keep], s[keep]
        keep = nms(b, s, nms_thresh)[:post]
        return b[keep], s[keep]

    with pytest.raises(ExerciseError, match="hint: the order is"):
        check_filter_proposals(nms_before_top_n)


def test_check_flatten_accepts_the_package_and_names_the_two_usual_mistakes():
    assert check_flatten(flatten_head_outputs) == 4

    def channel_major(objectness, deltas):
        n = objectness.shape[0]
        return objectness.reshape(n, -1), flatten_head_outputs(objectness, deltas)[1]

    def wrong_view(objectness, deltas):
        n, k, h, w = objectness.shape
        return (flatten_head_outputs(objectness, deltas)[0],
                deltas.view(n, 4, k, h, w).permute(0, 3, 4, 2, 1).reshape(n, -1, 4))

    with pytest.raises(ExerciseError, match="channel-major"):
        check_flatten(channel_major)
    with pytest.raises(ExerciseError, match=r"view them as \(N, k, 4, H, W\)"):
        check_flatten(wrong_view)
    with pytest.raises(ExerciseError, match="has shape"):
        check_flatten(lambda objectness, deltas: (objectness, deltas))
