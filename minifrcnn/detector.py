"""The complete Faster R-CNN: image preparation, backbone, RPN, RoI op and detection head.

Paper, section 3 and figure 2: one network; the RPN proposes boxes on the shared
feature map, the Fast R-CNN head classifies and refines them. Like torchvision's
``FasterRCNN``, the module returns the four losses in training mode and the detections in
eval mode, and takes a list of ``(3, H, W)`` images in ``[0, 1]``.

All hyper-parameters live in one flat :class:`DetectorConfig`; ``DetectorConfig.paper()``
and ``DetectorConfig.course()`` hold the paper's values and the course's CPU-scale ones,
and :func:`config_table` shows them side by side.
"""
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from .anchors import AnchorGenerator
from .backbone import SmallBackbone, load_backbone_weights, torchvision_backbone
from .boxes import HEAD_BOX_WEIGHTS, check_boxes, clip_boxes_to_image
from .head import DetectionHead, HeadSettings
from .roi_ops import RoIOp
from .rpn import RPN, ImageBatch, ProposalSettings, RPNHead

# The fields' earlier names. The fields now take the keyword names of torchvision's
# ``FasterRCNN`` (``rpn_fg_iou_thresh``, ``box_detections_per_img``, ...), whose weights and
# settings map across; ``rpn_min_box_size`` (torchvision fixes it) says that it is a box's side,
# not an image's (``min_size``). ``DetectorConfig.from_dict`` reads files with the old names.
RENAMED_FIELDS = {"rpn_fg_iou": "rpn_fg_iou_thresh", "rpn_bg_iou": "rpn_bg_iou_thresh",
                  "rpn_batch_size": "rpn_batch_size_per_image", "rpn_nms": "rpn_nms_thresh",
                  "rpn_min_size": "rpn_min_box_size", "box_fg_iou": "box_fg_iou_thresh",
                  "box_bg_iou": "box_bg_iou_thresh", "box_batch_size": "box_batch_size_per_image",
                  "box_weights": "bbox_reg_weights", "box_score_threshold": "box_score_thresh",
                  "box_nms": "box_nms_thresh", "detections_per_image": "box_detections_per_img"}


@dataclass(frozen=True)
class DetectorConfig:
    """Every setting of the detector. Field comments give the paper's value."""

    num_classes: int = 11  # with background; VOC: 21
    # Image preparation
    # The 128 px digit images are enlarged 1.5 times, as the paper enlarges VOC's ~500 px images to 600: the
    # smallest digits then span 2-3 feature-map cells instead of 1-2 (benchmarks/README.md, "The course recipe")
    min_size: int = 192  # shorter side after resizing; paper: 600
    max_size: int = 192  # longer side at most; paper: 1000
    image_mean: tuple = (0.485, 0.456, 0.406)
    image_std: tuple = (0.229, 0.224, 0.225)
    size_divisible: int = 32  # pad the batch to a multiple (torchvision's value)
    # Backbone
    backbone: str = "small"  # "small" (minifrcnn.backbone.SmallBackbone) or a torchvision name; paper: VGG-16
    backbone_channels: tuple = (32, 64, 128)  # SmallBackbone stages (stride 2 ** len)
    backbone_blocks: tuple = (1, 2, 2)
    # Pretrained backbone weights (section 3.1.3: ImageNet): "digits", the course's classifier pretrained on the
    # training digits (data/pretrained/small_backbone.pt, minifrcnn.pretrain; lesson 08), a weights file, or
    # None: random weights (from scratch)
    backbone_weights: str = "digits"
    backbone_frozen_stages: int = 2  # the first stages, fixed while fine-tuning; paper (VGG-16): 2 (conv1, conv2)
    # Anchors and RPN (section 3.1)
    anchor_sizes: tuple = (24, 48, 96)  # 16 / 32 / 64 px of the 128 px images; paper: (128, 256, 512)
    aspect_ratios: tuple = (0.5, 1.0, 2.0)
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n_train: int = 600  # paper: 12000
    rpn_post_nms_top_n_train: int = 300  # paper: 2000 (the head samples 128 RoIs from them)
    rpn_pre_nms_top_n_test: int = 1000  # paper: 6000
    rpn_post_nms_top_n_test: int = 300  # paper: 300
    rpn_nms_thresh: float = 0.7
    rpn_min_box_size: float = 1e-3  # paper: 16 px (at the 600 px scale)
    rpn_box_loss_weight: float = 1.0  # x torchvision's box loss; 1 ~ the paper's lambda = 10 (lesson 11)
    # RoI op (section 3.2; lesson 06)
    roi_op: str = "align"  # paper: "pool"
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    # Training scheme (section 3.2; lesson 10): "approximate" joint training treats the proposals
    # as fixed boxes; "non-approximate" back-propagates through their coordinates (needs roi_op="warp")
    joint_training: str = "approximate"  # paper: approximate (its released code's "end2end")
    # Detection head (Fast R-CNN)
    head_hidden: int = 256  # paper (VGG-16): 4096
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 128  # paper: 128 (64 lost a point or two: benchmarks/README.md)
    box_positive_fraction: float = 0.5  # paper: 0.25 (more foreground RoIs: the digit classes learn faster)
    bbox_reg_weights: tuple = HEAD_BOX_WEIGHTS
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.3
    box_detections_per_img: int = 100

    @classmethod
    def course(cls, **changes):
        """The course's CPU-scale detector for 128x128 digit images."""
        return replace(cls(), **changes)

    @classmethod
    def paper(cls, **changes):
        """The paper's VGG-16 detector on PASCAL VOC (section 4.1). Its ImageNet weights are not shipped
        (nothing is downloaded): pass ``backbone_weights="path/to/vgg16.pth"`` to start from them."""
        return replace(cls(), num_classes=21, min_size=600, max_size=1000, backbone="vgg16",
                       backbone_weights=None, backbone_frozen_stages=2, anchor_sizes=(128, 256, 512),
                       rpn_pre_nms_top_n_train=12000, rpn_post_nms_top_n_train=2000, rpn_pre_nms_top_n_test=6000,
                       rpn_post_nms_top_n_test=300, rpn_min_box_size=16.0, roi_op="pool",
                       head_hidden=4096, box_batch_size_per_image=128, box_positive_fraction=0.25, **changes)

    def proposal_settings(self):
        """The RPN's proposal layer's part of the config (:class:`minifrcnn.rpn.ProposalSettings`)."""
        return ProposalSettings(pre_nms_top_n_train=self.rpn_pre_nms_top_n_train,
                                post_nms_top_n_train=self.rpn_post_nms_top_n_train,
                                pre_nms_top_n_test=self.rpn_pre_nms_top_n_test,
                                post_nms_top_n_test=self.rpn_post_nms_top_n_test,
                                nms_thresh=self.rpn_nms_thresh, min_box_size=self.rpn_min_box_size)

    def head_settings(self):
        """The detection head's part of the config (:class:`minifrcnn.head.HeadSettings`)."""
        return HeadSettings(fg_iou_thresh=self.box_fg_iou_thresh, bg_iou_thresh=self.box_bg_iou_thresh,
                            batch_size_per_image=self.box_batch_size_per_image,
                            positive_fraction=self.box_positive_fraction, bbox_reg_weights=self.bbox_reg_weights,
                            score_thresh=self.box_score_thresh, nms_thresh=self.box_nms_thresh,
                            detections_per_img=self.box_detections_per_img)

    @classmethod
    def from_dict(cls, values):
        """A config from a plain dict (a checkpoint's or a results file's ``asdict``): lists
        become tuples, and fields written under an earlier name (:data:`RENAMED_FIELDS`) are
        renamed, so that files written before the renaming still load."""
        known = {field.name for field in fields(cls)}
        values = {RENAMED_FIELDS.get(k, k): tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DetectorConfig fields {unknown}: a file from another minifrcnn version? "
                             f"The fields are listed by minifrcnn.detector.config_table()")
        return cls(**values)


def config_table(**configs):
    """A text table of configurations side by side (default: paper and course)."""
    configs = configs or {"paper": DetectorConfig.paper(), "course": DetectorConfig.course()}
    lines = [f"{'setting':<26}" + "".join(f"{name:>22}" for name in configs)]
    for field in fields(DetectorConfig):
        values = [str(asdict(c)[field.name]) for c in configs.values()]
        mark = "  " if len(set(values)) == 1 else " *"
        lines.append(f"{field.name:<26}" + "".join(f"{v:>22}" for v in values) + mark)
    return "\n".join(lines)


class ImagePreparation(nn.Module):
    """Normalise, resize and batch images; map detections back to the input size.

    torchvision's ``GeneralizedRCNNTransform`` for one fixed size: each image is scaled so
    that its shorter side is ``min_size`` unless its longer side would exceed ``max_size``
    (bilinear), then the batch is zero-padded at the right and bottom to a multiple of
    ``size_divisible``. Ground-truth boxes are scaled with their image and clipped to it:
    a box partly outside the image is cut at the border, one fully outside is dropped.
    """

    def __init__(self, config):
        super().__init__()
        self.min_size, self.max_size, self.size_divisible = config.min_size, config.max_size, config.size_divisible
        self.register_buffer("mean", torch.tensor(config.image_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.image_std).view(3, 1, 1), persistent=False)

    def resize(self, image):
        h, w = image.shape[-2:]
        scale = min(self.min_size / min(h, w), self.max_size / max(h, w))
        return F.interpolate(image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True,
                             align_corners=False)[0]

    @staticmethod
    def scale_boxes(boxes, from_size, to_size):
        ratio_h = torch.tensor(to_size[0], dtype=torch.float32) / torch.tensor(from_size[0], dtype=torch.float32)
        ratio_w = torch.tensor(to_size[1], dtype=torch.float32) / torch.tensor(from_size[1], dtype=torch.float32)
        x1, y1, x2, y2 = boxes.unbind(1)
        return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)

    def forward(self, images, targets=None):
        """Returns ``(batch (N, 3, H, W), sizes [(h, w)] after resizing, targets)``, on the
        model's device: images and targets given on another device (CPU tensors to a model on
        the GPU) are moved here, so that a lesson's data works with a model on either."""
        device = self.mean.device
        resized, new_targets = [], []
        for i, image in enumerate(images):
            image = self.resize((image.to(device) - self.mean) / self.std)
            resized.append(image)
            if targets is not None:
                size = tuple(image.shape[-2:])
                boxes = targets[i]["boxes"].to(device)
                boxes = clip_boxes_to_image(self.scale_boxes(boxes, images[i].shape[-2:], size), size)
                inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                labels = targets[i]["labels"].to(device)[inside]
                new_targets.append({**targets[i], "boxes": boxes[inside], "labels": labels})
        batch = ImageBatch.from_images(resized, self.size_divisible)
        return batch.tensors, batch.image_sizes, (new_targets if targets is not None else None)

    def postprocess(self, detections, sizes, original_sizes):
        """Scale each image's boxes from the resized size back to its input size."""
        for det, size, original in zip(detections, sizes, original_sizes):
            det["boxes"] = self.scale_boxes(det["boxes"], size, original)
        return detections


def check_inputs(images, targets, num_classes):
    """Clear errors for the mistakes a learner makes with detector inputs."""
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise TypeError("images must be a non-empty list of (3, H, W) float tensors")
    for i, image in enumerate(images):
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"images[{i}] must be a (3, H, W) tensor (RGB, channels first), got {shape}")
        if not image.is_floating_point():
            raise TypeError(f"images[{i}] has dtype {image.dtype}: convert to float in [0, 1] "
                            f"(e.g. image.float() / 255)")
    if targets is None:
        return images
    if len(targets) != len(images):
        raise ValueError(f"{len(targets)} targets for {len(images)} images")
    for i, target in enumerate(targets):
        boxes, labels = target.get("boxes"), target.get("labels")
        if boxes is None or labels is None:
            raise ValueError(f"targets[{i}] needs 'boxes' and 'labels'")
        check_boxes(boxes, name=f"targets[{i}]['boxes'] (image {target.get('image_id', i)})",
                    allow_degenerate=False)
        if labels.shape != (len(boxes),) or labels.dtype != torch.int64:
            raise ValueError(f"targets[{i}]['labels'] must be int64 of shape ({len(boxes)},), got "
                             f"{labels.dtype} {tuple(labels.shape)}")
        if len(labels) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"targets[{i}]['labels'] must be in 1..{num_classes - 1} (0 is background), "
                             f"got {labels.tolist()}")
    return images


def prepare_inputs(model, images, targets=None):
    """What a detector's forward does first: check the inputs (the targets whenever they are
    given; training mode requires them), remember each image's size, then normalise, resize
    and batch (``model.transform``). :meth:`FasterRCNN.prepare`; also used by the detectors
    built from its parts (the unshared detector of lesson 10, the one-stage detector of
    lesson 11).

    Returns:
        (ImageBatch, list or None, list): the batch (``tensors (N, 3, H, W)`` and the
        ``image_sizes`` after resizing), the targets in resized coordinates, and the input
        sizes (for :meth:`ImagePreparation.postprocess`).
    """
    images = check_inputs(images, targets, model.config.num_classes)
    if model.training and targets is None:
        raise ValueError("training mode needs targets (call model.eval() to detect)")
    original_sizes = [tuple(image.shape[-2:]) for image in images]
    batch, sizes, targets = model.transform(images, targets)
    return ImageBatch(batch, sizes), targets, original_sizes


def check_joint_training(config):
    """Non-approximate joint training needs an RoI op that is differentiable in the boxes."""
    if config.joint_training not in ("approximate", "non-approximate"):
        raise ValueError(f"joint_training must be 'approximate' or 'non-approximate', got {config.joint_training!r}")
    if config.joint_training == "non-approximate" and config.roi_op != "warp":
        raise ValueError(f"non-approximate joint training needs roi_op='warp', the RoI op that is differentiable "
                         f"in the box coordinates; roi_op={config.roi_op!r} gives no gradient to the proposals")


def make_backbone(config):
    """The backbone a config describes: built, its pretrained weights loaded, its first stages frozen."""
    if config.backbone == "small":
        backbone = SmallBackbone(config.backbone_channels, config.backbone_blocks)
        if config.backbone_weights is not None:
            load_backbone_weights(backbone, config.backbone_weights)
    else:
        backbone = torchvision_backbone(config.backbone, weights=config.backbone_weights)
    return backbone.freeze(config.backbone_frozen_stages)


class FasterRCNN(nn.Module):
    """Faster R-CNN with one feature map.

    Args:
        config (DetectorConfig): default ``DetectorConfig.course()``.
        backbone (nn.Module, optional): with ``out_channels`` and ``stride``; default
            built from the config.

    Call:
        ``model(images, targets)`` in training mode -> ``{"loss_objectness",
        "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}``;
        ``model(images)`` in eval mode -> a list of ``{"boxes", "scores", "labels"}``.
    """

    def __init__(self, config=None, backbone=None):
        super().__init__()
        self.config = config = config or DetectorConfig.course()
        check_joint_training(config)
        self.transform = ImagePreparation(config)
        self.backbone = backbone or make_backbone(config)
        anchors = AnchorGenerator(config.anchor_sizes, config.aspect_ratios)
        self.rpn = RPN(anchors, RPNHead(self.backbone.out_channels, anchors.num_anchors_per_location),
                       settings=config.proposal_settings(), fg_iou_thresh=config.rpn_fg_iou_thresh,
                       bg_iou_thresh=config.rpn_bg_iou_thresh, batch_size_per_image=config.rpn_batch_size_per_image,
                       positive_fraction=config.rpn_positive_fraction, box_loss_weight=config.rpn_box_loss_weight,
                       differentiable_proposals=config.joint_training == "non-approximate")
        roi_op = RoIOp(config.roi_op, config.roi_output_size, 1 / self.backbone.stride, config.roi_sampling_ratio)
        pooled = self.backbone.out_channels * config.roi_output_size ** 2
        self.head = DetectionHead(roi_op, pooled, config.head_hidden, config.num_classes, config.head_settings())

    # The forward pass in its stages (figure 2). The training schemes of lesson 10, the
    # ablations of lesson 11 and the explorers call these same stages when they need to stop
    # between them, so the pipeline is written once, here.

    def prepare(self, images, targets=None):
        """Stage 1: check, normalise, resize and batch (:func:`prepare_inputs`).
        Returns ``(ImageBatch, targets in the batch's frame or None, input sizes)``."""
        return prepare_inputs(self, images, targets)

    def postprocess(self, detections, batch, original_sizes):
        """Last stage: the detections' boxes from the batch's frame back to the input sizes."""
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)

    def forward(self, images, targets=None):
        batch, targets, original_sizes = self.prepare(images, targets)
        features = self.backbone(batch.tensors)                         # the shared conv layers
        proposals, rpn_losses = self.rpn(batch, features, targets)     # section 3.1
        # Approximate joint training (section 3.2): the proposals are detached inside the
        # RPN's proposal layer, so the head's loss does not reach the RPN's box deltas.
        # Non-approximate: they are not, and the RoI warp passes the head's gradient on to them.
        detections, head_losses = self.head(features, proposals, batch.image_sizes, targets)  # RoI op + Fast R-CNN
        if self.training:
            return {**rpn_losses, **head_losses}
        return self.postprocess(detections, batch, original_sizes)


@torch.no_grad()
def detect(model, images, batch_size=16, device=None):
    """Run ``model`` in eval mode over a list of images; detections on the CPU, in order."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    detections = []
    for start in range(0, len(images), batch_size):
        batch = [image.to(device) for image in images[start:start + batch_size]]
        detections += [{k: v.cpu() for k, v in det.items()} for det in model(batch)]
    model.train(was_training)
    return detections
