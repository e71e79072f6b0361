"""The paper's three ways to train Faster R-CNN (section 3.2), on the same data and budget.

Faster R-CNN is two networks, the RPN and the Fast R-CNN detector, that should share their
convolutional layers. Training them so that they do is the subject of section 3.2:

* **4-step alternating training** (the paper's main results): (1) train the RPN; (2) train
  a Fast R-CNN detector on the step-1 proposals, with its own conv layers; (3) re-train
  the RPN's own layers on the step-2 conv layers, which are fixed from now on (shared);
  (4) fine-tune the detector's own layers with the shared conv layers fixed.
* **Approximate joint training**: one network, the four losses summed, one backward
  pass; the proposals enter the detector as fixed boxes, so the gradient of the detector's
  loss with respect to the proposal coordinates is ignored.
* **Non-approximate joint training**: the same, but that gradient is kept. It needs an
  RoI layer that is differentiable in the box coordinates (the paper only mentions it):
  ``RoIOp("warp")`` (``minifrcnn.roi_ops.roi_warp``).

API (all three have the same signature shape and return a :class:`SchemeResult`)::

    train_alternating(dataset, config=None, settings=None, steps_per_stage=None, device=None, progress=True)
    train_approximate_joint(dataset, config=None, settings=None, device=None, progress=True)
    train_non_approximate_joint(dataset, config=None, settings=None, device=None, progress=True)

* ``dataset``: ``(image (3, H, W), {"boxes", "labels"})`` items, e.g.
  ``minifrcnn.data.cache(load_digits("train"))``.
* ``config`` (:class:`~minifrcnn.detector.DetectorConfig`): default ``DetectorConfig.course()``.
  The joint schemes set ``joint_training`` themselves; non-approximate also sets
  ``roi_op="warp"`` (RoI Align's sampling with box gradients: the same forward pass).
* ``settings`` (:class:`~minifrcnn.training.TrainSettings`): the budget, ``settings.steps``
  steps of ``settings.batch_size`` images, and the optimiser. Joint training spends them
  in one run. Alternating training splits them over its 4 stages (``steps_per_stage``: one
  int for every stage or 4 ints; default ``settings.steps`` split evenly); each stage has
  its own warm-up (scaled to its length) and decay, and its own data order (seed + stage).
* Every scheme starts from the same initial weights (``torch.manual_seed(settings.seed)``
  before building each network): alternating training's two networks start identical, as
  the paper's both start from the same ImageNet model. Same seed, same numbers on the CPU.
* :class:`SchemeResult`: ``name``; ``model``, the trained :class:`~minifrcnn.detector.FasterRCNN`
  in eval mode (for alternating: the shared model after step 4); ``histories`` and
  ``seconds``, one entry per stage (joint training has one stage, ``"joint"``);
  ``unshared_model``: alternating only, the model after step 2 (step 1's RPN with its own
  conv layers + step 2's detector with its own: :class:`UnsharedFasterRCNN`, the paper's
  "unshared" row, 68.5 vs 69.9 mAP shared), else None. Both models work with
  ``minifrcnn.detector.detect``.

Parts: :data:`ALTERNATING_STEPS` (what each step trains), :func:`set_trainable` (the
freezing of each step), :class:`AlternatingStage` (one step as a module the training loop
trains), :func:`evaluate_model` (mAP@0.5 and AP@[.5:.95]) and :func:`proposal_gradient`
(the gradient that approximate joint training drops, for pictures). Lesson 10.
"""
import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ..detector import DetectorConfig, FasterRCNN, detect, prepare_inputs
from ..evaluation import evaluate_coco, evaluate_voc
from ..head import assign_targets as head_assign_targets
from ..head import head_loss
from ..training import TrainSettings, train
from ..utils import get_device

# Which parts of a FasterRCNN each step of the alternating training trains; the others are
# fixed (section 3.2). Steps 1 and 2 train two different networks; 3 and 4 the second one.
ALTERNATING_STEPS = {
    1: ("backbone", "rpn"),   # the RPN, end to end with its own conv layers
    2: ("backbone", "head"),  # Fast R-CNN on step 1's proposals, with its own conv layers
    3: ("rpn",),              # the RPN's own layers, on step 2's conv layers (now shared, fixed)
    4: ("head",),             # Fast R-CNN's own layers, on the same fixed conv layers
}
STAGE_NAMES = {1: "1: RPN", 2: "2: Fast R-CNN", 3: "3: RPN, shared conv fixed", 4: "4: Fast R-CNN, shared conv fixed"}
PARTS = ("backbone", "rpn", "head")
RPN_LOSSES = ("loss_objectness", "loss_rpn_box_reg")
HEAD_LOSSES = ("loss_classifier", "loss_box_reg")


@dataclass
class SchemeResult:
    """What a training scheme returns (see the module docstring).

    Attributes:
        name (str): "alternating", "approximate joint" or "non-approximate joint".
        model (FasterRCNN): the trained detector, eval mode, one shared backbone.
        histories (dict): stage name -> :func:`minifrcnn.training.train`'s history (one dict
            of floats per step: ``"step"``, ``"lr"``, ``"loss"`` and that stage's losses).
        seconds (dict): stage name -> wall time of its training, in seconds.
        unshared_model (UnsharedFasterRCNN or None): alternating training after step 2.
    """

    name: str
    model: nn.Module
    histories: dict
    seconds: dict
    unshared_model: nn.Module = None

    @property
    def total_seconds(self):
        return sum(self.seconds.values())

    @property
    def steps(self):
        """Optimiser steps taken, all stages together."""
        return sum(len(history) for history in self.histories.values())

    def loss_curve(self, names):
        """``(steps, values)`` arrays: the step number counted across stages and the sum of
        the losses ``names`` at every step that computed all of them (alternating training
        computes the RPN's losses in steps 1 and 3 only, the head's in 2 and 4)."""
        steps, values, offset = [], [], 0
        for history in self.histories.values():
            for record in history:
                if all(name in record for name in names):
                    steps.append(offset + record["step"])
                    values.append(sum(record[name] for name in names))
            offset += len(history)
        return np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)


# ----------------------------------------------------------------------------- alternating training


def set_trainable(model, step=None):
    """Set ``requires_grad`` on every parameter of a FasterRCNN for a step of the 4-step
    alternating training (:data:`ALTERNATING_STEPS`); ``step=None`` makes everything
    trainable again.

    Returns:
        list of nn.Parameter: the trainable ones, in ``model.parameters()`` order (what the
        optimiser gets).
    """
    if step is not None and step not in ALTERNATING_STEPS:
        raise ValueError(f"step must be one of {sorted(ALTERNATING_STEPS)} (or None), got {step!r}")
    trained = PARTS if step is None else ALTERNATING_STEPS[step]
    for part in PARTS:
        getattr(model, part).requires_grad_(part in trained)
    if "backbone" in trained and getattr(model.backbone, "frozen_stages", 0):  # the config's fixed stages stay fixed
        model.backbone.freeze(model.backbone.frozen_stages)
    return [p for p in model.parameters() if p.requires_grad]


def _all_frozen(module):
    return not any(p.requires_grad for p in module.parameters())


@torch.no_grad()
def training_proposals(rpn, images, features):
    """The proposals a fixed RPN gives for training the detector: its *training* numbers
    (300 boxes per image after NMS in the course, 2000 in the paper) from its eval-mode layers, no
    gradient. ``images``: an :class:`~minifrcnn.rpn.ImageBatch`."""
    layer = rpn.proposal_layer
    was_training = layer.training
    layer.train()  # the mode only chooses the top-N numbers
    try:
        return rpn.predict(images, features)["proposals"]
    finally:
        layer.train(was_training)


class AlternatingStage(nn.Module):
    """One step of the 4-step alternating training, as a module that
    :func:`minifrcnn.training.train` can train: ``stage(images, targets)`` returns the
    losses of the network this step trains (the RPN's two or the detector's two).

    Args:
        detector (FasterRCNN): the network trained in this step (step 1: the RPN's
            network; steps 2-4: the detector's). Its ``requires_grad`` flags are set by
            :func:`set_trainable`.
        step (int): 1-4.
        proposer (FasterRCNN, optional): step 2 only: step 1's network, whose backbone and
            RPN (fixed) propose the boxes the detector trains on. In step 4 the detector's
            own RPN (trained in step 3, fixed) proposes, on the shared features.

    Fixed parts run in eval mode whatever the training loop asks: their BatchNorm layers
    then use, and keep, their running statistics, so that fixed means unchanged.
    """

    def __init__(self, detector, step, proposer=None):
        super().__init__()
        if step not in ALTERNATING_STEPS:
            raise ValueError(f"step must be 1, 2, 3 or 4, got {step!r}")
        if (step == 2) != (proposer is not None):
            raise ValueError("step 2, and only step 2, trains on the proposals of another network "
                             "(step 1's RPN): pass it as proposer")
        self.detector, self.step, self.proposer = detector, step, proposer
        set_trainable(detector, step)
        if proposer is not None:
            proposer.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        for module in (self.detector.backbone, self.detector.rpn, self.detector.head, self.proposer):
            if module is not None and _all_frozen(module):
                module.eval()
        return self

    def forward(self, images, targets):
        d = self.detector
        batch, targets, _ = d.prepare(images, targets)
        features = d.backbone(batch.tensors)
        if self.step in (1, 3):
            return d.rpn(batch, features, targets, propose=False)[1]
        if self.step == 2:  # proposals from step 1's network: its own backbone, its RPN
            with torch.no_grad():
                proposals = training_proposals(self.proposer.rpn, batch, self.proposer.backbone(batch.tensors))
        else:  # step 4: from the RPN of step 3, on the shared features
            proposals = training_proposals(d.rpn, batch, features)
        return d.head(features, proposals, batch.image_sizes, targets)[1]


class UnsharedFasterRCNN(nn.Module):
    """Faster R-CNN with two backbones: an RPN with its own conv layers proposes, a Fast
    R-CNN detector with its own conv layers classifies (alternating training after step 2;
    the paper's "unshared" row). Eval mode only: ``model(images)`` -> a list of
    ``{"boxes", "scores", "labels"}`` per image, as :class:`~minifrcnn.detector.FasterRCNN`.

    Args:
        proposer (FasterRCNN): its ``backbone`` and ``rpn`` are used (as they are).
        detector (FasterRCNN): its ``transform``, ``backbone`` and ``head`` are used.
    """

    def __init__(self, proposer, detector):
        super().__init__()
        self.config = detector.config
        self.transform = detector.transform
        self.rpn_backbone, self.rpn = proposer.backbone, proposer.rpn
        self.backbone, self.head = detector.backbone, detector.head

    def forward(self, images, targets=None):
        if self.training or targets is not None:
            raise ValueError("UnsharedFasterRCNN only detects (call .eval()); train it with train_alternating")
        batch, _, original_sizes = prepare_inputs(self, images)
        proposals, _ = self.rpn(batch, self.rpn_backbone(batch.tensors))
        detections, _ = self.head(self.backbone(batch.tensors), proposals, batch.image_sizes)
        return self.transform.postprocess(detections, batch.image_sizes, original_sizes)


def _new_detector(config, seed):
    """A FasterRCNN whose initial weights depend on ``seed`` only."""
    torch.manual_seed(seed)
    return FasterRCNN(config)


def split_steps(total, steps_per_stage=None, stages=4):
    """The steps of each stage: ``steps_per_stage`` (an int for each, or one per stage), by
    default ``total`` split as evenly as possible (the first stages get the remainder)."""
    if steps_per_stage is None:
        steps = [total // stages + (1 if i < total % stages else 0) for i in range(stages)]
    elif isinstance(steps_per_stage, int):
        steps = [steps_per_stage] * stages
    else:
        steps = [int(s) for s in steps_per_stage]
    if len(steps) != stages or min(steps) < 1:
        raise ValueError(f"need {stages} stages of at least 1 step each, got {steps}")
    return steps


def _stage_settings(settings, steps, stage):
    """The settings of one stage: its steps, a warm-up scaled to them, its own data order."""
    warmup = round(settings.warmup_steps * steps / max(1, settings.steps))
    return replace(settings, steps=steps, warmup_steps=min(warmup, steps - 1), seed=settings.seed + stage - 1)


def _timed_train(model, dataset, settings, device, progress):
    start = time.perf_counter()
    history = train(model, dataset, settings, device=device, progress=progress)
    return history, time.perf_counter() - start


def train_alternating(dataset, config=None, settings=None, steps_per_stage=None, device=None, progress=True):
    """The paper's 4-step alternating training (section 3.2); see the module docstring.

    Returns:
        SchemeResult: ``model`` (after step 4: one backbone shared by the RPN of step 3 and
        the detector of step 4), ``unshared_model`` (after step 2), and per stage
        (:data:`STAGE_NAMES`) its loss history and wall time.
    """
    config = config or DetectorConfig.course()
    settings = settings or TrainSettings()
    device = device or get_device()
    stage_steps = split_steps(settings.steps, steps_per_stage)
    rpn_network = _new_detector(config, settings.seed)  # step 1: its backbone and RPN are trained
    detector = _new_detector(config, settings.seed)  # steps 2-4: the same initial weights
    histories, seconds, unshared = {}, {}, None
    for step, steps in enumerate(stage_steps, start=1):
        stage = AlternatingStage(rpn_network if step == 1 else detector, step,
                                 proposer=rpn_network if step == 2 else None)
        name = STAGE_NAMES[step]
        histories[name], seconds[name] = _timed_train(stage, dataset, _stage_settings(settings, steps, step),
                                                      device, progress)
        if step == 2:  # the two networks as they are now, before the detector's layers are shared
            unshared = UnsharedFasterRCNN(rpn_network, copy.deepcopy(detector)).eval()
    for network in (rpn_network, detector):
        set_trainable(network, None)
    unshared.requires_grad_(True)
    return SchemeResult("alternating", detector.eval(), histories, seconds, unshared)


# ----------------------------------------------------------------------------- joint training


def _train_joint(name, dataset, config, settings, device, progress):
    settings = settings or TrainSettings()
    device = device or get_device()
    model = _new_detector(config, settings.seed)
    history, seconds = _timed_train(model, dataset, settings, device, progress)
    return SchemeResult(name, model.eval(), {"joint": history}, {"joint": seconds})


def train_approximate_joint(dataset, config=None, settings=None, device=None, progress=True):
    """Approximate joint training (section 3.2): :func:`minifrcnn.training.train` on a
    FasterRCNN with ``joint_training="approximate"``: the proposals are fixed boxes.
    Returns a :class:`SchemeResult` with one stage, ``"joint"``."""
    config = replace(config or DetectorConfig.course(), joint_training="approximate")
    return _train_joint("approximate joint", dataset, config, settings, device, progress)


def train_non_approximate_joint(dataset, config=None, settings=None, device=None, progress=True):
    """Non-approximate joint training: the detector's losses also reach the RPN's box
    deltas through the proposal coordinates. The config's RoI op is replaced by
    ``"warp"``, RoI Align's sampling kept differentiable in the boxes (the same forward
    pass as ``"align"``); ``roi_op="pool"`` is refused: pooling's rounding has no
    gradient with respect to the box, and the warp would change the forward pass.
    Returns a :class:`SchemeResult` with one stage, ``"joint"``."""
    config = config or DetectorConfig.course()
    if config.roi_op == "pool":
        raise ValueError("non-approximate joint training needs an RoI op differentiable in the box coordinates: "
                         "RoI pooling rounds them (no gradient); use roi_op='align' or 'warp' (trained as 'warp')")
    config = replace(config, joint_training="non-approximate", roi_op="warp")
    return _train_joint("non-approximate joint", dataset, config, settings, device, progress)


# ----------------------------------------------------------------------------- measuring


def evaluate_model(model, dataset, batch_size=16, device=None):
    """mAP@0.5 (VOC, the paper's) and AP@[.5:.95] (COCO) of a detector on a data set.

    Returns:
        dict: ``"map50"``, ``"ap"`` (floats in [0, 1]) and ``"seconds"`` (detection time).
    """
    start = time.perf_counter()
    detections = detect(model, [image for image, _ in dataset], batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    truths = [target for _, target in dataset]
    num_classes = model.config.num_classes
    return {"map50": evaluate_voc(detections, truths, num_classes)["map"],
            "ap": evaluate_coco(detections, truths, num_classes)["ap"], "seconds": seconds}


def proposal_gradient(model, images, targets):
    """The gradient of the detection head's losses with respect to the proposals' box
    coordinates: what non-approximate joint training back-propagates and approximate joint
    training drops.

    Every test-time proposal of each image counts (no sampling, so the picture does not
    depend on a random draw); labels and regression targets come from the fixed boxes, as
    in training (see :func:`minifrcnn.head.sample_proposals`). The model runs in eval mode
    (BatchNorm's running statistics) and its parameters' ``.grad`` are left untouched.

    Args:
        model (FasterRCNN): ``joint_training="non-approximate"`` for a gradient; with
            approximate training the proposals have none and the result is all zeros.
        images (list of Tensor): ``(3, H, W)``; targets (list of dict): ``{"boxes", "labels"}``.

    Returns:
        (list of Tensor, list of Tensor): per image, the proposals ``(R, 4)`` and
        ``d loss / d (x1, y1, x2, y2)`` ``(R, 4)``, in the prepared image's pixels (the
        course's 128 x 128 images are not resized).
    """
    was_training = model.training
    model.eval()
    try:
        batch, targets, _ = model.prepare(images, targets)
        with torch.enable_grad():
            features = model.backbone(batch.tensors)
            proposals = model.rpn.predict(batch, features)["proposals"]
            if not proposals[0].requires_grad:
                return [p.detach() for p in proposals], [torch.zeros_like(p) for p in proposals]
            head = model.head
            labels, regression_targets, rois = [], [], []
            for p, t in zip(proposals, targets):
                fixed = p.detach()
                lab, matched = head_assign_targets(fixed, t["boxes"], t["labels"], head.matcher)
                keep = lab >= 0  # RoIs between the head's two thresholds (if any) take no loss
                labels.append(lab[keep])
                regression_targets.append(head.box_coder.encode(matched[keep], fixed[keep]))
                rois.append(p[keep])  # indexing keeps the path back to the proposals
            logits, deltas = head.predict(features, rois)
            loss = sum(head_loss(logits, deltas, torch.cat(labels), torch.cat(regression_targets)))
            grads = torch.autograd.grad(loss, proposals, allow_unused=True)
        return ([p.detach() for p in proposals],
                [torch.zeros_like(p) if g is None else g for p, g in zip(proposals, grads)])
    finally:
        model.train(was_training)
