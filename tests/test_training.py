"""The training loop: determinism, exact resume, non-finite losses, safe checkpoints, CLI."""
import pickle

import pytest
import torch

from minifrcnn.detector import DetectorConfig, FasterRCNN
from minifrcnn.training import NonFiniteLossError, TrainSettings, batch_indices, load_checkpoint, load_weights, train


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return FasterRCNN(DetectorConfig.course(backbone_weights=None, backbone_channels=(8, 8, 16),
                                            backbone_blocks=(1, 1, 1), head_hidden=16, rpn_post_nms_top_n_train=100))


def tiny_dataset(n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        k = i % 3  # 0, 1 or 2 objects: includes images with no objects
        xy = torch.rand(k, 2, generator=gen) * 60
        boxes = torch.cat((xy, xy + 16 + torch.rand(k, 2, generator=gen) * 30), 1)
        image = torch.rand(3, 96, 96, generator=gen)  # drawn before the labels, as always
        items.append((image, {"boxes": boxes, "labels": torch.randint(1, 11, (k,), generator=gen)}))
    return items


SETTINGS = TrainSettings(steps=6, batch_size=2, lr=0.01, warmup_steps=2, checkpoint_every=3)


def test_seeded_training_repeats_exactly_on_cpu():
    first = train(tiny_model(), tiny_dataset(), SETTINGS, device="cpu", progress=False)
    second = train(tiny_model(), tiny_dataset(), SETTINGS, device="cpu", progress=False)
    assert first == second
    assert len(first) == 6 and {"loss_objectness", "loss_classifier", "lr", "loss"} <= set(first[0])


def test_resume_continues_exactly(tmp_path):
    straight_model = tiny_model()
    straight = train(straight_model, tiny_dataset(), SETTINGS, device="cpu", progress=False)
    path = tmp_path / "ckpt.pt"
    half = TrainSettings(**{**SETTINGS.__dict__, "steps": 3})
    train(tiny_model(), tiny_dataset(), half, checkpoint=path, device="cpu", progress=False)
    assert load_checkpoint(path)["step"] == 3
    resumed_model = tiny_model(seed=123)  # different initial weights: all must come from the checkpoint
    resumed = train(resumed_model, tiny_dataset(), SETTINGS, checkpoint=path, resume=True, device="cpu",
                    progress=False)
    assert resumed == straight
    for (name, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_good_checkpoint(tmp_path):
    model = tiny_model()
    path = tmp_path / "ckpt.pt"
    calls = {"n": 0}
    original = model.head.forward

    def poisoned(*args, **kwargs):  # the 5th step's classifier loss becomes NaN
        detections, losses = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:
            losses["loss_classifier"] = losses["loss_classifier"] * float("nan")
        return detections, losses

    model.head.forward = poisoned
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 4.*loss_classifier=nan.*last good state"):
        train(model, tiny_dataset(), SETTINGS, checkpoint=path, device="cpu", progress=False)
    state = load_checkpoint(path)
    assert state["step"] == 4 and len(state["history"]) == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_weights_gone_non_finite_never_overwrite_the_last_good_checkpoint(tmp_path):
    """The weights turn NaN in a step whose loss was finite (the optimiser step is what breaks
    them); the next loss is NaN. The checkpoint on disk stays the last one written with finite
    weights (step 3), and the message says so."""
    model = tiny_model()
    path = tmp_path / "ckpt.pt"
    calls = {"n": 0}
    original = model.head.forward

    def poisoned(*args, **kwargs):  # from the 5th step on, every weight of the box predictor is NaN
        calls["n"] += 1
        if calls["n"] == 5:
            with torch.no_grad():
                for parameter in model.head.box_predictor.parameters():
                    parameter.fill_(float("nan"))
        return original(*args, **kwargs)

    model.head.forward = poisoned
    message = r"at step 4.*no longer finite, so .* keeps the last checkpoint \(step 3\)"
    with pytest.raises(NonFiniteLossError, match=message):
        train(model, tiny_dataset(), SETTINGS, checkpoint=path, device="cpu", progress=False)
    state = load_checkpoint(path)
    assert state["step"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


class Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_unsafe_checkpoints_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"model": Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match="refused to unpickle it safely"):
        load_checkpoint(evil)
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(ValueError, match="expected a dict"):
        load_checkpoint(not_a_dict)
    nested = tmp_path / "nested.pt"
    torch.save({"weights": {"a": 1}}, nested)
    with pytest.raises(ValueError, match="not tensors"):
        load_weights(tiny_model(), nested)


def test_plain_state_dict_and_checkpoint_both_load(tmp_path):
    model = tiny_model()
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    other = load_weights(tiny_model(seed=5), tmp_path / "plain.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_learning_rate_schedule():
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=10, schedule="cosine")
    assert s.learning_rate(0) == pytest.approx(0.1) and s.learning_rate(9) == pytest.approx(1.0)
    assert s.learning_rate(10) == pytest.approx(1.0) and s.learning_rate(99) < 0.01
    step = TrainSettings(steps=100, lr=1.0, warmup_steps=0, schedule="step")
    assert step.learning_rate(74) == 1.0 and step.learning_rate(75) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="schedule"):
        TrainSettings(schedule="linear", warmup_steps=0).learning_rate(5)


def test_batches_cover_each_epoch_once_and_depend_only_on_seed_and_step():
    first_epoch = sum((batch_indices(10, 3, s, seed=1) for s in range(3)), [])
    assert len(set(first_epoch)) == 9
    assert batch_indices(10, 3, 4, seed=1) == batch_indices(10, 3, 4, seed=1)
    assert batch_indices(10, 3, 0, seed=1) != batch_indices(10, 3, 0, seed=2)
    with pytest.raises(ValueError, match="larger than the dataset"):
        batch_indices(2, 3, 0, seed=0)
