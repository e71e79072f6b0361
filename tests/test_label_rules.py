"""The labelling rules on trained RPNs (minifrcnn/course/label_rules.py, lesson 03)."""
import json

import pytest
import torch

from minifrcnn.boxes import box_iou
from minifrcnn.course.label_rules import (
    IOU_RANGES,
    RULES,
    load_results,
    main,
    objectness_by_iou,
    run,
    summary,
    train_with_rule,
)
from minifrcnn.course.train_rpn import make_rpn_model
from minifrcnn.matching import match_labels

QUIET = dict(log=lambda *args: None)


def test_the_rules_differ_only_in_the_negative_threshold():
    boxes = torch.tensor([[10.0, 10.0, 40.0, 50.0], [60.0, 70.0, 90.0, 120.0]])
    labels = {}
    for rule in RULES:
        rpn = make_rpn_model(bg_iou_thresh=RULES[rule]).rpn
        anchors = rpn.anchor_generator((128, 128), (16, 16))
        labels[rule] = match_labels(rpn.matcher(box_iou(boxes, anchors)))
    assert (labels["simplified"] != -1).all() and (labels["paper"] == -1).any()
    assert torch.equal(labels["simplified"] == 1, labels["paper"] == 1)              # the same positives
    assert torch.equal(labels["simplified"] == 0, (labels["paper"] == 0) | (labels["paper"] == -1))


def test_a_short_run_repeats_exactly_and_has_every_row():
    first = run(seeds=(0,), max_steps=3, limit=8, **QUIET)
    second = run(seeds=(0,), max_steps=3, limit=8, **QUIET)
    strip = [{k: v for k, v in row.items() if k != "train_seconds"} for row in first["rows"]]
    assert strip == [{k: v for k, v in row.items() if k != "train_seconds"} for row in second["rows"]]
    assert first["maps"] == second["maps"]
    assert [(r["rule"], r["seed"], r["steps"]) for r in first["rows"]] == [("paper", 0, 3), ("simplified", 0, 3)]
    assert all(set(r["objectness"]) == set(IOU_RANGES) for r in first["rows"])
    assert all(0 <= v <= 1 for r in first["rows"] for v in r["objectness"].values())
    assert [len(first["maps"]["paper"]), len(first["maps"]["paper"][0])] == [16, 16]
    table = summary(first)
    assert table["paper"]["recall_300_iou50"] == (first["rows"][0]["recall_300_iou50"], 0.0)


def test_objectness_ranges_cover_every_anchor():
    model = make_rpn_model().eval()
    anchor = model.rpn.anchor_generator((128, 128), (16, 16))[1000]   # a box that is exactly one anchor
    train = [(torch.rand(3, 128, 128), {"boxes": anchor[None]}),
             (torch.rand(3, 128, 128), {"boxes": torch.zeros(0, 4)})]   # an image without digits: all negative
    means, counts = objectness_by_iou(model, train)
    assert sum(counts.values()) == 2 * 16 * 16 * 9 and counts["positive (>= 0.7)"] >= 1
    assert all(0 < m < 1 for name, m in means.items() if counts[name])


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="rule must be one of"):
        train_with_rule("everything negative", [])


def test_the_command_writes_its_file(tmp_path):
    out = tmp_path / "rules.json"
    assert main(["--seeds", "1", "--max-steps", "2", "--limit", "8", "--threads", "1", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["seeds"] == [1] and written["steps"] == 2 and set(written["maps"]) == set(RULES)


def test_the_committed_results_are_the_lessons_full_runs():
    results = load_results()
    assert results["rules"] == RULES and results["seeds"] == [0, 1, 2]
    assert results["steps"] == 1500 and results["train_images"] == 1200 and results["test_images"] == 200
    expected = sorted((rule, seed) for rule in RULES for seed in (0, 1, 2))
    assert sorted((r["rule"], r["seed"]) for r in results["rows"]) == expected
    assert all(r["steps"] == 1500 for r in results["rows"])
