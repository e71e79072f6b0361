"""minifrcnn.pretrain and the pretrained backbone: crops, determinism, the shipped weights file
(what it was trained on, that it loads, that it is what the script makes), loading and freezing."""
import copy
import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from minifrcnn.backbone import SmallBackbone, load_backbone_weights, torchvision_backbone
from minifrcnn.data import DATA_DIR, cache, load_digits
from minifrcnn.detector import DetectorConfig, FasterRCNN
from minifrcnn.pretrain import (
    IMAGE_MEAN,
    IMAGE_STD,
    PRETRAINED_FILE,
    DigitClassifier,
    DigitCrops,
    PretrainSettings,
    accuracy,
    load_pretrained,
    pretrain,
    training_digits,
)

TINY = PretrainSettings(steps=3, batch_size=8, warmup_steps=1, channels=(8, 8, 16), blocks=(1, 1, 1))


def square_items():
    """Two grey images, each with one white square of known place and label."""
    items = []
    for i, (x, y, side, label) in enumerate(((10, 20, 30, 3), (60, 50, 40, 8))):
        image = torch.full((3, 128, 128), 0.5)
        image[:, y:y + side, x:x + side] = 1.0
        items.append((image, {"boxes": torch.tensor([[x, y, x + side, y + side]], dtype=torch.float32),
                              "labels": torch.tensor([label + 1]), "image_id": i}))
    return items


def test_crops_are_centred_on_the_digits_and_labelled_by_digit():
    crops = DigitCrops(square_items(), PretrainSettings(crop_size=32))
    images, labels = crops.centred(fraction=0.6)
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 8]
    white = (torch.ones(3) - torch.tensor(IMAGE_MEAN)) / torch.tensor(IMAGE_STD)
    grey = (torch.full((3,), 0.5) - torch.tensor(IMAGE_MEAN)) / torch.tensor(IMAGE_STD)
    assert torch.allclose(images[:, :, 16, 16], white.expand(2, 3), atol=1e-5)  # the digit in the middle
    assert torch.allclose(images[:, :, 1, 1], grey.expand(2, 3), atol=1e-5)  # background at the corner
    sample, sample_labels = crops.sample(64, torch.Generator().manual_seed(0))
    assert sample.shape == (64, 3, 32, 32) and set(sample_labels.tolist()) <= {3, 8}
    assert torch.isfinite(sample).all()


def test_pretraining_is_deterministic_and_learns():
    items = square_items()
    first, report = pretrain(items, TINY, val_items=items, progress=False)
    second, _ = pretrain(items, TINY, progress=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert len(report["loss"]) == 3 and all(torch.isfinite(torch.tensor(report["loss"])))
    assert 0 <= report["val_accuracy"] <= 1 and report["train_crops"] == 2
    assert isinstance(first, SmallBackbone) and not first.training


def test_accuracy_counts_correct_classes():
    classifier = DigitClassifier(SmallBackbone((8, 8, 16), (1, 1, 1)), num_classes=10)
    with torch.no_grad():
        classifier.fc.weight.zero_()
        classifier.fc.bias.copy_(torch.arange(10.0))  # always predicts class 9
    crops = torch.zeros(4, 3, 24, 24)
    assert accuracy(classifier, crops, torch.tensor([9, 9, 1, 9])) == 0.75


# ----------------------------------------------------------------------------- the shipped file


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained()


def test_shipped_weights_come_from_the_script_defaults(shipped):
    assert PRETRAINED_FILE.stat().st_size < 3e6
    assert shipped["settings"] == asdict(PretrainSettings())
    assert shipped["command"].startswith("python -m minifrcnn pretrain")
    assert len(shipped["loss"]) == PretrainSettings().steps
    assert shipped["loss"][-1] < 0.5 * shipped["loss"][0]
    assert shipped["val_accuracy"] > 0.9


def test_shipped_weights_never_saw_a_test_or_val_digit(shipped):
    """Pretraining crops digits out of the training images only: the MNIST rows it records are
    exactly the training split's, and none of them is in the val or test split."""
    recorded = set(shipped["mnist_indices"])
    assert recorded == set(training_digits("train")) and len(recorded) > 2000
    for split in ("val", "test"):
        annotations = json.loads((DATA_DIR / "digits" / f"{split}.json").read_text())["annotations"]
        held_out = {a["mnist_index"] for a in annotations}
        assert not recorded & held_out, f"{split} digits among the pretraining digits"


def test_shipped_weights_reach_their_recorded_accuracy(shipped):
    settings = PretrainSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in shipped["settings"].items()})
    backbone = load_backbone_weights(SmallBackbone(settings.channels, settings.blocks), PRETRAINED_FILE).eval()
    classifier = DigitClassifier(backbone)
    classifier.fc.load_state_dict(shipped["classifier"])
    crops = DigitCrops(cache(load_digits("val")), settings)
    assert abs(accuracy(classifier, *crops.centred()) - shipped["val_accuracy"]) < 0.005


def test_the_detector_loads_the_shipped_backbone(shipped):
    model = FasterRCNN(DetectorConfig.course(backbone_weights="digits"))
    for key, value in shipped["backbone"].items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    scratch = FasterRCNN(DetectorConfig.course(backbone_weights=None, backbone_frozen_stages=0))
    assert not torch.equal(scratch.backbone[0][0].weight, shipped["backbone"]["0.0.weight"])


def test_loading_weights_that_do_not_fit_says_how_to_fix_it(tmp_path):
    with pytest.raises(ValueError, match="backbone_weights=None"):
        load_backbone_weights(SmallBackbone((8, 16, 32)), PRETRAINED_FILE)
    with pytest.raises(FileNotFoundError, match="python -m minifrcnn pretrain"):
        load_backbone_weights(SmallBackbone(), tmp_path / "missing.pt")
    torch.save({"backbone": {"x": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone_weights(SmallBackbone(), tmp_path / "other.pt")


# ----------------------------------------------------------------------------- freezing


def test_frozen_stages_get_no_gradient_and_keep_their_statistics():
    torch.manual_seed(0)
    backbone = SmallBackbone((8, 8, 16), (1, 2, 1)).freeze(2)
    frozen, free = list(backbone)[:3], list(backbone)[3:]
    assert all(not p.requires_grad for layer in frozen for p in layer.parameters())
    assert all(p.requires_grad for layer in free for p in layer.parameters())
    backbone.train()
    assert [layer.training for layer in backbone] == [False, False, False, True]
    before = copy.deepcopy(backbone.state_dict())
    backbone(torch.randn(4, 3, 32, 32)).sum().backward()
    after = backbone.state_dict()
    for key in before:  # BatchNorm running statistics change only where training is allowed
        changed = not torch.equal(before[key], after[key])
        assert changed == (key.startswith("3.") and "running" in key or key.startswith("3.") and "batches" in key), key
    twin = copy.deepcopy(backbone).train()
    assert [layer.training for layer in twin] == [False, False, False, True]
    assert backbone.freeze(0).frozen_stages == 0 and all(p.requires_grad for p in backbone.parameters())
    with pytest.raises(ValueError, match="0..3"):
        backbone.freeze(4)


def test_torchvision_backbones_have_stages_to_freeze():
    backbone = torchvision_backbone("resnet18").freeze(2)
    assert sum(backbone.stage_sizes) == len(backbone) and len(backbone.stage_sizes) == 4
    assert not any(p.requires_grad for p in backbone[0].parameters())
    assert all(p.requires_grad for p in backbone[-1].parameters())


def test_the_config_freezes_the_detectors_backbone():
    model = FasterRCNN(DetectorConfig.course(backbone_weights=None, backbone_frozen_stages=1)).train()
    assert not model.backbone[0].training and not any(p.requires_grad for p in model.backbone[0].parameters())
    assert all(p.requires_grad for p in model.backbone[1].parameters())


# ----------------------------------------------------------------------------- the command


@pytest.mark.slow
def test_pretrain_command_writes_a_weights_file_the_detector_loads(tmp_path):
    out = tmp_path / "backbone.pt"
    result = subprocess.run([sys.executable, "-m", "minifrcnn", "pretrain", "--steps", "2", "--out", str(out),
                             "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "val accuracy" in result.stdout and out.exists()
    model = FasterRCNN(DetectorConfig.course(backbone_weights=str(out)))
    saved = load_pretrained(out)
    assert saved["settings"]["steps"] == 2 and len(saved["loss"]) == 2
    assert torch.equal(model.backbone.state_dict()["0.0.weight"], saved["backbone"]["0.0.weight"])
    bad = subprocess.run([sys.executable, "-m", "minifrcnn", "pretrain", "--steps", "0", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--steps must be at least 1" in bad.stderr and "Traceback" not in bad.stderr

