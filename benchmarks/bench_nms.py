"""Benchmark: minifrcnn's NMS (from-scratch loop and vectorised) against torchvision's.

1k, 6k and 12k boxes (the paper keeps 6,000 proposals before NMS at test time and 12,000
in training), IoU threshold 0.7, in two layouts of an 800 x 600 image:

* ``proposals``: boxes jittered around 40 "objects", as an RPN's output (heavy overlap:
  NMS keeps few boxes);
* ``uniform``: boxes of 16-400 px anywhere (light overlap: NMS keeps many boxes).

Every result is checked to be the same indices as ``torchvision.ops.nms``. Each time is
the best of ``--repeats`` runs after a warm-up, torchvision and ours taking turns (best,
not mean: the machine may be shared);
the pure-Python ``nms_loop`` runs once above 1k boxes (``--loop-max`` boxes at most).

    python benchmarks/bench_nms.py --threads 1   # prints a table, writes results/nms.json
"""
import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torchvision

from minifrcnn.nms import nms, nms_loop

SIZES = (1000, 6000, 12000)
LAYOUTS = ("proposals", "uniform")


def make_boxes(n, layout, seed=0, width=800, height=600):
    """``n`` boxes ``(n, 4)`` and scores ``(n,)`` in one of the two layouts."""
    g = torch.Generator().manual_seed(seed)
    if layout == "proposals":
        centres = torch.rand(40, 2, generator=g) * torch.tensor([width, height])
        sizes = 30 + torch.rand(40, 2, generator=g) * 250
        pick = torch.randint(0, 40, (n,), generator=g)
        c = centres[pick] + torch.randn(n, 2, generator=g) * sizes[pick] * 0.15
        wh = sizes[pick] * torch.exp(torch.randn(n, 2, generator=g) * 0.15)
    else:
        wh = 16 + torch.rand(n, 2, generator=g) * 384
        c = torch.rand(n, 2, generator=g) * torch.tensor([width, height])
    boxes = torch.cat((c - wh / 2, c + wh / 2), dim=1)
    boxes = torchvision.ops.clip_boxes_to_image(boxes, (height, width))
    return boxes, torch.rand(n, generator=g)


def best_times(fns, boxes, scores, repeats):
    """Best wall time (ms) of each function over ``repeats`` rounds, after one warm-up run
    each, and their results. The functions take turns in every round, so that a burst of
    load on a shared machine slows them alike."""
    results = [fn(boxes, scores, 0.7) for fn in fns]
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn(boxes, scores, 0.7)
            t.append(time.perf_counter() - start)
    return [1e3 * min(t) for t in times], results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as is)")
    parser.add_argument("--loop-max", type=int, default=12000, help="largest size nms_loop is timed at")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "nms.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for layout in LAYOUTS:
        for n in SIZES:
            boxes, scores = make_boxes(n, layout)
            (tv_ms, vec_ms), (expected, kept) = best_times((torchvision.ops.nms, nms), boxes, scores, args.repeats)
            assert torch.equal(kept, expected), f"nms differs from torchvision ({layout}, {n})"
            loop_ms = None
            if n <= args.loop_max:
                start = time.perf_counter()
                kept = nms_loop(boxes, scores, 0.7)
                loop_ms = 1e3 * (time.perf_counter() - start)
                assert torch.equal(kept, expected), f"nms_loop differs from torchvision ({layout}, {n})"
            row = {"layout": layout, "boxes": n, "kept": int(expected.numel()), "torchvision_ms": round(tv_ms, 2),
                   "vectorised_ms": round(vec_ms, 2), "vectorised_ratio": round(vec_ms / tv_ms, 1),
                   "loop_ms": None if loop_ms is None else round(loop_ms, 1),
                   "loop_ratio": None if loop_ms is None else round(loop_ms / tv_ms, 1)}
            rows.append(row)
            print(f"{layout:9s} {n:6d} boxes, {row['kept']:5d} kept: torchvision {tv_ms:9.2f} ms, "
                  f"vectorised {vec_ms:9.2f} ms (x{row['vectorised_ratio']}), loop "
                  f"{'-' if loop_ms is None else f'{loop_ms:10.1f} ms'}",
                  flush=True)
    header = ("| layout | boxes | kept | torchvision (ms) | vectorised `nms` (ms) | ratio | `nms_loop` (ms) | ratio |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n" + header)
    for r in rows:
        loop = ("–", "–") if r["loop_ms"] is None else (r["loop_ms"], r["loop_ratio"])
        print(f"| {r['layout']} | {r['boxes']:,} | {r['kept']:,} | {r['torchvision_ms']} | {r['vectorised_ms']} | "
              f"{r['vectorised_ratio']} | {loop[0]} | {loop[1]} |")
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": os.getloadavg(), "iou_threshold": 0.7, "repeats": args.repeats}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
