"""The three training schemes of section 3.2: freezing in alternating training, the shared
backbone at the end, the gradient through the proposals, determinism, bad inputs."""
import pytest
import torch

from minifrcnn.course.schemes import (
    ALTERNATING_STEPS,
    HEAD_LOSSES,
    RPN_LOSSES,
    STAGE_NAMES,
    AlternatingStage,
    UnsharedFasterRCNN,
    evaluate_model,
    proposal_gradient,
    set_trainable,
    split_steps,
    train_alternating,
    train_approximate_joint,
    train_non_approximate_joint,
)
from minifrcnn.detector import DetectorConfig, FasterRCNN, detect
from minifrcnn.training import TrainSettings, train


def tiny_config(**changes):
    return DetectorConfig.course(backbone_weights=None, backbone_frozen_stages=0, backbone_channels=(8, 8, 16),
                                 backbone_blocks=(1, 1, 1), head_hidden=16, rpn_post_nms_top_n_train=100, **changes)


def tiny_dataset(n=8, seed=0):
    """Bright rectangles (the objects, 1-3 per image, labels 1-10) on dark noise, 96 x 96."""
    gen = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        k = int(torch.randint(1, 4, (1,), generator=gen))
        xy = torch.rand(k, 2, generator=gen) * 50
        boxes = torch.cat((xy, xy + 16 + torch.rand(k, 2, generator=gen) * 28), 1).round()
        image = torch.rand(3, 96, 96, generator=gen) * 0.2
        for x1, y1, x2, y2 in boxes.int().tolist():
            image[:, y1:y2, x1:x2] = 0.9
        items.append((image, {"boxes": boxes, "labels": torch.randint(1, 11, (k,), generator=gen)}))
    return items


SETTINGS = TrainSettings(steps=8, batch_size=2, lr=0.01, warmup_steps=2)


def new_model(seed=0, **changes):
    torch.manual_seed(seed)
    return FasterRCNN(tiny_config(**changes))


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(before, module):
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


# ----------------------------------------------------------------------------- freezing


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_set_trainable_follows_the_table(step):
    model = new_model()
    set_trainable(model, 4 if step != 4 else 1)  # from another step: flags must be set both ways
    params = set_trainable(model, step)
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split(".")[0] in ALTERNATING_STEPS[step]), name
    assert [id(p) for p in params] == [id(p) for p in model.parameters() if p.requires_grad]
    assert len(set_trainable(model, None)) == len(list(model.parameters()))


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_each_step_changes_what_it_trains_and_nothing_else(step):
    """Fixed parts stay bit-identical (BatchNorm's running statistics included: fixed parts
    run in eval mode); trained parts change."""
    model = new_model()
    proposer = new_model(seed=1) if step == 2 else None
    before = {part: state(getattr(model, part)) for part in ("backbone", "rpn", "head")}
    proposer_before = state(proposer) if proposer is not None else None
    stage = AlternatingStage(model, step, proposer=proposer)
    history = train(stage, tiny_dataset(), TrainSettings(steps=3, batch_size=2, lr=0.05, warmup_steps=1),
                    device="cpu", progress=False)
    losses = RPN_LOSSES if step in (1, 3) else HEAD_LOSSES
    others = set(RPN_LOSSES + HEAD_LOSSES) - set(losses)
    assert set(losses) <= set(history[0]) and not others & set(history[0])
    for part in ("backbone", "rpn", "head"):
        assert same(before[part], getattr(model, part)) == (part not in ALTERNATING_STEPS[step]), part
    if proposer is not None:
        assert same(proposer_before, proposer)


def test_alternating_training_ends_with_one_shared_backbone():
    data = tiny_dataset()
    result = train_alternating(data, tiny_config(), SETTINGS, device="cpu", progress=False)
    assert list(result.histories) == list(STAGE_NAMES.values()) and result.steps == SETTINGS.steps
    assert [len(h) for h in result.histories.values()] == [2, 2, 2, 2]
    final, unshared = result.model, result.unshared_model
    assert isinstance(final, FasterRCNN) and isinstance(unshared, UnsharedFasterRCNN)
    assert not final.training and all(p.requires_grad for p in final.parameters())
    # One backbone: the final model has exactly a FasterRCNN's parameters ...
    assert len(list(final.parameters())) == len(list(new_model().parameters()))
    # ... and it is step 2's detector backbone, unchanged by steps 3 and 4 (which share it) ...
    assert same(unshared.backbone.state_dict(), final.backbone)
    # ... while step 1's RPN had its own, different one, and step 4 changed the head.
    assert unshared.rpn_backbone is not unshared.backbone
    assert not same(unshared.rpn_backbone.state_dict(), final.backbone)
    assert not same(unshared.head.state_dict(), final.head)
    images = [image for image, _ in data[:3]]
    for model in (final, unshared):
        detections = detect(model, images)
        assert len(detections) == 3 and set(detections[0]) == {"boxes", "scores", "labels"}
    steps, values = result.loss_curve(RPN_LOSSES)
    assert steps.tolist() == [0, 1, 4, 5] and values.shape == (4,)
    assert result.loss_curve(HEAD_LOSSES)[0].tolist() == [2, 3, 6, 7]


def test_joint_schemes_train_one_model_from_the_same_start():
    data = tiny_dataset()
    approximate = train_approximate_joint(data, tiny_config(), SETTINGS, device="cpu", progress=False)
    exact = train_non_approximate_joint(data, tiny_config(), SETTINGS, device="cpu", progress=False)
    assert approximate.model.config.joint_training == "approximate" and approximate.model.config.roi_op == "align"
    assert exact.model.config.joint_training == "non-approximate" and exact.model.config.roi_op == "warp"
    first_a, first_e = approximate.histories["joint"][0], exact.histories["joint"][0]
    # The same initial weights and the same forward pass: equal losses at the first step.
    for name in RPN_LOSSES + HEAD_LOSSES:
        assert first_a[name] == pytest.approx(first_e[name], rel=1e-6, abs=1e-7), name
    assert approximate.steps == exact.steps == SETTINGS.steps and approximate.unshared_model is None
    metrics = evaluate_model(exact.model, data[:4])
    assert 0.0 <= metrics["map50"] <= 1.0 and 0.0 <= metrics["ap"] <= metrics["map50"] + 1e-9


def test_the_same_seed_gives_the_same_losses():
    data = tiny_dataset()
    for scheme in (train_alternating, train_non_approximate_joint):
        first = scheme(data, tiny_config(), SETTINGS, device="cpu", progress=False)
        second = scheme(data, tiny_config(), SETTINGS, device="cpu", progress=False)
        assert first.histories == second.histories
        assert same(first.model.state_dict(), second.model)


# ----------------------------------------------------------------------------- the gradient through the proposals


def test_proposal_gradient_exists_only_in_non_approximate_training():
    data = tiny_dataset(2)
    images, targets = [image for image, _ in data], [target for _, target in data]
    exact = new_model(joint_training="non-approximate", roi_op="warp")
    approximate = new_model()
    approximate.load_state_dict(exact.state_dict())
    proposals, grads = proposal_gradient(exact, images, targets)
    assert len(grads) == 2 and grads[0].shape == proposals[0].shape and grads[0].abs().sum() > 0
    assert all(p.grad is None for p in exact.parameters())  # the model's .grad is left alone
    same_proposals, zero = proposal_gradient(approximate, images, targets)
    assert torch.equal(same_proposals[0], proposals[0]) and all(g.abs().sum() == 0 for g in zero)


# ----------------------------------------------------------------------------- bad inputs


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="RoI pooling rounds"):
        train_non_approximate_joint(tiny_dataset(), tiny_config(roi_op="pool"), SETTINGS, device="cpu")
    with pytest.raises(ValueError, match="4 stages"):
        split_steps(8, (4, 4))
    with pytest.raises(ValueError, match="at least 1 step"):
        split_steps(3)
    assert split_steps(10) == [3, 3, 2, 2] and split_steps(10, 5) == [5] * 4
    with pytest.raises(ValueError, match="step must be"):
        AlternatingStage(new_model(), 5)
    with pytest.raises(ValueError, match="proposer"):
        AlternatingStage(new_model(), 2)
    with pytest.raises(ValueError, match="proposer"):
        AlternatingStage(new_model(), 3, proposer=new_model())
    with pytest.raises(ValueError, match="step must be"):
        set_trainable(new_model(), 0)
    with pytest.raises(ValueError, match="only detects"):
        UnsharedFasterRCNN(new_model(), new_model()).train()([torch.rand(3, 64, 64)])
