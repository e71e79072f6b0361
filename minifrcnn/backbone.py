"""Backbones: the shared convolutional layers that turn an image into a feature map.

Paper, section 3: the RPN and the Fast R-CNN head share one conv net (ZF: 5 conv layers,
VGG-16: 13), cut before its fully connected layers; its last map has a stride of 16
pixels. Here:

* :class:`SmallBackbone`: a CPU-sized net for the course's 128x128 digit images: a few
  conv blocks (3x3 conv, normalisation, ReLU), stride 8 by default, trained from scratch
  in a minute or two.
* :func:`torchvision_backbone`: any torchvision classification model (ResNet, VGG,
  MobileNet, ...) truncated to a stride-16 map, as in the paper. Weights are never
  downloaded: ``weights=None`` by default, and pretrained weights only from a file the
  user already has.

Every backbone has ``out_channels`` (the ``C`` of its ``(N, C, H, W)`` output, the RPN
head's input) and ``stride`` (image pixels per feature-map cell).
"""
import os
from pathlib import Path

import torch
from torch import nn


def conv_block(in_channels, out_channels, stride=1, norm="batch"):
    """3x3 conv (padding 1) -> normalisation -> ReLU. Halves the map size if ``stride=2``.

    Args:
        norm (str): "batch" (BatchNorm: fast, fine with batches of 4+ images), "group"
            (GroupNorm with 8 groups: independent of the batch size) or "none".
    """
    layers = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm == "none")]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(out_channels))
    elif norm == "group":
        layers.append(nn.GroupNorm(min(8, out_channels), out_channels))
    elif norm != "none":
        raise ValueError(f"norm must be 'batch', 'group' or 'none', got {norm!r}")
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class StagedBackbone(nn.Sequential):
    """A backbone as a sequence of stages (each but the first starts where the map halves),
    whose first ``frozen_stages`` can be fixed for fine-tuning (:meth:`freeze`).

    Attributes:
        stage_sizes (tuple of int): the number of layers in each stage.
        frozen_stages (int): how many of the first stages are fixed.
    """

    stage_sizes = ()
    frozen_stages = 0

    def stages(self):
        """The layers of each stage, as lists."""
        layers, start, result = list(self), 0, []
        for size in self.stage_sizes:
            result.append(layers[start:start + size])
            start += size
        return result

    def freeze(self, stages):
        """Fix the first ``stages`` stages: no gradient, and their BatchNorm layers keep their
        (pretrained) running statistics in training mode too. The paper fine-tunes VGG-16 from
        conv3_1 up and keeps conv1-conv2 fixed (section 4, "for VGG-16 ... only conv3_1 and
        up are fine-tuned"): early layers hold generic features (edges, strokes), and fixing
        them also saves their backward pass. Returns ``self``."""
        if not 0 <= stages <= len(self.stage_sizes):
            raise ValueError(f"backbone_frozen_stages must be 0..{len(self.stage_sizes)} (the backbone's stages), "
                             f"got {stages}")
        self.frozen_stages = stages
        for i, stage in enumerate(self.stages()):
            for layer in stage:
                layer.requires_grad_(i >= stages)
        return self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        for stage in self.stages()[:self.frozen_stages]:
            for layer in stage:
                layer.eval()
        return self


class SmallBackbone(StagedBackbone):
    """A small conv net with a known stride, for CPU training on the course data.

    Each entry of ``channels`` starts a stage with a stride-2 block (the map halves)
    followed by ``blocks_per_stage - 1`` stride-1 blocks. With the defaults
    ``channels=(16, 32, 64)``: three stages, stride 8, a 128x128 image gives a
    ``(64, 16, 16)`` map; its receptive field (~70 px with the RPN's 3x3 conv) covers the
    largest digits (64 px).

    Args:
        channels (sequence of int): output channels of each stage.
        blocks_per_stage (int or sequence of int): conv blocks per stage.
        norm (str): see :func:`conv_block`.
        in_channels (int): 3 for RGB.

    Attributes:
        out_channels (int): channels of the output map.
        stride (int): ``2 ** len(channels)``.
    """

    def __init__(self, channels=(16, 32, 64), blocks_per_stage=(1, 2, 2), norm="batch", in_channels=3):
        if isinstance(blocks_per_stage, int):
            blocks_per_stage = (blocks_per_stage,) * len(channels)
        if len(blocks_per_stage) != len(channels) or min(blocks_per_stage) < 1:
            raise ValueError(f"need one block count >= 1 per stage, got {blocks_per_stage} for {channels}")
        layers = []
        for out, blocks in zip(channels, blocks_per_stage):
            layers.append(conv_block(in_channels, out, stride=2, norm=norm))
            layers += [conv_block(out, out, stride=1, norm=norm) for _ in range(blocks - 1)]
            in_channels = out
        super().__init__(*layers)
        self.out_channels = channels[-1]
        self.stride = 2 ** len(channels)
        self.stage_sizes = tuple(blocks_per_stage)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He initialisation, as for any ReLU net
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class _Truncated(StagedBackbone):
    """A truncated classification model with ``out_channels``, ``stride`` and its stages."""

    def __init__(self, layers, out_channels, stride, stage_sizes):
        super().__init__(*layers)
        self.out_channels = out_channels
        self.stride = stride
        self.stage_sizes = tuple(stage_sizes)


def _output_stride_and_channels(layers, size=64):
    """Run a ``size`` x ``size`` dummy image through ``layers``: ``[(stride, channels)]`` after each."""
    x = torch.zeros(1, 3, size, size)
    result = []
    with torch.no_grad():
        for layer in layers:
            x = layer(x)
            result.append((size // x.shape[-1], x.shape[1]))
    return result


def _stage_layers(model):
    """The model's convolutional part as a list of layers, in order."""
    if hasattr(model, "layer3"):  # ResNet, ResNeXt, Wide ResNet
        return [model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                model.layer3, model.layer4]
    if hasattr(model, "features"):  # VGG, AlexNet, MobileNet, EfficientNet, ConvNeXt, DenseNet, ...
        features = model.features
        return list(features.children()) if isinstance(features, nn.Sequential) else [features]
    raise ValueError(f"do not know how to take the conv layers of {type(model).__name__}: "
                     f"expected a ResNet-like model (layer1..layer4) or one with .features")


def _local_weights_file(name, weights):
    """The file holding ``weights`` for model ``name``, which must already be on this machine.

    ``weights`` is a file path, or a torchvision weights enum or name ("DEFAULT",
    "IMAGENET1K_V1") whose file torch keeps in ``torch.hub.get_dir()/checkpoints``.
    """
    if isinstance(weights, Path) or (isinstance(weights, str) and weights.endswith((".pth", ".pt"))):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        return path
    from torchvision.models import get_model_weights
    if isinstance(weights, str):
        weights = get_model_weights(name)[weights]
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights {weights} are not on this machine ({path} is missing), and "
            f"minifrcnn never downloads: copy the file there, or pass weights='path/to/file.pth'.")
    return path


def torchvision_backbone(name="resnet18", weights=None, stride=16, **kwargs):
    """A torchvision classification model cut at its last stride-``stride`` layer.

    The paper's backbones are classification nets (ZF, VGG-16) cut at the last conv layer
    (stride 16); ResNets are cut after ``layer3`` (stride 16), as in the ResNet paper's
    Faster R-CNN (He et al., 2016, "C4").

    Args:
        name (str): a torchvision classification model ("resnet18", "vgg16",
            "mobilenet_v3_large", ...).
        weights: None (random initialisation, the default), a path to a local state-dict
            file of the full classification model, or a torchvision weights name / enum
            ("DEFAULT", ``ResNet18_Weights.IMAGENET1K_V1``) whose file is already in
            ``torch.hub.get_dir()/checkpoints``. Never downloaded.
        stride (int): output stride (16 in the paper).
        **kwargs: passed to the model builder.

    Returns:
        nn.Sequential with ``out_channels`` and ``stride``: ``(N, 3, H, W) -> (N, C, H/16, W/16)``.
    """
    from torchvision.models import get_model
    model = get_model(name, weights=None, **kwargs)  # weights=None: never a download
    if weights is not None:
        path = _local_weights_file(name, weights)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # UnpicklingError, KeyError, IndexError, EOFError, ...: which one depends on the bytes
            raise ValueError(f"{path}: not a weights file torch can load safely (give the "
                             f"state dict of torchvision's {name}, saved with torch.save)") from None
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError):
            raise ValueError(f"{path}: not the weights of torchvision's {name}, its keys or shapes differ (give the "
                             f"state dict of {name} itself)") from None
    layers = _stage_layers(model)
    shapes = _output_stride_and_channels(nn.Sequential(*layers).eval())
    nn.Sequential(*layers).train()  # back to training mode, as any new model
    last = max((i for i, (s, _) in enumerate(shapes) if s <= stride), default=None)
    if last is None or shapes[last][0] != stride:
        raise ValueError(f"{name} has no layer with output stride {stride}: {[s for s, _ in shapes]}")
    strides = [s for s, _ in shapes[:last + 1]]
    starts = [0] + [i for i in range(1, len(strides)) if strides[i] > strides[i - 1]]
    sizes = [end - start for start, end in zip(starts, starts[1:] + [len(strides)])]
    return _Truncated(layers[:last + 1], out_channels=shapes[last][1], stride=stride, stage_sizes=sizes)


def resolve_weights_file(weights):
    """``"digits"`` -> the course's pretrained file, ``data/pretrained/small_backbone.pt``
    (written by ``python -m minifrcnn pretrain``); anything else is a path."""
    if weights == "digits":
        from .data import DATA_DIR
        return DATA_DIR / "pretrained" / "small_backbone.pt"
    return Path(weights)


def load_backbone_weights(backbone, weights):
    """Load a backbone's state dict from ``weights`` (a file, or ``"digits"``: the course's
    pretrained :class:`SmallBackbone`, ``data/pretrained/small_backbone.pt``). The file may
    be a plain state dict or a dict with a ``"backbone"`` entry (what ``minifrcnn.pretrain``
    writes); it is read with ``weights_only=True``. Returns ``backbone``."""
    path = resolve_weights_file(weights)
    if not path.is_file():
        raise FileNotFoundError(f"no backbone weights at {path}: regenerate the course's with "
                                f"'python -m minifrcnn pretrain', or set backbone_weights=None to train from scratch")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # UnpicklingError, KeyError, EOFError, ...: which one depends on the bytes
        raise ValueError(f"{path}: not a weights file torch can load safely (give a backbone's weights, e.g. "
                         f"data/pretrained/small_backbone.pt, or set backbone_weights=None)") from None
    if isinstance(state, dict) and "model" in state and "config" in state:
        raise ValueError(f"{path} is a whole detector's checkpoint, not a backbone's weights (give a backbone's "
                         f"weights, e.g. data/pretrained/small_backbone.pt, or set backbone_weights=None)")
    state = state.get("backbone", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (give a backbone's weights, e.g. "
                         f"data/pretrained/small_backbone.pt, or set backbone_weights=None)")
    own = backbone.state_dict()
    mismatched = [k for k in own if k not in state or state[k].shape != own[k].shape]
    if mismatched or set(state) - set(own):
        raise ValueError(f"{path} does not fit this backbone ({len(mismatched)} tensors missing or of another shape, "
                         f"e.g. {mismatched[:2]}): the file was made for other backbone_channels / backbone_blocks; "
                         f"set backbone_weights=None to train this one from scratch")
    backbone.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return backbone


