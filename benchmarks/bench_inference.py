"""Benchmark: inference speed of minifrcnn's detector against torchvision's, side by side, with
the same trained weights (minutes, where bench_detector.py trains three detectors per seed).

Both detectors get the course's trained detector that the repository ships
(``data/results/baseline.pt``): ours loads it, torchvision's ``FasterRCNN`` of the same
configuration (``torchvision_twin``) gets the same tensors under its names. Their detections
on the test split are compared (boxes within 1e-3 px, same labels), then each runs over the 200
test images in batches of ``--batch`` (eval mode, no grad, a warm-up batch), ``--repeats``
times, the two taking turns so that a burst of load hits both. Reported: the median seconds
of each and the ratio torchvision / minifrcnn (above 1: ours is faster).

    python benchmarks/bench_inference.py --threads 1    # results/inference.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torchvision  # noqa: E402

from minifrcnn.compat.torchvision import export_torchvision_weights, torchvision_twin  # noqa: E402
from minifrcnn.course.ablations import load_baseline, load_results  # noqa: E402
from minifrcnn.data import cache, load_digits  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def twin_with_our_weights(model):
    """torchvision's detector of the same configuration with ``model``'s weights, in eval mode."""
    return export_torchvision_weights(model, torchvision_twin(model)).eval()


def one_pass(model, batches):
    start = time.perf_counter()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="only the first N test images")
    parser.add_argument("--out", default=str(RESULTS / "inference.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = load_results()
    ours = load_baseline(results)
    theirs = twin_with_our_weights(ours)
    items = cache(load_digits("test"))
    images = [image for image, _ in items[:args.limit or len(items)]]
    batches = [images[s:s + args.batch] for s in range(0, len(images), args.batch)]
    with torch.no_grad():
        for a, b in zip(ours(batches[0]), theirs(batches[0])):  # the same detections (and the warm-up)
            assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"], atol=1e-3)
    seconds = {"minifrcnn": [], "torchvision": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        seconds["minifrcnn"].append(one_pass(ours, batches))
        seconds["torchvision"].append(one_pass(theirs, batches))
    median = {name: statistics.median(values) for name, values in seconds.items()}
    report = {"command": "python benchmarks/bench_inference.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "images": len(images), "batch": args.batch, "threads": args.threads, "seconds": seconds,
              "median_seconds": median, "images_per_second": {n: len(images) / s for n, s in median.items()},
              "ratio_torchvision_over_minifrcnn": median["torchvision"] / median["minifrcnn"],
              "load_average_before_after": [load_before, os.getloadavg()],
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
                          "torchvision": torchvision.__version__},
              "weights": results["baseline_weights"]["sha256"], "date": time.strftime("%Y-%m-%d")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    for name in seconds:
        print(f"{name:>12}: {median[name]:.2f} s for {len(images)} images ({len(images) / median[name]:.1f} images/s)")
    print(f"ratio (above 1: minifrcnn is faster): {report['ratio_torchvision_over_minifrcnn']:.2f}; -> {args.out}")
    return report


if __name__ == "__main__":
    main()
