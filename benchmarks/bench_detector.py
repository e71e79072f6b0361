"""Benchmark: minifrcnn's Faster R-CNN against torchvision's, side by side in one run, over
several seeds, with the course's old from-scratch recipe beside them.

For each seed, three detectors train on the course digits' train split (cached in memory)
and are scored on the test split:

* **minifrcnn**: ``FasterRCNN(DetectorConfig.course())`` trained with ``TrainSettings()``,
  the course's recipe (lesson 09): the pretrained backbone, fine-tuned;
* **torchvision**: torchvision's ``FasterRCNN`` with the same configuration
  (``torchvision_twin``), the same initial weights (the pretrained backbone and the same
  head: its weights are copied into ours by ``load_torchvision_weights``), the same
  ``TrainSettings``, loop (``minifrcnn.training.train``) and seed; the twin's random choice of
  training size is taken out (``twin.transform.torch_choice``), so both draw the same anchor
  and proposal samples and the first step's losses agree;
* **old recipe** (``--no-old`` leaves it out): minifrcnn's detector as the course trained it
  before it had a pretrained backbone: from scratch, 128 px images, anchors 16 / 32 / 64,
  1,000 SGD steps of 8 images (:data:`OLD_RECIPE`).

What differs between the first two is the code: ours (``minifrcnn.detector``) against
torchvision's (``torchvision.models.detection``), including the RoI op (ours:
``RoIOp("align")``, minifrcnn's ``roi_ops.roi_align``; the twin: ``MultiScaleRoIAlign``,
torchvision's C++ kernel, single-threaded on the CPU; ``--roi-implementation torchvision``
gives ours that kernel too).

Measured per seed: training images/s (``steps * batch_size / seconds`` of ``train``),
inference images/s on the test split (batches of ``--batch``, eval mode, no grad, a warm-up
batch, then ``--repeats`` passes, the detectors taking turns; median), test VOC mAP@0.5 and
COCO AP@[.5:.95]. Reported: each detector's mean and standard deviation over the seeds, the
mean of the per-seed speed ratios minifrcnn / torchvision, and the per-seed differences of the
two detectors' mAP and AP (mean and standard deviation; paired, as both start from the same
weights and draw the same samples at each seed).

Targets (issue 12): minifrcnn's mean mAP@0.5 no lower than torchvision's minus one standard
deviation; training and inference at least 1.0x torchvision's images/s; mean test
mAP@0.5 >= 0.90.

    python benchmarks/bench_detector.py                       # 3 seeds; results/detector_vs_torchvision.json
    python benchmarks/bench_detector.py --seeds 0 --no-old --steps 300
    python benchmarks/bench_detector.py --set lr=0.04 --set anchor_sizes=16,32,64
    python benchmarks/bench_detector.py --quick               # 5 steps, 16 test images, one seed: a smoke test
    python benchmarks/bench_detector.py --seeds 3 4 5 --no-old --out benchmarks/results/more.json
    python benchmarks/bench_detector.py --merge benchmarks/results/detector_vs_torchvision.json \
        benchmarks/results/more.json                          # results/detector_vs_torchvision_merged.json

``--merge`` trains nothing: it pools the seeds of runs made with the same options into one report
(the detectors all of them have), e.g. three more seeds on another day.

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

from minifrcnn.compat.torchvision import load_torchvision_weights, torchvision_twin  # noqa: E402
from minifrcnn.data import cache, load_digits  # noqa: E402
from minifrcnn.detector import DetectorConfig, FasterRCNN, detect  # noqa: E402
from minifrcnn.evaluation import evaluate_coco, evaluate_voc  # noqa: E402
from minifrcnn.training import TrainSettings, train  # noqa: E402
from minifrcnn.utils import get_device  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONFIG_FIELDS = {f.name: f for f in fields(DetectorConfig)}
TRAIN_FIELDS = {f.name: f for f in fields(TrainSettings)}
NAMES = ("minifrcnn", "torchvision")
QUICK_TRAIN_IMAGES = 64  # --quick trains on the first 64 training images (decoding all 1,200 takes ~25 s)
# The course's recipe before the pretrained backbone (lesson 08 of 2026-11-29): trained from scratch on the
# images at their 128 px, anchors 16 / 32 / 64, 1,000 steps (test mAP@0.5 0.741 then, seed 0).
OLD_RECIPE = {"config": {"min_size": 128, "max_size": 128, "anchor_sizes": (16, 32, 64), "backbone_weights": None,
                         "backbone_frozen_stages": 0},
              "train": {"steps": 1000, "batch_size": 8, "optimizer": "sgd", "lr": 0.06, "weight_decay": 1e-4,
                        "warmup_steps": 50}}


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


def mean_std(values):
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def train_and_time(name, model, items, settings, device):
    seconds, cpu_seconds, history = time_training(model, items, settings, device)
    result = {"train_s": seconds, "train_cpu_s": cpu_seconds,  # CPU time of all threads: less sensitive to load
              "train_loadavg_after": os.getloadavg()[0],
              "train_images_per_s": settings.steps * settings.batch_size / seconds,
              "first_step_losses": {k: v for k, v in history[0].items() if k.startswith("loss")},
              "last_losses_mean20": mean_last(history)}
    print(f"  {name:11s} trained {settings.steps} steps in {seconds:.1f} s ({result['train_images_per_s']:.1f} "
          f"images/s, CPU {cpu_seconds:.1f} s, load {result['train_loadavg_after']:.2f}), first loss "
          f"{history[0]['loss']:.4f}, last-20 mean {result['last_losses_mean20'].get('loss', float('nan')):.4f}",
          flush=True)
    return result


def time_inference(models, images, batch, repeats, device):
    """Median seconds of ``repeats`` passes over ``images`` per model, the models taking turns
    (a burst of load hits all of them)."""
    batches = [[image.to(device) for image in images[s:s + batch]] for s in range(0, len(images), batch)]
    for model in models.values():
        model.eval()
        with torch.no_grad():
            model(batches[0])  # warm-up
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(inference_pass(model, batches, device))
    return times


def run_seed(seed, config, settings, old, train_items, test_items, args, device):
    """Train and measure the detectors for one seed; returns ``{name: results}``."""
    images, targets = [x for x, _ in test_items], [y for _, y in test_items]
    settings = replace(settings, seed=seed)
    models, init_diff = build_pair(config, seed)
    if args.roi_implementation:
        models["minifrcnn"].head.roi_op.implementation = args.roi_implementation
    order = NAMES if args.order == "ours-first" else NAMES[::-1]
    state = torch.get_rng_state()
    for name in order:
        warm_up(models[name], train_items, settings, device)
    torch.set_rng_state(state)  # (train() seeds itself anyway)
    results = {name: train_and_time(name, models[name], train_items, settings, device) for name in order}
    if old is not None:
        old_config, old_settings = old
        torch.manual_seed(seed)
        models["old recipe"] = FasterRCNN(old_config)
        results["old recipe"] = train_and_time("old recipe", models["old recipe"], train_items,
                                               replace(old_settings, seed=seed), device)
    for name, model in models.items():
        results[name].update({f"test_{k}": v for k, v in
                              score(model, images, targets, config.num_classes, device).items()})
    times = time_inference(models, images, args.batch, args.repeats, device)
    for name in models:
        results[name]["inference_s"] = times[name]
        results[name]["inference_images_per_s"] = len(images) / statistics.median(times[name])
    o, t = results["minifrcnn"], results["torchvision"]
    results["initial_weights_max_abs_diff"] = init_diff
    results["first_step_losses_max_abs_diff"] = max(abs(o["first_step_losses"][k] - t["first_step_losses"][k])
                                                    for k in o["first_step_losses"])
    results["ratios"] = {"train": o["train_images_per_s"] / t["train_images_per_s"],
                         "inference": o["inference_images_per_s"] / t["inference_images_per_s"]}
    print(f"  seed {seed}: mAP@0.5 " + ", ".join(f"{n} {results[n]['test_map50']:.4f}" for n in models)
          + f"; ratios train {results['ratios']['train']:.2f}x, inference {results['ratios']['inference']:.2f}x",
          flush=True)
    return results


def summarise(per_seed, names):
    summary = {}
    for name in names:
        rows = [r[name] for r in per_seed]
        summary[name] = {}
        for key in ("test_map50", "test_ap", "train_images_per_s", "inference_images_per_s", "train_s"):
            summary[name][key], summary[name][key + "_std"] = mean_std(r[key] for r in rows)
    ratios = {key: mean_std(r["ratios"][key] for r in per_seed) for key in ("train", "inference")}
    return summary, {k: v[0] for k, v in ratios.items()}, {k: v[1] for k, v in ratios.items()}


def paired_differences(per_seed):
    """minifrcnn - torchvision per seed (test mAP@0.5 and AP), mean and standard deviation: the two
    share initial weights and samples at each seed, so the per-seed difference has less noise than
    either detector's own spread."""
    result = {}
    for key in ("test_map50", "test_ap"):
        values = [r["minifrcnn"][key] - r["torchvision"][key] for r in per_seed]
        result[key], result[key + "_std"] = mean_std(values)
        result[key + "_per_seed"] = values
    return result


def check_targets(summary, ratios):
    """Issue 12's targets, from the summary over the seeds."""
    o, t = summary["minifrcnn"], summary["torchvision"]
    return {"map50_at_least_torchvision_minus_one_spread": o["test_map50"] >= t["test_map50"] - t["test_map50_std"],
            "train_images_per_s_at_least_1.0x": ratios["train"] >= 1.0,
            "inference_images_per_s_at_least_1.0x": ratios["inference"] >= 1.0,
            "map50_at_least_0.90": o["test_map50"] >= 0.90}


def print_report(report):
    print("\n" + table(report))
    d = report["paired_differences"]
    print(f"minifrcnn - torchvision per seed (same initial weights and samples): mAP@0.5 "
          f"{100 * d['test_map50']:+.2f} ± {100 * d['test_map50_std']:.2f} points, AP "
          f"{100 * d['test_ap']:+.2f} ± {100 * d['test_ap_std']:.2f}")
    print("Targets" + (" (--quick: a smoke run, the targets mean nothing here)" if report["quick"] else "") + ":")
    for key, ok in report["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {key}")


# What must be equal for two runs' seeds to be pooled by --merge.
SAME_IN_MERGED_RUNS = ("config", "train_settings", "split", "train_images", "test_images", "inference_batch_size",
                       "inference_repeats", "order", "roi_ops", "quick")


def merge(paths, out):
    """Pool the seeds of several runs of this script (e.g. seeds 0-2, then 3-5 on another day) into one
    report: the detectors every run has, their summary, ratios, paired differences and targets."""
    runs = []
    for path in paths:
        try:
            runs.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            raise SystemExit(f"--merge: cannot read {path} ({type(error).__name__}): give the JSON files this "
                             f"script wrote") from None
        if not isinstance(runs[-1], dict) or "per_seed" not in runs[-1] or runs[-1].get("quick") is None:
            raise SystemExit(f"--merge: {path} is not a report of this script (no per_seed): give the JSON files "
                             f"it wrote")
    for path, run in zip(paths[1:], runs[1:]):
        differ = [key for key in SAME_IN_MERGED_RUNS if run.get(key) != runs[0].get(key)]
        if differ:
            raise SystemExit(f"--merge: {path} differs from {paths[0]} in {', '.join(differ)}: only runs of the "
                             f"same benchmark can be pooled (re-run it with the same options)")
    seeds = [seed for run in runs for seed in run["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: a seed appears in two runs ({seeds}): pool runs of different seeds")
    names = [n for n in runs[0]["detectors"] if all(n in run["detectors"] for run in runs)]
    per_seed = [row for run in runs for row in run["per_seed"]]
    summary, ratios, ratio_spread = summarise(per_seed, names)
    report = {**{key: runs[0][key] for key in SAME_IN_MERGED_RUNS}, "detectors": names, "seeds": seeds,
              "summary": summary, "ratios": ratios, "ratios_std": ratio_spread,
              "paired_differences": paired_differences(per_seed), "targets": check_targets(summary, ratios),
              "per_seed": per_seed, "merged_from": [{"file": str(p), "seeds": run["seeds"], "command": run["command"],
                                                     "machine": run["machine"]} for p, run in zip(paths, runs)],
              "command": "python benchmarks/bench_detector.py --merge " + " ".join(shlex.quote(str(p)) for p in paths)}
    print_report(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


def table(report):
    s, names = report["summary"], report["detectors"]
    seeds = len(report["seeds"])
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label, digits in (("test_map50", "test mAP@0.5", 4), ("test_ap", "test AP@[.5:.95]", 4),
                               ("train_images_per_s", "train images/s", 1),
                               ("inference_images_per_s", "inference images/s", 1), ("train_s", "train s", 0)):
        cells = [f"{fmt(s[n][key], digits)}" + (f" ± {fmt(s[n][key + '_std'], digits)}" if seeds > 1 else "")
                 for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    r = report["ratios"]
    lines.append(f"\nminifrcnn / torchvision, mean of the per-seed ratios: training {r['train']:.2f}x, "
                 f"inference {r['inference']:.2f}x ({seeds} seed{'s' if seeds > 1 else ''}; ± = standard deviation "
                 f"over the seeds)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run per seed (default 0 1 2)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of every detector (default TrainSettings().steps; the old recipe's own)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training and test images")
    parser.add_argument("--no-old", dest="old", action="store_false",
                        help="leave out the old from-scratch recipe (OLD_RECIPE)")
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
                             f"16 test images, 1 timed repeat, the first seed only, no old recipe")
    parser.add_argument("--out", default=None, help="JSON file (default results/detector_vs_torchvision.json, "
                                                    "or ..._quick.json with --quick)")
    parser.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                        help="train nothing: pool the seeds of earlier runs' JSON files into one report (--out, "
                             "default results/detector_vs_torchvision_merged.json)")
    args = parser.parse_args(argv)
    if args.merge:
        return merge([Path(p) for p in args.merge], Path(args.out) if args.out else
                     RESULTS / "detector_vs_torchvision_merged.json")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/bench_detector.py" + ("".join(" " + shlex.quote(a) for a in argv))

    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else get_device()
    config_changes, settings_changes = parse_sets(args.sets)
    config = DetectorConfig.course(**config_changes)
    settings = replace(TrainSettings(), **settings_changes)
    old_config = DetectorConfig.course(**{**config_changes, **OLD_RECIPE["config"]})
    old_settings = replace(TrainSettings(), **{**settings_changes, **OLD_RECIPE["train"]})
    if args.quick:
        settings, old_settings = replace(settings, steps=5), replace(old_settings, steps=5)
        args.repeats, args.seeds, args.old = 1, args.seeds[:1], False
    if args.steps is not None:
        settings, old_settings = replace(settings, steps=args.steps), replace(old_settings, steps=args.steps)
    if args.limit:  # a quick try on a few images: no batch larger than the images
        old_settings = replace(old_settings, batch_size=min(old_settings.batch_size, args.limit))
    out = Path(args.out) if args.out else RESULTS / ("detector_vs_torchvision_quick.json" if args.quick
                                                     else "detector_vs_torchvision.json")
    load_start = os.getloadavg()
    machine_info = machine(device, args.threads)  # before training: the code that runs is this commit's

    train_limit, test_limit = (QUICK_TRAIN_IMAGES, 16) if args.quick else (args.limit, args.limit)
    train_data, test_data = load_digits("train"), load_digits(args.split)
    train_items = cache([train_data[i] for i in range(train_limit)] if train_limit else train_data)
    test_items = cache([test_data[i] for i in range(test_limit)] if test_limit else test_data)
    print(f"device {device}, {args.threads} threads, load {load_start[0]:.2f}; {len(train_items)} train images, "
          f"{len(test_items)} {args.split} images; seeds {args.seeds}; {settings.steps} steps x "
          f"{settings.batch_size} images" + (f"; old recipe {old_settings.steps} steps" if args.old else ""),
          flush=True)
    per_seed = []
    for seed in args.seeds:
        print(f"seed {seed}:", flush=True)
        per_seed.append(run_seed(seed, config, settings, (old_config, old_settings) if args.old else None,
                                 train_items, test_items, args, device))
    names = list(NAMES) + (["old recipe"] if args.old else [])
    summary, ratios, ratio_spread = summarise(per_seed, names)
    targets = check_targets(summary, ratios)
    implementation = args.roi_implementation or DetectorConfig.course().roi_op
    report = {"detectors": names, "seeds": args.seeds, "summary": summary, "ratios": ratios,
              "ratios_std": ratio_spread, "paired_differences": paired_differences(per_seed),
              "targets": targets, "per_seed": per_seed, "quick": args.quick,
              "order": args.order, "split": args.split, "train_images": len(train_items),
              "test_images": len(test_items), "inference_batch_size": args.batch,
              "inference_repeats": args.repeats,
              "roi_ops": {"minifrcnn": f"RoIOp({config.roi_op!r}), implementation {implementation!r}",
                          "torchvision": "MultiScaleRoIAlign -> torchvision.ops.roi_align (C++ kernel)"},
              "config": asdict(config), "config_changes": config_changes, "train_settings": asdict(settings),
              "train_settings_changes": settings_changes,
              "old_recipe": ({"config": asdict(old_config), "train_settings": asdict(old_settings)}
                             if args.old else None),
              "command": command,
              "machine": {**machine_info, "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg())}}

    print_report(report)
    print(f"load average {load_start[0]:.2f} at the start, {report['machine']['loadavg_end'][0]:.2f} at the end")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
