"""Command line: train, evaluate and run the course's detector.

    python -m minifrcnn train [--steps 1000] [--out runs/course]
    python -m minifrcnn evaluate [--checkpoint runs/course/checkpoint.pt] [--split test]
    python -m minifrcnn detect IMAGE... [--checkpoint ...] [--out-dir DIR/detections beside the checkpoint]
    python -m minifrcnn pretrain [--out data/pretrained/small_backbone.pt] [--steps N]
    python -m minifrcnn ablations [--out data/results/ablations.json] [--steps N] [--seeds 0 1 2]

Defaults train lesson 09's detector exactly (DetectorConfig.course(), TrainSettings()) on the
course's digits (data/digits) and write into runs/course/: the checkpoint (resumable), the
loss history and metrics as JSON, and annotated images. ``pretrain`` regenerates the
pretrained backbone (lesson 08); ``ablations`` trains the paper's training-time ablations
(lesson 11; over an hour per seed on 2 CPU cores), resumable run by run; see
``minifrcnn.course.ablations``.

A mistake on the command line (a missing or unreadable file, a checkpoint of something else,
an out-of-range setting) ends with one line, ``error: <what> (<how to fix>)``, and exit status
2, before anything is written. ``MINIFRCNN_DEBUG=1`` shows the traceback instead.
"""
import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

DEFAULT_OUT = Path("runs/course")


def _shipped_detector():
    """The course's trained detector that the repository ships (lesson 11's baseline)."""
    from .data import DATA_DIR
    return DATA_DIR / "results" / "baseline.pt"


def _checkpoint(path):
    """``--checkpoint``, or by default ``runs/course/checkpoint.pt`` when ``train`` wrote one,
    else the course's detector that the repository ships."""
    if path is not None:
        return Path(path)
    if (DEFAULT_OUT / "checkpoint.pt").exists():
        return DEFAULT_OUT / "checkpoint.pt"
    print(f"using the course's trained detector, {_shipped_detector()} (no {DEFAULT_OUT / 'checkpoint.pt'} yet; "
          "--checkpoint picks another)")
    return _shipped_detector()


class CommandError(Exception):
    """A mistake on the command line: printed as ``error: <message>``, exit status 2."""


TRAIN_HINT = "give a file written by `python -m minifrcnn train`"


def _model_from_checkpoint(path, device):
    """``(detector in eval mode, classes)`` from a training checkpoint, or a :class:`CommandError`.
    ``classes`` is ``{"class_names": [...], "category_ids": [...]}``: what ``train --train``
    recorded for your data, or the digits' for a checkpoint trained on them."""
    from .data import CLASS_NAMES
    from .detector import DetectorConfig, FasterRCNN
    from .training import load_checkpoint
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"checkpoint {path} is a folder, not a checkpoint file (give the .pt file in it, e.g. "
                           f"{path / 'checkpoint.pt'})")
    if not path.is_file():
        raise CommandError(f"checkpoint {path} not found (train one with `python -m minifrcnn train`, "
                           "or give its path with --checkpoint)")
    try:
        state = load_checkpoint(path)
    except (ValueError, OSError):  # torch's reason is long and varies: MINIFRCNN_DEBUG=1 shows it
        raise CommandError(f"{path} is not a file of plain tensors that can be loaded safely ({TRAIN_HINT})") from None
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise CommandError(f"{path}: not a minifrcnn training checkpoint, no 'config'/'model' entries ({TRAIN_HINT})")
    try:
        config = DetectorConfig.from_dict(state["config"])
        model = FasterRCNN(config)
    except (TypeError, ValueError) as error:
        raise CommandError(f"{path}: a config this minifrcnn cannot build ({error})") from None
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError):
        raise CommandError(f"{path}: its weights do not fit its config ({TRAIN_HINT})") from None
    classes = state.get("data") or {}
    if "class_names" not in classes:  # trained on the digits, or a checkpoint from before class names were kept
        names = list(CLASS_NAMES) if config.num_classes == len(CLASS_NAMES) else \
            ["__background__"] + [str(label) for label in range(1, config.num_classes)]
        classes = {"class_names": names, "category_ids": list(range(1, config.num_classes))}
    return model.to(device).eval(), classes


def _digits_only(path, classes):
    from .data import CLASS_NAMES
    if list(classes["class_names"]) != list(CLASS_NAMES):
        raise CommandError(f"{path} detects {len(classes['class_names']) - 1} classes, the digits have "
                           f"{len(CLASS_NAMES) - 1} (give its own data with --data and --images, or a checkpoint "
                           "trained on the digits)")


def _coco_data(annotation_file, images, option, categories=None):
    """A :class:`minifrcnn.data.CocoDataset` whose every image exists and has its stated size."""
    from .data import CocoDataset
    if images is None:
        raise CommandError(f"{option} needs --images, the folder its file names are relative to")
    try:
        dataset = CocoDataset(annotation_file, images, categories=categories)
        dataset.check_images()
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    return dataset


def _check_limit(limit):
    if limit is not None and limit < 1:
        raise CommandError(f"--limit must be at least 1, got {limit} (leave it out to use every image)")


def _load(load_digits, cache, split, limit):
    """A split of the course data in memory, or its first ``limit`` images."""
    dataset = load_digits(split)
    if limit:
        dataset = [dataset[i] for i in range(min(limit, len(dataset)))]
    return cache(dataset)


def _out_folder(path, option):
    """``path`` as a folder to write into (created), or a :class:`CommandError`."""
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {path} is a file, not a folder (give a folder to write into)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _option_message(message, options):
    """``steps must be ...`` (a TrainSettings error) -> ``--steps must be ...``."""
    field = message.split()[0]
    return (options[field] + message[len(field):]) if field in options else message


def _config(args, num_classes):
    """The course's detector, for ``num_classes`` (with the background), with the command line's changes."""
    from .detector import DetectorConfig
    config = DetectorConfig.course(num_classes=num_classes)
    changes = {}
    if args.min_size is not None or args.max_size is not None:
        min_size = config.min_size if args.min_size is None else args.min_size
        max_size = max(min_size, config.max_size) if args.max_size is None else args.max_size
        if not 0 < min_size <= max_size:
            raise CommandError(f"--min-size must be above 0 and at most --max-size, got {min_size} and {max_size} "
                               "(the shorter side is resized to min-size, the longer kept under max-size)")
        scale = min_size / config.min_size  # the anchors follow the image size
        changes.update(min_size=min_size, max_size=max_size,
                       anchor_sizes=tuple(max(1, round(a * scale)) for a in config.anchor_sizes))
    if args.backbone is not None and args.backbone != "small":
        changes.update(backbone=args.backbone, backbone_weights=None, backbone_frozen_stages=0)
    if args.backbone_weights is not None:
        weights = None if args.backbone_weights == "none" else args.backbone_weights
        if weights is not None and not Path(weights).is_file():
            raise CommandError(f"--backbone-weights {weights}: no such file (give a local weights file; "
                               "minifrcnn never downloads, or 'none' for random weights)")
        changes.update(backbone_weights=weights,
                       backbone_frozen_stages=config.backbone_frozen_stages if weights else 0)
    return DetectorConfig.course(num_classes=num_classes, **changes)


def _first_process():
    """Whether this is the process that reports: the only one, or rank 0 under ``torchrun``
    (read from its environment, so it holds before the process group is joined too)."""
    return int(os.environ.get("RANK", "0")) == 0


def _start_processes(device_name):
    """Under ``torchrun`` (``WORLD_SIZE`` > 1): join the process group (NCCL on GPUs, gloo on
    CPUs) and return ``(rank, this process's device)``; otherwise ``(0, the device)``."""
    from .utils import get_device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = get_device(device_name)
    if world == 1:
        return 0, device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return torch.distributed.get_rank(), device


def cmd_train(args):
    from .data import CLASS_NAMES, cache, load_digits
    from .detector import FasterRCNN
    from .training import NonFiniteLossError, TrainSettings, load_checkpoint, process_group, train
    from .utils import seed_everything
    try:
        settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    except ValueError as error:
        raise CommandError(_option_message(str(error), {"steps": "--steps", "batch_size": "--batch-size",
                                                        "lr": "--lr"})) from None
    _check_limit(args.limit)
    if args.train is not None:  # your own COCO data
        data = _coco_data(args.train, args.images, "--train")
        items = data if not args.limit else [data[i] for i in range(min(args.limit, len(data)))]
        classes = {"class_names": list(data.class_names), "category_ids": data.category_ids,
                   "categories": data.categories, "train": str(args.train)}
        if args.evaluate and args.val is None:
            raise CommandError("--evaluate with --train needs --val, a COCO file of held-out images to score")
        if args.val is not None:
            _coco_data(args.val, args.val_images or args.images, "--val", categories=data.categories)
    else:
        if args.images is not None or args.val is not None:
            raise CommandError("--images and --val go with --train (your own data); without it the course's "
                               "digits are used")
        items = _load(load_digits, cache, "train", args.limit)
        classes = {"class_names": list(CLASS_NAMES), "category_ids": list(range(1, len(CLASS_NAMES)))}
    if settings.batch_size > len(items):
        raise CommandError(f"--batch-size {settings.batch_size} is larger than the training set ({len(items)} "
                           f"images) (use at most {len(items)})")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if settings.batch_size % world:
        fit = world * max(1, settings.batch_size // world)
        raise CommandError(f"--batch-size {settings.batch_size} is not a multiple of the {world} processes (each "
                           f"takes an equal share of every batch: use e.g. {fit})")
    config = _config(args, num_classes=len(classes["class_names"]))
    checkpoint = args.out / "checkpoint.pt"
    seed_everything(args.seed)
    try:
        model = FasterRCNN(config)
    except (FileNotFoundError, ValueError) as error:
        message = str(error).splitlines()[0].replace("set backbone_weights=None", "--backbone-weights none")
        raise CommandError(message if message.endswith(")") else f"{message} (check --backbone and "
                                                                   "--backbone-weights)") from None
    if args.resume and checkpoint.exists():
        _, resumed = _model_from_checkpoint(checkpoint, "cpu")  # readable, and trained on the same classes
        if resumed["class_names"] != classes["class_names"]:
            raise CommandError(f"{checkpoint} was trained on other classes (train into another --out, or remove it)")
        done = int(load_checkpoint(checkpoint).get("step", 0))
        if done >= settings.steps and _first_process():
            print(f"--resume: {checkpoint} has trained {done} step{'s' * (done != 1)} already, and --steps is "
                  f"{settings.steps}: "
                  "nothing left to train (raise --steps to train on)")
    elif args.resume and _first_process():
        print(f"--resume: no {checkpoint} yet, so training starts from the first step")
    rank, device = _start_processes(args.device)
    created = not args.out.exists()
    if rank == 0:
        _out_folder(args.out, "--out")
    try:
        history = train(model, items, settings, checkpoint=checkpoint, resume=args.resume, device=device,
                        metadata=classes)
    except NonFiniteLossError as error:
        raise CommandError(f"training stopped, {error}") from None
    except ValueError as error:  # found while training: an unreadable image, a checkpoint of another process count
        if rank == 0 and created and args.out.is_dir() and not any(args.out.iterdir()):
            args.out.rmdir()  # nothing written on a mistake
        message = str(error).splitlines()[0]
        failure = CommandError(message if "process(es)" in message else f"{message} (fix the file or remove it "
                                                                        "from the annotations, then train again)")
        failure.every_process = True  # found in this process's share of a batch: the others may not have seen it
        raise failure from None
    finally:
        if process_group()[1] > 1:
            torch.distributed.destroy_process_group()
    if rank != 0:  # rank 0 alone writes and reports
        return
    (args.out / "history.json").write_text(json.dumps(history))
    (args.out / "config.json").write_text(json.dumps({"model": asdict(model.config), "train": asdict(settings),
                                                      "classes": classes}, indent=2))
    print(f"trained {len(history)} steps; checkpoint in {checkpoint}")
    if args.evaluate:
        args.checkpoint, args.split = checkpoint, "val"
        args.data, args.images = args.val, args.val_images or args.images
        cmd_evaluate(args)


def cmd_evaluate(args):
    from .data import cache, load_digits
    from .detector import detect
    from .evaluation import evaluate_coco, evaluate_voc
    from .utils import get_device
    _check_limit(args.limit)
    args.checkpoint = _checkpoint(args.checkpoint)
    model, classes = _model_from_checkpoint(args.checkpoint, get_device(args.device))
    if args.data is not None:  # your own COCO data
        data = _coco_data(args.data, args.images, "--data", categories=classes.get("categories") or [
            {"id": i, "name": n} for i, n in zip(classes["category_ids"], classes["class_names"][1:])])
        items = [data[i] for i in range(min(args.limit or len(data), len(data)))]
        name = Path(args.data).stem
    else:
        _digits_only(args.checkpoint, classes)
        items, name = _load(load_digits, cache, args.split, args.limit), args.split
    detections = detect(model, [image for image, _ in items])
    targets = [target for _, target in items]
    voc = evaluate_voc(detections, targets, model.config.num_classes)
    coco = evaluate_coco(detections, targets, model.config.num_classes)
    names = classes["class_names"]
    metrics = {"data": str(args.data) if args.data else f"digits/{args.split}", "checkpoint": str(args.checkpoint),
               "map50": voc["map"], "ap50_per_class": {names[k]: v for k, v in voc["ap"].items()},
               "coco_ap": coco["ap"], "coco_ap50": coco["ap50"], "coco_ap75": coco["ap75"]}
    folder = Path(args.checkpoint).parent if args.checkpoint != _shipped_detector() else DEFAULT_OUT
    out = _out_folder(folder, "the checkpoint's folder") / f"metrics_{name}.json"
    out.write_text(json.dumps(metrics, indent=2))
    print(f"{name}: mAP@0.5 (VOC) {voc['map']:.4f}  AP@[.5:.95] (COCO) {coco['ap']:.4f}  -> {out}")


def _read_image(path):
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor
    if path.is_dir():
        raise CommandError(f"image {path} is a folder (give image files; for the images of a COCO file use --data "
                           "and --images)")
    if not path.is_file():
        raise CommandError(f"image {path} not found (check the path)")
    try:
        with Image.open(path) as file:
            return pil_to_tensor(file.convert("RGB")).float() / 255
    except (OSError, ValueError):
        raise CommandError(f"{path} is not an image file PIL can read (give a PNG or JPEG image)") from None


def cmd_detect(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .course.draw import draw_boxes, show_image
    from .utils import get_device
    if not 0 <= args.score <= 1:
        raise CommandError(f"--score must be between 0 and 1, got {args.score} (scores are probabilities; "
                           "0.5 draws the likely detections)")
    if not args.images and args.data is None:
        raise CommandError("no images to detect in (give image files, or --data FILE --images DIR)")
    args.checkpoint = _checkpoint(args.checkpoint)
    model, classes = _model_from_checkpoint(args.checkpoint, get_device(args.device))
    if args.data is not None:  # every image of a COCO file, with its ids
        data = _coco_data(args.data, args.data_images, "--data")
        jobs = [(data.images_dir / entry["file_name"], entry["id"], i) for i, entry in enumerate(data.images)]
        read = lambda job: data.read_image(job[2])  # noqa: E731
    else:  # image files: ids 1..N in the order given
        jobs = [(path, i, None) for i, path in enumerate(args.images, 1)]
        images = {path: _read_image(path) for path in args.images}  # every image is read before anything is written
        read = lambda job: images[job[0]]  # noqa: E731
    if args.out_dir is None:  # beside the checkpoint (the shipped one's: the course's run folder)
        args.out_dir = (Path(args.checkpoint).parent if args.checkpoint != _shipped_detector() else DEFAULT_OUT) \
            / "detections"
    _out_folder(args.out_dir, "--out-dir")
    names, category_ids = classes["class_names"], classes["category_ids"]
    results = []
    for job in jobs:
        path, image_id = job[0], job[1]
        image = read(job)
        with torch.no_grad():
            det = {k: v.cpu() for k, v in model([image.to(next(model.parameters()).device)])[0].items()}
        for box, label, score in zip(det["boxes"].tolist(), det["labels"].tolist(), det["scores"].tolist()):
            x1, y1, x2, y2 = box
            results.append({"image_id": image_id, "category_id": category_ids[label - 1],
                            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                            "score": round(score, 5)})
        keep = det["scores"] >= args.score
        fig, ax = plt.subplots(figsize=(6, 6))
        show_image(image, ax, title=Path(path).name)
        draw_boxes(ax, det["boxes"][keep], det["labels"][keep], det["scores"][keep], names)
        out = args.out_dir / (Path(path).stem + "_detections.png")
        fig.savefig(out, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"{path}: {int(keep.sum())} detections with score >= {args.score} -> {out}")
    results_file = args.out_dir / "detections.json"
    results_file.write_text(json.dumps(results))
    print(f"all {len(results)} detections, COCO results format (pycocotools' loadRes): {results_file}")


def cmd_pretrain(args):
    from .pretrain import main_args
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be at least 1, got {args.steps} (leave it out for the shipped file's "
                           "settings)")
    if args.threads < 1:
        raise CommandError(f"--threads must be at least 1, got {args.threads} (the shipped file used 1)")
    if args.out.is_dir():
        raise CommandError(f"--out {args.out} is a folder (give the weights file's path, e.g. backbone.pt)")
    main_args(args)


def cmd_ablations(args):
    from .course.ablations import TRAINING_ROWS, main_args
    if args.steps is not None and args.steps < 1:
        raise CommandError(f"--steps must be at least 1, got {args.steps} (leave it out for TrainSettings().steps)")
    if any(seed < 0 for seed in args.seeds):
        raise CommandError(f"--seeds must be 0 or more, got {args.seeds} (e.g. --seeds 0 1 2)")
    if args.limit < 0:
        raise CommandError(f"--limit must be 0 (every image) or more, got {args.limit}")
    if args.threads < 0:
        raise CommandError(f"--threads must be 0 (torch's default) or more, got {args.threads}")
    names = {row.table for row in TRAINING_ROWS} | {f"{row.table}/{row.name}" for row in TRAINING_ROWS}
    unknown = [name for name in args.only or () if name not in names]
    if unknown:
        tables = ", ".join(dict.fromkeys(row.table for row in TRAINING_ROWS))
        raise CommandError(f"--only: no table or row {unknown[0]!r} (tables: {tables}; a row: e.g. lambda/0.1)")
    if args.out.is_dir():
        raise CommandError(f"--out {args.out} is a folder (give the results file's path, e.g. ablations.json)")
    main_args(args)


def _check_device(name):
    from .utils import get_device
    try:
        torch.device(name)
    except (RuntimeError, ValueError):  # torch's message lists every device type it has
        raise CommandError(f"--device {name!r} is not a device torch knows (use cpu, cuda or cuda:N)") from None
    try:
        get_device(name)
    except RuntimeError as error:
        raise CommandError(f"{error} (leave out --device, or use --device cpu)") from None


def main(argv=None):
    from .training import TrainSettings
    parser = argparse.ArgumentParser(prog="python -m minifrcnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU when present)")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train the course detector: on the digits, or on your COCO data "
                                              "(--train and --images)")
    train.add_argument("--steps", type=int, default=TrainSettings().steps)
    train.add_argument("--batch-size", type=int, default=TrainSettings().batch_size)
    train.add_argument("--lr", type=float, default=TrainSettings().lr)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=DEFAULT_OUT)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--evaluate", action="store_true", help="evaluate on the val split afterwards")
    train.add_argument("--limit", type=int, default=None, help="use only the first N images (a quick try)")
    own = train.add_argument_group("your own data (COCO format) and detector")
    own.add_argument("--train", type=Path, default=None, help="a COCO annotation file to train on, not the digits")
    own.add_argument("--images", type=Path, default=None, help="the folder its file names are relative to")
    own.add_argument("--val", type=Path, default=None, help="a COCO file of held-out images, for --evaluate")
    own.add_argument("--val-images", type=Path, default=None, help="--val's image folder (default: --images)")
    own.add_argument("--min-size", type=int, default=None, help="shorter image side after resizing (the course: 192; "
                     "the anchors follow it)")
    own.add_argument("--max-size", type=int, default=None, help="longer image side at most (default: the course's "
                     "192, or --min-size if larger)")
    own.add_argument("--backbone", default=None, help="'small' (the course's) or a torchvision classifier, e.g. "
                     "resnet18 (cut at stride 16)")
    own.add_argument("--backbone-weights", default=None, help="a local weights file for the backbone (never "
                     "downloaded), or 'none' for random weights (default: the course's pretrained file for 'small', "
                     "random for a torchvision backbone)")
    evaluate = commands.add_parser("evaluate", help="mAP of a checkpoint on a split, written as JSON")
    evaluate.add_argument("--checkpoint", type=Path, default=None,
                          help="default: runs/course/checkpoint.pt, else the course's trained detector (shipped)")
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test"))
    evaluate.add_argument("--limit", type=int, default=None, help="use only the first N images")
    evaluate.add_argument("--data", type=Path, default=None, help="a COCO file to evaluate on instead of the digits")
    evaluate.add_argument("--images", type=Path, default=None, help="--data's image folder")
    detect = commands.add_parser("detect", help="draw a checkpoint's detections on images")
    detect.add_argument("images", nargs="*", type=Path, help="image files (ids 1..N in the results file)")
    detect.add_argument("--data", type=Path, default=None, help="or every image of a COCO file, with its ids")
    detect.add_argument("--images", dest="data_images", type=Path, default=None, help="--data's image folder")
    detect.add_argument("--checkpoint", type=Path, default=None,
                        help="default: runs/course/checkpoint.pt, else the course's trained detector (shipped)")
    detect.add_argument("--out-dir", type=Path, default=None,
                        help="default: detections/ beside --checkpoint, else runs/course/detections")
    detect.add_argument("--score", type=float, default=0.5, help="smallest score drawn")
    from .data import DATA_DIR
    from .pretrain import PRETRAINED_FILE, PretrainSettings
    pretrain = commands.add_parser("pretrain", help="pretrain the backbone as a digit classifier (lesson 08) and "
                                   "write its weights (default: the course's file, which detectors load)")
    pretrain.add_argument("--out", type=Path, default=PRETRAINED_FILE)
    pretrain.add_argument("--steps", type=int, default=None,
                          help=f"classifier training steps (default {PretrainSettings().steps})")
    pretrain.add_argument("--threads", type=int, default=1, help="torch threads (the shipped file: 1)")
    ablations = commands.add_parser("ablations", help="train and score the paper's training-time ablations "
                                    "(lesson 11); resumable: trainings already in OUT with the same settings are kept")
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
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "detect": cmd_detect, "pretrain": cmd_pretrain,
               "ablations": cmd_ablations}[args.command]
    try:
        if args.device is not None:
            _check_device(args.device)
        command(args)
    except CommandError as error:
        if os.environ.get("MINIFRCNN_DEBUG"):
            raise
        # under torchrun a mistake every process finds is printed once, by rank 0
        if _first_process() or getattr(error, "every_process", False):
            print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
