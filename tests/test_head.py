"""minifrcnn.head against torchvision's RoIHeads: same weights and sampling in, same out."""
import pytest
import torch
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign

from minifrcnn.boxes import BoxCoder
from minifrcnn.head import BoxHead, DetectionHead, HeadSettings, head_loss, sample_proposals
from minifrcnn.matching import BalancedSampler, Matcher
from minifrcnn.roi_ops import RoIOp

NUM_CLASSES = 11
CHANNELS, POOL = 8, 7


def tv_roi_op():
    """torchvision's pooler (which infers the 1/8 scale from the sizes), in RoIOp's signature."""
    pool = MultiScaleRoIAlign(["0"], POOL, sampling_ratio=2)
    return lambda features, proposals: pool({"0": features}, proposals, [(128, 128)] * len(features))


def make_pair(settings, roi_op=None):
    torch.manual_seed(0)
    ours = DetectionHead(roi_op or tv_roi_op(), CHANNELS * POOL * POOL, 32, NUM_CLASSES, settings)
    theirs = RoIHeads(
        MultiScaleRoIAlign(["0"], POOL, sampling_ratio=2), TwoMLPHead(CHANNELS * POOL * POOL, 32),
        FastRCNNPredictor(32, NUM_CLASSES), fg_iou_thresh=settings.fg_iou_thresh, bg_iou_thresh=settings.bg_iou_thresh,
        batch_size_per_image=settings.batch_size_per_image, positive_fraction=settings.positive_fraction,
        bbox_reg_weights=settings.bbox_reg_weights, score_thresh=settings.score_thresh,
        nms_thresh=settings.nms_thresh, detections_per_img=settings.detections_per_img)
    theirs.box_head.load_state_dict(ours.box_head.state_dict())
    theirs.box_predictor.load_state_dict(ours.box_predictor.state_dict())
    return ours, theirs


def random_inputs(seed, num_images=2, empty_image=False):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(num_images, CHANNELS, 16, 16, generator=gen)
    image_sizes = [(128, 128)] * num_images
    proposals, targets = [], []
    for i in range(num_images):
        xy = torch.rand(300, 2, generator=gen) * 110
        proposals.append(torch.cat((xy, xy + 4 + torch.rand(300, 2, generator=gen) * 60), 1).clamp(max=128))
        n = 0 if (empty_image and i == 0) else 4
        gxy = torch.rand(n, 2, generator=gen) * 90
        boxes = torch.cat((gxy, gxy + 10 + torch.rand(n, 2, generator=gen) * 30), 1)
        targets.append({"boxes": boxes, "labels": torch.randint(1, NUM_CLASSES, (n,), generator=gen)})
    return features, proposals, image_sizes, targets


@pytest.mark.parametrize("empty_image", [False, True])
@pytest.mark.parametrize("roi_op", [None, RoIOp("align", POOL, 1 / 8, 2)], ids=["tv-pooler", "RoIOp"])
def test_training_losses_equal_torchvision(empty_image, roi_op):
    ours, theirs = make_pair(HeadSettings(), roi_op)
    features, proposals, sizes, targets = random_inputs(1, empty_image=empty_image)
    ours.train(), theirs.train()
    torch.manual_seed(42)
    _, our_losses = ours(features, proposals, sizes, targets)
    torch.manual_seed(42)
    _, their_losses = theirs({"0": features}, proposals, sizes, targets)
    for name in ("loss_classifier", "loss_box_reg"):
        assert torch.allclose(our_losses[name], their_losses[name], atol=1e-6), name
    assert our_losses["loss_box_reg"] > 0


@pytest.mark.parametrize("settings", [HeadSettings(), HeadSettings(score_thresh=0.0, nms_thresh=0.5,
                                                                   detections_per_img=30)])
def test_detections_equal_torchvision(settings):
    ours, theirs = make_pair(settings)
    # Larger weights so that scores spread out and boxes move.
    with torch.no_grad():
        ours.box_predictor.cls_score.weight.mul_(20)
        theirs.box_predictor.cls_score.weight.mul_(20)
    features, proposals, sizes, _ = random_inputs(2)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        our_dets, _ = ours(features, proposals, sizes)
        their_dets, _ = theirs({"0": features}, proposals, sizes)
    for mine, tv in zip(our_dets, their_dets):
        assert len(mine["boxes"]) > 0
        assert torch.equal(mine["labels"], tv["labels"])
        assert torch.allclose(mine["boxes"], tv["boxes"], atol=1e-5)
        assert torch.allclose(mine["scores"], tv["scores"], atol=1e-6)
        assert len(mine["boxes"]) <= settings.detections_per_img


def test_sampling_counts_and_gt_appended():
    features, proposals, sizes, targets = random_inputs(3)
    torch.manual_seed(0)
    rois, labels, regression = sample_proposals(
        proposals[0], targets[0]["boxes"], targets[0]["labels"], Matcher(0.5, 0.5), BalancedSampler(128, 0.25),
        BoxCoder((10.0, 10.0, 5.0, 5.0)))
    assert len(rois) == 128 and (labels > 0).sum() <= 32 and (labels >= 0).all()
    # Every ground-truth box is a candidate RoI with IoU 1 with itself, hence foreground.
    assert torch.isfinite(regression).all()


def test_loss_gradients_reach_the_head():
    head = BoxHead(8 * 7 * 7, 16)
    pooled = torch.randn(10, 8, 7, 7)
    logits, deltas = torch.randn(10, 3, requires_grad=True), torch.randn(10, 12, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 0, 1, 0, 0, 2, 0])
    classification, box_loss = head_loss(logits, deltas, labels, torch.randn(10, 4))
    (classification + box_loss).backward()
    assert head(pooled).shape == (10, 16)
    assert logits.grad.abs().sum() > 0
    # Only the ground-truth class's 4 deltas of foreground RoIs get a gradient.
    assert (deltas.grad.reshape(10, 3, 4).abs().sum(-1) > 0).sum() == 4


def test_training_needs_targets():
    ours, _ = make_pair(HeadSettings())
    features, proposals, sizes, _ = random_inputs(4)
    with pytest.raises(ValueError, match="targets"):
        ours.train()(features, proposals, sizes)
