"""python -m minifrcnn train | evaluate | detect, end to end on a few images."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minifrcnn.data import DATA_DIR

pytestmark = pytest.mark.slow  # each test runs the command line in a subprocess


def run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", "minifrcnn", "--device", "cpu", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    stdout = run("train", "--steps", "2", "--batch-size", "2", "--limit", "8", "--out", str(out), cwd=out)
    assert "trained 2 steps" in stdout
    return out


def test_train_writes_checkpoint_history_and_config(trained):
    assert (trained / "checkpoint.pt").exists()
    assert len(json.loads((trained / "history.json").read_text())) == 2
    config = json.loads((trained / "config.json").read_text())
    assert config["train"]["steps"] == 2 and config["model"]["num_classes"] == 11


def test_evaluate_writes_metrics(trained):
    stdout = run("evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--split", "val", "--limit", "4",
                 cwd=trained)
    metrics = json.loads((trained / "metrics_val.json").read_text())
    assert "mAP@0.5" in stdout and 0 <= metrics["map50"] <= 1 and -1 <= metrics["coco_ap"] <= 1


def test_detect_draws_annotated_images(trained):
    image = DATA_DIR / "digits" / "test" / sorted(p.name for p in (DATA_DIR / "digits" / "test").iterdir())[0]
    out_dir = trained / "detections"
    stdout = run("detect", str(image), "--checkpoint", str(trained / "checkpoint.pt"), "--out-dir", str(out_dir),
                 "--score", "0.0", cwd=trained)
    assert "detections with score >= 0.0 ->" in stdout and (out_dir / (Path(image).stem + "_detections.png")).exists()
    results = json.loads((out_dir / "detections.json").read_text())  # COCO results: digit d is category d + 1
    assert all(r["image_id"] == 1 and 1 <= r["category_id"] <= 10 and len(r["bbox"]) == 4 for r in results)


def test_a_checkpoint_that_is_not_minifrcnns_is_refused(tmp_path):
    import torch
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    result = subprocess.run([sys.executable, "-m", "minifrcnn", "evaluate", "--checkpoint", str(tmp_path / "other.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "not a minifrcnn training checkpoint" in result.stderr


def test_ablations_smoke_run_is_resumable(tmp_path):
    """The whole ablation script on 8 images and 2 steps per row, then again: every row is
    kept from the file the second time (nothing is trained)."""
    from minifrcnn.course.ablations import TRAINING_ROWS, expected_rows
    out = tmp_path / "results" / "ablations.json"
    args = ("ablations", "--out", str(out), "--steps", "2", "--limit", "8", "--threads", "1", "--seeds", "0")
    stdout = run(*args, cwd=tmp_path)
    assert f"[seed 0, 1/{len(TRAINING_ROWS)}] baseline / course: mAP@0.5" in stdout
    results = json.loads(out.read_text())
    assert results["command"] == "python -m minifrcnn --device cpu " + " ".join(args)
    assert [(r["table"], r["name"], r["settings"]) for r in results["rows"]] == \
        [(r["table"], r["name"], r["settings"]) for r in expected_rows(2, [0], 8)]
    assert (out.parent / "baseline.pt").stat().st_size < 5e6
    stdout = run(*args, cwd=tmp_path)
    assert stdout.count("kept from ablations.json") == len(TRAINING_ROWS)


def test_detect_works_out_of_the_box_with_the_shipped_detector(tmp_path):
    """No --checkpoint and no runs/course/checkpoint.pt: detect uses the course's trained
    detector that the repository ships (data/results/baseline.pt, a float16 checkpoint),
    and finds the digits of a test image."""
    from minifrcnn.data import load_digits
    image, target = load_digits("test")[0]
    path = DATA_DIR / "digits" / "test" / "00001.png"
    stdout = run("detect", str(path), "--out-dir", str(tmp_path / "det"), cwd=tmp_path)
    assert "using the course's trained detector" in stdout
    results = json.loads((tmp_path / "det" / "detections.json").read_text())
    confident = {r["category_id"] for r in results if r["score"] >= 0.5}
    assert set(target["labels"].tolist()) <= confident  # category id = label = digit + 1
    assert not (tmp_path / "runs").exists()



def test_resume_says_what_it_does_and_refuses_another_process_count(tmp_path):
    """--resume without a checkpoint says it starts from the first step; a checkpoint written by
    2 processes, resumed by 1, ends in one line and status 2, and the checkpoint is left as it was."""
    import torch

    from minifrcnn.training import load_checkpoint
    out = tmp_path / "run"
    common = ["train", "--batch-size", "2", "--limit", "4", "--out", str(out), "--resume"]
    stdout = run(*common, "--steps", "1", cwd=tmp_path)
    assert f"--resume: no {out / 'checkpoint.pt'} yet, so training starts from the first step" in stdout
    state = load_checkpoint(out / "checkpoint.pt")
    state["rng_per_process"] = [state["rng"], state["rng"]]        # as if written by torchrun with 2 processes
    torch.save(state, out / "checkpoint.pt")
    before = (out / "checkpoint.pt").read_bytes()
    result = subprocess.run([sys.executable, "-m", "minifrcnn", "--device", "cpu", *common, "--steps", "2"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: {out / 'checkpoint.pt'} was written by 2 process(es): "
                                                      "resume it with as many (now 1)")
    assert (out / "checkpoint.pt").read_bytes() == before
    state["rng_per_process"] = [state["rng"]]
    torch.save(state, out / "checkpoint.pt")
    stdout = run(*common, "--steps", "1", cwd=tmp_path)          # 1 step trained already: nothing left
    assert f"--resume: {out / 'checkpoint.pt'} has trained 1 step already, and --steps is 1: nothing left" in stdout
