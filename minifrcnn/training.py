"""Training: one seeded, resumable loop for any model that returns a dict of losses.

Faster R-CNN here is trained end to end by *approximate joint training* (paper, section
3.2): the RPN and the detection head share the backbone and their four losses are summed;
the proposals enter the head as fixed boxes (``minifrcnn.rpn.generate_proposals`` detaches
them), so no gradient flows through their coordinates. Lesson 10 compares this with the
paper's 4-step alternating training and with non-approximate joint training.

What the loop adds to ``loss.backward(); optimizer.step()``:

* AdamW (the course's default for its short fine-tuning) or the paper's SGD with momentum,
  weight decay, a linear warm-up, then a cosine or step decay;
* gradient-norm clipping (early RPN deltas can be wild);
* a tqdm progress bar and an optional live loss plot;
* checkpoints every few steps, resumable bit for bit (model, optimizer, schedule, random
  state, loss history), loaded with ``torch.load(..., weights_only=True)``;
* settings that cannot train are refused when made (``TrainSettings`` checks itself);
* a non-finite loss stops training with a clear message, and the checkpoint on disk is
  the last good state, never one with NaN weights;
* determinism: the data order comes from ``seed`` and the epoch, the samplers from the
  global generator seeded once; the same seed gives the same numbers on CPU.
"""
import math
import numbers
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from .utils import get_device


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of the training loop (paper, section 3.1.3: SGD, momentum 0.9,
    weight decay 5e-4, lr 0.001 for 60k mini-batches then 0.0001; the course fine-tunes for
    1,200 steps, so it uses AdamW, a warm-up and a decay: in 1,000 steps, over three seeds,
    AdamW reached about 4 points more validation AP@[.5:.95] than SGD; benchmarks/README.md)."""

    steps: int = 1200  # lesson 09's training and lesson 11's baseline (times: benchmarks/README.md)
    batch_size: int = 4  # 4 images a step: more steps for the same time than 8 (benchmarks/tune_detector.py)
    lr: float = 0.003  # AdamW's; SGD fine-tuned best at 0.06 (benchmarks/tune_detector.py)
    momentum: float = 0.9  # SGD's only
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    schedule: str = "cosine"  # or "step": x0.1 from step_at of the steps
    clip_grad_norm: float = 0.0  # 0: no clipping (every tuning run's loss stayed finite without it)
    seed: int = 0
    checkpoint_every: int = 100
    optimizer: str = "adamw"  # or "sgd", the paper's (with momentum)
    step_at: float = 0.75  # the "step" schedule divides the rate by 10 from this fraction of the steps

    def __post_init__(self):
        """Refuse settings that cannot train, each with what is wrong and how to fix it (one line)."""
        for error in settings_errors(self):
            raise ValueError(error)

    def learning_rate(self, step):
        """The learning rate at ``step`` (0-based): linear warm-up, then the decay."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "step":
            return self.lr * (0.1 if step >= self.step_at * self.steps else 1.0)
        if self.schedule == "cosine":
            progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
            return self.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        raise ValueError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}")


def _finite_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _whole_number(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def settings_errors(settings):
    """What is wrong with a :class:`TrainSettings`, as one-line messages ``what (how to fix)``;
    empty when nothing is. The command line prints the first."""
    s, errors = settings, []

    def check(ok, message):
        if not ok:
            errors.append(message)

    check(_whole_number(s.steps) and s.steps >= 1, f"steps must be at least 1, got {s.steps!r} (train 1 step or more)")
    check(_whole_number(s.batch_size) and s.batch_size >= 1,
          f"batch_size must be at least 1, got {s.batch_size!r} (use 1 image a step or more)")
    check(_finite_number(s.lr) and s.lr > 0, f"lr must be a finite number above 0, got {s.lr!r} (e.g. 0.01)")
    check(_finite_number(s.momentum) and 0 <= s.momentum < 1, f"momentum must be in [0, 1), got {s.momentum!r} "
          "(the paper's is 0.9)")
    check(_finite_number(s.weight_decay) and s.weight_decay >= 0,
          f"weight_decay must be a finite number >= 0, got {s.weight_decay!r} (the paper's is 0.0005)")
    check(_whole_number(s.warmup_steps) and s.warmup_steps >= 0,
          f"warmup_steps must be 0 or more, got {s.warmup_steps!r} (0: no warm-up)")
    check(s.schedule in ("cosine", "step"), f"schedule must be 'cosine' or 'step', got {s.schedule!r}")
    check(_finite_number(s.clip_grad_norm) and s.clip_grad_norm >= 0,
          f"clip_grad_norm must be a finite number >= 0, got {s.clip_grad_norm!r} (0: no clipping)")
    check(_whole_number(s.checkpoint_every) and s.checkpoint_every >= 1,
          f"checkpoint_every must be at least 1, got {s.checkpoint_every!r} (a checkpoint every N steps)")
    check(s.optimizer in ("sgd", "adamw"), f"optimizer must be 'sgd' or 'adamw', got {s.optimizer!r}")
    check(_finite_number(s.step_at) and 0 < s.step_at <= 1,
          f"step_at must be in (0, 1], got {s.step_at!r} (the share of the steps after which the step schedule "
          "divides the rate by 10)")
    return errors


class NonFiniteLossError(FloatingPointError):
    """Training produced an infinite or NaN loss."""


def batch_indices(num_items, batch_size, step, seed):
    """The dataset indices of mini-batch ``step``: epochs are fresh permutations seeded by
    ``(seed, epoch)``, so any step's batch is known without replaying the ones before
    (which makes resuming exact). The last partial batch of an epoch is dropped."""
    per_epoch = num_items // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({num_items} items)")
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    return order[position * batch_size:(position + 1) * batch_size].tolist()


def save_checkpoint(path, model, optimizer, step, history, settings, metadata=None, rng_per_process=None):
    """Write a checkpoint atomically (a crash mid-write never leaves a broken file).
    ``metadata`` (plain values, e.g. the class names of your data) is stored as ``"data"``;
    ``rng_per_process`` (a distributed run: every process's random state) as ``"rng_per_process"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "history": history, "settings": asdict(settings), "rng": torch.get_rng_state()}
    if rng_per_process is not None:
        state["rng_per_process"] = rng_per_process
    if hasattr(model, "config"):  # enough to rebuild the model: FasterRCNN(DetectorConfig.from_dict(config))
        state["config"] = asdict(model.config)
    if metadata is not None:
        state["data"] = metadata
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint written by :func:`save_checkpoint`, or a plain state dict.

    Only tensors and plain Python containers are accepted (``weights_only=True``): a
    file that would run code when unpickled is refused with a clear error.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, ... depending on the file
        raise ValueError(f"{path}: not a plain checkpoint of tensors (refused to unpickle it safely): "
                         f"{str(exc).splitlines()[0]}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a dict (a state dict or a minifrcnn checkpoint), "
                         f"got {type(state).__name__}")
    return state


def load_weights(model, path, map_location="cpu"):
    """Load model weights from a checkpoint or a plain state dict file into ``model``."""
    state = load_checkpoint(path, map_location)
    weights = state["model"] if "model" in state and isinstance(state["model"], dict) else state
    if not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"{path}: the state dict holds values that are not tensors")
    model.load_state_dict(weights)
    return model


def make_optimizer(params, settings):
    """AdamW (the course's: faster in a short budget), or SGD with momentum (the paper's)."""
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {settings.optimizer!r}")


class LiveLossPlot:
    """Loss curves that redraw in place in a notebook (an IPython display handle), and do
    nothing outside one. Raw losses in light colours, a running mean on top.

    Args:
        names (sequence of str): the losses to plot (keys of the losses dict; "total" is
            their sum).
        every (int): redraw every this many steps.
        window (int): running-mean window, in steps.
        enabled (bool): False records the values without drawing.
    """

    def __init__(self, names=("loss_objectness", "loss_rpn_box_reg", "total"), every=50, window=25,
                 figsize=(10, 3.2), enabled=True):
        self.names, self.every, self.window, self.figsize = tuple(names), every, window, figsize
        self.values = {name: [] for name in self.names}
        self.handle = None
        self.enabled = enabled
        self.figure = None

    def add(self, step, losses):
        for name in self.names:
            value = losses[name]
            self.values[name].append(float(value.detach() if isinstance(value, torch.Tensor) else value))
        if self.enabled and (step + 1) % self.every == 0:
            self.draw()

    def running_mean(self, name):
        v = np.asarray(self.values[name], dtype=np.float64)
        if v.size == 0:
            return v
        c = np.cumsum(np.insert(v, 0, 0.0))
        n = np.minimum(np.arange(1, v.size + 1), self.window)
        return (c[1:] - c[np.arange(1, v.size + 1) - n]) / n

    def draw(self):
        figure, axes = plt.subplots(1, len(self.names), figsize=self.figsize)
        axes = np.atleast_1d(axes)
        for ax, name, color in zip(axes, self.names, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")):
            v = self.values[name]
            ax.plot(v, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(self.running_mean(name), color=color, linewidth=1.8, label=f"mean of {self.window}")
            ax.set_title(name + (f": {self.running_mean(name)[-1]:.3f}" if v else ""), fontsize=10)
            ax.set_xlabel("step")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        self.figure = figure
        try:
            from IPython import get_ipython
            from IPython.display import display
            if get_ipython() is not None:
                if self.handle is None:
                    self.handle = display(figure, display_id=True)
                else:
                    self.handle.update(figure)
        finally:
            plt.close(figure)  # shown as a PNG; no second copy at the end of the cell
        return figure


def process_group():
    """``(rank, world size)`` of a distributed run (``torchrun``), ``(0, 1)`` otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def distribute(model, device):
    """``model`` wrapped for a distributed run: ``DistributedDataParallel`` averages the
    gradients of the processes, so each step is one step on the global batch.

    BatchNorm: on GPUs the layers that train become ``SyncBatchNorm`` (statistics over the
    global batch, as one process would compute them). PyTorch has no synchronised BatchNorm
    on CPUs (gloo): there they are **frozen** (eval mode, their pretrained statistics kept,
    like the fixed stages'), and the weights still train. Returns the wrapped model."""
    from torch.nn.parallel import DistributedDataParallel
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index if device.index is not None else 0])
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.train = lambda mode=True, norm=norm: torch.nn.Module.train(norm, False)  # frozen in training too
        norm.eval()
    return DistributedDataParallel(model)


def _to_device(images, targets, device):
    return ([image.to(device) for image in images],
            [{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for t in targets])


def train(model, dataset, settings=None, checkpoint=None, resume=False, device=None, progress=True,
          live_plot=None, metadata=None):
    """Train ``model`` on ``dataset`` for ``settings.steps`` mini-batches.

    Args:
        model (nn.Module): in train mode, ``model(images, targets)`` returns a dict of
            losses (``FasterRCNN``) or ``(anything, dict of losses)`` (the RPN alone).
        dataset (sequence): ``(image (3, H, W), {"boxes", "labels"})`` items; a list made
            by ``minifrcnn.data.cache`` is fastest.
        settings (TrainSettings).
        checkpoint (str or Path, optional): where to save checkpoints.
        resume (bool): continue from ``checkpoint`` if it exists.
        device: default ``minifrcnn.get_device()``.
        progress (bool): show a tqdm progress bar.
        live_plot (LiveLossPlot, optional): gets every step's losses (and "total"); it
            redraws itself every ``live_plot.every`` steps and once at the end.
        metadata (dict, optional): plain values written into every checkpoint as ``"data"``
            (the command line records the class names and category ids of your data).

    Distributed (``torchrun``; :func:`process_group`): every process runs this with the same
    arguments; each takes a disjoint share of every global batch of ``settings.batch_size``
    images (the same global batches as one process: ``batch_indices``), gradients are averaged
    (:func:`distribute`, which also says what happens to BatchNorm), the history holds the losses
    averaged over the processes, and only rank 0 shows progress, plots and writes checkpoints;
    a resumed run restores every process's random state.

    Returns:
        list of dict: the losses of every step (floats, with ``"lr"`` and ``"step"``).
    """
    settings = settings or TrainSettings()
    device = torch.device(device or get_device())
    rank, world = process_group()
    if settings.batch_size % world:
        raise ValueError(f"batch_size {settings.batch_size} must be a multiple of the {world} processes "
                         f"(each takes an equal share of every batch)")
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings)
    net = distribute(model, device) if world > 1 else model
    history, start = [], 0
    torch.manual_seed(settings.seed + rank)  # each process its own anchor and RoI samples
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = list(state["history"]), int(state["step"])
        states = state.get("rng_per_process", [state["rng"]])
        if len(states) != world:
            raise ValueError(f"{checkpoint} was written by {len(states)} process(es): resume it with as many "
                             f"(now {world})")
        torch.set_rng_state(states[rank])
    progress, live_plot, checkpoint = (progress, live_plot, checkpoint) if rank == 0 else (False, None, None)

    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, disable=not progress,
               desc="training", unit="step", mininterval=1.0)  # a widget in a notebook: redraws cost time
    for step in bar:
        indices = batch_indices(len(dataset), settings.batch_size, step, settings.seed)[rank::world]
        batch = [dataset[i] for i in indices]
        images, targets = _to_device([b[0] for b in batch], [b[1] for b in batch], device)
        losses = net(images, targets)
        losses = losses[1] if isinstance(losses, tuple) else losses
        total = sum(losses.values())
        if world > 1:  # every process stops together, or none does
            finite = torch.isfinite(total.detach()).to(torch.float32)
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
            if not finite and torch.isfinite(total):
                total = total * float("nan")
        if not torch.isfinite(total):
            where = ""
            if checkpoint is not None:
                if all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
                    save_checkpoint(checkpoint, model, optimizer, step, history, settings, metadata)  # last good step
                    where = f"; the last good state is saved in {checkpoint}"
                elif Path(checkpoint).exists():  # the weights went bad before the loss did: keep the file
                    where = (f"; the weights are no longer finite, so {checkpoint} keeps the last checkpoint "
                             f"(step {int(load_checkpoint(checkpoint)['step'])})")
                else:
                    where = "; the weights are no longer finite and no checkpoint had been written yet"
            raise NonFiniteLossError(
                f"loss is {total.item()} at step {step} ({', '.join(f'{k}={v.item():.4g}' for k, v in losses.items())})"
                f"{where}. Try a lower learning rate (now {settings.learning_rate(step):.3g}) or a "
                f"smaller clip_grad_norm.")
        lr = settings.learning_rate(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if settings.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, settings.clip_grad_norm)
        optimizer.step()
        values = {"loss": total.detach(), **{k: v.detach() for k, v in losses.items()}}
        if world > 1:  # the history is the global batch's: the mean over the processes
            stacked = torch.stack(list(values.values())).float()
            torch.distributed.all_reduce(stacked)
            values = dict(zip(values, stacked / world))
        history.append({"step": step, "lr": lr, **{k: v.item() for k, v in values.items()}})
        if progress and (step % 10 == 0 or step + 1 == settings.steps):  # the last one: the loss it ended with
            bar.set_postfix(loss=f"{total.item():.3f}", refresh=step + 1 == settings.steps)  # else at the next redraw
        if live_plot is not None:
            live_plot.add(step, {**losses, "total": total.detach()})
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            rng = None
            if world > 1:  # every process's random state, for an exact resume
                rng = [None] * world
                torch.distributed.all_gather_object(rng, torch.get_rng_state())
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, step + 1, history, settings, metadata, rng)
            if world > 1:
                torch.distributed.barrier()  # no process runs ahead of the checkpoint being written
    bar.close()
    if live_plot is not None and live_plot.enabled and settings.steps % live_plot.every:
        live_plot.draw()  # the steps since the last redraw
    for module in model.modules():  # BatchNorm frozen by distribute() on CPUs: back to normal
        module.__dict__.pop("train", None)
    model.eval()
    return history
