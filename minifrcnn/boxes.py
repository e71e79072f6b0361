"""Boxes: conversions, areas, IoU, clipping and the box coder.

Every box in minifrcnn is a row ``(x1, y1, x2, y2)`` in pixels ("xyxy"), with
``x1 <= x2`` and ``y1 <= y2``, no "+1" (a box from 0 to 10 is 10 pixels wide, as in
torchvision; the original Caffe code added 1). A set of boxes is a float tensor of
shape ``(R, 4)``.

Paper: Ren et al., Faster R-CNN, NIPS 2015, section 3.1.2 (box parameterisation,
equation 2). Reference implementation: ``torchvision.ops.boxes`` and
``torchvision.models.detection._utils.BoxCoder``; ``tests/test_boxes.py`` checks every
function here against them.
"""
import math

import torch

# Largest log-scale change a decoded box may make (torchvision's value): exp(4.135) ~ 62.5,
# so a box can grow at most 62.5x from its anchor and exp() never overflows to inf.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
# The box coders' weights (section 3.1.2's parameterisation, scaled): the RPN regresses raw
# anchor deltas; the head's targets are divided by (0.1, 0.1, 0.2, 0.2), i.e. multiplied by
# these weights, as in the paper's released code and torchvision.
RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
HEAD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def check_boxes(boxes, name="boxes", allow_degenerate=True):
    """Raise a ``ValueError`` that names the problem if ``boxes`` is not a valid box set.

    Args:
        boxes (Tensor): expected shape ``(R, 4)``, floating point, xyxy.
        name (str): what to call the boxes in the message.
        allow_degenerate (bool): if False, zero-area boxes (``x2 == x1`` or ``y2 == y1``)
            are an error too. Inverted boxes (``x2 < x1``) are always an error.
    """
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (R, 4), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name} must be floating point (e.g. float32), got {boxes.dtype}")
    if not torch.isfinite(boxes).all():
        bad = (~torch.isfinite(boxes)).any(dim=1).nonzero()[0, 0].item()
        raise ValueError(f"{name}[{bad}] = {boxes[bad].tolist()} is not finite")
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    bad = (widths < 0) | (heights < 0) if allow_degenerate else (widths <= 0) | (heights <= 0)
    if bad.any():
        i = bad.nonzero()[0, 0].item()
        kind = "inverted (x2 < x1 or y2 < y1)" if (widths[i] < 0 or heights[i] < 0) else "zero-area"
        raise ValueError(f"{name}[{i}] = {boxes[i].tolist()} is {kind}; boxes are (x1, y1, x2, y2)")


def xyxy_to_cxcywh(boxes):
    """``(x1, y1, x2, y2)`` -> ``(cx, cy, w, h)``. Shape ``(..., 4)`` in and out."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes):
    """``(cx, cy, w, h)`` -> ``(x1, y1, x2, y2)``. Shape ``(..., 4)`` in and out."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def box_area(boxes):
    """Areas of ``boxes`` ``(R, 4)`` -> ``(R,)``."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2):
    """Pairwise intersection over union.

    Args:
        boxes1 (Tensor): ``(N, 4)`` xyxy.
        boxes2 (Tensor): ``(M, 4)`` xyxy.

    Returns:
        Tensor: ``(N, M)``, ``iou[i, j] = |b1_i & b2_j| / |b1_i | b2_j|``.

    Equal to ``torchvision.ops.box_iou`` except for one case: two zero-area boxes have
    an empty union, where torchvision returns NaN (0 / 0) and we return 0. A NaN would
    silently make ``iou.max()`` NaN and poison anchor labelling.
    """
    area1, area2 = box_area(boxes1), box_area(boxes2)
    # Intersection rectangle of every pair, by broadcasting (N, 1, 2) against (M, 2).
    top_left = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (bottom_right - top_left).clamp(min=0)  # no overlap -> width or height 0
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2 - inter
    return torch.where(union > 0, inter / union, torch.zeros_like(inter))


def clip_boxes_to_image(boxes, image_size):
    """Clip ``boxes`` ``(..., 4)`` to an image of ``image_size = (height, width)``.

    A box fully outside the image becomes a zero-area box on the border; remove it with
    :func:`remove_small_boxes`.
    """
    height, width = image_size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def remove_small_boxes(boxes, min_size):
    """Indices ``(K,)`` of the boxes whose width and height are both ``>= min_size``."""
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]


def _centres_and_sizes(boxes):
    """``(R, 4)`` xyxy -> ``(cx, cy, w, h)`` columns, computed as ``x1 + w / 2``.

    Same maths as :func:`xyxy_to_cxcywh`, in the operation order torchvision's BoxCoder
    uses, so that our deltas are bit-for-bit equal to its deltas.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


class BoxCoder:
    """Encode boxes as deltas ``(tx, ty, tw, th)`` relative to reference boxes, and back.

    Paper, equation 2 (with ``a`` the anchor or proposal, ``*`` the target box)::

        tx = (x* - xa) / wa      ty = (y* - ya) / ha
        tw = log(w* / wa)        th = log(h* / ha)

    where ``x, y`` are box centres. Each delta is then multiplied by a weight: the RPN
    uses ``(1, 1, 1, 1)``, the Fast R-CNN head ``(10, 10, 5, 5)``, i.e. the original
    code's division of the targets by their standard deviations (0.1, 0.1, 0.2, 0.2), so
    that the four regression targets have a similar, unit-ish scale.

    Args:
        weights (tuple of 4 floats): ``(wx, wy, ww, wh)``.
        bbox_xform_clip (float): upper clamp of ``tw, th`` when decoding (log scale).
    """

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=BBOX_XFORM_CLIP):
        if len(weights) != 4:
            raise ValueError(f"weights must have 4 values (wx, wy, ww, wh), got {weights}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, targets, references):
        """Deltas that move each reference box onto its target box.

        Args:
            targets (Tensor): ``(R, 4)`` target (e.g. ground-truth) boxes, xyxy.
            references (Tensor): ``(R, 4)`` anchors or proposals, xyxy, positive size.

        Returns:
            Tensor: ``(R, 4)`` deltas ``(tx, ty, tw, th)``, weighted.
        """
        if targets.shape != references.shape:
            raise ValueError(f"targets {tuple(targets.shape)} and references "
                             f"{tuple(references.shape)} must have the same shape (R, 4)")
        wx, wy, ww, wh = self.weights
        ref_x, ref_y, ref_w, ref_h = _centres_and_sizes(references)
        tgt_x, tgt_y, tgt_w, tgt_h = _centres_and_sizes(targets)
        dx = wx * (tgt_x - ref_x) / ref_w
        dy = wy * (tgt_y - ref_y) / ref_h
        dw = ww * torch.log(tgt_w / ref_w)
        dh = wh * torch.log(tgt_h / ref_h)
        return torch.stack((dx, dy, dw, dh), dim=1)

    def decode(self, deltas, references):
        """Apply deltas to reference boxes (the inverse of :meth:`encode`).

        Args:
            deltas (Tensor): ``(R, 4 * C)``: one set of 4 deltas per class (``C = 1``
                for the RPN; the Fast R-CNN head predicts one box per class).
            references (Tensor): ``(R, 4)`` anchors or proposals, xyxy.

        Returns:
            Tensor: ``(R, C, 4)`` decoded boxes, xyxy.
        """
        if deltas.dim() != 2 or deltas.shape[1] % 4 != 0 or deltas.shape[0] != references.shape[0]:
            raise ValueError(f"deltas must have shape (R, 4*C) with R = {references.shape[0]} "
                             f"references, got {tuple(deltas.shape)}")
        references = references.to(deltas.dtype)
        wx, wy, ww, wh = self.weights
        ref_x, ref_y, ref_w, ref_h = (v[:, None] for v in _centres_and_sizes(references))
        d = deltas.reshape(deltas.shape[0], deltas.shape[1] // 4, 4)  # (R, C, 4)
        cx = d[..., 0] / wx * ref_w + ref_x
        cy = d[..., 1] / wy * ref_h + ref_y
        # Clamp on the log scale so that exp() stays finite even for wild early predictions.
        w = torch.exp((d[..., 2] / ww).clamp(max=self.bbox_xform_clip)) * ref_w
        h = torch.exp((d[..., 3] / wh).clamp(max=self.bbox_xform_clip)) * ref_h
        return cxcywh_to_xyxy(torch.stack((cx, cy, w, h), dim=-1))
