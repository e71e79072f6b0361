"""The full detector: losses and detections, weight parity with torchvision, bad inputs."""
import json
from dataclasses import asdict

import pytest
import torch

from minifrcnn.compat.torchvision import load_torchvision_weights, torchvision_twin
from minifrcnn.detector import DetectorConfig, FasterRCNN, config_table


def tiny_config(**changes):
    return DetectorConfig.course(backbone_weights=None, backbone_frozen_stages=0, backbone_channels=(8, 16, 16),
                                 backbone_blocks=(1, 1, 1), head_hidden=32, **changes)


def random_batch(seed, sizes=((128, 128), (128, 128)), empty=()):
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for i, (h, w) in enumerate(sizes):
        images.append(torch.rand(3, h, w, generator=gen))
        n = 0 if i in empty else 3
        xy = torch.rand(n, 2, generator=gen) * 70
        boxes = torch.cat((xy, xy + 12 + torch.rand(n, 2, generator=gen) * 40), 1)
        targets.append({"boxes": boxes, "labels": torch.randint(1, 11, (n,), generator=gen)})
    return images, targets


def test_train_mode_returns_the_four_losses_and_they_backpropagate():
    torch.manual_seed(0)
    model = FasterRCNN(tiny_config()).train()
    images, targets = random_batch(0, empty=(1,))
    losses = model(images, targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    for name in ("backbone.0.0.weight", "rpn.head.cls_logits.weight", "head.box_predictor.bbox_pred.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


def test_eval_mode_returns_detections_in_input_coordinates():
    torch.manual_seed(0)
    model = FasterRCNN(tiny_config(box_score_thresh=0.0)).eval()
    images, _ = random_batch(1, sizes=((128, 128), (96, 200)))
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for det, image in zip(detections, images):
        assert set(det) == {"boxes", "scores", "labels"} and len(det["boxes"]) > 0
        h, w = image.shape[-2:]
        assert det["boxes"][:, 0::2].max() <= w + 1e-4 and det["boxes"][:, 1::2].max() <= h + 1e-4


def test_the_stages_called_one_by_one_are_the_forward_pass():
    """FasterRCNN's stages (docs/architecture.md) are what code that stops between them calls:
    run one after the other they give forward's losses and detections exactly."""
    model = FasterRCNN(tiny_config(box_score_thresh=0.0))
    images, targets = random_batch(3, sizes=((128, 128), (96, 200)))

    def by_stages():
        batch, prepared, original_sizes = model.prepare(images, targets if model.training else None)
        # the course resizes to 192 px at most on the longer side: 96 x 200 becomes 92 x 192
        assert batch.tensors.shape[-2:] == (192, 192) and batch.image_sizes == [(192, 192), (92, 192)]
        features = model.backbone(batch.tensors)
        proposals, rpn_losses = model.rpn(batch, features, prepared)
        detections, head_losses = model.head(features, proposals, batch.image_sizes, prepared)
        if model.training:
            return {**rpn_losses, **head_losses}
        return model.postprocess(detections, batch, original_sizes)

    model.train()
    torch.manual_seed(1)
    staged = by_stages()
    torch.manual_seed(1)
    assert staged == model(images, targets)
    model.eval()
    with torch.no_grad():
        staged, whole = by_stages(), model(images)
    assert all(torch.equal(a[k], b[k]) for a, b in zip(staged, whole) for k in a)


def test_prepare_checks_targets_whenever_given_and_needs_them_in_training():
    model = FasterRCNN(tiny_config()).eval()
    images, targets = random_batch(0)
    targets[1]["labels"] = targets[1]["labels"] + 20
    with pytest.raises(ValueError, match=r"targets\[1\]\['labels'\] must be in 1..10"):
        model.prepare(images, targets)
    with pytest.raises(ValueError, match="training mode needs targets"):
        model.train().prepare(images)


def test_head_predict_is_the_raw_logits_and_deltas_of_every_roi():
    model = FasterRCNN(tiny_config()).eval()
    features = torch.rand(2, model.backbone.out_channels, 8, 8)
    rois = [torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 40.0, 60.0]]), torch.tensor([[4.0, 4.0, 20.0, 20.0]])]
    logits, deltas = model.head.predict(features, rois)
    assert logits.shape == (3, 11) and deltas.shape == (3, 44)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_model_on_the_gpu_takes_images_and_targets_from_the_cpu():
    torch.manual_seed(0)
    gpu_model = FasterRCNN(tiny_config(box_score_thresh=0.0)).cuda().eval()
    images, targets = random_batch(2)  # on the CPU
    with torch.no_grad():
        detections = gpu_model(images)
    assert len(detections) == 2 and all(d["boxes"].is_cuda and len(d["boxes"]) for d in detections)
    losses = gpu_model.train()(images, targets)  # CPU targets too
    assert all(loss.is_cuda and torch.isfinite(loss) for loss in losses.values())


@pytest.mark.parametrize("sizes", [((128, 128), (128, 128)), ((128, 128), (100, 150))])
def test_same_weights_give_torchvisions_detections(sizes):
    torch.manual_seed(0)
    model = FasterRCNN(tiny_config(box_score_thresh=0.01, min_size=128, max_size=192)).eval()
    twin = torchvision_twin(model).eval()
    load_torchvision_weights(model, twin)
    with torch.no_grad():  # sharpen the predictor so that there is something to detect
        twin.roi_heads.box_predictor.cls_score.weight.mul_(30)
        model.head.box_predictor.cls_score.weight.mul_(30)
    images, _ = random_batch(2, sizes=sizes)
    with torch.no_grad():
        ours, theirs = model(images), twin(images)
    for mine, tv in zip(ours, theirs):
        assert len(mine["boxes"]) > 0 and len(mine["boxes"]) == len(tv["boxes"])
        assert torch.equal(mine["labels"], tv["labels"])
        assert torch.allclose(mine["boxes"], tv["boxes"], atol=1e-4)
        assert torch.allclose(mine["scores"], tv["scores"], atol=1e-4)


def test_same_weights_and_seed_give_torchvisions_losses():
    torch.manual_seed(0)
    model = FasterRCNN(tiny_config()).train()
    twin = torchvision_twin(model).train()
    load_torchvision_weights(model, twin)
    # torchvision draws a random training size per image (from a list of one here), which
    # consumes the global RNG before the samplers; take that draw out so both sample alike.
    twin.transform.torch_choice = lambda sizes: sizes[-1]
    images, targets = random_batch(3, empty=(0,))
    torch.manual_seed(7)
    ours = model(images, targets)
    torch.manual_seed(7)
    theirs = twin(images, targets)
    for name, value in theirs.items():
        assert torch.allclose(ours[name], value, atol=1e-5), name


@pytest.mark.parametrize("images,targets,error,match", [
    ([torch.rand(1, 64, 64)], None, ValueError, r"images\[0\] must be a \(3, H, W\)"),
    ([torch.rand(64, 64, 3)], None, ValueError, r"channels first"),
    ([torch.zeros(3, 64, 64, dtype=torch.uint8)], None, TypeError, r"float in \[0, 1\]"),
    ([], None, TypeError, "non-empty list"),
    ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[5.0, 5, 5, 20]]), "labels": torch.tensor([1])}],
     ValueError, r"targets\[0\]\['boxes'\] \(image 0\)\[0\].*zero-area"),
    ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[9.0, 5, 2, 20]]), "labels": torch.tensor([1]),
                                "image_id": 17}], ValueError, r"image 17.*inverted"),
    ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[1.0, 1, 9, 9]]), "labels": torch.tensor([0])}],
     ValueError, r"0 is background"),
    ([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[1.0, 1, 9, 9]]), "labels": torch.tensor([1.0])}],
     ValueError, r"int64"),
    ([torch.rand(3, 64, 64)], [], ValueError, r"0 targets for 1 images"),
])
def test_bad_inputs_get_clear_errors(images, targets, error, match):
    model = FasterRCNN(tiny_config()).train()
    with pytest.raises(error, match=match):
        model(images, targets)


def test_training_without_targets_is_an_error():
    with pytest.raises(ValueError, match="needs targets"):
        FasterRCNN(tiny_config()).train()([torch.rand(3, 64, 64)])


def test_boxes_outside_the_image_are_clipped_or_dropped():
    model = FasterRCNN(tiny_config(min_size=128, max_size=128))  # no resizing: the boxes keep their numbers
    targets = [{"boxes": torch.tensor([[-10.0, -5, 30, 40], [200.0, 200, 220, 230]]), "labels": torch.tensor([3, 4])}]
    _, _, prepared = model.transform([torch.rand(3, 128, 128)], targets)
    assert prepared[0]["boxes"].tolist() == [[0.0, 0.0, 30.0, 40.0]] and prepared[0]["labels"].tolist() == [3]


def test_config_table_marks_differences():
    table = config_table()
    assert "anchor_sizes" in table and "(128, 256, 512)" in table
    assert [line for line in table.splitlines() if line.startswith("rpn_fg_iou_thresh")][0].endswith("  ")
    assert [line for line in table.splitlines() if line.startswith("min_size")][0].endswith(" *")


def test_config_from_dict_reads_the_old_field_names_and_refuses_unknown_ones():
    config = DetectorConfig.course(box_nms_thresh=0.4, anchor_sizes=(16, 32))
    values = json.loads(json.dumps(asdict(config)))  # as a checkpoint or a results file holds it: lists
    assert DetectorConfig.from_dict(values) == config
    values["box_nms"] = values.pop("box_nms_thresh")  # written before the fields took torchvision's names
    assert DetectorConfig.from_dict(values) == config
    with pytest.raises(ValueError, match=r"unknown DetectorConfig fields \['box_nms_threshold'\]"):
        DetectorConfig.from_dict({"box_nms_threshold": 0.3})


# ----------------------------------------------------------------------------- joint training (lesson 10)


def test_non_approximate_training_sends_the_heads_gradient_to_the_rpn_deltas():
    """With the RPN's own losses left out, only the path through the proposal coordinates
    can reach the RPN's box-delta layer: it does in non-approximate joint training, not in
    approximate. The objectness layer gets nothing in either (scores are never
    differentiated through)."""
    images, targets = random_batch(3)
    grads = {}
    for mode, roi_op in (("approximate", "align"), ("non-approximate", "warp")):
        torch.manual_seed(0)
        model = FasterRCNN(tiny_config(joint_training=mode, roi_op=roi_op)).train()
        losses = model(images, targets)
        (losses["loss_classifier"] + losses["loss_box_reg"]).backward()
        grads[mode] = model.rpn.head.bbox_pred.weight.grad
        assert model.rpn.head.cls_logits.weight.grad is None
    assert grads["approximate"] is None
    assert grads["non-approximate"] is not None and grads["non-approximate"].abs().sum() > 0


def test_non_approximate_changes_the_backward_pass_only():
    torch.manual_seed(0)
    approximate = FasterRCNN(tiny_config(box_score_thresh=0.0))
    exact = FasterRCNN(tiny_config(box_score_thresh=0.0, joint_training="non-approximate", roi_op="warp"))
    exact.load_state_dict(approximate.state_dict())
    images, targets = random_batch(4)
    losses = []
    for model in (approximate, exact):
        torch.manual_seed(1)  # the same anchor and RoI samples
        losses.append({k: v.item() for k, v in model.train()(images, targets).items()})
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    with torch.no_grad():
        detected = [model.eval()(images) for model in (approximate, exact)]
    for a, b in zip(*detected):
        assert torch.allclose(a["boxes"], b["boxes"], atol=1e-4) and torch.equal(a["labels"], b["labels"])


def test_head_regression_targets_come_from_fixed_proposals():
    from minifrcnn.boxes import BoxCoder
    from minifrcnn.head import sample_proposals
    from minifrcnn.matching import BalancedSampler, Matcher
    proposals = torch.tensor([[10.0, 10, 40, 40], [12, 8, 44, 38], [60, 60, 90, 90]], requires_grad=True)
    gt_boxes, gt_labels = torch.tensor([[11.0, 9, 41, 39]]), torch.tensor([3])
    rois, labels, regression_targets = sample_proposals(proposals, gt_boxes, gt_labels, Matcher(0.5, 0.5),
                                                        BalancedSampler(8, 0.5), BoxCoder((10.0, 10.0, 5.0, 5.0)))
    assert rois.requires_grad and not labels.requires_grad and not regression_targets.requires_grad
    rois.sum().backward()
    assert proposals.grad.tolist() == [[1.0] * 4] * 3  # every proposal sampled (3 + the ground truth <= 8)


@pytest.mark.parametrize("changes,match", [
    (dict(joint_training="non-approximate"), r"roi_op='warp'.*'align'"),
    (dict(joint_training="non-approximate", roi_op="pool"), r"roi_op='warp'.*'pool'"),
    (dict(joint_training="exact"), r"'approximate' or 'non-approximate'"),
])
def test_non_approximate_training_needs_the_warp(changes, match):
    with pytest.raises(ValueError, match=match):
        FasterRCNN(tiny_config(**changes))


@pytest.mark.parametrize("changes", [{"rpn_box_loss_weight": 10.0},
                                     {"joint_training": "non-approximate", "roi_op": "warp"}])
def test_torchvision_twin_refuses_what_torchvision_cannot_do(changes):
    # A twin that silently ignored these settings would make a parity check prove nothing.
    model = FasterRCNN(DetectorConfig.course(**changes))
    with pytest.raises(ValueError, match="torchvision's FasterRCNN"):
        torchvision_twin(model)
