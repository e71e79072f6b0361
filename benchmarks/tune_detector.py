"""Train one detector configuration on the digits and score it: the tuning runs behind the
course defaults (``DetectorConfig`` and ``TrainSettings``).

Any field of ``DetectorConfig`` or ``TrainSettings`` is set with ``name=value`` (Python
literals: ``lr=0.05``, ``anchor_sizes=(12,24,48)``, ``schedule='step'``); anything not given
keeps its course default. Trains on the train split on the CPU, evaluates on val (and on
test with ``--test``) and prints one JSON line::

    .venv/bin/python benchmarks/tune_detector.py steps=300 lr=0.04 batch_size=8
    .venv/bin/python benchmarks/tune_detector.py --test          # the defaults, val and test

Options:
    --threads N     torch intra-op threads (default 2)
    --test          also evaluate on the test split (use it for the final choice only)
    --norm NAME     SmallBackbone normalisation "batch" (default), "group" or "none"
                    (a prototype: the config has no field for it)
    --save PATH     save the trained weights
    --log PATH      append the JSON line to PATH

The JSON has the settings that differ from the defaults, the full settings, train
seconds, seconds per step, the last losses, and val (test) mAP@0.5 (``evaluate_voc``) and
AP@[.5:.95] (``evaluate_coco``). Time on a shared machine varies: note ``uptime``.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

# name=value -> (DetectorConfig changes, TrainSettings changes), shared with the side-by-side benchmark.
from bench_detector import parse_sets as parse_assignments  # noqa: E402  (this script's folder is on sys.path)

import minifrcnn.detector as detector_module  # noqa: E402
from minifrcnn.backbone import SmallBackbone  # noqa: E402
from minifrcnn.course.schemes import evaluate_model  # noqa: E402
from minifrcnn.data import cache, load_digits  # noqa: E402
from minifrcnn.detector import DetectorConfig, FasterRCNN  # noqa: E402
from minifrcnn.training import TrainSettings, train  # noqa: E402


def score(model, split_items):
    result = evaluate_model(model, split_items, batch_size=25, device="cpu")
    return {"map50": round(result["map50"], 4), "ap": round(result["ap"], 4), "infer_s": round(result["seconds"], 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--norm", default=None)
    parser.add_argument("--save", default=None)
    parser.add_argument("--log", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config_changes, settings_changes = parse_assignments(args.assignments)
    config = DetectorConfig.course(**config_changes)
    settings = replace(TrainSettings(), **settings_changes)
    if args.norm is not None:  # prototype: build the backbone with another normalisation
        detector_module.make_backbone = lambda c: SmallBackbone(c.backbone_channels, c.backbone_blocks,
                                                                norm=args.norm)

    train_items = cache(load_digits("train"))
    torch.manual_seed(settings.seed)
    model = FasterRCNN(config)
    start = time.perf_counter()
    history = train(model, train_items, settings, device="cpu", progress=False)
    train_s = time.perf_counter() - start
    if args.save:
        torch.save(model.state_dict(), args.save)
    last = {k: round(sum(h[k] for h in history[-20:]) / len(history[-20:]), 4)
            for k in history[-1] if k.startswith("loss")}
    result = {"changes": {**config_changes, **settings_changes, **({"norm": args.norm} if args.norm else {})},
              "steps": settings.steps, "train_s": round(train_s, 1),
              "s_per_step": round(train_s / max(1, settings.steps), 3),
              "load": os.getloadavg()[0], "last_losses": last,
              "val": score(model, cache(load_digits("val")))}
    if args.test:
        result["test"] = score(model, cache(load_digits("test")))
    result["config"] = {k: v for k, v in asdict(config).items()}
    result["settings"] = asdict(settings)
    line = json.dumps(result)
    print(line, flush=True)
    if args.log:
        with open(args.log, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
