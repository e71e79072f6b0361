"""The paper's anchor-labelling rule against the simplified one, measured on trained RPNs (lesson 03).

Section 3.1.2 of the paper ignores the anchors whose best IoU lies between 0.3 and 0.7; many notes
simplify the rule to "everything that is not positive is negative". Lesson 03 shows what the band
holds; this module measures what it does to a trained RPN: lesson 04's RPN (``make_rpn_model``,
``train_rpn``: 5 epochs of 300 steps, AdamW) trained with each rule and several seeds, everything
else the same, and scored on the test split by

* recall at 10, 50 and 300 proposals per image, at IoU 0.5 and 0.7 (lesson 05's measure);
* the mean objectness, P(object), the RPN gives the test anchors of each IoU range: positive
  (>= 0.7), the band split in two ([0.5, 0.7) and [0.3, 0.5)), and negative (< 0.3);
* for one test image, each cell's highest objectness over its 9 anchors (for a picture).

    python -m minifrcnn.course.label_rules     # data/results/label_rules.json, ~4 minutes on 2 cores
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..boxes import box_iou
from ..data import DATA_DIR, cache, load_digits
from .train_rpn import collect_proposals, recall_vs_proposals, train_course_rpn

RESULTS_FILE = DATA_DIR / "results" / "label_rules.json"
# The negative threshold of each rule: an anchor whose best IoU is below it is background. Both keep
# the positive threshold (0.7) and the best-anchor rule.
RULES = {"paper": 0.3, "simplified": 0.7}
IOU_RANGES = {"positive (>= 0.7)": (0.7, 1.01), "band [0.5, 0.7)": (0.5, 0.7), "band [0.3, 0.5)": (0.3, 0.5),
              "negative (< 0.3)": (0.0, 0.3)}
MAP_IMAGE = 0  # the test image whose objectness map is kept
TOP_NS = (10, 50, 300)  # proposals per image at which recall is measured


def train_with_rule(rule, train_data, seed=0, max_steps=None, device="cpu"):
    """Lesson 04's RPN trained with ``rule`` (a key of :data:`RULES`). Returns ``(model, history)``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {sorted(RULES)}, got {rule!r}")
    model, history = train_course_rpn(train_data, seed=seed, device=device, max_steps=max_steps,
                                      bg_iou_thresh=RULES[rule])
    return model.cpu().eval(), history


@torch.no_grad()
def objectness_by_iou(model, data):
    """Mean P(object) of the anchors of ``data``'s images in each of :data:`IOU_RANGES` (their best IoU
    with a ground-truth box), and how many anchors each range holds."""
    sums, counts = dict.fromkeys(IOU_RANGES, 0.0), dict.fromkeys(IOU_RANGES, 0)
    for image, target in data:
        out = model.predict([image])
        prob = torch.sigmoid(out["objectness"][0])
        boxes = torch.as_tensor(target["boxes"]).reshape(-1, 4).as_subclass(torch.Tensor)
        best = (box_iou(boxes, out["anchors"]).max(dim=0).values if len(boxes)
                else torch.zeros(len(prob)))
        for name, (low, high) in IOU_RANGES.items():
            inside = (best >= low) & (best < high)
            sums[name] += float(prob[inside].sum())
            counts[name] += int(inside.sum())
    return {name: sums[name] / max(counts[name], 1) for name in IOU_RANGES}, counts


@torch.no_grad()
def objectness_map(model, image):
    """``(H, W)`` list of lists: each feature-map cell's highest P(object) over its anchors."""
    out = model.predict([image])
    height, width = out["features"].shape[-2:]
    prob = torch.sigmoid(out["objectness"][0]).view(height, width, -1)   # cell-major, then anchor
    return [[round(float(v), 4) for v in row] for row in prob.max(dim=-1).values]


def measure(model, test_data):
    """One trained RPN's row: recall at :data:`TOP_NS` proposals (``recall_<n>_iou50`` / ``_iou70``) and
    objectness by IoU range on ``test_data``."""
    run = collect_proposals(model, test_data)
    recall = recall_vs_proposals(run["proposals"], run["gt_boxes"], top_ns=TOP_NS)
    objectness, anchors = objectness_by_iou(model, test_data)
    row = {f"recall_{n}_iou{round(100 * t)}": float(recall[t][i]) for i, n in enumerate(TOP_NS) for t in (0.5, 0.7)}
    return {**row, "objectness": objectness, "anchors": anchors}


def run(seeds=(0, 1, 2), max_steps=None, limit=0, device="cpu", log=print):
    """Train and measure an RPN per rule and seed. ``limit`` > 0 uses the first ``limit`` training
    and test images only (for tests). Returns the results (see :func:`summary`)."""
    train_data, test_data = cache(load_digits("train")), cache(load_digits("test"))
    if limit:
        train_data, test_data = train_data[:limit], test_data[:limit]
    rows, maps, started = [], {}, time.perf_counter()
    for seed in seeds:
        for rule in RULES:
            start = time.perf_counter()
            model, history = train_with_rule(rule, train_data, seed, max_steps, device)
            row = {"rule": rule, "seed": seed, "steps": history["steps"],
                   "train_seconds": round(history["seconds"], 1), **measure(model, test_data)}
            rows.append(row)
            if seed == seeds[0]:
                maps[rule] = objectness_map(model, test_data[MAP_IMAGE][0])
            log(f"seed {seed} {rule:<10} recall@300 {row['recall_300_iou50']:.3f} / {row['recall_300_iou70']:.3f}"
                f" (IoU 0.5 / 0.7); band [0.5, 0.7) P(object) {row['objectness']['band [0.5, 0.7)']:.3f}"
                f" ({time.perf_counter() - start:.0f} s)")
    return {"rules": RULES, "seeds": list(seeds), "steps": rows[0]["steps"], "train_images": len(train_data),
            "test_images": len(test_data), "map_image": MAP_IMAGE, "rows": rows, "maps": maps,
            "seconds": round(time.perf_counter() - started), "torch": torch.__version__,
            "command": "python -m minifrcnn.course.label_rules " + " ".join(sys.argv[1:])}


def summary(results):
    """Per rule: ``(mean, standard deviation)`` over the seeds of every measure (recall, objectness)."""
    table = {}
    for rule in results["rules"]:
        rows = [r for r in results["rows"] if r["rule"] == rule]
        values = {key: [r[key] for r in rows] for key in rows[0] if key.startswith("recall_")}
        values.update({name: [r["objectness"][name] for r in rows] for name in IOU_RANGES})
        table[rule] = {name: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                       for name, v in values.items()}
    return table


def load_results(path=RESULTS_FILE):
    """The results file :func:`main` wrote (``data/results/label_rules.json``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run python -m minifrcnn.course.label_rules to make it")
    return json.loads(path.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minifrcnn.course.label_rules", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=None, help="stop each training early (tests)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training and test images")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--out", default=str(RESULTS_FILE))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = run(args.seeds, args.max_steps, args.limit)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    for rule, values in summary(results).items():
        print(rule, {name: f"{m:.3f} +- {s:.3f}" for name, (m, s) in values.items()})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
