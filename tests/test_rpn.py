"""The RPN: head, targets, losses and proposals equal torchvision's RegionProposalNetwork
with the same settings and weights; gradients reach the head; it learns a tiny batch."""
from collections import OrderedDict

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers
from torchvision.models.detection.rpn import RPNHead as TVRPNHead

from minifrcnn.anchors import AnchorGenerator
from minifrcnn.course.train_rpn import make_rpn_model, recall_vs_iou, recall_vs_proposals, train_rpn
from minifrcnn.matching import BalancedSampler
from minifrcnn.rpn import (
    RPN,
    ImageBatch,
    ProposalLayer,
    ProposalSettings,
    RPNHead,
    assign_targets,
    filter_proposals,
    flatten_head_outputs,
    generate_proposals,
    rpn_losses,
    sample_anchors,
    settings_table,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZES, RATIOS = (16, 32, 64), (0.5, 1.0, 2.0)



def random_targets(n_images, generator, image_size=(128, 128), max_boxes=5, empty=()):
    targets = []
    for i in range(n_images):
        n = 0 if i in empty else int(torch.randint(1, max_boxes + 1, (1,), generator=generator))
        xy = torch.rand(n, 2, generator=generator) * torch.tensor(image_size[::-1]) * 0.7
        wh = torch.rand(n, 2, generator=generator) * 50 + 8
        targets.append({"boxes": torch.cat((xy, xy + wh), dim=1)})
    return targets


def build_pair(channels=16, settings=None, weight_std=0.3, seed=0, device="cpu"):
    """torchvision's RPN and ours, same settings and same (non-trivial) head weights."""
    settings = settings or ProposalSettings(300, 100, 200, 50)
    torch.manual_seed(seed)
    tv = RegionProposalNetwork(TVAnchorGenerator((SIZES,), (RATIOS,)), TVRPNHead(channels, 9),
                               fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256,
                               positive_fraction=0.5, **settings.torchvision_kwargs())
    for m in tv.head.modules():  # the default std 0.01 gives nearly equal scores everywhere
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=weight_std)
            torch.nn.init.normal_(m.bias, std=0.1)
    ours = RPN(AnchorGenerator(SIZES, RATIOS), RPNHead(channels, 9).load_torchvision(tv.head), settings)
    return tv.to(device), ours.to(device)


# ----------------------------------------------------------------------------- head


def test_head_equals_torchvision():
    tv, ours = build_pair()
    x = torch.randn(2, 16, 12, 10)
    tv_obj, tv_deltas = tv.head([x])
    obj, deltas = ours.head(x)
    assert obj.shape == (2, 9, 12, 10) and deltas.shape == (2, 36, 12, 10)
    assert torch.equal(obj, tv_obj[0]) and torch.equal(deltas, tv_deltas[0])
    # and back: our weights in torchvision's head
    back = ours.head.to_torchvision()
    assert torch.equal(back([x])[0][0], obj)


def test_head_init_is_the_papers():
    head = RPNHead(64, 9)
    for layer in (head.conv, head.cls_logits, head.bbox_pred):
        assert abs(float(layer.weight.detach().std()) - 0.01) < 0.002 and torch.all(layer.bias == 0)


def test_flatten_equals_torchvision():
    obj, deltas = torch.randn(3, 9, 5, 7), torch.randn(3, 36, 5, 7)
    tv_obj, tv_deltas = concat_box_prediction_layers([obj], [deltas])
    flat_obj, flat_deltas = flatten_head_outputs(obj, deltas)
    assert flat_obj.shape == (3, 5 * 7 * 9) and flat_deltas.shape == (3, 5 * 7 * 9, 4)
    assert torch.equal(flat_obj.reshape(-1, 1), tv_obj) and torch.equal(flat_deltas.reshape(-1, 4), tv_deltas)
    # anchor a of cell (i, j) is row (i * W + j) * k + a: channel a, and channels 4a..4a+3
    i, j, a = 2, 3, 4
    assert flat_obj[1, (i * 7 + j) * 9 + a] == obj[1, a, i, j]
    assert torch.equal(flat_deltas[1, (i * 7 + j) * 9 + a], deltas[1, 4 * a:4 * a + 4, i, j])


def test_the_proposal_layer_decodes_with_the_coder_that_encoded_the_targets():
    rpn = RPN(AnchorGenerator(SIZES, RATIOS), RPNHead(8, 9))
    assert rpn.proposal_layer.box_coder is rpn.box_coder
    rpn.box_coder.weights = (2.0, 2.0, 1.0, 1.0)  # a changed coder changes the proposals too
    anchors = torch.tensor([[10.0, 10, 50, 50]])
    deltas = torch.tensor([[[0.2, 0.0, 0.0, 0.0]]])  # (N, A, 4): a shift of 0.2 / 2 widths
    proposals = rpn.proposal_layer.eval()(anchors, torch.zeros(1, 1), deltas, [(100, 100)])[0][0]
    assert torch.allclose(proposals[0], torch.tensor([14.0, 10, 54, 50]))


def test_mismatched_head_and_anchors():
    with pytest.raises(ValueError, match="anchors per position"):
        RPN(AnchorGenerator(SIZES, RATIOS), RPNHead(8, 3))


# ----------------------------------------------------------------------------- targets and losses


def test_targets_equal_torchvision():
    tv, ours = build_pair()
    g = torch.Generator().manual_seed(1)
    anchors = AnchorGenerator(SIZES, RATIOS)((128, 128), (16, 16))
    targets = random_targets(3, g, empty=(1,))
    tv_labels, tv_matched = tv.assign_targets_to_anchors([anchors] * 3, targets)
    for target, tv_lab, tv_gt in zip(targets, tv_labels, tv_matched):
        labels, reg = assign_targets(anchors, target["boxes"], ours.matcher, ours.box_coder)
        assert torch.equal(labels, tv_lab)
        positive = labels == 1
        tv_reg = tv.box_coder.encode_single(tv_gt, anchors)
        assert torch.equal(reg[positive], tv_reg[positive])
    assert (tv_labels[1] == 0).all()  # the empty image: all negative


@pytest.mark.parametrize("device", DEVICES)
def test_losses_equal_torchvision_with_the_same_sampling(device):
    tv, ours = build_pair(device=device)
    g = torch.Generator().manual_seed(2)
    anchors = AnchorGenerator(SIZES, RATIOS)((128, 128), (16, 16)).to(device)
    targets = [{"boxes": t["boxes"].to(device)} for t in random_targets(4, g, empty=(2,))]
    objectness = torch.randn(4, anchors.shape[0], generator=g).to(device)
    deltas = (torch.randn(4, anchors.shape[0], 4, generator=g) * 0.3).to(device)
    tv_labels, tv_matched = tv.assign_targets_to_anchors([anchors] * 4, targets)
    tv_reg = tv.box_coder.encode(tv_matched, [anchors] * 4)
    torch.manual_seed(5)
    tv_obj_loss, tv_box_loss = tv.compute_loss(objectness.reshape(-1, 1), deltas.reshape(-1, 4),
                                               tv_labels, list(tv_reg))
    torch.manual_seed(5)
    losses = ours.loss(anchors, objectness, deltas, targets)
    torch.testing.assert_close(losses["loss_objectness"], tv_obj_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(losses["loss_rpn_box_reg"], tv_box_loss, rtol=1e-6, atol=0)


def test_loss_with_fixed_masks_by_hand():
    """rpn_losses on hand-picked samples: mean BCE, and smooth-L1 sum / number sampled."""
    objectness = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    labels = torch.tensor([[1.0, 0.0, -1.0, 0.0]])
    deltas = torch.tensor([[[0.3, 0.0, 0.0, 0.0], [9, 9, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9]]])
    targets = torch.zeros(1, 4, 4)
    pos = torch.tensor([[True, False, False, False]])
    neg = torch.tensor([[False, True, False, False]])
    obj_loss, box_loss = rpn_losses(objectness, deltas, labels, targets, pos, neg)
    softplus = torch.nn.functional.softplus
    expected_obj = (softplus(torch.tensor(-2.0)) + softplus(torch.tensor(-1.0))) / 2
    torch.testing.assert_close(obj_loss, expected_obj)
    # smooth L1 is |x| - beta / 2 for |x| > beta, here divided by the 2 sampled anchors
    torch.testing.assert_close(box_loss, torch.tensor((0.3 - 0.5 / 9) / 2))


def test_sampler_draws_like_torchvision():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(-1, 2, (3, 500), generator=g).float()
    tv_sampler = det_utils.BalancedPositiveNegativeSampler(256, 0.5)
    torch.manual_seed(9)
    tv_pos, tv_neg = tv_sampler(list(labels))
    torch.manual_seed(9)
    pos, neg = sample_anchors(labels, BalancedSampler(256, 0.5))
    assert torch.equal(pos, torch.stack(tv_pos).bool()) and torch.equal(neg, torch.stack(tv_neg).bool())


# ----------------------------------------------------------------------------- proposals


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("settings", [ProposalSettings(300, 100, 200, 50),
                                      ProposalSettings(2000, 1500, 1500, 1200),  # > 1000 boxes: the other NMS path
                                      ProposalSettings(500, 300, 500, 300, nms_thresh=0.5, score_thresh=0.3)],
                         ids=["small", "large", "score-thresh"])
def test_proposals_equal_torchvision(settings, training, device):
    tv, ours = build_pair(settings=settings, device=device)
    tv.train(training)
    ours.train(training)
    g = torch.Generator().manual_seed(4)
    anchors = AnchorGenerator(SIZES, RATIOS)((128, 128), (16, 16)).to(device)
    # Saturated logits give many exactly tied probabilities (sigmoid(20) == 1.0 in float32).
    objectness = (torch.randn(3, anchors.shape[0], generator=g) * 12).to(device)
    deltas = (torch.randn(3, anchors.shape[0], 4, generator=g) * 0.5).to(device)
    sizes = [(128, 128), (100, 120), (64, 128)]
    tv_proposals = tv.box_coder.decode(deltas.reshape(-1, 4), [anchors] * 3).view(3, -1, 4)
    tv_boxes, tv_scores = tv.filter_proposals(tv_proposals, objectness.reshape(-1, 1), sizes,
                                              [anchors.shape[0]])
    boxes, scores = ProposalLayer(settings).train(training)(anchors, objectness, deltas, sizes)
    for b, s, tb, ts in zip(boxes, scores, tv_boxes, tv_scores):
        assert b.shape[0] <= settings.post_nms_top_n(training)
        assert torch.equal(b, tb) and torch.equal(s, ts)


def test_proposals_clip_and_drop_small_boxes():
    anchors = torch.tensor([[-20.0, -20, 20, 20], [50, 50, 50.0005, 60], [10, 10, 30, 30]])
    objectness = torch.tensor([[3.0, 2.0, 1.0]])
    boxes, scores = generate_proposals(anchors, objectness, torch.zeros(1, 3, 4), [(64, 64)], 10, 10)
    assert boxes[0].tolist() == [[0.0, 0.0, 20.0, 20.0], [10.0, 10.0, 30.0, 30.0]]  # clipped; tiny one gone
    torch.testing.assert_close(scores[0], torch.sigmoid(torch.tensor([3.0, 1.0])))


@pytest.mark.parametrize("device", DEVICES)
def test_rpn_module_equals_torchvision(device):
    tv, ours = build_pair(device=device)
    g = torch.Generator().manual_seed(6)
    features = torch.randn(3, 16, 16, 16, generator=g).to(device)
    images = ImageList(torch.zeros(3, 3, 128, 128, device=device), [(128, 128), (120, 100), (90, 128)])
    targets = [{"boxes": t["boxes"].to(device)} for t in random_targets(3, g, empty=(1,))]
    for training in (True, False):
        tv.train(training)
        ours.train(training)
        torch.manual_seed(7)
        tv_boxes, tv_losses = tv(images, OrderedDict(pool=features), targets)
        torch.manual_seed(7)
        boxes, losses = ours(images, features, targets)
        assert len(boxes) == 3 and all(torch.equal(a, b) for a, b in zip(boxes, tv_boxes))
        assert losses.keys() == tv_losses.keys()
        for key in losses:
            torch.testing.assert_close(losses[key], tv_losses[key], rtol=1e-6, atol=0)


def test_rpn_needs_targets_in_training():
    _, ours = build_pair()
    with pytest.raises(ValueError, match="targets"):
        ours(torch.zeros(1, 3, 128, 128), torch.zeros(1, 16, 16, 16))


def test_settings():
    paper = ProposalSettings.paper()
    assert (paper.pre_nms_top_n(True), paper.post_nms_top_n(True)) == (12000, 2000)
    assert (paper.pre_nms_top_n(False), paper.post_nms_top_n(False)) == (6000, 300)
    assert paper.nms_thresh == 0.7 and ProposalSettings.course().post_nms_top_n_test == 300
    kwargs = ProposalSettings.torchvision().torchvision_kwargs()
    assert kwargs["pre_nms_top_n"] == dict(training=2000, testing=1000)
    table = settings_table()
    assert "paper" in table and "12000" in table and "course" in table


# ----------------------------------------------------------------------------- learning


def test_gradients_flow_to_the_head_and_backbone_not_through_proposals():
    model = make_rpn_model()
    g = torch.Generator().manual_seed(8)
    images = list(torch.rand(2, 3, 128, 128, generator=g))
    proposals, losses = model(images, random_targets(2, g), propose=True)
    assert not proposals[0].requires_grad
    (losses["loss_objectness"] + losses["loss_rpn_box_reg"]).backward()
    for layer in (model.rpn.head.conv, model.rpn.head.cls_logits, model.rpn.head.bbox_pred, model.backbone[0][0]):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def _tiny_dataset(n=4, size=64, seed=10):
    """``n`` images of bright rectangles (the objects) on a dark, noisy background."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        k = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(k, 2, generator=g) * size * 0.6
        wh = torch.rand(k, 2, generator=g) * size * 0.3 + 10
        boxes = torch.cat((xy, xy + wh), dim=1).round()
        image = torch.rand(3, size, size, generator=g) * 0.2
        for x1, y1, x2, y2 in boxes.int().tolist():
            image[:, y1:y2, x1:x2] = 0.9
        items.append((image, {"boxes": boxes}))
    return items


def test_rpn_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = make_rpn_model()
    data = _tiny_dataset()
    history = train_rpn(model, data, num_epochs=150, batch_size=4, lr=1e-2, warmup_steps=10,
                        progress=False, live_plot=False)
    assert history["steps"] == 150 and history["total"][-1] < 0.05 * history["total"][0]
    proposals, _ = model([image for image, _ in data])  # train_rpn leaves it in eval mode
    recall = recall_vs_proposals(proposals, [t["boxes"] for _, t in data], top_ns=(300,))
    assert recall[0.5][0] == 1.0 and recall[0.7][0] >= 0.9


def test_training_is_deterministic():
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # the same initial weights; train_rpn seeds the rest
        model = make_rpn_model()
        runs.append(train_rpn(model, _tiny_dataset(8), num_epochs=2, batch_size=2, progress=False,
                              live_plot=False, seed=3)["total"])
    assert len(runs[0]) == 8 and runs[0] == runs[1]


def test_recall_functions():
    gt = [torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]]), torch.zeros(0, 4)]
    proposals = [torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 34], [0, 0, 1, 1]]), torch.zeros(0, 4)]
    r = recall_vs_proposals(proposals, gt, top_ns=(1, 2), iou_thresholds=(0.5, 0.75))
    assert r[0.5].tolist() == [0.5, 1.0] and r[0.75].tolist() == [0.5, 0.5]  # IoU of the 2nd: 0.7
    thresholds, recalls = recall_vs_iou(proposals, gt, top_n=2, iou_thresholds=[0.5, 0.7, 1.0])
    assert recalls.tolist() == [1.0, 1.0, 0.5]


def test_live_loss_plot_and_batching():
    import matplotlib
    matplotlib.use("Agg")
    from minifrcnn.training import LiveLossPlot
    plot = LiveLossPlot(every=2, window=2)
    for step, value in enumerate([4.0, 2.0, 1.0]):
        plot.add(step, {"loss_objectness": value, "loss_rpn_box_reg": value / 2, "total": 1.5 * value})
    assert plot.figure is not None and len(plot.figure.axes) == 3  # drawn once, at step 2
    assert plot.running_mean("loss_objectness").tolist() == [4.0, 3.0, 1.5]
    batch = ImageBatch.from_images([torch.ones(3, 4, 6), torch.ones(3, 5, 2)])   # lesson 04's RPN model batches so
    assert batch.tensors.shape == (2, 3, 5, 6) and batch.image_sizes == [(4, 6), (5, 2)]
    assert batch.tensors[0, :, 4].sum() == 0 and batch.tensors[1, :, :, 2:].sum() == 0  # zero padding


def test_image_batch_pads_to_a_multiple_and_takes_a_tensor_as_it_is():
    batch = ImageBatch.from_images([torch.ones(3, 30, 40), torch.ones(3, 33, 20)], size_divisible=32)
    assert batch.tensors.shape == (2, 3, 64, 64) and batch.image_sizes == [(30, 40), (33, 20)]
    assert batch.tensors.sum() == 3 * (30 * 40 + 33 * 20)  # the rest is zeros
    stacked = torch.rand(2, 3, 8, 8)
    assert ImageBatch.from_images(stacked).tensors is stacked


def test_filter_proposals_without_nms_keeps_the_best_scored_boxes():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [-5.0, 0.0, 0.0, 5.0],
                          [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    kept, kept_scores = filter_proposals(boxes, scores, (40, 40), top_n=3, nms_thresh=None)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8, 0.6])  # the third is clipped to nothing and dropped
    kept, _ = filter_proposals(boxes, scores, (40, 40), top_n=3, nms_thresh=0.5)
    assert kept.tolist() == [[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]  # NMS removes the overlapping one
    _, kept_scores = filter_proposals(boxes, scores, (40, 40), top_n=3, nms_thresh=0.5, score_thresh=0.85)
    assert kept_scores.tolist() == pytest.approx([0.9])


def test_differentiable_proposals_are_the_same_boxes_with_a_gradient():
    """Non-approximate joint training (lesson 10): the proposal layer keeps the boxes'
    gradient with respect to the deltas; the boxes themselves do not change."""
    g = torch.Generator().manual_seed(5)
    anchors = AnchorGenerator((16, 32), (0.5, 1.0))((64, 64), (8, 8))
    objectness = torch.randn(2, len(anchors), generator=g, requires_grad=True)
    deltas = (0.2 * torch.randn(2, len(anchors), 4, generator=g)).requires_grad_()
    args = (anchors, objectness, deltas, [(64, 64), (60, 50)], 100, 20, 0.7)
    fixed, fixed_scores = generate_proposals(*args)
    boxes, scores = generate_proposals(*args, differentiable=True)
    assert not fixed[0].requires_grad and boxes[0].requires_grad and not scores[0].requires_grad
    for a, b, sa, sb in zip(fixed, boxes, fixed_scores, scores):
        assert torch.equal(a, b.detach()) and torch.equal(sa, sb)
    sum(b.sum() for b in boxes).backward()
    assert deltas.grad.abs().sum() > 0 and objectness.grad is None
    assert (deltas.grad[0].abs().sum(1) > 0).sum() <= 20  # only the kept boxes' deltas
