"""The Region Proposal Network (RPN): head, losses, proposal layer, and the module tying them.

Paper, section 3.1: a small network slides over the backbone's feature map. At every
position a 3x3 conv, then two sibling 1x1 convs: a *cls* layer scoring the ``k``
anchors of that position as object / not object, and a *reg* layer giving ``4k`` box
deltas that move the anchors onto objects (section 3.1.1). Training (section 3.1.2):
anchors are labelled by IoU (``minifrcnn.matching``), 256 are sampled per image, and the
loss is a classification loss on all sampled anchors plus a smooth-L1 box loss on the
positive ones. At the output, the *proposal layer* decodes the deltas, clips the boxes
to the image, keeps the top-N by objectness, runs NMS at IoU 0.7 and keeps the top-N
again (section 3.3: 2000 proposals for training, 300 for testing).

One difference from the paper, copied from torchvision: the cls layer gives ``k``
logits (one per anchor, a sigmoid and binary cross-entropy) instead of ``2k`` scores (two
per anchor, a softmax). The two are the same model: a softmax over two logits
``(z_bg, z_fg)`` is ``sigmoid(z_fg - z_bg)``, so the ``2k`` version only has twice the
parameters of the last layer. We use ``k`` so that the weights load into torchvision's
``RPNHead`` and back, and lesson 04 shows the conversion.

Every result here equals torchvision's ``RegionProposalNetwork`` with the same settings
and weights (``tests/test_rpn.py``).
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .boxes import RPN_BOX_WEIGHTS, BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from .matching import BalancedSampler, Matcher, match_labels
from .nms import batched_nms

# ----------------------------------------------------------------------------- head


class RPNHead(nn.Module):
    """The RPN's sliding network: 3x3 conv + ReLU, then two sibling 1x1 convs.

    Args:
        in_channels (int): ``C`` of the backbone's feature map.
        num_anchors (int): ``k``, anchors per position.
        mid_channels (int, optional): channels of the 3x3 conv (the paper: 256 for ZF,
            512 for VGG-16); default ``in_channels``, as torchvision.

    Shapes: ``features (N, C, H, W)`` -> ``objectness (N, k, H, W)`` (logits; channel
    ``a`` scores anchor ``a`` of each position) and ``deltas (N, 4k, H, W)`` (channels
    ``4a .. 4a + 3`` are ``(tx, ty, tw, th)`` of anchor ``a``).
    """

    def __init__(self, in_channels, num_anchors, mid_channels=None):
        super().__init__()
        mid_channels = mid_channels or in_channels
        self.conv = nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1)
        self.cls_logits = nn.Conv2d(mid_channels, num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(mid_channels, 4 * num_anchors, kernel_size=1)
        # Section 3.1.3: new layers drawn from a zero-mean Gaussian with std 0.01.
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    @property
    def num_anchors(self):
        return self.cls_logits.out_channels

    def forward(self, features):
        hidden = F.relu(self.conv(features))
        return self.cls_logits(hidden), self.bbox_pred(hidden)

    def load_torchvision(self, head):
        """Copy the weights of a ``torchvision.models.detection.rpn.RPNHead`` (one conv)."""
        state = {key.replace("conv.0.0.", "conv."): value for key, value in head.state_dict().items()}
        self.load_state_dict(state)
        return self

    def to_torchvision(self):
        """A ``torchvision`` ``RPNHead`` with these weights."""
        from torchvision.models.detection.rpn import RPNHead as TVHead
        head = TVHead(self.conv.in_channels, self.num_anchors)
        if self.conv.out_channels != self.conv.in_channels:
            raise ValueError("torchvision's RPNHead has mid_channels == in_channels")
        head.load_state_dict({k.replace("conv.", "conv.0.0."): v for k, v in self.state_dict().items()})
        return head.to(self.conv.weight.device)


def flatten_head_outputs(objectness, deltas):
    """Head outputs -> one row per anchor, in the anchors' order (cell by cell, then the
    ``k`` anchors of a cell; see ``minifrcnn.anchors``).

    Args:
        objectness (Tensor): ``(N, k, H, W)``.
        deltas (Tensor): ``(N, 4k, H, W)``.

    Returns:
        (Tensor, Tensor): ``(N, H*W*k)`` logits and ``(N, H*W*k, 4)`` deltas.
    """
    n, k, h, w = objectness.shape
    objectness = objectness.permute(0, 2, 3, 1).reshape(n, h * w * k)
    deltas = deltas.view(n, k, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w * k, 4)
    return objectness, deltas


# ----------------------------------------------------------------------------- training targets and losses


def assign_targets(anchors, gt_boxes, matcher, box_coder):
    """Label the anchors of one image and compute their regression targets.

    Args:
        anchors (Tensor): ``(A, 4)``.
        gt_boxes (Tensor): ``(G, 4)``, possibly ``G = 0`` (an image of background).
        matcher (Matcher): e.g. ``Matcher(0.7, 0.3, allow_low_quality_matches=True)``.
        box_coder (BoxCoder): weights ``(1, 1, 1, 1)`` for the RPN.

    Returns:
        (Tensor, Tensor): labels ``(A,)`` float32, 1 / 0 / -1 (positive, negative,
        ignored), and targets ``(A, 4)``: the deltas from each anchor to its matched ground
        truth (meaningful for positives only; zeros when ``G = 0``).
    """
    gt_boxes = gt_boxes.to(anchors)
    if gt_boxes.shape[0] == 0:
        return anchors.new_zeros(anchors.shape[0]), anchors.new_zeros(anchors.shape)
    matches = matcher(box_iou(gt_boxes, anchors))
    labels = match_labels(matches).to(anchors.device)
    # Negative and ignored anchors point at ground truth 0: their targets are never used.
    targets = box_coder.encode(gt_boxes[matches.clamp(min=0)], anchors)
    return labels, targets


def sample_anchors(labels, sampler, generator=None):
    """The paper's mini-batch: for each image, up to 256 anchors, up to half positive.

    Args:
        labels (Tensor): ``(N, A)``, 1 / 0 / -1.
        sampler (BalancedSampler).

    Returns:
        (Tensor, Tensor): ``(N, A)`` bool masks of the sampled positives and negatives.
        Images are sampled in order, each with the global random generator (unless
        ``generator`` is given), exactly as torchvision does.
    """
    masks = [sampler(labels_per_image, generator=generator) for labels_per_image in labels]
    return torch.stack([p for p, _ in masks]), torch.stack([n for _, n in masks])


def rpn_losses(objectness, deltas, labels, targets, pos_mask, neg_mask, beta=1 / 9):
    """The RPN loss (paper, equation 1), normalised as torchvision does.

    Paper::

        L = 1 / N_cls * sum_i L_cls(p_i, p_i*) + lambda / N_reg * sum_i p_i* L_reg(t_i, t_i*)

    with ``N_cls = 256`` (the mini-batch), ``N_reg ~ 2400`` (anchor positions) and
    ``lambda = 10``, so that both terms weigh about the same. torchvision (and we) divide
    both sums by the number of sampled anchors (256 per image): ``lambda / N_reg = 10 /
    2400 ~ 1 / 240`` against ``1 / 256``, nearly the same weight.

    Args:
        objectness (Tensor): ``(N, A)`` logits.
        deltas (Tensor): ``(N, A, 4)`` predicted deltas.
        labels (Tensor): ``(N, A)``: 1 / 0 / -1.
        targets (Tensor): ``(N, A, 4)`` regression targets.
        pos_mask, neg_mask (Tensor): ``(N, A)`` bool, from :func:`sample_anchors`.
        beta (float): smooth-L1 transition point (1/9: the original code's sigma = 3).

    Returns:
        (Tensor, Tensor): scalar objectness loss (binary cross-entropy, mean over the
        sampled anchors) and box loss (smooth L1 over the sampled positives, divided by
        the number of sampled anchors).
    """
    # Positives then negatives, in flat order: torchvision's order, so sums round alike.
    pos = torch.where(pos_mask.reshape(-1))[0]
    sampled = torch.cat((pos, torch.where(neg_mask.reshape(-1))[0]))
    box_loss = F.smooth_l1_loss(deltas.reshape(-1, 4)[pos], targets.reshape(-1, 4)[pos],
                                beta=beta, reduction="sum") / sampled.numel()
    objectness_loss = F.binary_cross_entropy_with_logits(objectness.reshape(-1)[sampled],
                                                         labels.reshape(-1)[sampled])
    return objectness_loss, box_loss


# ----------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class ProposalSettings:
    """How many proposals the proposal layer keeps, at each stage, in training and testing.

    Attributes:
        pre_nms_top_n_train, pre_nms_top_n_test (int): boxes kept by objectness before NMS.
        post_nms_top_n_train, post_nms_top_n_test (int): boxes kept after NMS.
        nms_thresh (float): NMS IoU threshold.
        min_box_size (float): smallest width and height of a box kept, in pixels.
        score_thresh (float): smallest objectness probability kept.

    Use :meth:`paper`, :meth:`torchvision` or :meth:`course`; :func:`settings_table`
    shows them side by side.
    """

    pre_nms_top_n_train: int
    post_nms_top_n_train: int
    pre_nms_top_n_test: int
    post_nms_top_n_test: int
    nms_thresh: float = 0.7
    min_box_size: float = 1e-3
    score_thresh: float = 0.0

    @classmethod
    def paper(cls):
        """Section 3.3 and the original code: 12000 -> NMS -> 2000 proposals for training,
        6000 -> NMS -> 300 for testing, boxes under 16 px dropped (~20000 anchors/image)."""
        return cls(12000, 2000, 6000, 300, nms_thresh=0.7, min_box_size=16.0)

    @classmethod
    def torchvision(cls):
        """torchvision's ``fasterrcnn_resnet50_fpn`` (per feature level before NMS)."""
        return cls(2000, 2000, 1000, 1000, nms_thresh=0.7, min_box_size=1e-3)

    @classmethod
    def course(cls):
        """The course's 128x128 images have 2,304 anchors (16x16 cells x 9) and 1-6 objects:
        NMS over the best 1000 anchors, then 300 proposals at test time as in the paper,
        and 600 in training (what the detection head samples its 128 RoIs from)."""
        return cls(1000, 600, 1000, 300, nms_thresh=0.7, min_box_size=1e-3)

    def pre_nms_top_n(self, training):
        return self.pre_nms_top_n_train if training else self.pre_nms_top_n_test

    def post_nms_top_n(self, training):
        return self.post_nms_top_n_train if training else self.post_nms_top_n_test

    def torchvision_kwargs(self):
        """The keyword arguments of torchvision's ``RegionProposalNetwork`` (except min_box_size,
        which torchvision fixes at 1e-3)."""
        return dict(pre_nms_top_n=dict(training=self.pre_nms_top_n_train, testing=self.pre_nms_top_n_test),
                    post_nms_top_n=dict(training=self.post_nms_top_n_train, testing=self.post_nms_top_n_test),
                    nms_thresh=self.nms_thresh, score_thresh=self.score_thresh)


def settings_table():
    """The paper's, torchvision's and the course's proposal settings, as a text table."""
    columns = {"paper": ProposalSettings.paper(), "torchvision": ProposalSettings.torchvision(),
               "course": ProposalSettings.course()}
    lines = [f"{'setting':<22}" + "".join(f"{name:>13}" for name in columns)]
    for field in asdict(ProposalSettings.paper()):
        lines.append(f"{field:<22}" + "".join(f"{asdict(s)[field]:>13g}" for s in columns.values()))
    return "\n".join(lines)


def generate_proposals(anchors, objectness, deltas, image_sizes, pre_nms_top_n, post_nms_top_n,
                       nms_thresh=0.7, min_size=1e-3, score_thresh=0.0, box_coder=None, differentiable=False):
    """The proposal layer: from the head's outputs to a short list of boxes per image.

    For each image: keep the ``pre_nms_top_n`` anchors with the highest objectness,
    decode their deltas into boxes, clip the boxes to the image, drop boxes smaller than
    ``min_size`` and scores below ``score_thresh``, run NMS at ``nms_thresh``, keep the
    ``post_nms_top_n`` best. (Taking the top-N before decoding gives the same boxes as
    decoding all of them first, as torchvision does, and is cheaper.)

    Args:
        anchors (Tensor): ``(A, 4)``, the same for every image of the batch.
        objectness (Tensor): ``(N, A)`` logits.
        deltas (Tensor): ``(N, A, 4)``.
        image_sizes (list of (int, int)): ``(height, width)`` of each image before padding.
        box_coder (BoxCoder): default weights ``RPN_BOX_WEIGHTS``, (1, 1, 1, 1).
        differentiable (bool): keep the boxes in the autograd graph of ``deltas``.

    Returns:
        (list of Tensor, list of Tensor): per image, boxes ``(K, 4)`` and objectness
        probabilities ``(K,)``, highest first, ``K <= post_nms_top_n``.

    By default no gradient flows through proposals: the paper's approximate joint training
    treats them as fixed inputs of the detector (section 3.2). With ``differentiable=True``
    (non-approximate joint training, lesson 10) the boxes' coordinates keep their gradient
    with respect to ``deltas``; which boxes are kept (top-N, NMS) is a discrete choice and
    has none, and the scores never do.
    """
    box_coder = box_coder or BoxCoder(RPN_BOX_WEIGHTS)
    objectness = objectness.detach()
    if not differentiable:
        deltas = deltas.detach()
    top_n = min(pre_nms_top_n, objectness.shape[1])
    top_logits, top_idx = objectness.topk(top_n, dim=1)
    # Probabilities of the whole (N, top_n) batch at once, as torchvision: the same tensor
    # shape takes the same vectorised code path, so the scores match to the last bit.
    top_scores = torch.sigmoid(top_logits)
    all_boxes, all_scores = [], []
    for scores, idx, image_deltas, image_size in zip(top_scores, top_idx, deltas, image_sizes):
        boxes = box_coder.decode(image_deltas[idx], anchors[idx])[:, 0]
        boxes, scores = filter_proposals(boxes, scores, image_size, post_nms_top_n, nms_thresh, min_size,
                                         score_thresh)
        all_boxes.append(boxes)
        all_scores.append(scores)
    return all_boxes, all_scores


def filter_proposals(boxes, scores, image_size, top_n, nms_thresh=0.7, min_size=1e-3, score_thresh=None):
    """The proposal layer's steps after decoding, for one image: clip the boxes to the image,
    drop those smaller than ``min_size`` and (unless ``score_thresh`` is None) scored below
    ``score_thresh``, run NMS at ``nms_thresh`` (None: no NMS, the best-scored boxes) and
    keep the ``top_n`` best. Shared by :func:`generate_proposals` and the test-time ablations
    of lesson 11, which feed it other boxes (the anchors) or other scores (the logits).

    Args:
        boxes (Tensor): ``(K, 4)``, sorted by ``scores`` (``(K,)``), highest first.

    Returns:
        (Tensor, Tensor): the kept boxes ``(K', 4)`` and their scores, highest first.
    """
    boxes = clip_boxes_to_image(boxes, image_size)
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores = boxes[keep], scores[keep]
    if score_thresh is not None:
        keep = torch.where(scores >= score_thresh)[0]
        boxes, scores = boxes[keep], scores[keep]
    if nms_thresh is None:
        return boxes[:top_n], scores[:top_n]
    # One feature map = one group: batched_nms only to pick the same NMS code path (and the
    # same order of tied scores) as torchvision.
    keep = batched_nms(boxes.detach(), scores, torch.zeros_like(scores, dtype=torch.int64), nms_thresh,
                       max_kept=top_n)
    return boxes[keep], scores[keep]


class ProposalLayer(nn.Module):
    """:func:`generate_proposals` with :class:`ProposalSettings`, choosing the training or
    testing numbers from the module's mode (``.train()`` / ``.eval()``); ``differentiable``:
    see :func:`generate_proposals`."""

    def __init__(self, settings=None, differentiable=False, box_coder=None):
        super().__init__()
        self.settings = settings or ProposalSettings.course()
        self.differentiable = differentiable
        # The coder that encoded the RPN's training targets must decode its deltas: the RPN
        # passes its own, so that the two can never disagree.
        self.box_coder = box_coder or BoxCoder(RPN_BOX_WEIGHTS)

    def forward(self, anchors, objectness, deltas, image_sizes):
        s = self.settings
        return generate_proposals(anchors, objectness, deltas, image_sizes,
                                  s.pre_nms_top_n(self.training), s.post_nms_top_n(self.training),
                                  s.nms_thresh, s.min_box_size, s.score_thresh, box_coder=self.box_coder,
                                  differentiable=self.differentiable)


# ----------------------------------------------------------------------------- the RPN module


class ImageBatch:
    """A padded batch ``(N, 3, H, W)`` and each image's ``(h, w)`` before padding: the two
    fields of torchvision's ``ImageList`` that the RPN reads."""

    def __init__(self, tensors, image_sizes):
        self.tensors, self.image_sizes = tensors, image_sizes

    @classmethod
    def from_images(cls, images, size_divisible=1):
        """Zero-pad ``(C, h, w)`` images at the right and bottom into one ``(N, C, H, W)``
        batch: ``H`` and ``W`` are the largest height and width, rounded up to a multiple of
        ``size_divisible``. An ``(N, C, H, W)`` tensor is taken as it is. The one place
        where the package batches images (the detector's :class:`ImagePreparation`, lesson
        04's RPN model)."""
        if isinstance(images, torch.Tensor):
            return cls(images, [tuple(images.shape[-2:])] * images.shape[0])
        sizes = [tuple(image.shape[-2:]) for image in images]
        stride = float(size_divisible)
        height = int(math.ceil(max(h for h, _ in sizes) / stride) * stride)
        width = int(math.ceil(max(w for _, w in sizes) / stride) * stride)
        batch = images[0].new_zeros(len(images), images[0].shape[0], height, width)
        for slot, image in zip(batch, images):
            slot[:, :image.shape[-2], :image.shape[-1]].copy_(image)
        return cls(batch, sizes)


def _images_and_sizes(images):
    """``(padded batch shape (H, W), [(h, w) per image])`` from an ImageList, an
    ``(N, 3, H, W)`` tensor, or a list of ``(3, h, w)`` tensors."""
    if hasattr(images, "tensors") and hasattr(images, "image_sizes"):  # torchvision's ImageList
        return tuple(images.tensors.shape[-2:]), [tuple(s) for s in images.image_sizes]
    if isinstance(images, torch.Tensor):
        return tuple(images.shape[-2:]), [tuple(images.shape[-2:])] * images.shape[0]
    sizes = [tuple(image.shape[-2:]) for image in images]
    return (max(h for h, _ in sizes), max(w for _, w in sizes)), sizes


def _single_feature_map(features):
    """The one feature map of a tensor, a one-entry dict (torchvision's form) or a list."""
    if isinstance(features, torch.Tensor):
        return features
    values = list(features.values()) if isinstance(features, dict) else list(features)
    if len(values) != 1:
        raise ValueError(f"minifrcnn's RPN uses one feature map, got {len(values)} (an FPN?)")
    return values[0]


class RPN(nn.Module):
    """Anchors + head + matcher + sampler + box coder + losses + proposal layer.

    Called like torchvision's ``RegionProposalNetwork``: ``rpn(images, features,
    targets)`` returns ``(proposals, losses)``: a list of ``(K, 4)`` boxes per image and,
    in training mode, ``{"loss_objectness", "loss_rpn_box_reg"}`` (empty in eval mode).

    Args:
        anchor_generator (minifrcnn.anchors.AnchorGenerator).
        head (RPNHead): with ``num_anchors == anchor_generator.num_anchors_per_location``.
        settings (ProposalSettings): default :meth:`ProposalSettings.course`.
        fg_iou_thresh, bg_iou_thresh (float): anchor labelling, 0.7 / 0.3.
        batch_size_per_image (int), positive_fraction (float): sampling, 256 / 0.5.
        box_loss_beta (float): smooth-L1 beta, 1/9.
        box_loss_weight (float): multiplies the box loss; 1 is torchvision's weighting, about
            the paper's lambda = 10 (see :func:`rpn_losses`; lesson 11 varies it).
        differentiable_proposals (bool): proposals keep their gradient with respect to the
            head's deltas (non-approximate joint training, lesson 10; default False: approximate).
    """

    def __init__(self, anchor_generator, head, settings=None, fg_iou_thresh=0.7, bg_iou_thresh=0.3,
                 batch_size_per_image=256, positive_fraction=0.5, box_loss_beta=1 / 9, box_loss_weight=1.0,
                 differentiable_proposals=False):
        super().__init__()
        if head.num_anchors != anchor_generator.num_anchors_per_location:
            raise ValueError(f"the head predicts {head.num_anchors} anchors per position but the "
                             f"generator makes {anchor_generator.num_anchors_per_location}")
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder(RPN_BOX_WEIGHTS)
        self.proposal_layer = ProposalLayer(settings, differentiable_proposals, self.box_coder)
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.box_loss_beta = box_loss_beta
        self.box_loss_weight = box_loss_weight

    @property
    def settings(self):
        return self.proposal_layer.settings

    def predict(self, images, features, propose=True):
        """Everything the RPN computes before the loss, for lessons and explorers.

        Returns:
            dict: ``anchors (A, 4)``, ``objectness (N, A)`` logits, ``deltas (N, A, 4)``
            (with gradients), ``image_sizes``, ``feature_size (H, W)``, ``proposals``
            and ``scores`` (lists, one ``(K, 4)`` / ``(K,)`` per image, no gradient unless
            ``differentiable_proposals``; None if ``propose=False``).
        """
        batch_size, image_sizes = _images_and_sizes(images)
        features = _single_feature_map(features)
        objectness, deltas = flatten_head_outputs(*self.head(features))
        anchors = self.anchor_generator(batch_size, tuple(features.shape[-2:]),
                                        dtype=features.dtype, device=features.device)
        proposals = scores = None
        if propose:
            proposals, scores = self.proposal_layer(anchors, objectness, deltas, image_sizes)
        return dict(anchors=anchors, objectness=objectness, deltas=deltas, image_sizes=image_sizes,
                    feature_size=tuple(features.shape[-2:]), proposals=proposals, scores=scores)

    def loss(self, anchors, objectness, deltas, targets, generator=None):
        """``{"loss_objectness", "loss_rpn_box_reg"}`` for head outputs and ground truths
        (``targets``: a list of dicts with ``"boxes"``, one per image)."""
        assigned = [assign_targets(anchors, t["boxes"], self.matcher, self.box_coder) for t in targets]
        labels = torch.stack([lab for lab, _ in assigned])
        regression_targets = torch.stack([reg for _, reg in assigned])
        pos_mask, neg_mask = sample_anchors(labels, self.sampler, generator)
        loss_objectness, loss_box = rpn_losses(objectness, deltas, labels, regression_targets,
                                               pos_mask, neg_mask, self.box_loss_beta)
        return {"loss_objectness": loss_objectness, "loss_rpn_box_reg": self.box_loss_weight * loss_box}

    def forward(self, images, features, targets=None, propose=True):
        """``(proposals, losses)``; with ``propose=False`` the proposal layer is skipped
        and ``proposals`` is None (training the RPN alone does not need them)."""
        out = self.predict(images, features, propose=propose)
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training mode (call .eval() to only propose)")
            losses = self.loss(out["anchors"], out["objectness"], out["deltas"], targets)
        return out["proposals"], losses
