"""The Fast R-CNN detection head: targets for the proposals, the box head, the losses and
the post-processing into detections.

Paper: Faster R-CNN section 3.2 (the detector is Fast R-CNN, Girshick 2015, sections
2.3 and 3.1) and its hyper-parameters (section 3.3 and Fast R-CNN section 2.3): proposals with IoU >= 0.5 to a ground
truth are foreground, below 0.5 background; 128 RoIs per image, 25 % foreground;
class-specific box targets encoded with weights (10, 10, 5, 5); at test time scores > 0.05,
per-class NMS, at most 100 detections per image.

The parts reuse the RPN's: ``Matcher`` and ``BalancedSampler`` (other settings), the same
``BoxCoder`` (other weights). Reference: torchvision's ``RoIHeads``
(``models/detection/roi_heads.py``); ``tests/test_head.py`` checks equality with it.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .boxes import HEAD_BOX_WEIGHTS, BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from .matching import BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS, BalancedSampler, Matcher
from .nms import batched_nms


@dataclass
class HeadSettings:
    """The head's hyper-parameters (paper value; torchvision's where it differs)."""

    fg_iou_thresh: float = 0.5  # foreground if IoU >= 0.5
    bg_iou_thresh: float = 0.5  # background if IoU < 0.5 (the original code also dropped < 0.1)
    batch_size_per_image: int = 128  # RoIs per image (torchvision: 512)
    positive_fraction: float = 0.25
    bbox_reg_weights: tuple = HEAD_BOX_WEIGHTS  # = dividing targets by (0.1, 0.1, 0.2, 0.2)
    score_thresh: float = 0.05
    nms_thresh: float = 0.3  # the paper's per-class NMS (torchvision: 0.5)
    detections_per_img: int = 100
    min_box_size: float = 1e-2  # drop decoded boxes thinner than this (pixels)


class BoxHead(nn.Module):
    """Two fully connected layers on the flattened pooled features (``TwoMLPHead``).

    Args:
        in_features (int): ``C * P * P`` of the pooled features ``(R, C, P, P)``.
        hidden (int): width of both layers (VGG-16: 4096; the course: 256 or so).
    """

    def __init__(self, in_features, hidden):
        super().__init__()
        self.fc6 = nn.Linear(in_features, hidden)
        self.fc7 = nn.Linear(hidden, hidden)

    def forward(self, pooled):
        """``(R, C, P, P)`` pooled features -> ``(R, hidden)``."""
        x = pooled.flatten(start_dim=1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


class Predictor(nn.Module):
    """Class scores and one box per class (``FastRCNNPredictor``).

    Returns ``(R, K)`` class logits (``K`` classes including background 0) and ``(R, 4K)``
    box deltas: the box for class ``c`` is columns ``4c .. 4c+3``.
    """

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        # Fast R-CNN's initialisation: near-zero outputs at the start (uniform class
        # scores, proposals kept as they are), so that a model trained from scratch does
        # not start with wild boxes.
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x):
        return self.cls_score(x), self.bbox_pred(x)


def assign_targets(proposals, gt_boxes, gt_labels, matcher):
    """Class label and matched ground-truth box of every proposal of one image.

    Args:
        proposals (Tensor): ``(R, 4)``.
        gt_boxes (Tensor): ``(G, 4)``; gt_labels (Tensor): ``(G,)`` int64, 1..K-1.

    Returns:
        (Tensor, Tensor): labels ``(R,)`` int64 (class, 0 background, -1 ignored) and the
        matched ground-truth boxes ``(R, 4)`` (any box for background; it gets no box loss).
    """
    if gt_boxes.numel() == 0:  # an image with no objects: every proposal is background
        # Each proposal is "matched" to itself: a zero target, never used by the box loss.
        return torch.zeros(len(proposals), dtype=torch.int64, device=proposals.device), proposals
    matches = matcher(box_iou(gt_boxes, proposals))
    labels = gt_labels[matches.clamp(min=0)].to(torch.int64)
    labels[matches == BELOW_LOW_THRESHOLD] = 0
    labels[matches == BETWEEN_THRESHOLDS] = -1
    return labels, gt_boxes[matches.clamp(min=0)]


def sample_proposals(proposals, gt_boxes, gt_labels, matcher, sampler, box_coder):
    """The RoIs one image trains the head on, with their labels and box targets.

    The ground-truth boxes are appended to the proposals first: early in training the
    RPN proposes little of value, and the true boxes guarantee some foreground RoIs.

    Returns:
        (Tensor, Tensor, Tensor): sampled RoIs ``(S, 4)``, their labels ``(S,)`` and
        regression targets ``(S, 4)`` (meaningful where the label is > 0). If the
        proposals carry a gradient (non-approximate joint training) the RoIs keep it; the
        labels and targets never do.
    """
    proposals = torch.cat((proposals, gt_boxes.to(proposals.dtype)))
    # Matching, sampling and the regression targets see the proposals as fixed boxes. In
    # non-approximate joint training the gradient reaches the proposal coordinates only
    # through the features the RoI warp samples at them; a gradient through the targets
    # would let the loss shrink by moving a proposal onto whatever box the head already
    # predicts, instead of onto the object.
    fixed = proposals.detach()
    labels, matched_boxes = assign_targets(fixed, gt_boxes, gt_labels, matcher)
    positive, negative = sampler(labels)
    keep = torch.where(positive | negative)[0]  # in proposal order, as torchvision
    return proposals[keep], labels[keep], box_coder.encode(matched_boxes[keep], fixed[keep])


def head_loss(class_logits, box_deltas, labels, regression_targets, beta=1 / 9):
    """Fast R-CNN multi-task loss (Fast R-CNN, eq. 1), normalised as torchvision does.

    Args:
        class_logits (Tensor): ``(S, K)``; box_deltas (Tensor): ``(S, 4K)``.
        labels (Tensor): ``(S,)`` int64; regression_targets (Tensor): ``(S, 4)``.
        beta (float): the smooth-L1 loss's transition point: torchvision's 1/9 (Fast R-CNN's
            equation 3: 1).

    Returns:
        (Tensor, Tensor): cross-entropy over all sampled RoIs, and the smooth-L1 loss
        (beta = 1/9) of the ground-truth class's box on the foreground RoIs, summed and
        divided by the number of sampled RoIs (so background RoIs dilute it, as in
        torchvision; Fast R-CNN averaged over the same set).
    """
    classification = F.cross_entropy(class_logits, labels)
    foreground = torch.where(labels > 0)[0]
    deltas = box_deltas.reshape(len(box_deltas), -1, 4)[foreground, labels[foreground]]
    box_loss = F.smooth_l1_loss(deltas, regression_targets[foreground], beta=beta, reduction="sum")
    return classification, box_loss / labels.numel()


def postprocess(class_logits, box_deltas, proposals, image_size, box_coder, settings):
    """Detections of one image from the head's outputs on its proposals.

    Decode one box per class, clip to the image, drop the background column, keep scores
    above the threshold, drop tiny boxes, NMS per class, keep the best
    ``detections_per_image``.

    Args:
        class_logits (Tensor): ``(R, K)``; box_deltas (Tensor): ``(R, 4K)``.
        proposals (Tensor): ``(R, 4)``; image_size (tuple): ``(h, w)``.

    Returns:
        dict: ``"boxes"`` ``(D, 4)``, ``"scores"`` ``(D,)``, ``"labels"`` ``(D,)`` int64.
    """
    num_classes = class_logits.shape[-1]
    boxes = clip_boxes_to_image(box_coder.decode(box_deltas, proposals), image_size)  # (R, K, 4)
    scores = F.softmax(class_logits, -1)
    labels = torch.arange(num_classes, device=scores.device).expand_as(scores)
    # One candidate per (proposal, non-background class).
    boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
    return select_detections(boxes, scores, labels, settings)


def select_detections(boxes, scores, labels, settings):
    """The last steps of :func:`postprocess` on flat candidates ``(D, 4)``, ``(D,)``, ``(D,)``:
    scores above the threshold, no tiny boxes, NMS per class, the best ``detections_per_image``
    (lesson 09's explorer replays them with other thresholds)."""
    keep = torch.where(scores > settings.score_thresh)[0]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = remove_small_boxes(boxes, settings.min_box_size)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, settings.nms_thresh, max_kept=settings.detections_per_img)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


class DetectionHead(nn.Module):
    """RoI features -> box head -> class scores and boxes; targets and losses in training.

    Args:
        roi_op (callable): ``roi_op(features (N, C, H, W), rois list of (R_i, 4)) ->
            (sum R_i, C, P, P)``: RoI pooling, Align or warp (``minifrcnn.roi_ops.RoIOp``).
        in_features (int): ``C * P * P``.
        hidden (int): width of the box head.
        num_classes (int): including background.
        settings (HeadSettings): hyper-parameters.
    """

    def __init__(self, roi_op, in_features, hidden, num_classes, settings=None):
        super().__init__()
        self.roi_op = roi_op
        self.box_head = BoxHead(in_features, hidden)
        self.box_predictor = Predictor(hidden, num_classes)
        self.settings = settings or HeadSettings()
        s = self.settings
        self.matcher = Matcher(s.fg_iou_thresh, s.bg_iou_thresh, allow_low_quality_matches=False)
        self.sampler = BalancedSampler(s.batch_size_per_image, s.positive_fraction)
        self.box_coder = BoxCoder(s.bbox_reg_weights)

    def predict(self, features, rois):
        """RoI features -> box head -> ``(class logits (R, K), box deltas (R, 4K))`` for
        the RoIs of all images (``rois``: a list of ``(R_i, 4)``), before any loss or
        post-processing."""
        return self.box_predictor(self.box_head(self.roi_op(features, rois)))

    def forward(self, features, proposals, image_sizes, targets=None):
        """Args:
            features (Tensor): ``(N, C, H, W)``.
            proposals (list of Tensor): ``(R_i, 4)`` per image: fixed boxes (approximate
                joint training), or boxes with a gradient that the RoI op passes on if it is
                differentiable in them (non-approximate: ``RoIOp("warp")``; lesson 10).
            image_sizes (list of tuple): ``(h, w)`` per image.
            targets (list of dict): ``{"boxes", "labels"}`` per image, in training.

        Returns:
            (list of dict, dict): detections per image (eval), losses (train).
        """
        if self.training:
            if targets is None:
                raise ValueError("the head needs targets in training mode")
            samples = [sample_proposals(p, t["boxes"], t["labels"], self.matcher, self.sampler, self.box_coder)
                       for p, t in zip(proposals, targets)]
            proposals = [rois for rois, _, _ in samples]
        logits, deltas = self.predict(features, proposals)
        if self.training:
            labels = torch.cat([labels for _, labels, _ in samples])
            regression_targets = torch.cat([t for _, _, t in samples])
            classification, box_loss = head_loss(logits, deltas, labels, regression_targets)
            return [], {"loss_classifier": classification, "loss_box_reg": box_loss}
        counts = [len(p) for p in proposals]
        return [postprocess(lo, de, p, size, self.box_coder, self.settings)
                for lo, de, p, size in zip(logits.split(counts), deltas.split(counts), proposals, image_sizes)], {}
