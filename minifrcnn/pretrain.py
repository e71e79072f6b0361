"""Pretraining the backbone as a digit classifier, before it becomes a detector's backbone.

Paper, sections 3.1.3 and 4: the shared conv layers start from a network trained to
*classify* ImageNet images; detection then fine-tunes them. A classifier has learned edges,
strokes and shapes from many labelled examples, so the detector starts from useful features
instead of random ones and needs far fewer steps. The course does the same at its scale
(lesson 08):

* the classification data are **crops around the training split's digits** (never a val or
  test digit: the weights file records the MNIST rows of the digits it saw), jittered in
  scale and position (:func:`crop_boxes`), cut out by RoI Align at ``crop_size`` pixels
  and given a random slant, shear and width (:func:`random_shapes`: new writers shape their
  digits differently) (:class:`DigitCrops`);
* the classifier (:class:`DigitClassifier`) is the detector's backbone (``SmallBackbone``),
  global average pooling and one linear layer over the 10 digits; detection keeps the conv
  layers and drops the rest, as the paper keeps VGG-16's conv layers;
* AdamW with a warm-up and a cosine decay (:func:`pretrain`); about 5 minutes on one CPU thread.

``python -m minifrcnn pretrain`` (:func:`main_args`) regenerates the shipped file,
``data/pretrained/small_backbone.pt`` (:func:`save_pretrained`): the same bits on the same
machine, torch version and thread count (one thread by default, as the shipped file). A detector loads it through
``DetectorConfig.backbone_weights="digits"`` (the default); ``backbone_weights=None`` trains
from scratch.
"""
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_align

from .backbone import SmallBackbone, resolve_weights_file
from .data import DATA_DIR

PRETRAINED_FILE = resolve_weights_file("digits")  # data/pretrained/small_backbone.pt
IMAGE_MEAN = (0.485, 0.456, 0.406)  # the detector's normalisation (DetectorConfig.image_mean / image_std)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PretrainSettings:
    """How the backbone is pretrained. The defaults made ``data/pretrained/small_backbone.pt``."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    crop_size: int = 48  # pixels of a square crop
    digit_fraction: tuple = (0.3, 0.85)  # the digit's longer side, as a share of the crop's side
    shift: float = 0.15  # the crop's centre moves by up to this share of its side
    rotation: float = 15.0  # degrees: each crop is turned by up to this, either way
    shear: float = 0.25  # slant: x moves by up to this share of y, either way
    stretch: float = 0.15  # the width is multiplied by exp(u), u uniform in [-stretch, stretch]
    seed: int = 0
    channels: tuple = (32, 64, 128)  # SmallBackbone (the detector's backbone_channels)
    blocks: tuple = (1, 2, 2)

    def learning_rate(self, step):
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def crop_boxes(boxes, fraction, shift):
    """The square crop around each digit that pretraining classifies.

    Args:
        boxes (Tensor): ``(N, 4)`` digit boxes ``(x1, y1, x2, y2)``.
        fraction (Tensor): ``(N,)`` the digit's longer side as a share of the crop's side
            (0.5: the crop is twice the digit's size, half of it context).
        shift (Tensor): ``(N, 2)`` how far the crop's centre moves from the digit's, in x and y,
            as a share of the crop's side (0: centred).

    Returns:
        Tensor: ``(N, 4)`` crop boxes ``(x1, y1, x2, y2)``, squares of side
        ``longer side / fraction`` (they may reach outside the image: the padding is the mean
        colour).
    """
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sides = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values / fraction
    centres = centres + shift * sides[:, None]
    return torch.cat([centres - sides[:, None] / 2, centres + sides[:, None] / 2], dim=1)


def random_shapes(crops, rotation, shear, stretch, generator):
    """Each crop turned, sheared and made wider or narrower at random: augmentation.

    The training split's digits come from 350 writers' samples per class; the val and test
    digits are other people's. A classifier that sees each training digit in one shape only
    learns those shapes (without this, its training accuracy reached 0.99 and its val
    accuracy 0.935: benchmarks/README.md). Turning a crop by up to ``rotation`` degrees,
    slanting it by up to ``shear`` and stretching its width by ``exp(u)``,
    ``|u| <= stretch``, shows it digits as other writers draw them.

    Args:
        crops (Tensor): ``(N, 3, S, S)``, normalised (zero is the mean colour, which fills
            the corners that the turn brings in).
        rotation (float): degrees; shear, stretch (float): see above. All 0: unchanged crops.
        generator (torch.Generator): the random draws (three of ``N`` each).

    Returns:
        Tensor: ``(N, 3, S, S)``.
    """
    n = len(crops)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(rotation)
    slant = (torch.rand(n, generator=generator) * 2 - 1) * shear
    width = torch.exp((torch.rand(n, generator=generator) * 2 - 1) * stretch)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid's matrix maps each output pixel to where it is read in the input:
    # rotation @ [[width, slant], [0, 1]], centred on the crop
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * width, cos * slant - sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * width, sin * slant + cos
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    return F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def class_evidence(features, weight, bias):
    """The classifier's linear layer applied at every cell of a feature map instead of after
    the average: ``(C, H, W)`` features, ``(K, C)`` weight, ``(K,)`` bias -> ``(K, H, W)``
    class scores per cell. The mean over the cells is the classifier's logits (both steps
    are linear, so they commute), so each map says where the evidence for a class sits
    (a class activation map; Zhou et al., CVPR 2016)."""
    return torch.einsum("kc,chw->khw", weight, features) + bias[:, None, None]


class DigitClassifier(nn.Module):
    """The pretraining network: the backbone, global average pooling, one linear layer over the
    10 digits, ``(N, 3, S, S) -> (N, 10)``. Detection keeps the conv layers (the backbone) and
    drops the rest, as the paper keeps VGG-16's conv layers. (Keeping VGG's fc6 and fc7 as the
    head's, as Fast R-CNN does, was tried: classification trains them to ignore where the digit
    sits in the crop, and the detector's boxes got worse: benchmarks/README.md.)"""

    def __init__(self, backbone, num_classes=10):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, images):
        return self.fc(self.backbone(images).mean(dim=(2, 3)))


class DigitCrops:
    """Digit crops from detection images: the classification data of pretraining.

    Args:
        dataset (sequence): ``(image (3, H, W) in [0, 1], {"boxes", "labels"})`` items, e.g.
            ``minifrcnn.data.cache(load_digits("train"))``; labels 1..10 (digit + 1).
        settings (PretrainSettings).

    ``sample(n, generator)`` draws ``n`` jittered, reshaped crops ``(n, 3, S, S)`` (normalised
    as the detector normalises; :func:`random_shapes`) and their classes ``(n,)`` (the digit,
    0..9);
    ``centred()`` gives one un-jittered crop per digit, for measuring accuracy.
    """

    def __init__(self, dataset, settings):
        self.settings = settings
        mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
        # Normalised first, so that roi_align's zero padding outside an image is the mean colour,
        # as the detector's batch padding is.
        self.images = (torch.stack([image for image, _ in dataset]) - mean) / std
        index, boxes, labels = [], [], []
        for i, (_, target) in enumerate(dataset):
            index.append(torch.full((len(target["boxes"]),), i, dtype=torch.float32))
            boxes.append(target["boxes"].float())
            labels.append(target["labels"] - 1)
        self.image_index, self.boxes, self.labels = torch.cat(index), torch.cat(boxes), torch.cat(labels)

    def __len__(self):
        return len(self.labels)

    def crop(self, index, boxes):
        """Crops of ``boxes`` ``(N, 4)`` in images ``index`` ``(N,)``: ``(N, 3, S, S)``."""
        size = self.settings.crop_size
        return roi_align(self.images, torch.cat([index[:, None], boxes], dim=1), (size, size), spatial_scale=1.0,
                         sampling_ratio=2, aligned=True)

    def sample(self, n, generator):
        s = self.settings
        pick = torch.randint(len(self), (n,), generator=generator)
        low, high = s.digit_fraction
        fraction = low + (high - low) * torch.rand(n, generator=generator)
        shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * s.shift
        crops = self.crop(self.image_index[pick], crop_boxes(self.boxes[pick], fraction, shift))
        return random_shapes(crops, s.rotation, s.shear, s.stretch, generator), self.labels[pick]

    def centred(self, fraction=0.6):
        """One crop per digit, centred, the digit's longer side ``fraction`` of the crop's."""
        no_shift = torch.zeros(len(self), 2)
        return self.crop(self.image_index, crop_boxes(self.boxes, torch.full((len(self),), fraction), no_shift)), \
            self.labels


def denormalise(images):
    """Normalised crops ``(N, 3, S, S)`` back to RGB in [0, 1], to look at them."""
    mean, std = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


@torch.no_grad()
def accuracy(classifier, crops, labels, batch_size=512):
    was_training = classifier.training
    classifier.eval()
    correct = sum(int((classifier(crops[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
                  for i in range(0, len(labels), batch_size))
    classifier.train(was_training)
    return correct / max(1, len(labels))


@torch.no_grad()
def confusion_matrix(classifier, crops, labels, num_classes=10, batch_size=512):
    """``(K, K)`` counts: row = the true digit, column = the classifier's answer."""
    was_training = classifier.training
    classifier.eval()
    predicted = torch.cat([classifier(crops[i:i + batch_size]).argmax(1) for i in range(0, len(labels), batch_size)])
    classifier.train(was_training)
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, -1)


def pretrain(train_items, settings=None, val_items=None, progress=True, log_every=100):
    """Train ``SmallBackbone(settings.channels, settings.blocks)`` as a digit classifier.

    Returns:
        (SmallBackbone, dict): the backbone (the classifier's conv layers; its linear layer
        is dropped, as detection drops the classifier's fully connected layers) and a report:
        settings, loss history, val accuracy of centred crops, seconds, and the linear
        layer's weights (``"classifier"``, to rebuild the classifier).
    """
    settings = settings or PretrainSettings()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    classifier = DigitClassifier(SmallBackbone(settings.channels, settings.blocks))
    crops = DigitCrops(train_items, settings)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    history, start = [], time.perf_counter()
    classifier.train()
    for step in range(settings.steps):
        images, labels = crops.sample(settings.batch_size, generator)
        loss = F.cross_entropy(classifier(images), labels)
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        if progress and (step + 1) % log_every == 0:
            print(f"step {step + 1}: loss {sum(history[-log_every:]) / log_every:.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    report = {"settings": asdict(settings), "loss": history, "seconds": time.perf_counter() - start,
              "train_crops": len(crops),
              "classifier": {k: v.detach().clone() for k, v in classifier.fc.state_dict().items()}}
    if val_items is not None:
        val = DigitCrops(val_items, settings)
        report["val_accuracy"] = accuracy(classifier, *val.centred())
    return classifier.backbone.eval(), report


def training_digits(split="train"):
    """The MNIST rows (``mnist_index``) of every digit in a split's detection images: the
    digits whose crops pretraining sees (recorded in the weights file)."""
    from .data import read_coco
    coco = read_coco(DATA_DIR / "digits" / f"{split}.json")
    return sorted({int(a["mnist_index"]) for a in coco["annotations"]})


def save_pretrained(path, backbone, report, command="python -m minifrcnn pretrain"):
    """Write the backbone's weights with everything needed to trust them: the settings, the
    MNIST rows of the digits it saw, its val accuracy, the loss curve, versions, the command.
    Tensors and plain Python values only (loads with ``weights_only=True``)."""
    import platform

    import torchvision
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"backbone": {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()},
             "classifier": report["classifier"],
             "settings": report["settings"], "val_accuracy": report.get("val_accuracy"),
             "loss": [round(v, 5) for v in report["loss"]], "seconds": round(report["seconds"], 1),
             "train_crops": report["train_crops"], "mnist_indices": training_digits("train"),
             "command": command, "threads": torch.get_num_threads(),
             "versions": {"python": platform.python_version(), "torch": str(torch.__version__),
                          "torchvision": str(torchvision.__version__)}}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_pretrained(path=PRETRAINED_FILE):
    """The dict :func:`save_pretrained` wrote (``weights_only=True``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_classifier(path=PRETRAINED_FILE):
    """The whole pretrained classifier of a weights file (backbone and linear layer), eval mode."""
    state = load_pretrained(path)
    settings = state["settings"]
    classifier = DigitClassifier(SmallBackbone(tuple(settings["channels"]), tuple(settings["blocks"])))
    classifier.backbone.load_state_dict(state["backbone"])
    classifier.fc.load_state_dict(state["classifier"])
    return classifier.eval()


def main_args(args):
    """``python -m minifrcnn pretrain [--out FILE] [--steps N]``: pretrain on the training
    split's digits, report the val accuracy, write the weights file."""
    from dataclasses import replace

    from .data import cache, load_digits
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = PretrainSettings() if args.steps is None else replace(PretrainSettings(), steps=args.steps)
    if settings.steps < 1:
        raise SystemExit(f"--steps must be at least 1, got {settings.steps}")
    backbone, report = pretrain(cache(load_digits("train")), settings, val_items=cache(load_digits("val")))
    save_pretrained(args.out, backbone, report, command=args.command_line)
    print(f"pretrained {settings.steps} steps in {report['seconds']:.0f} s; val accuracy of centred digit crops "
          f"{report['val_accuracy']:.3f}; weights in {args.out}")
