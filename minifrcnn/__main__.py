"""Command line: train, evaluate and run the course's detector.

    python -m minifrcnn train [--steps 1000] [--out runs/course]
    python -m minifrcnn evaluate [--checkpoint runs/course/checkpoint.pt] [--split test]
    python -m minifrcnn detect IMAGE... [--checkpoint ...] [--out-dir runs/course/detections]
    python -m minifrcnn pretrain [--out data/pretrained/small_backbone.pt] [--steps N]
    python -m minifrcnn ablations [--out data/results/ablations.json] [--steps N] [--seeds 0 1 2]

Defaults train lesson 08's detector exactly (DetectorConfig.course(), TrainSettings()) on the
course's digits (data/digits) and write into runs/course/: the checkpoint (resumable), the
loss history and metrics as JSON, and annotated images. ``pretrain`` regenerates the
pretrained backbone (lesson 07); ``ablations`` trains the paper's training-time ablations
(lesson 10; over an hour per seed on 2 CPU cores), resumable run by run; see
``minifrcnn.course.ablations``.
"""
import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

DEFAULT_OUT = Path("runs/course")


def _model_from_checkpoint(path, device):
    from .detector import DetectorConfig, FasterRCNN
    from .training import load_checkpoint
    state = load_checkpoint(path)
    if "config" not in state or "model" not in state:
        raise SystemExit(f"{path}: not a minifrcnn training checkpoint (no 'config'/'model' entries)")
    try:
        config = DetectorConfig.from_dict(state["config"])
    except (TypeError, ValueError) as error:
        raise SystemExit(f"{path}: {error}") from None
    model = FasterRCNN(config)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _load(load_digits, cache, split, limit):
    """A split of the course data in memory, or its first ``limit`` images."""
    dataset = load_digits(split)
    if limit:
        dataset = [dataset[i] for i in range(min(limit, len(dataset)))]
    return cache(dataset)


def cmd_train(args):
    from .data import cache, load_digits
    from .detector import DetectorConfig, FasterRCNN
    from .training import TrainSettings, train
    from .utils import get_device, seed_everything
    seed_everything(args.seed)
    device = get_device(args.device)
    model = FasterRCNN(DetectorConfig.course())
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    history = train(model, _load(load_digits, cache, "train", args.limit), settings,
                    checkpoint=args.out / "checkpoint.pt", resume=args.resume, device=device)
    (args.out / "history.json").write_text(json.dumps(history))
    (args.out / "config.json").write_text(json.dumps({"model": asdict(model.config), "train": asdict(settings)},
                                                     indent=2))
    print(f"trained {len(history)} steps; checkpoint in {args.out / 'checkpoint.pt'}")
    if args.evaluate:
        args.checkpoint, args.split = args.out / "checkpoint.pt", "val"
        cmd_evaluate(args)


def cmd_evaluate(args):
    from .data import cache, load_digits
    from .detector import detect
    from .evaluation import evaluate_coco, evaluate_voc
    from .utils import get_device
    model = _model_from_checkpoint(args.checkpoint, get_device(args.device))
    items = _load(load_digits, cache, args.split, args.limit)
    detections = detect(model, [image for image, _ in items])
    targets = [target for _, target in items]
    voc = evaluate_voc(detections, targets, model.config.num_classes)
    coco = evaluate_coco(detections, targets, model.config.num_classes)
    metrics = {"split": args.split, "checkpoint": str(args.checkpoint), "map50": voc["map"],
               "ap50_per_class": {str(k): v for k, v in voc["ap"].items()},
               "coco_ap": coco["ap"], "coco_ap50": coco["ap50"], "coco_ap75": coco["ap75"]}
    out = Path(args.checkpoint).parent / f"metrics_{args.split}.json"
    out.write_text(json.dumps(metrics, indent=2))
    print(f"{args.split}: mAP@0.5 (VOC) {voc['map']:.4f}  AP@[.5:.95] (COCO) {coco['ap']:.4f}  -> {out}")


def cmd_detect(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    from .course.draw import draw_boxes, show_image
    from .data import CLASS_NAMES
    from .utils import get_device
    model = _model_from_checkpoint(args.checkpoint, get_device(args.device))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = pil_to_tensor(Image.open(path).convert("RGB")).float() / 255
        with torch.no_grad():
            det = model([image.to(next(model.parameters()).device)])[0]
        keep = det["scores"] >= args.score
        fig, ax = plt.subplots(figsize=(6, 6))
        show_image(image, ax, title=Path(path).name)
        draw_boxes(ax, det["boxes"][keep].cpu(), det["labels"][keep].cpu(), det["scores"][keep].cpu(), CLASS_NAMES)
        out = args.out_dir / (Path(path).stem + "_detections.png")
        fig.savefig(out, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"{path}: {int(keep.sum())} detections -> {out}")


def cmd_pretrain(args):
    from .pretrain import main_args
    main_args(args)


def cmd_ablations(args):
    from .course.ablations import main_args
    main_args(args)


def main(argv=None):
    from .training import TrainSettings
    parser = argparse.ArgumentParser(prog="python -m minifrcnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU when present)")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the course detector on the digits")
    train.add_argument("--steps", type=int, default=TrainSettings().steps)
    train.add_argument("--batch-size", type=int, default=TrainSettings().batch_size)
    train.add_argument("--lr", type=float, default=TrainSettings().lr)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=DEFAULT_OUT)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--evaluate", action="store_true", help="evaluate on the val split afterwards")
    train.add_argument("--limit", type=int, default=0, help="use only the first N images (a quick try)")
    evaluate = commands.add_parser("evaluate", help="mAP of a checkpoint on a split, written as JSON")
    evaluate.add_argument("--checkpoint", type=Path, default=DEFAULT_OUT / "checkpoint.pt")
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test"))
    evaluate.add_argument("--limit", type=int, default=0, help="use only the first N images")
    detect = commands.add_parser("detect", help="draw a checkpoint's detections on images")
    detect.add_argument("images", nargs="+", type=Path)
    detect.add_argument("--checkpoint", type=Path, default=DEFAULT_OUT / "checkpoint.pt")
    detect.add_argument("--out-dir", type=Path, default=DEFAULT_OUT / "detections")
    detect.add_argument("--score", type=float, default=0.5, help="smallest score drawn")
    from .data import DATA_DIR
    from .pretrain import PRETRAINED_FILE, PretrainSettings
    pretrain = commands.add_parser("pretrain", help="pretrain the backbone as a digit classifier (lesson 07) and "
                                   "write its weights (default: the course's file, which detectors load)")
    pretrain.add_argument("--out", type=Path, default=PRETRAINED_FILE)
    pretrain.add_argument("--steps", type=int, default=None,
                          help=f"classifier training steps (default {PretrainSettings().steps})")
    pretrain.add_argument("--threads", type=int, default=2, help="torch threads (the shipped file: 2)")
    ablations = commands.add_parser("ablations", help="train and score the paper's training-time ablations "
                                    "(lesson 10); resumable: trainings already in OUT with the same settings are kept")
    ablations.add_argument("--out", type=Path, default=DATA_DIR / "results" / "ablations.json",
                           help="results file; the baseline's weights go beside it (baseline.pt)")
    ablations.add_argument("--steps", type=int, default=None,
                           help=f"training steps per row (default: TrainSettings().steps = {TrainSettings().steps})")
    ablations.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                           help="one training per seed and row (default 0 1 2: the noise of one run is measured)")
    ablations.add_argument("--limit", type=int, default=0, help="use only the first N train and test images")
    ablations.add_argument("--force", action="store_true", help="re-run rows already in OUT")
    ablations.add_argument("--only", nargs="+", default=None, metavar="TABLE[/ROW]",
                           help="run these rows only, e.g. anchors or lambda/0.1")
    ablations.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    args.command_line = "python -m minifrcnn " + " ".join(sys.argv[1:] if argv is None else argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "detect": cmd_detect, "pretrain": cmd_pretrain,
     "ablations": cmd_ablations}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
