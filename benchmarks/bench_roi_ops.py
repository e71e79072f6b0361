"""Benchmark: minifrcnn's from-scratch RoI ops against torchvision's, on the CPU.

512 RoIs x 256 channels -> 7 x 7, forward and forward + backward (gradient w.r.t. the
features), in two settings:

* ``detector``: one 800 x 800 image at stride 16, a 50 x 50 feature map, boxes 16-400 px;
* ``course``: a batch of 4 of the course's 128 x 128 images at the course detector's stride
  of 8, 16 x 16 maps, boxes 12-96 px (4 x 128 RoIs, the head's training batch).

Each time is the best of ``--repeats`` runs (best, not mean: the machine may be shared).
``roi_warp`` is timed against ``torchvision.ops.roi_align(aligned=True, sampling_ratio=2)``,
which has the same forward pass but no box gradient. torchvision's CPU RoI kernels use one
thread whatever ``torch.get_num_threads()`` says; ours use PyTorch's intra-op threads, so
``--threads 1`` is the like-for-like comparison.

    python benchmarks/bench_roi_ops.py --threads 1   # prints a table, writes results/roi_ops.json
"""
import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torchvision

from minifrcnn import roi_ops

SETTINGS = {  # name -> (images, feature size, image size, box sizes in px)
    "detector": (1, 50, 800, (16, 400)),
    "course": (4, 16, 128, (12, 96)),
}


def make_inputs(setting, rois=512, channels=256, seed=0):
    """Random features ``(N, C, S, S)`` and ``rois`` ``(K, 5)`` for a setting."""
    images, size, image_size, (smallest, largest) = SETTINGS[setting]
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(images, channels, size, size, generator=g)
    wh = smallest + torch.rand(rois, 2, generator=g) * (largest - smallest)
    xy = torch.rand(rois, 2, generator=g) * (image_size - wh)
    batch = torch.randint(0, images, (rois, 1), generator=g).float()
    return features, torch.cat((batch, xy, xy + wh), dim=1)


def ops(scale):
    """name -> (ours, torchvision's), both ``f(features, rois) -> (K, C, 7, 7)``."""
    tv = torchvision.ops
    return {
        "roi_pool": (lambda f, r: roi_ops.roi_pool(f, r, 7, scale),
                     lambda f, r: tv.roi_pool(f, r, 7, scale)),
        "roi_align (sampling 2)": (lambda f, r: roi_ops.roi_align(f, r, 7, scale, 2),
                                   lambda f, r: tv.roi_align(f, r, 7, scale, 2)),
        "roi_align (adaptive)": (lambda f, r: roi_ops.roi_align(f, r, 7, scale, -1),
                                 lambda f, r: tv.roi_align(f, r, 7, scale, -1)),
        "roi_warp (sampling 2)": (lambda f, r: roi_ops.roi_warp(f, r, 7, scale, 2, True),
                                  lambda f, r: tv.roi_align(f, r, 7, scale, 2, True)),
    }


def best_time(fn, features, rois, backward, repeats):
    """Best wall time of ``repeats`` runs, in milliseconds."""
    times = []
    for _ in range(repeats + 1):  # the first run warms up and is not counted
        f = features.detach().requires_grad_(backward)
        start = time.perf_counter()
        out = fn(f, rois)
        if backward:
            out.backward(torch.ones_like(out))
        times.append(time.perf_counter() - start)
    return 1e3 * min(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: as is)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "roi_ops.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for setting in SETTINGS:
        features, rois = make_inputs(setting)
        scale = features.shape[-1] / SETTINGS[setting][2]
        for name, (ours, theirs) in ops(scale).items():
            for backward in (False, True):
                a = best_time(ours, features, rois, backward, args.repeats)
                b = best_time(theirs, features, rois, backward, args.repeats)
                rows.append({"setting": setting, "op": name, "pass": "fwd+bwd" if backward else "fwd",
                             "minifrcnn_ms": round(a, 1), "torchvision_ms": round(b, 1),
                             "ratio": round(a / b, 2)})
                print(f"{setting:9s} {name:24s} {rows[-1]['pass']:8s} {a:8.1f} ms {b:8.1f} ms  x{a / b:5.2f}",
                      flush=True)
    header = "| setting | op | pass | minifrcnn (ms) | torchvision (ms) | ratio |\n|---|---|---|---:|---:|---:|"
    print("\n" + header)
    for r in rows:
        print(f"| {r['setting']} | {r['op']} | {r['pass']} | {r['minifrcnn_ms']} | {r['torchvision_ms']} | "
              f"{r['ratio']} |")
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "rois": 512, "channels": 256, "output_size": 7, "repeats": args.repeats,
            "settings": {k: dict(zip(("images", "feature_size", "image_size", "box_px"), v))
                         for k, v in SETTINGS.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
