"""Lesson 04's RPN, shipped as data/results/rpn.pt: lessons 05 and 07 start from it instead of training it again.
The file holds lesson 04's recipe and finds the test digits; the command that makes it trains that recipe."""
import subprocess
import sys

import pytest
import torch

from minifrcnn.course.train_rpn import (
    COURSE_RPN_FILE,
    COURSE_RPN_RECIPE,
    collect_proposals,
    load_course_rpn,
    main,
    recall_vs_proposals,
    train_course_rpn,
)
from minifrcnn.data import cache, load_digits


def test_the_shipped_rpn_is_lesson_04s_run_and_finds_the_test_digits():
    saved = torch.load(COURSE_RPN_FILE, map_location="cpu", weights_only=True)
    assert saved["recipe"] == COURSE_RPN_RECIPE and saved["steps"] == 1500 and saved["threads"] == 1
    run = collect_proposals(load_course_rpn(), cache(load_digits("test"))[:40])
    recall = recall_vs_proposals(run["proposals"], run["gt_boxes"], (300,))
    assert recall[0.5][0] > 0.95 and recall[0.7][0] > 0.7   # lesson 05's checks, on 40 images


def test_a_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist: run python -m minifrcnn.course.train_rpn to make it"):
        load_course_rpn(tmp_path / "rpn.pt")


@pytest.mark.parametrize("args, message", [(["--threads", "0"], "--threads 0: use 1 or more"),
                                           (["--max-steps", "-2"], "--max-steps -2: use 1 or more")])
def test_the_command_refuses_bad_numbers_in_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "rpn.pt")])
    assert stop.value.code == 2 and message in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "rpn.pt").exists()


@pytest.mark.slow
def test_the_command_trains_lesson_04s_recipe(tmp_path):
    """A 3-step run of the command equals 3 steps of train_course_rpn here, to the bit (one thread, as the
    command and lesson 04): the shipped file is that run for 1,500 steps."""
    out = tmp_path / "rpn.pt"
    result = subprocess.run([sys.executable, "-m", "minifrcnn.course.train_rpn", "--max-steps", "3", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    saved = torch.load(out, map_location="cpu", weights_only=True)
    assert saved["steps"] == 3 and saved["command"].endswith(f"--max-steps 3 --out {out}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, _ = train_course_rpn(cache(load_digits("train")), max_steps=3)
    finally:
        torch.set_num_threads(threads)
    shipped = load_course_rpn(out)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
