"""Backbones: the stride and channels they announce are the ones they produce, and
pretrained weights are only ever read from local files."""
import pytest
import torch
from torchvision.models import get_model

from minifrcnn.backbone import SmallBackbone, conv_block, torchvision_backbone


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_small_backbone_stride_and_channels(norm):
    net = SmallBackbone(norm=norm)
    out = net(torch.rand(2, 3, 128, 96))
    assert net.stride == 8 and net.out_channels == 64
    assert out.shape == (2, 64, 128 // 8, 96 // 8)


def test_small_backbone_other_depths():
    net = SmallBackbone(channels=(8, 16, 32, 48), blocks_per_stage=1)
    assert net.stride == 16 and net.out_channels == 48
    assert net(torch.rand(1, 3, 64, 64)).shape == (1, 48, 4, 4)


def test_small_backbone_is_trainable_and_deterministic():
    torch.manual_seed(0)
    a = SmallBackbone()
    torch.manual_seed(0)
    b = SmallBackbone()
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(a(x), b(x))
    a(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in a.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        conv_block(3, 8, norm="layer")
    with pytest.raises(ValueError, match="block count"):
        SmallBackbone(channels=(8, 16), blocks_per_stage=(1,))


@pytest.mark.parametrize("name, channels", [("resnet18", 256), ("mobilenet_v3_small", 48), ("vgg11", 512)])
def test_torchvision_backbone_stride_16(name, channels):
    net = torchvision_backbone(name)
    assert net.stride == 16 and net.out_channels == channels
    assert net.training  # a fresh model, in training mode
    out = net(torch.rand(1, 3, 128, 160))
    assert out.shape == (1, channels, 8, 10)


def test_torchvision_backbone_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        torchvision_backbone("resnet18", weights="DEFAULT")
    with pytest.raises(FileNotFoundError):
        torchvision_backbone("resnet18", weights=str(tmp_path / "missing.pth"))


def test_torchvision_backbone_loads_local_weights(tmp_path, monkeypatch):
    torch.manual_seed(1)
    full = get_model("resnet18", weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(full.state_dict(), path)
    net = torchvision_backbone("resnet18", weights=str(path))
    assert torch.equal(net[0].weight, full.conv1.weight)
    assert torch.equal(net[6][1].conv2.weight, full.layer3[1].conv2.weight)
    # A weights enum whose file sits in torch's hub cache loads too, without a download.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    from torchvision.models import ResNet18_Weights
    (tmp_path / "checkpoints").mkdir()
    name = ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[-1]
    torch.save(full.state_dict(), tmp_path / "checkpoints" / name)
    net = torchvision_backbone("resnet18", weights="DEFAULT")
    assert torch.equal(net[0].weight, full.conv1.weight)
