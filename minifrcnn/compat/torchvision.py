"""The bridge to torchvision's detector: the reference every part of minifrcnn is checked against.

* :func:`torchvision_twin`: torchvision's ``FasterRCNN`` built with the same configuration as
  a :class:`minifrcnn.detector.FasterRCNN` (one feature map, the same anchors, RoI Align, head
  and settings), with its own fresh weights.
* :func:`load_torchvision_weights`: a twin's weights into our detector (the parameter names
  differ in two places only), so that both detectors can be run on the same weights.

The course's detector never imports this module; the tests, lessons 09-10 and
``benchmarks/bench_detector.py`` do.
"""
import copy

from torchvision.models.detection import FasterRCNN as TvFasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchors
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RPNHead as TvRPNHead
from torchvision.ops import MultiScaleRoIAlign

__all__ = ["torchvision_twin", "load_torchvision_weights", "export_torchvision_weights"]


def torchvision_twin(model):
    """A torchvision ``FasterRCNN`` with the same configuration as ``model`` (one feature
    map, the same anchors, RoI Align or pooling, head and settings) and its own, freshly
    initialised weights. Used to check this module against the reference."""
    c = model.config
    if c.roi_op != "align":
        raise ValueError("torchvision's FasterRCNN pools with RoI Align only")
    if c.rpn_box_loss_weight != 1.0 or c.joint_training != "approximate":
        raise ValueError("torchvision's FasterRCNN has no RPN box-loss weight and trains by approximate joint "
                         f"training only (got rpn_box_loss_weight={c.rpn_box_loss_weight}, "
                         f"joint_training={c.joint_training!r})")
    backbone = copy.deepcopy(model.backbone)
    channels = backbone.out_channels
    return TvFasterRCNN(
        backbone, num_classes=None, min_size=c.min_size, max_size=c.max_size, image_mean=list(c.image_mean),
        image_std=list(c.image_std),
        rpn_anchor_generator=TvAnchors((tuple(c.anchor_sizes),), (tuple(c.aspect_ratios),)),
        rpn_head=TvRPNHead(channels, len(c.anchor_sizes) * len(c.aspect_ratios)),
        rpn_pre_nms_top_n_train=c.rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test=c.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_train=c.rpn_post_nms_top_n_train, rpn_post_nms_top_n_test=c.rpn_post_nms_top_n_test,
        rpn_nms_thresh=c.rpn_nms_thresh, rpn_fg_iou_thresh=c.rpn_fg_iou_thresh, rpn_bg_iou_thresh=c.rpn_bg_iou_thresh,
        rpn_batch_size_per_image=c.rpn_batch_size_per_image, rpn_positive_fraction=c.rpn_positive_fraction,
        box_roi_pool=MultiScaleRoIAlign(["0"], c.roi_output_size, c.roi_sampling_ratio),
        box_head=TwoMLPHead(channels * c.roi_output_size ** 2, c.head_hidden),
        box_predictor=FastRCNNPredictor(c.head_hidden, c.num_classes),
        box_score_thresh=c.box_score_thresh, box_nms_thresh=c.box_nms_thresh,
        box_detections_per_img=c.box_detections_per_img, box_fg_iou_thresh=c.box_fg_iou_thresh,
        box_bg_iou_thresh=c.box_bg_iou_thresh, box_batch_size_per_image=c.box_batch_size_per_image,
        box_positive_fraction=c.box_positive_fraction, bbox_reg_weights=c.bbox_reg_weights)


# The state-dict names differ in two places only: torchvision's RPN head wraps its 3x3 conv in
# ``conv.0.0`` and its detection head is ``roi_heads``. (torchvision's prefix, ours)
_TORCHVISION_NAMES = (("rpn.head.conv.0.0.", "rpn.head.conv."), ("roi_heads.", "head."))


def _renamed(state, renames):
    """``state`` with each key's prefix ``old`` replaced by ``new``, for ``(old, new)`` in ``renames``."""
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old):]
        out[key] = value
    return out


def load_torchvision_weights(model, tv_model):
    """Copy the weights of a torchvision ``FasterRCNN`` of the same configuration (see
    :func:`torchvision_twin`) into ``model``; returns ``model``."""
    model.load_state_dict(_renamed(tv_model.state_dict(), _TORCHVISION_NAMES))
    return model


def export_torchvision_weights(model, tv_model):
    """The reverse of :func:`load_torchvision_weights`: copy ``model``'s weights into the
    torchvision ``FasterRCNN`` ``tv_model`` of the same configuration; returns ``tv_model``."""
    tv_model.load_state_dict(_renamed(model.state_dict(), [(new, old) for old, new in _TORCHVISION_NAMES]))
    return tv_model
