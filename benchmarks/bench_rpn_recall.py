"""Benchmark: proposal recall of the RPN trained alone, exactly as in lesson 04.

Trains ``make_rpn_model()`` (SmallBackbone, stride 8, anchors 16/32/64 x 0.5/1/2) on the
1,200 training digits with lesson 04's recipe (seed 0, 5 epochs, 4 images per step, AdamW
3e-3), then measures on the 200 test images the recall of the ground truth at IoU 0.5 and
0.7 by the first N proposals (N = 50, 100, 300, 1000), with the course's proposal layer
(1,000 boxes before NMS, NMS at 0.7) and without NMS, and the recall-vs-IoU curve at 300.

    python benchmarks/bench_rpn_recall.py   # prints a table, writes results/rpn_recall.json

Deterministic on a CPU: the same numbers on every run (the time varies with the load).
"""
import argparse
import dataclasses
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch
import torchvision

import minifrcnn
from minifrcnn.course.train_rpn import collect_proposals, make_rpn_model, recall_vs_iou, recall_vs_proposals, train_rpn
from minifrcnn.data import cache, load_digits
from minifrcnn.rpn import ProposalSettings

TOP_NS = (50, 100, 300, 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (lesson 04 uses 1)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rpn_recall.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    minifrcnn.seed_everything(0)
    train, test = cache(load_digits("train")), cache(load_digits("test"))
    model = make_rpn_model()
    history = train_rpn(model, train, num_epochs=args.epochs, batch_size=4, lr=3e-3, progress=False, live_plot=False)
    course = ProposalSettings.course()
    runs = {"NMS 0.7": dataclasses.replace(course, post_nms_top_n_test=max(TOP_NS)),
            "no NMS": dataclasses.replace(course, post_nms_top_n_test=max(TOP_NS), nms_thresh=1.0)}
    rows, curves = [], {}
    for name, settings in runs.items():
        out = collect_proposals(model, test, settings=settings)
        recall = recall_vs_proposals(out["proposals"], out["gt_boxes"], TOP_NS)
        for i, n in enumerate(TOP_NS):
            rows.append({"proposals": name, "top_n": n, "recall@0.5": round(float(recall[0.5][i]), 4),
                         "recall@0.7": round(float(recall[0.7][i]), 4)})
        ious, r = recall_vs_iou(out["proposals"], out["gt_boxes"], 300, np.linspace(0.5, 0.95, 10))
        curves[name] = {f"{t:.2f}": round(float(v), 4) for t, v in zip(ious, r)}
    gt = sum(len(t["boxes"]) for _, t in test)
    print(f"trained {history['steps']} steps in {history['seconds']:.1f} s; {gt} test digits in {len(test)} images\n")
    print("| proposals | N per image | recall @ IoU 0.5 | recall @ IoU 0.7 |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['proposals']} | {r['top_n']} | {r['recall@0.5']:.3f} | {r['recall@0.7']:.3f} |")
    print("\nrecall vs IoU at 300 proposals:")
    print("| IoU | " + " | ".join(curves["NMS 0.7"]) + " |\n|---|" + "---:|" * len(curves["NMS 0.7"]))
    for name, curve in curves.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in curve.values()) + " |")
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": os.getloadavg(), "epochs": args.epochs, "steps": history["steps"],
            "train_seconds": round(history["seconds"], 1),
            "final_loss_mean_50": round(float(np.mean(history["total"][-50:])), 4),
            "test_images": len(test), "test_boxes": gt, "settings": dataclasses.asdict(course),
            "anchors": {"sizes": model.rpn.anchor_generator.sizes,
                        "aspect_ratios": model.rpn.anchor_generator.aspect_ratios, "stride": model.backbone.stride}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows, "recall_vs_iou_at_300": curves}, indent=1) + "\n")


if __name__ == "__main__":
    main()
