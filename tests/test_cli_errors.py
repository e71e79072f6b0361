"""Every command-line mistake ends with one line, ``error: <what> (<how to fix>)``, exit
status 2, and nothing written: the table below lists each bad input and its exact message."""
import io
import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from PIL import Image

from minifrcnn.__main__ import main
from minifrcnn.data import DATA_DIR
from minifrcnn.detector import DetectorConfig, FasterRCNN
from minifrcnn.training import TrainSettings

TRAIN_HINT = "give a file written by `python -m minifrcnn train`"
IMAGE = DATA_DIR / "digits" / "test" / "00001.png"


@pytest.fixture
def files(tmp_path):
    """Bad and good inputs in ``tmp/inputs``; ``tmp/out`` is where commands may write."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "corrupt.pt").write_bytes(b"this is not a checkpoint")
    torch.save({"weights": torch.zeros(1)}, inputs / "foreign.pt")
    five = FasterRCNN(DetectorConfig.course(num_classes=5, backbone_weights=None))
    torch.save({"config": asdict(five.config), "model": five.state_dict()}, inputs / "five_classes.pt")
    course = FasterRCNN(DetectorConfig.course(backbone_weights=None))
    misfit = {k: v for k, v in course.state_dict().items() if not k.startswith("head.")}
    torch.save({"config": asdict(course.config), "model": misfit}, inputs / "misfit.pt")
    torch.save({"config": {**asdict(course.config), "colour": "red"}, "model": course.state_dict()},
               inputs / "unknown_field.pt")
    torch.save({"config": asdict(course.config), "model": course.state_dict()}, inputs / "good.pt")
    (inputs / "notes.png").write_text("not an image")
    empty = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "thing"}]}
    (inputs / "empty_coco.json").write_text(json.dumps(empty))
    (inputs / "missing_image.json").write_text(json.dumps(
        {**empty, "images": [{"id": 1, "file_name": "gone.png", "width": 8, "height": 6}]}))
    Image.new("RGB", (8, 6)).save(inputs / "small.png")
    (inputs / "wrong_size.json").write_text(json.dumps(
        {**empty, "images": [{"id": 1, "file_name": "small.png", "width": 80, "height": 60}]}))
    (inputs / "a_file").write_text("")
    (inputs / "a_folder").mkdir()
    one_box = {"images": [{"id": 1, "file_name": "small.png", "width": 8, "height": 6}],
               "categories": [{"id": 1, "name": "thing"}]}
    (inputs / "nan_box.json").write_text(json.dumps(  # Python's json writes NaN, and reads it back
        {**one_box, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [float("nan"), 1, 2, 2]}]}))
    buffer = io.BytesIO()
    Image.fromarray(torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8).numpy()).save(buffer, format="PNG")
    (inputs / "truncated.png").write_bytes(buffer.getvalue()[:len(buffer.getvalue()) // 2])   # a header PIL reads,
    (inputs / "truncated.json").write_text(json.dumps(                                        # pixels it cannot
        {**one_box, "images": [{"id": 1, "file_name": "truncated.png", "width": 64, "height": 48}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}]}))
    torch.save({"fc.weight": torch.zeros(2, 2)}, inputs / "not_resnet.pth")
    return inputs, tmp_path / "out"


# (arguments, with {in} for the inputs folder and {out} for the output folder; the exact message)
CASES = [
    (["train", "--steps", "0", "--out", "{out}"], "--steps must be at least 1, got 0 (train 1 step or more)"),
    (["train", "--steps", "-3", "--out", "{out}"], "--steps must be at least 1, got -3 (train 1 step or more)"),
    (["train", "--batch-size", "0", "--out", "{out}"],
     "--batch-size must be at least 1, got 0 (use 1 image a step or more)"),
    (["train", "--lr", "nan", "--out", "{out}"], "--lr must be a finite number above 0, got nan (e.g. 0.01)"),
    (["train", "--lr", "inf", "--out", "{out}"], "--lr must be a finite number above 0, got inf (e.g. 0.01)"),
    (["train", "--lr", "0", "--out", "{out}"], "--lr must be a finite number above 0, got 0.0 (e.g. 0.01)"),
    (["train", "--limit", "0", "--out", "{out}"],
     "--limit must be at least 1, got 0 (leave it out to use every image)"),
    (["train", "--limit", "4", "--batch-size", "8", "--out", "{out}"],
     "--batch-size 8 is larger than the training set (4 images) (use at most 4)"),
    (["train", "--limit", "4", "--batch-size", "2", "--out", "{in}/a_file"],
     "--out {in}/a_file is a file, not a folder (give a folder to write into)"),
    (["evaluate", "--checkpoint", "{out}/missing.pt"],
     "checkpoint {out}/missing.pt not found (train one with `python -m minifrcnn train`, or give its path with "
     "--checkpoint)"),
    (["evaluate", "--checkpoint", "{in}/corrupt.pt"],
     f"{{in}}/corrupt.pt is not a file of plain tensors that can be loaded safely ({TRAIN_HINT})"),
    (["evaluate", "--checkpoint", "{in}/foreign.pt"],
     f"{{in}}/foreign.pt: not a minifrcnn training checkpoint, no 'config'/'model' entries ({TRAIN_HINT})"),
    (["evaluate", "--checkpoint", "{in}/five_classes.pt"],
     "{in}/five_classes.pt detects 4 classes, the digits have 10 (give its own data with --data and --images, or a "
     "checkpoint trained on the digits)"),
    (["evaluate", "--checkpoint", "{in}/good.pt", "--data", "{in}/notes.png", "--images", "{in}"],
     "{in}/notes.png: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    (["evaluate", "--checkpoint", "{in}/good.pt", "--data", "{in}/missing.json", "--images", "{in}"],
     "{in}/missing.json: no such file (a COCO annotation file is a JSON file; check the path)"),
    (["evaluate", "--checkpoint", "{in}/good.pt", "--data", "{in}/empty_coco.json"],
     "--data needs --images, the folder its file names are relative to"),
    (["evaluate", "--checkpoint", "{in}/misfit.pt"],
     f"{{in}}/misfit.pt: its weights do not fit its config ({TRAIN_HINT})"),
    (["evaluate", "--checkpoint", "{in}/unknown_field.pt"],
     "{in}/unknown_field.pt: a config this minifrcnn cannot build (unknown DetectorConfig fields ['colour']: a file "
     "from another minifrcnn version? The fields are listed by minifrcnn.detector.config_table())"),
    (["evaluate", "--checkpoint", "{in}/good.pt", "--limit", "0"],
     "--limit must be at least 1, got 0 (leave it out to use every image)"),
    (["detect", "{in}/missing.png", "--checkpoint", "{in}/good.pt", "--out-dir", "{out}"],
     "image {in}/missing.png not found (check the path)"),
    (["detect", "{in}/notes.png", "--checkpoint", "{in}/good.pt", "--out-dir", "{out}"],
     "{in}/notes.png is not an image file PIL can read (give a PNG or JPEG image)"),
    (["detect", str(IMAGE), "--score", "1.5", "--checkpoint", "{in}/good.pt", "--out-dir", "{out}"],
     "--score must be between 0 and 1, got 1.5 (scores are probabilities; 0.5 draws the likely detections)"),
    (["detect", str(IMAGE), "--checkpoint", "{in}/missing.pt", "--out-dir", "{out}"],
     "checkpoint {in}/missing.pt not found (train one with `python -m minifrcnn train`, or give its path with "
     "--checkpoint)"),
    (["detect", "--checkpoint", "{in}/good.pt", "--out-dir", "{out}"],
     "no images to detect in (give image files, or --data FILE --images DIR)"),
    (["train", "--train", "{in}/empty_coco.json", "--out", "{out}"],
     "--train needs --images, the folder its file names are relative to"),
    (["train", "--train", "{in}/empty_coco.json", "--images", "{in}/missing", "--out", "{out}"],
     "{in}/missing: no such folder (the folder holding the images that empty_coco.json names)"),
    (["train", "--train", "{in}/missing_image.json", "--images", "{in}", "--out", "{out}"],
     "{in}/gone.png: no such image (images[0] of missing_image.json names it; check the images folder)"),
    (["train", "--train", "{in}/wrong_size.json", "--images", "{in}", "--out", "{out}"],
     "{in}/small.png is 8x6 pixels but wrong_size.json says 80x60 (fix the file's width and height)"),
    (["train", "--images", "{in}", "--out", "{out}"],
     "--images and --val go with --train (your own data); without it the course's digits are used"),
    (["train", "--limit", "4", "--batch-size", "2", "--min-size", "300", "--max-size", "200", "--out", "{out}"],
     "--min-size must be above 0 and at most --max-size, got 300 and 200 (the shorter side is resized to min-size, "
     "the longer kept under max-size)"),
    (["train", "--limit", "4", "--batch-size", "2", "--backbone-weights", "{in}/missing.pth", "--out", "{out}"],
     "--backbone-weights {in}/missing.pth: no such file (give a local weights file; minifrcnn never downloads, or "
     "'none' for random weights)"),
    (["detect", str(IMAGE), "--checkpoint", "{in}/good.pt", "--out-dir", "{in}/a_file"],
     "--out-dir {in}/a_file is a file, not a folder (give a folder to write into)"),
    (["pretrain", "--steps", "0", "--out", "{out}/backbone.pt"],
     "--steps must be at least 1, got 0 (leave it out for the shipped file's settings)"),
    (["pretrain", "--threads", "0", "--out", "{out}/backbone.pt"],
     "--threads must be at least 1, got 0 (the shipped file used 1)"),
    (["pretrain", "--out", "{in}/a_folder"],
     "--out {in}/a_folder is a folder (give the weights file's path, e.g. backbone.pt)"),
    (["ablations", "--steps", "0", "--out", "{out}/ablations.json"],
     "--steps must be at least 1, got 0 (leave it out for TrainSettings().steps)"),
    (["ablations", "--seeds", "0", "-1", "--out", "{out}/ablations.json"],
     "--seeds must be 0 or more, got [0, -1] (e.g. --seeds 0 1 2)"),
    (["ablations", "--limit", "-1", "--out", "{out}/ablations.json"],
     "--limit must be 0 (every image) or more, got -1"),
    (["ablations", "--only", "anchor", "--out", "{out}/ablations.json"],
     "--only: no table or row 'anchor' (tables: baseline, anchors, lambda, sharing, stages, pretraining, "
     "fine-tuning; a row: e.g. lambda/0.1)"),
    (["ablations", "--out", "{in}/a_folder"],
     "--out {in}/a_folder is a folder (give the results file's path, e.g. ablations.json)"),
    (["evaluate", "--checkpoint", "{in}/a_folder"],
     "checkpoint {in}/a_folder is a folder, not a checkpoint file (give the .pt file in it, e.g. "
     "{in}/a_folder/checkpoint.pt)"),
    (["detect", "{in}/a_folder", "--checkpoint", "{in}/good.pt", "--out-dir", "{out}"],
     "image {in}/a_folder is a folder (give image files; for the images of a COCO file use --data and --images)"),
    (["train", "--train", "{in}/small.png", "--images", "{in}", "--out", "{out}"],
     "{in}/small.png: not a text file, so not JSON (give the COCO annotation file, a .json file)"),
    (["train", "--train", "{in}/a_folder", "--images", "{in}", "--out", "{out}"],
     "{in}/a_folder: a folder, not a file (give the COCO annotation file, a .json file)"),
    (["train", "--train", "{in}/nan_box.json", "--images", "{in}", "--out", "{out}"],
     "{in}/nan_box.json: annotations[0] (id 1) bbox [nan, 1, 2, 2] is not finite (NaN or infinity: fix or remove "
     "the annotation)"),
    (["train", "--train", "{in}/truncated.json", "--images", "{in}", "--steps", "1", "--batch-size", "1",
      "--out", "{out}"],
     "{in}/truncated.png: not an image file PIL can read (images[0] of truncated.json) (fix the file or remove it "
     "from the annotations, then train again)"),
    (["train", "--limit", "4", "--batch-size", "2", "--min-size", "0", "--out", "{out}"],
     "--min-size must be above 0 and at most --max-size, got 0 and 192 (the shorter side is resized to min-size, "
     "the longer kept under max-size)"),
    (["train", "--limit", "4", "--batch-size", "2", "--backbone", "resnet18", "--backbone-weights",
      "{in}/corrupt.pt", "--out", "{out}"],
     "{in}/corrupt.pt: not a weights file torch can load safely (give the state dict of "
     "torchvision's resnet18, saved with torch.save)"),
    (["train", "--limit", "4", "--batch-size", "2", "--backbone", "resnet18", "--backbone-weights",
      "{in}/not_resnet.pth", "--out", "{out}"],
     "{in}/not_resnet.pth: not the weights of torchvision's resnet18, its keys or shapes differ (give the state "
     "dict of resnet18 itself)"),
    (["train", "--limit", "4", "--batch-size", "2", "--backbone-weights", "{in}/good.pt", "--out", "{out}"],
     "{in}/good.pt is a whole detector's checkpoint, not a backbone's weights (give a backbone's weights, e.g. "
     "data/pretrained/small_backbone.pt, or --backbone-weights none)"),
    (["train", "--limit", "4", "--batch-size", "2", "--backbone-weights", "{in}/corrupt.pt", "--out", "{out}"],
     "{in}/corrupt.pt: not a weights file torch can load safely (give a backbone's weights, e.g. "
     "data/pretrained/small_backbone.pt, or --backbone-weights none)"),
    (["--device", "tpu", "evaluate", "--checkpoint", "{in}/good.pt"],
     "--device 'tpu' is not a device torch knows (use cpu, cuda or cuda:N)"),
]
if not torch.cuda.is_available():
    CASES.append((["--device", "cuda", "evaluate", "--checkpoint", "{in}/good.pt"],
                  "device 'cuda' was asked for, but torch sees no CUDA GPU (leave out --device, or use --device cpu)"))


def listing(folder):
    return sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*")) if folder.exists() else []


def test_the_table_covers_at_least_twenty_mistakes():
    assert len(CASES) >= 20 and len({tuple(args) for args, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:3]) for a, _ in CASES])
def test_a_mistake_gives_one_line_and_writes_nothing(files, capsys, args, message):
    inputs, out = files
    fill = {"in": str(inputs), "out": str(out)}
    before = listing(inputs)
    status = main([a.format(**fill) for a in args])
    captured = capsys.readouterr()
    assert status == 2
    *before_error, last = captured.err.split("\n")[:-1]
    assert last == f"error: {message.format(**fill)}" and captured.err.endswith("\n")
    # before it, at most the progress bar of a training that had begun (a mistake found in its first step)
    assert all(not line.strip() or line.lstrip("\r").startswith("training:") for line in before_error)
    assert listing(inputs) == before and not out.exists()  # nothing written, nothing changed


def test_train_settings_refuse_the_same_values():
    for changes, start in ((dict(steps=0), "steps must be at least 1"), (dict(batch_size=-1), "batch_size must"),
                           (dict(lr=float("nan")), "lr must be a finite number"), (dict(momentum=1.0), "momentum"),
                           (dict(schedule="linear"), "schedule must be"), (dict(optimizer="adam"), "optimizer must"),
                           (dict(checkpoint_every=0), "checkpoint_every"), (dict(warmup_steps=-1), "warmup_steps"),
                           (dict(clip_grad_norm=float("inf")), "clip_grad_norm"), (dict(step_at=0.0), "step_at")):
        with pytest.raises(ValueError) as error:
            TrainSettings(**changes)
        assert str(error.value).startswith(start) and "\n" not in str(error.value)


def test_the_command_line_exits_with_status_2_and_no_traceback(tmp_path):
    command = [sys.executable, "-m", "minifrcnn", "train", "--batch-size", "0", "--out", str(tmp_path / "o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: --batch-size must be at least 1, got 0 (use 1 image a step or more)\n"
    assert not (tmp_path / "o").exists()
