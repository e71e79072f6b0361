"""The paper's one-stage baseline (section 4.1, "one-stage detection vs. two-stage
proposal + detection"; table 10 of the TPAMI version): the detector that lesson 11 compares
Faster R-CNN with. Built from the same parts as :class:`minifrcnn.detector.FasterRCNN`
(its image preparation, backbone, anchors, matcher, sampler, box coder and the Fast R-CNN
head's post-processing), with one dense head in place of the RPN, the RoI op and the head.
"""
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
from torch import nn

from .anchors import AnchorGenerator
from .boxes import RPN_BOX_WEIGHTS, BoxCoder
from .detector import DetectorConfig, ImagePreparation, make_backbone, prepare_inputs
from .head import HeadSettings, assign_targets, postprocess
from .matching import BalancedSampler, Matcher


class DenseHead(nn.Module):
    """The RPN's head with classes: a 3x3 conv, then per anchor ``K`` class logits
    (background included) and ``4K`` class-specific box deltas.

    Shapes: ``(N, C, H, W)`` -> ``(N, k*K, H, W)`` and ``(N, 4*k*K, H, W)``.
    """

    def __init__(self, in_channels, num_anchors, num_classes):
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * num_classes * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):  # as the RPN head (section 3.1.3)
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, features):
        """Returns ``(N, A, K)`` logits and ``(N, A, 4K)`` deltas, anchors in the RPN's order."""
        hidden = F.relu(self.conv(features))
        logits, deltas = self.cls_logits(hidden), self.bbox_pred(hidden)
        n, _, h, w = features.shape
        k, classes = self.num_anchors, self.num_classes
        logits = logits.view(n, k, classes, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * k, classes)
        deltas = deltas.view(n, k, classes * 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * k, classes * 4)
        return logits, deltas


class OneStageDetector(nn.Module):
    """The paper's one-stage baseline (section 4.1, "one-stage detection vs. two-stage
    proposal + detection"): the sliding-window head classifies every anchor into the
    ``K`` classes directly and regresses a box per class; its outputs, post-processed as
    the Fast R-CNN head's (score > 0.05, per-class NMS, top 100), are the detections.
    There is no second stage and no RoI op.

    The paper's version is Fast R-CNN run on dense sliding windows (3 scales x 3 ratios,
    RoI-pooled features); this one is an RPN with classes (as OverFeat or, later, SSD), on
    the same backbone and anchors. Its anchors are labelled and sampled by **Fast R-CNN's**
    rule, as the paper's dense windows are: foreground at IoU >= ``box_fg_iou_thresh`` (0.5) with
    the object's class (and the best anchor of each object), background below
    ``box_bg_iou_thresh``, ``box_batch_size_per_image`` anchors an image with up to ``box_positive_fraction``
    foreground. (The RPN's rule, 0.7 / 0.3 and 256 anchors, leaves about one foreground
    anchor in 30, so each digit class is 0.3 % of the samples: trained that way for the
    course's budget the classifier never rose above "background", 0.08 mAP@0.5.)
    Same call as :class:`minifrcnn.detector.FasterRCNN`.
    """

    def __init__(self, config=None):
        super().__init__()
        self.config = config = config or DetectorConfig.course()
        self.transform = ImagePreparation(config)
        self.backbone = make_backbone(config)
        self.anchor_generator = AnchorGenerator(config.anchor_sizes, config.aspect_ratios)
        self.head = DenseHead(self.backbone.out_channels, self.anchor_generator.num_anchors_per_location,
                              config.num_classes)
        self.matcher = Matcher(config.box_fg_iou_thresh, config.box_bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(config.box_batch_size_per_image, config.box_positive_fraction)
        self.box_coder = BoxCoder(RPN_BOX_WEIGHTS)
        self.settings = replace(HeadSettings(), **{k: v for k, v in asdict(config.head_settings()).items()
                                                   if k in ("score_thresh", "nms_thresh", "detections_per_img")})

    def anchor_labels(self, anchors, boxes, labels):
        """``(A,)`` int64 class of each anchor (0 background, -1 ignored) and ``(A, 4)``
        matched ground-truth boxes."""
        return assign_targets(anchors, boxes, labels, self.matcher)  # the head's rule, on anchors

    def loss(self, anchors, logits, deltas, targets):
        """Cross-entropy over the sampled anchors and smooth L1 (beta 1/9) on the true
        class's box of the sampled foreground, divided by the number sampled (as the RPN)."""
        all_classes, all_targets, all_sampled = [], [], []
        for t in targets:
            classes, matched = self.anchor_labels(anchors, t["boxes"], t["labels"])
            positive, negative = self.sampler(classes)
            all_classes.append(classes)
            all_targets.append(self.box_coder.encode(matched, anchors))
            all_sampled.append(positive | negative)
        classes, box_targets = torch.stack(all_classes), torch.stack(all_targets)
        sampled = torch.stack(all_sampled)
        loss_classifier = F.cross_entropy(logits[sampled], classes[sampled])
        foreground = sampled & (classes > 0)
        fg_deltas = deltas[foreground].reshape(-1, self.config.num_classes, 4)
        fg_deltas = fg_deltas[torch.arange(len(fg_deltas)), classes[foreground]]
        loss_box = F.smooth_l1_loss(fg_deltas, box_targets[foreground], beta=1 / 9,
                                    reduction="sum") / max(1, int(sampled.sum()))
        return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box}

    def forward(self, images, targets=None):
        batch, targets, original_sizes = prepare_inputs(self, images, targets)
        features = self.backbone(batch.tensors)
        logits, deltas = self.head(features)
        anchors = self.anchor_generator(tuple(batch.tensors.shape[-2:]), tuple(features.shape[-2:]),
                                        dtype=features.dtype, device=features.device)
        if self.training:
            return self.loss(anchors, logits, deltas, targets)
        detections = []
        top_n = min(self.config.rpn_pre_nms_top_n_test, len(anchors))
        for image_logits, image_deltas, size in zip(logits, deltas, batch.image_sizes):
            # Post-process only the anchors most likely to be an object (as the RPN's
            # pre-NMS top-n): the same detections, at a tenth of the cost.
            foreground = 1 - F.softmax(image_logits, -1)[:, 0]
            idx = foreground.topk(top_n).indices
            detections.append(postprocess(image_logits[idx], image_deltas[idx], anchors[idx], size,
                                          self.box_coder, self.settings))
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)
