"""Training with several processes (``torchrun``, gloo on CPUs): two processes give the same
training as one with the same global batch and seed, and the command line trains, writes one
checkpoint and resumes under ``torchrun``."""
import json
import subprocess
import sys

import pytest
import torch

from minifrcnn.training import load_checkpoint

pytestmark = pytest.mark.slow  # each test starts processes

# A model whose losses are means over the images (like the detector's) and that samples
# nothing at random: the global batch's gradient is then the mean of the processes' gradients
# exactly, so one process and two must agree to rounding. (The detector samples anchors and RoIs
# at random in each process, so its losses differ from one process's by that sampling.)
SCRIPT = r'''
import json, os, sys
import torch
from torch import nn
from minifrcnn.training import TrainSettings, train

class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 1)

    def forward(self, images, targets):
        features = torch.stack([self.conv(image[None]).relu().mean((2, 3))[0] for image in images])
        guess = self.fc(features)[:, 0]
        goal = torch.stack([t["boxes"].sum() / 100 for t in targets])
        return {"loss_fit": ((guess - goal) ** 2).mean(), "loss_size": guess.abs().mean()}

if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    torch.distributed.init_process_group("gloo")
gen = torch.Generator().manual_seed(0)
data = [(torch.rand(3, 12, 12, generator=gen), {"boxes": torch.rand(2, 4, generator=gen) * 50,
                                                 "labels": torch.ones(2, dtype=torch.long)}) for _ in range(8)]
torch.manual_seed(0)
model = Toy()
settings = TrainSettings(steps=int(sys.argv[2]), batch_size=4, lr=0.05, warmup_steps=1, checkpoint_every=2)
out = sys.argv[1]
history = train(model, data, settings, checkpoint=out + "/ckpt.pt", resume=True, device="cpu", progress=False)
if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
    json.dump(history, open(out + "/history.json", "w"))
    torch.save(model.state_dict(), out + "/weights.pt")
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
'''


def launch(tmp_path, processes, steps, out):
    script = tmp_path / "train_toy.py"
    script.write_text(SCRIPT)
    out.mkdir(exist_ok=True)
    prefix = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--standalone"]
    result = subprocess.run(prefix + [str(script), str(out), str(steps)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "history.json").read_text()), torch.load(out / "weights.pt", weights_only=True)


def test_two_processes_train_as_one_and_resume_as_if_never_stopped(tmp_path):
    one_history, one_weights = launch(tmp_path, 1, 4, tmp_path / "one")
    two_history, two_weights = launch(tmp_path, 2, 4, tmp_path / "two")
    assert len(one_history) == len(two_history) == 4
    for a, b in zip(one_history, two_history):  # the losses of the global batch, step by step
        for key in ("loss", "loss_fit", "loss_size"):
            assert abs(a[key] - b[key]) <= 1e-5 * max(1.0, abs(a[key])), (a, b)
    for name in one_weights:
        assert torch.allclose(one_weights[name], two_weights[name], atol=1e-5), name
    # stopped after 2 of the 4 steps, then resumed: the same run, to the bit
    launch(tmp_path, 2, 2, tmp_path / "resumed")
    state = load_checkpoint(tmp_path / "resumed" / "ckpt.pt")
    assert state["step"] == 2 and len(state["rng_per_process"]) == 2
    resumed, resumed_weights = launch(tmp_path, 2, 4, tmp_path / "resumed")
    assert resumed == two_history
    assert all(torch.equal(two_weights[k], resumed_weights[k]) for k in two_weights)


def test_torchrun_trains_the_detector_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               "-m", "minifrcnn", "--device", "cpu", "train", "--steps", "2", "--batch-size", "2", "--limit", "8",
               "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained 2 steps") == 1  # rank 0 alone reports
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 2 and len(state["rng_per_process"]) == 2
    assert len(json.loads((out / "history.json").read_text())) == 2
    resumed = subprocess.run(command[:-6] + ["--steps", "3", "--batch-size", "2", "--limit", "8", "--resume",
                                             "--out", str(out)], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3


def test_a_batch_the_processes_cannot_share_is_refused(tmp_path, monkeypatch, capsys):
    from minifrcnn.__main__ import main
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before any process group starts
    assert main(["train", "--steps", "2", "--batch-size", "3", "--limit", "8", "--out", str(tmp_path / "odd")]) == 2
    assert capsys.readouterr().err == ("error: --batch-size 3 is not a multiple of the 2 processes (each takes an "
                                       "equal share of every batch: use e.g. 2)\n")
    assert not (tmp_path / "odd").exists()


def test_on_gpus_each_process_takes_its_gpu_nccl_and_synchronised_batchnorm(monkeypatch):
    """The GPU branch of the wiring, without a GPU: torchrun's LOCAL_RANK picks the process's
    GPU, the process group uses NCCL, and BatchNorm becomes SyncBatchNorm inside DDP with
    that one device. (NCCL itself needs two GPUs or more, which no machine of this project's
    CI has; benchmarks/gpu_check.sh runs the gloo tests on the lent GPU machine.)"""
    import minifrcnn.utils
    from minifrcnn.__main__ import _start_processes
    from minifrcnn.detector import DetectorConfig, FasterRCNN
    from minifrcnn.training import distribute
    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(minifrcnn.utils, "get_device", lambda name=None: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.setdefault("set_device", device))
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    assert _start_processes("cuda") == (1, torch.device("cuda", 1))
    assert calls == {"set_device": torch.device("cuda", 1), "backend": "nccl"}

    class Wrapped:  # stands in for DistributedDataParallel, which needs a process group
        def __init__(self, module, device_ids=None):
            self.module, self.device_ids = module, device_ids
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", Wrapped)
    model = FasterRCNN(DetectorConfig.course(backbone_weights=None))
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    wrapped = distribute(model, torch.device("cuda", 1))
    assert wrapped.device_ids == [1]
    synced = [m for m in wrapped.module.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert norms > 0 and len(synced) == norms
    assert not any(type(m) is torch.nn.BatchNorm2d for m in wrapped.module.modules())
