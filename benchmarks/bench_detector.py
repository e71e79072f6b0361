"""Benchmark: minifrcnn's Faster R-CNN against torchvision's, side by side in one run.

Both detectors get the same configuration (``DetectorConfig`` defaults, or ``--set``
overrides), the same data (the course digits' train split, cached in memory), the same seed,
the same initial weights (``torchvision_twin(model)`` builds torchvision's ``FasterRCNN`` with
our settings, and ``load_torchvision_weights`` copies its weights into ours), the same
``TrainSettings`` and number of steps, and the same loop (``minifrcnn.training.train``). The
twin's random choice of training size is taken out (``twin.transform.torch_choice``), so both
draw the same anchor and proposal samples from the same seed: the first step's losses agree.

What differs is the code: ours (``minifrcnn.detector``) against torchvision's
(``torchvision.models.detection``), including the RoI op. Our head uses
``RoIOp("align")``, whose default implementation is minifrcnn's ``roi_ops.roi_align``; the
twin uses ``MultiScaleRoIAlign``, i.e. torchvision's C++ ``roi_align`` kernel (single-threaded
on the CPU). ``--roi-implementation torchvision`` switches ours to that kernel too, to isolate
the rest of the model.

Measured:

* training images/s: ``steps * batch_size / seconds`` of ``train(...)``;
* inference images/s on the test split: batches of ``--batch`` images, eval mode, no grad,
  one warm-up batch, then ``--repeats`` timed passes over the split (median); the two models
  take turns in every repeat, so a burst of load on a shared machine hits both;
* test VOC mAP@0.5 (``evaluate_voc``) and COCO AP@[.5:.95] (``evaluate_coco``).

Targets (issue 5): minifrcnn's test mAP@0.5 at least torchvision's - 0.01, and >= 0.90;
training and inference images/s at least 0.9x torchvision's.

    python benchmarks/bench_detector.py                       # defaults; results/detector_vs_torchvision.json
    python benchmarks/bench_detector.py --steps 300 --order tv-first
    python benchmarks/bench_detector.py --set lr=0.04 --set anchor_sizes=16,32,64
    python benchmarks/bench_detector.py --quick               # 5 steps, 16 test images: a smoke test

``--set name=value`` sets any field of ``DetectorConfig`` or ``TrainSettings`` (Python
literals: ``8,8,16`` is a tuple, ``0.04`` a float; bare words are strings).
"""
import argparse
import ast
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from copy import deepcopy
from dataclasses import asdict, fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402

from minifrcnn.data import cache, load_digits  # noqa: E402
from minifrcnn.detector import (DetectorConfig, FasterRCNN, detect, load_torchvision_weights,  # noqa: E402
                                torchvision_twin)
from minifrcnn.evaluation import evaluate_coco, evaluate_voc  # noqa: E402
from minifrcnn.training import TrainSettings, train  # noqa: E402
from minifrcnn.utils import get_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONFIG_FIELDS = {f.name: f for f in fields(DetectorConfig)}
TRAIN_FIELDS = {f.name: f for f in fields(TrainSettings)}
NAMES = ("minifrcnn", "torchvision")
QUICK_TRAIN_IMAGES = 64  # --quick trains on the first 64 training images (decoding all 1,200 takes ~25 s)


def parse_sets(items):
    """``["lr=0.04", "backbone_channels=8,8,16", "schedule=step"]`` -> (config changes, settings changes)."""
    config, settings = {}, {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects name=value, got {item!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare word: schedule=step
        if name in CONFIG_FIELDS:
            target, default = config, getattr(DetectorConfig(), name)
        elif name in TRAIN_FIELDS:
            target, default = settings, getattr(TrainSettings(), name)
        else:
            raise SystemExit(f"--set {name}: neither a DetectorConfig nor a TrainSettings field")
        if isinstance(default, tuple) and not isinstance(value, tuple):
            value = (value,)  # anchor_sizes=32 -> (32,)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        target[name] = value
    return config, settings


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_pair(config, seed):
    """Our detector and torchvision's twin, with identical initial weights."""
    torch.manual_seed(seed)
    ours = FasterRCNN(config)
    twin = torchvision_twin(ours)
    load_torchvision_weights(ours, twin)
    # torchvision draws a random training size per image (from a list of one here), which
    # consumes the global RNG before the samplers; take that draw out so both sample alike.
    twin.transform.torch_choice = lambda sizes: sizes[-1]
    theirs = {k.replace("rpn.head.conv.0.0.", "rpn.head.conv.").replace("roi_heads.", "head."): v
              for k, v in twin.state_dict().items()}
    mine = ours.state_dict()
    assert set(mine) == set(theirs), set(mine) ^ set(theirs)
    max_diff = max((mine[k].double() - theirs[k].double()).abs().max().item() if mine[k].numel() else 0.0
                   for k in mine)
    return {"minifrcnn": ours, "torchvision": twin}, max_diff


def warm_up(model, items, settings, device):
    """One forward and backward pass of a copy of ``model`` (first-call costs: allocator, kernels,
    thread pools), so that they are not charged to whichever detector trains first."""
    copy = deepcopy(model).to(device).train()
    batch = items[:settings.batch_size]
    images = [image.to(device) for image, _ in batch]
    targets = [{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for _, t in batch]
    sum(copy(images, targets).values()).backward()
    sync(device)


def time_training(model, items, settings, device):
    sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = train(model, items, settings, device=device, progress=False)
    sync(device)
    return time.perf_counter() - start, time.process_time() - cpu_start, history


@torch.no_grad()
def inference_pass(model, batches, device):
    sync(device)
    start = time.perf_counter()
    for batch in batches:
        model(batch)
    sync(device)
    return time.perf_counter() - start


def score(model, images, targets, num_classes, device):
    detections = detect(model, images, batch_size=16, device=device)
    return {"map50": evaluate_voc(detections, targets, num_classes)["map"],
            "ap": evaluate_coco(detections, targets, num_classes)["ap"],
            "detections_per_image": sum(len(d["boxes"]) for d in detections) / max(1, len(detections))}


def machine(device, threads):
    info = {"cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "device": str(device), "threads": threads}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        root = Path(__file__).resolve().parent.parent
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                            text=True, timeout=10).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                                cwd=root, capture_output=True, text=True,
                                                timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def mean_last(history, n=20):
    tail = history[-n:]
    return {k: sum(h[k] for h in tail) / len(tail) for k in tail[0] if k.startswith("loss")} if tail else {}


def fmt(value, digits):
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def table(r):
    o, t = r["minifrcnn"], r["torchvision"]
    rows = [("train images/s", o["train_images_per_s"], t["train_images_per_s"], r["ratios"]["train"], 1, "x"),
            ("inference images/s", o["inference_images_per_s"], t["inference_images_per_s"],
             r["ratios"]["inference"], 1, "x"),
            ("test mAP@0.5", o["test_map50"], t["test_map50"], r["differences"]["map50"], 4, "+"),
            ("test AP@[.5:.95]", o["test_ap"], t["test_ap"], r["differences"]["ap"], 4, "+")]
    lines = ["| | minifrcnn | torchvision | ratio / difference |", "|---|---:|---:|---:|"]
    for name, a, b, c, d, kind in rows:
        cell = f"{fmt(c, 2)}x" if kind == "x" else f"{c:+.4f}"
        lines.append(f"| {name} | {fmt(a, d)} | {fmt(b, d)} | {cell} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default TrainSettings().steps)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--device", default=None, help="default minifrcnn.get_device()")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                        help="a DetectorConfig or TrainSettings field (repeat the option for several)")
    parser.add_argument("--order", choices=("ours-first", "tv-first"), default="ours-first",
                        help="which detector trains (and is timed) first")
    parser.add_argument("--split", default="test", help="evaluation split (default test)")
    parser.add_argument("--batch", type=int, default=16, help="inference batch size")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference passes (median)")
    parser.add_argument("--roi-implementation", choices=("minifrcnn", "torchvision"), default=None,
                        help="override our RoIOp's implementation (default: the config's, minifrcnn's for align)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke mode: 5 steps (unless --steps), the first {QUICK_TRAIN_IMAGES} training and "
                             f"16 test images, 1 timed repeat")
    parser.add_argument("--out", default=None, help="JSON file (default results/detector_vs_torchvision.json, "
                                                    "or ..._quick.json with --quick)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/bench_detector.py" + ("".join(" " + shlex.quote(a) for a in argv))

    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()
    config_changes, settings_changes = parse_sets(args.sets)
    config = DetectorConfig.course(**config_changes)
    settings = replace(TrainSettings(), **settings_changes)
    if args.quick:
        settings = replace(settings, steps=5)
        args.repeats = 1
    if args.steps is not None:
        settings = replace(settings, steps=args.steps)
    out = Path(args.out) if args.out else RESULTS / ("detector_vs_torchvision_quick.json" if args.quick
                                                     else "detector_vs_torchvision.json")
    load_start = os.getloadavg()
    machine_info = machine(device, args.threads)  # before training: the code that runs is this commit's

    train_data = load_digits("train")
    train_items = cache([train_data[i] for i in range(QUICK_TRAIN_IMAGES)] if args.quick else train_data)
    test_data = load_digits(args.split)
    test_items = cache([test_data[i] for i in range(16)] if args.quick else test_data)
    test_images, test_targets = [x for x, _ in test_items], [y for _, y in test_items]

    models, init_diff = build_pair(config, settings.seed)
    if args.roi_implementation:
        models["minifrcnn"].head.roi_op.implementation = args.roi_implementation
    implementation = models["minifrcnn"].head.roi_op.implementation
    roi_ops = {"minifrcnn": f"RoIOp({config.roi_op!r}, implementation={implementation!r})",
               "torchvision": "MultiScaleRoIAlign -> torchvision.ops.roi_align (C++ kernel)"}
    order = NAMES if args.order == "ours-first" else NAMES[::-1]
    print(f"device {device}, {args.threads} threads, load {load_start[0]:.2f}; {len(train_items)} train images, "
          f"{len(test_items)} {args.split} images; {settings.steps} steps x {settings.batch_size} images; "
          f"initial weights max |diff| {init_diff:g}", flush=True)
    print(f"RoI op: minifrcnn {roi_ops['minifrcnn']}, torchvision {roi_ops['torchvision']}", flush=True)

    state = torch.get_rng_state()
    for name in order:
        warm_up(models[name], train_items, settings, device)
    torch.set_rng_state(state)  # (train() seeds itself anyway)
    results = {name: {} for name in NAMES}
    for name in order:
        seconds, cpu_seconds, history = time_training(models[name], train_items, settings, device)
        r = results[name]
        r["train_s"] = seconds
        r["train_cpu_s"] = cpu_seconds  # CPU time of this process (all its threads): less sensitive to load
        r["train_loadavg_after"] = os.getloadavg()[0]
        r["train_images_per_s"] = settings.steps * settings.batch_size / seconds
        r["first_step_losses"] = {k: v for k, v in history[0].items() if k.startswith("loss")}
        r["last_losses_mean20"] = mean_last(history)
        print(f"{name:11s} trained {settings.steps} steps in {seconds:.1f} s "
              f"({r['train_images_per_s']:.1f} images/s, CPU {cpu_seconds:.1f} s, "
              f"load {r['train_loadavg_after']:.2f}), first loss {history[0]['loss']:.4f}, "
              f"last-20 mean {r['last_losses_mean20'].get('loss', float('nan')):.4f}", flush=True)

    for name in order:
        results[name].update({f"test_{k}": v for k, v in
                              score(models[name], test_images, test_targets, config.num_classes, device).items()})

    batches = [[image.to(device) for image in test_images[s:s + args.batch]]
               for s in range(0, len(test_images), args.batch)]
    for name in order:
        models[name].eval()
        with torch.no_grad():
            models[name](batches[0])  # warm-up
    times = {name: [] for name in NAMES}
    for _ in range(args.repeats):
        for name in order:  # taking turns: a burst of load hits both
            times[name].append(inference_pass(models[name], batches, device))
    for name in NAMES:
        results[name]["inference_s"] = times[name]
        results[name]["inference_images_per_s"] = len(test_images) / statistics.median(times[name])
        results[name]["roi_op"] = roi_ops[name]

    o, t = results["minifrcnn"], results["torchvision"]
    ratios = {"train": o["train_images_per_s"] / t["train_images_per_s"],
              "inference": o["inference_images_per_s"] / t["inference_images_per_s"]}
    differences = {"map50": o["test_map50"] - t["test_map50"], "ap": o["test_ap"] - t["test_ap"]}
    targets = {"map50_within_0.01_of_torchvision": differences["map50"] >= -0.01,
               "train_images_per_s_at_least_0.9x": ratios["train"] >= 0.9,
               "inference_images_per_s_at_least_0.9x": ratios["inference"] >= 0.9,
               "map50_at_least_0.90": o["test_map50"] >= 0.90}
    report = {"minifrcnn": o, "torchvision": t, "ratios": ratios, "differences": differences,
              "targets": targets, "quick": args.quick, "order": args.order, "split": args.split,
              "train_images": len(train_items), "test_images": len(test_items),
              "inference_batch_size": args.batch, "inference_repeats": args.repeats,
              "initial_weights_max_abs_diff": init_diff,
              "first_step_losses_max_abs_diff": max(abs(o["first_step_losses"][k] - t["first_step_losses"][k])
                                                    for k in o["first_step_losses"]),
              "config": asdict(config), "config_changes": config_changes,
              "train_settings": asdict(settings), "train_settings_changes": settings_changes,
              "command": command,
              "machine": {**machine_info, "loadavg_start": list(load_start),
                          "loadavg_end": list(os.getloadavg())}}

    print("\n" + table(report))
    print(f"\nRoI Align: minifrcnn uses {roi_ops['minifrcnn']}, torchvision {roi_ops['torchvision']}: "
          f"part of what is compared.")
    print("Targets" + (" (--quick: a smoke run, the targets mean nothing here)" if args.quick else "") + ":")
    for key, ok in targets.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {key}")
    print(f"load average {load_start[0]:.2f} at the start, {report['machine']['loadavg_end'][0]:.2f} at the end")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
