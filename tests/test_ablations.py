"""Lesson 11's machinery: the test-time proposal variants (minifrcnn.course.test_time), the timing
table (timing), the one-stage detector (minifrcnn.one_stage), the noise band and verdicts (verdicts), and
minifrcnn.course.ablations: the RPN box-loss weight, the rows and their results file, and the resumable script."""
import hashlib
import json
from dataclasses import replace

import pytest
import torch

from minifrcnn.boxes import BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from minifrcnn.course import ablations
from minifrcnn.course.ablations import (
    TRAINING_ROWS,
    expected_rows,
    find_row,
    lambda_to_weight,
    row_settings,
    run_ablations,
    run_key,
)
from minifrcnn.course.test_time import (
    TEST_TIME_ROWS,
    ProposalVariant,
    ablate_proposals,
    detections_with,
    proposal_recall,
    rpn_outputs,
    select_proposals,
)
from minifrcnn.course.timing import time_parts, timing_table
from minifrcnn.course.verdicts import REFERENCE_ROWS, compare_with_paper, comparison_table, noise_band
from minifrcnn.detector import DetectorConfig, FasterRCNN, detect
from minifrcnn.one_stage import OneStageDetector
from minifrcnn.rpn import ProposalSettings, generate_proposals
from minifrcnn.training import load_checkpoint


def small_config(**changes):
    return DetectorConfig.course(backbone_weights=None, backbone_channels=(8, 16, 16), head_hidden=32, **changes)


def random_items(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        xy = torch.rand(3, 2, generator=g) * 80
        boxes = torch.cat((xy, xy + 12 + torch.rand(3, 2, generator=g) * 36), dim=1)
        items.append((torch.rand(3, 128, 128, generator=g),
                      {"boxes": boxes, "labels": torch.randint(1, 11, (3,), generator=g), "image_id": i}))
    return items


@pytest.fixture(scope="module")
def head_outputs():
    """An RPN's outputs for 2 images: random logits and deltas over the course's anchors."""
    g = torch.Generator().manual_seed(1)
    model = FasterRCNN(small_config())
    anchors = model.rpn.anchor_generator((128, 128), (16, 16))
    objectness = torch.randn(2, len(anchors), generator=g) * 3
    deltas = torch.randn(2, len(anchors), 4, generator=g) * 0.2
    return anchors, objectness, deltas, [(128, 128), (120, 100)]


# ----------------------------------------------------------------------------- test-time variants


def test_nms_variant_is_the_proposal_layer(head_outputs):
    anchors, objectness, deltas, sizes = head_outputs
    settings = ProposalSettings.course()
    for top_n in (50, 300):
        ours = select_proposals(anchors, objectness, deltas, sizes, ProposalVariant("nms", top_n), settings)
        boxes, _ = generate_proposals(anchors, objectness, deltas, sizes, settings.pre_nms_top_n_test, top_n,
                                      settings.nms_thresh, settings.min_box_size)
        for a, b in zip(ours, boxes):
            assert torch.equal(a, b)


def test_no_nms_variant_keeps_the_best_scored_boxes(head_outputs):
    anchors, objectness, deltas, sizes = head_outputs
    ours = select_proposals(anchors, objectness, deltas, sizes, ProposalVariant("no_nms", 500),
                            ProposalSettings.course())
    for i, size in enumerate(sizes):
        best = objectness[i].topk(1000).indices  # the course's pre-NMS top-n
        expected = clip_boxes_to_image(BoxCoder().decode(deltas[i, best], anchors[best])[:, 0], size)
        expected = expected[remove_small_boxes(expected, 1e-3)][:500]  # boxes clipped to nothing go
        assert torch.equal(ours[i], expected)
    # near-duplicates stay, that NMS at 0.7 removes
    with_nms = select_proposals(anchors, objectness, deltas, sizes, ProposalVariant("nms", 500),
                                ProposalSettings.course())
    assert box_iou(ours[0], ours[0]).triu(1).max() > 0.7 >= box_iou(with_nms[0], with_nms[0]).triu(1).max()


def test_no_regression_variant_proposes_anchors(head_outputs):
    anchors, objectness, deltas, sizes = head_outputs
    ours = select_proposals(anchors, objectness, deltas, sizes, ProposalVariant("no_regression", 300),
                            ProposalSettings.course())
    zero = select_proposals(anchors, objectness, torch.zeros_like(deltas), sizes, ProposalVariant("nms", 300),
                            ProposalSettings.course())
    for a, b in zip(ours, zero):  # zero deltas decode to the anchors themselves
        assert torch.allclose(a, b, atol=1e-4)
    clipped = clip_boxes_to_image(anchors, sizes[1])
    assert all((clipped == box).all(dim=1).any() for box in ours[1])


def test_random_variant_ignores_the_scores(head_outputs):
    anchors, objectness, deltas, sizes = head_outputs
    settings = ProposalSettings.course()
    pick = lambda seed, scores: select_proposals(  # noqa: E731
        anchors, scores, deltas, sizes, ProposalVariant("random", 100), settings, torch.Generator().manual_seed(seed))
    first, again, other = pick(0, objectness), pick(0, -objectness), pick(1, objectness)
    assert all(len(p) == 100 for p in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again)), "the order must not depend on objectness"
    assert not torch.equal(first[0], other[0])
    decoded = clip_boxes_to_image(BoxCoder().decode(deltas[0], anchors)[:, 0], sizes[0])
    assert all((decoded == box).all(dim=1).any() for box in first[0])


def test_variant_rejects_bad_input():
    with pytest.raises(ValueError, match="mode must be one of"):
        ProposalVariant("top", 10)
    with pytest.raises(ValueError, match="top_n"):
        ProposalVariant("nms", 0)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return FasterRCNN(small_config()).eval()


def test_cached_outputs_give_the_models_own_detections(tiny_model):
    items = random_items(5)
    outputs = rpn_outputs(tiny_model, items, batch_size=2, device="cpu")
    ours, counts = detections_with(tiny_model, outputs, ProposalVariant("nms", 300))
    expected = detect(tiny_model, [image for image, _ in items], batch_size=3)
    assert len(ours) == 5 and all(0 < c <= 300 for c in counts)
    for a, b in zip(ours, expected):
        for key in ("boxes", "scores", "labels"):
            assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key


def test_ablate_proposals_and_recall(tiny_model):
    items = random_items(4)
    rows = [("t", "a", ProposalVariant("nms", 20), 1.0, ""), ("t", "b", ProposalVariant("random", 20), None, ""),
            ("u", "a again", ProposalVariant("nms", 20), 2.0, "")]
    results = ablate_proposals(tiny_model, items, rows, device="cpu")
    assert [r["row"] for r in results] == ["a", "b", "a again"]
    assert results[0]["map50"] == results[2]["map50"] and results[2]["paper"] == 2.0
    assert all(0 <= r["map50"] <= 1 and r["proposals"] <= 20 for r in results)
    recall = proposal_recall(tiny_model, rpn_outputs(tiny_model, items), top_ns=(5, 50, 500))
    assert set(recall) == {"nms", "no_nms", "random", "no_regression"}
    for curves in recall.values():
        for values in curves.values():  # more proposals never find fewer objects
            assert all(0 <= v <= 1 for v in values) and list(values) == sorted(values)


def test_time_parts(tiny_model):
    images = [image for image, _ in random_items(3)]
    timing = time_parts(tiny_model, images, device="cpu", warmup=1, repeats=1)
    assert {"conv", "proposals", "region-wise", "total"} <= set(timing) and timing["device"] == "cpu"
    assert all(timing[k] > 0 for k in ("conv", "proposals", "region-wise"))
    assert "paper VGG-16 (K40)" in timing_table({"here": timing})


# ----------------------------------------------------------------------------- training-time pieces


def test_rpn_box_loss_weight_scales_the_rpn_box_loss_only():
    items = random_items(2)
    images, targets = [x for x, _ in items], [t for _, t in items]
    losses = {}
    for weight in (1.0, 0.1):
        torch.manual_seed(0)
        model = FasterRCNN(small_config(rpn_box_loss_weight=weight)).train()
        torch.manual_seed(1)
        losses[weight] = model(images, targets)
    assert torch.allclose(losses[0.1]["loss_rpn_box_reg"], 0.1 * losses[1.0]["loss_rpn_box_reg"])
    for key in ("loss_objectness", "loss_classifier", "loss_box_reg"):
        assert torch.equal(losses[0.1][key], losses[1.0][key])
    assert DetectorConfig().rpn_box_loss_weight == 1.0 and lambda_to_weight(10) == 1.0


def test_one_stage_labels_anchors_by_fast_rcnns_rule():
    """Foreground: IoU >= 0.5 with an object, or an object's best anchor, with that object's
    class; background: the rest (no ignored band); then box_batch_size_per_image sampled, up to half
    foreground."""
    model = OneStageDetector(small_config())
    anchors = model.anchor_generator((128, 128), (16, 16))
    _, target = random_items(1, seed=3)[0]
    classes, matched = model.anchor_labels(anchors, target["boxes"], target["labels"])
    iou = box_iou(target["boxes"], anchors)  # (G, A)
    best_of_an_object = ((iou == iou.max(1, keepdim=True).values) & (iou > 0)).any(0)
    assert torch.equal(classes > 0, (iou.max(0).values >= 0.5) | best_of_an_object)
    assert not (classes == -1).any()
    positive = classes > 0
    gt_index = (matched[positive][:, None] == target["boxes"][None]).all(-1).float().argmax(1)
    assert torch.equal(classes[positive], target["labels"][gt_index])
    chosen_positive, chosen_negative = model.sampler(classes)
    per_image = model.config.box_batch_size_per_image
    assert int(chosen_positive.sum()) == min(per_image // 2, int(positive.sum()))
    assert int((chosen_positive | chosen_negative).sum()) == per_image
    empty, _ = model.anchor_labels(anchors, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    assert (empty == 0).all()


def test_one_stage_trains_and_detects():
    items = random_items(2)
    torch.manual_seed(0)
    model = OneStageDetector(small_config()).train()
    losses = model([x for x, _ in items], [t for _, t in items])
    assert set(losses) == {"loss_classifier", "loss_box_reg"} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.head.bbox_pred.weight.grad.abs().sum() > 0
    detections = detect(model, [x for x, _ in items])
    for det in detections:
        assert len(det["boxes"]) <= 100 and set(det) == {"boxes", "scores", "labels"}
        assert (det["labels"] >= 1).all() and (det["labels"] <= 10).all()
        assert (det["boxes"] >= 0).all() and (det["boxes"] <= 128).all()
    with pytest.raises(ValueError, match="needs targets"):
        model.train()([x for x, _ in items])


def test_rows_change_what_they_say():
    base = DetectorConfig.course()
    weights = [find_row("lambda", name).config().rpn_box_loss_weight for name in ("0.1", "1", "10", "100")]
    assert weights == [0.01, 0.1, 1.0, 10.0]
    anchors = {name: find_row("anchors", name).config() for name in ("1x1", "1x3", "3x1", "3x3")}
    assert [len(c.anchor_sizes) * len(c.aspect_ratios) for c in anchors.values()] == [1, 3, 3, 9]
    assert anchors["3x3"] == base and anchors["1x1"].anchor_sizes == (base.anchor_sizes[1],)
    # The default rows are one training run; the two 4-step rows are another.
    keys = {(r.table, r.name): run_key(row_settings(r)) for r in TRAINING_ROWS}
    same = [k for k, v in keys.items() if v == keys[("baseline", "course")]]
    assert same == [("baseline", "course"), ("anchors", "3x3"), ("lambda", "10"), ("sharing", "joint"),
                    ("stages", "two-stage"), ("pretraining", "pretrained"),
                    ("fine-tuning", REFERENCE_ROWS["fine-tuning"])]
    assert keys[("sharing", "unshared")] == keys[("sharing", "shared")] != keys[("baseline", "course")]
    assert len(set(keys.values())) == 13
    scratch = find_row("pretraining", "from scratch").config()
    assert scratch.backbone_weights is None and scratch.backbone_frozen_stages == 0 and base.backbone_weights
    frozen = [find_row("fine-tuning", name).config().backbone_frozen_stages
              for name in ("all stages", "stages 2-3", "stage 3", "none (fixed)")]
    assert frozen == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="'anchors', '1x1'"):
        find_row("anchors", "2x2")


# ----------------------------------------------------------------------------- the results file


def test_results_file_matches_the_script():
    """data/results/ablations.json holds every row with the settings the code gives now.
    If this fails after a change of DetectorConfig / TrainSettings defaults or of the rows,
    re-run the command in the file's "command" entry (over an hour per seed on 2 CPU cores)."""
    results = ablations.load_results()
    rerun = (f"; the code's defaults changed since the file was written: re-run `{results['command']}` "
             f"(resumable, over an hour per seed on 2 CPU cores), then lessons 08, 10 and 11")
    expected = expected_rows(results["steps"], results["seeds"], results["limit"])
    assert [(r["table"], r["name"]) for r in results["rows"]] == [(r["table"], r["name"]) for r in expected]
    for row, want in zip(results["rows"], expected):
        assert row["settings"] == want["settings"], f"{row['table']} / {row['name']}: settings differ" + rerun
        assert 0 <= row["map50"] <= 1 and 0 <= row["ap"] <= 1 and row["train_seconds"] > 0
        # a file still being completed (the run is resumable and may span sessions): each row has
        # the first seeds of the list, at least one
        done = [run["seed"] for run in row["per_seed"]]
        assert done and done == results["seeds"][:len(done)], f"{row['table']} / {row['name']}: seeds {done}"
        assert row["paper"] == find_row(row["table"], row["name"]).paper
    assert results["rows"][0]["seeds_done"] >= 2, "the noise band needs the baseline's spread over seeds"
    assert results["limit"] == 0, "the results file must come from the full data"
    assert results["steps"] == ablations.default_steps(), "the baseline is not TrainSettings().steps" + rerun
    assert results["command"].startswith("python -m minifrcnn ablations")
    for key in ("python", "torch", "torchvision", "minifrcnn", "platform", "cpu_count", "threads", "device"):
        assert key in results["environment"], key
    baseline = results["baseline_weights"]
    assert baseline["settings"] == results["rows"][0]["settings"][0]
    test_time = results["test_time"]  # every test-time row, for the baseline's weights
    assert test_time["sha256"] == baseline["sha256"] and test_time["images"] == 200
    assert [(r["table"], r["row"]) for r in test_time["rows"]] == [(t, r) for t, r, *_ in TEST_TIME_ROWS]
    assert test_time["rows_defined"] == json.loads(json.dumps(
        [[t, r, {"mode": v.mode, "top_n": v.top_n}] for t, r, v, _, _ in TEST_TIME_ROWS]))


def test_baseline_weights_are_small_and_load_safely():
    results = ablations.load_results()
    path = ablations.BASELINE_WEIGHTS
    assert path.stat().st_size < 5e6
    assert hashlib.sha256(path.read_bytes()).hexdigest() == results["baseline_weights"]["sha256"]
    state = load_checkpoint(path)  # weights_only=True
    assert all(v.dtype in (torch.float16, torch.int64) for v in state["model"].values())
    assert state["config"] == DetectorConfig.from_dict(results["baseline_weights"]["config"]).__dict__
    assert state["data"]["class_names"][1:] == [str(d) for d in range(10)]  # a checkpoint the command line reads
    model = ablations.load_baseline(results)
    assert all(p.dtype == torch.float32 for p in model.parameters()) and not model.training


# ----------------------------------------------------------------------------- the script


@pytest.mark.slow
def test_run_ablations_is_resumable(tmp_path, monkeypatch):
    out = tmp_path / "ablations.json"
    lines = []
    results = run_ablations(out, steps=2, limit=8, seeds=(0, 1), only=["baseline", "lambda/0.1"], device="cpu",
                            log=lines.append)
    # The rows that share the baseline's run (anchors 3x3, lambda 10, ...) come with it.
    sharing = {("baseline", "course"), ("anchors", "3x3"), ("lambda", "10"), ("sharing", "joint"),
               ("stages", "two-stage"), ("pretraining", "pretrained"),
               ("fine-tuning", REFERENCE_ROWS["fine-tuning"])}
    assert [(r["table"], r["name"]) for r in results["rows"]] == [
        (r.table, r.name) for r in TRAINING_ROWS if (r.table, r.name) in sharing | {("lambda", "0.1")}]
    assert all(r["seeds_done"] == 2 and [p["seed"] for p in r["per_seed"]] == [0, 1] for r in results["rows"])
    assert all("map50_std" in r for r in results["rows"]) and len(results["runs"]) == 4
    assert sum("not selected" in line for line in lines) == len(TRAINING_ROWS) - 2
    saved = json.loads(out.read_text())
    assert saved["rows"] == results["rows"] and saved["steps"] == 2 and saved["seeds"] == [0, 1]
    assert (tmp_path / "baseline.pt").exists() and saved["baseline_weights"]["bytes"] < 5e6
    assert [h["rows_run"] for h in saved["history"]] == [["baseline/course", "lambda/0.1", "test-time"]]
    curve = saved["runs"][saved["rows"][0]["per_seed"][0]["run"]]["model"]["loss_curve"]
    assert curve["window"] == 10 and set(curve) >= {"loss", "loss_classifier"}

    def no_training(*args, **kwargs):
        raise AssertionError("a run with the same settings was trained again")

    monkeypatch.setattr(ablations, "train_run", no_training)
    lines.clear()
    again = run_ablations(out, steps=2, limit=8, seeds=(0, 1), only=["baseline", "lambda/0.1", "lambda/10"],
                          device="cpu", log=lines.append)
    assert sum("kept" in line for line in lines) == 6  # 3 rows x 2 seeds, nothing trained
    assert again["rows"] == results["rows"] and len(again["history"]) == 1
    for only, force in ((["lambda/1"], False), (["lambda/0.1"], True)):  # a new row, a forced one
        with pytest.raises(AssertionError, match="trained again"):
            run_ablations(out, steps=2, limit=8, seeds=(0, 1), only=only, force=force, device="cpu",
                          log=lines.append)


def test_a_file_with_the_configs_old_field_names_is_upgraded():
    """Results written before DetectorConfig's fields took torchvision's names keep every run."""
    from minifrcnn.detector import RENAMED_FIELDS
    current = ablations.load_results()
    back = {new: old for old, new in RENAMED_FIELDS.items()}

    def old_names(settings):
        return {**settings, "config": {back.get(k, k): v for k, v in settings["config"].items()}}

    keys = {run_key(s): run_key(old_names(s)) for row in current["rows"] for s in row["settings"]}
    baseline = current["baseline_weights"]
    old_file = {**current, "runs": {keys[k]: v for k, v in current["runs"].items()},
                "rows": [{**row, "settings": [old_names(s) for s in row["settings"]],
                          "per_seed": [{**m, "run": keys[m["run"]]} for m in row["per_seed"]]}
                         for row in current["rows"]],
                "baseline_weights": {**baseline, "settings": old_names(baseline["settings"]),
                                     "config": old_names(baseline)["config"]}}
    assert "rpn_fg_iou" in old_file["rows"][0]["settings"][0]["config"] and not set(old_file["runs"]) & set(keys)
    assert ablations.upgrade_results(old_file) == current
    assert ablations.upgrade_results(current) is current


@pytest.mark.slow
def test_an_interrupted_run_keeps_every_finished_training(tmp_path, monkeypatch):
    """Seeds go over all rows in turn, and each training is written when it is done: a run
    that dies in the middle loses only the training in progress."""
    out = tmp_path / "ablations.json"
    real, calls = ablations.train_run, []

    def dies_on_the_third(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ablations, "train_run", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_ablations(out, steps=2, limit=8, seeds=(0, 1), only=["baseline", "lambda/0.1"], device="cpu",
                      log=lambda line: None)
    saved = json.loads(out.read_text())
    assert len(saved["runs"]) == 2  # seed 0 of both rows
    assert [r["seeds_done"] for r in saved["rows"] if r["name"] in ("course", "0.1")] == [1, 1]
    monkeypatch.setattr(ablations, "train_run", real)
    calls.clear()
    monkeypatch.setattr(ablations, "train_run", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    resumed = run_ablations(out, steps=2, limit=8, seeds=(0, 1), only=["baseline", "lambda/0.1"], device="cpu",
                            log=lambda line: None)
    assert len(calls) == 2 and len(resumed["runs"]) == 4  # only seed 1 was left


def test_run_row_trains_one_row():
    result = ablations.run_row("stages", "one-stage", steps=2, limit=8, device="cpu", progress=False)
    assert isinstance(result["model"], OneStageDetector)
    assert result["settings"] == row_settings(find_row("stages", "one-stage"), 2, 0, 8)
    assert 0 <= result["map50"] <= 1 and result["train_seconds"] > 0


def test_settings_follow_the_course_defaults(monkeypatch):
    """The rows are built from DetectorConfig.course() when asked, so a new default reaches
    every row (and makes the results file stale, which the test above then reports)."""
    before = row_settings(find_row("anchors", "1x1"))
    monkeypatch.setattr(DetectorConfig, "course", classmethod(lambda cls, **c: replace(cls(), head_hidden=48, **c)))
    after = row_settings(find_row("anchors", "1x1"))
    assert after["config"]["head_hidden"] == 48 and before["config"]["head_hidden"] != 48
    assert after["config"]["anchor_sizes"] == before["config"]["anchor_sizes"]


def test_noise_band_pools_the_seed_spread():
    rows = [{"map50": 0.9, "map50_std": 0.01, "seeds_done": 3}, {"map50": 0.8, "map50_std": 0.02, "seeds_done": 3}]
    band, sigma = noise_band({"rows": rows})
    assert sigma == pytest.approx((0.5 * (0.01 ** 2 + 0.02 ** 2)) ** 0.5)
    assert band == pytest.approx(2 * sigma * (2 / 3) ** 0.5)
    # a file still being completed: the spread of the rows with seeds, the band of a one-seed row
    band, sigma = noise_band({"rows": rows + [{"map50": 0.5, "seeds_done": 1}]})
    assert band == pytest.approx(2 * sigma * 2 ** 0.5)
    assert noise_band({"rows": [{"map50": 0.5, "seeds_done": 1}]}) == (None, None)  # no spread to measure


def test_noise_band_counts_a_shared_training_once_and_leaves_out_other_kinds_of_spread():
    baseline = {"table": "baseline", "output": "model", "map50": 0.88, "map50_std": 0.006, "seeds_done": 3,
                "per_seed": [{"run": "a"}, {"run": "b"}, {"run": "c"}]}
    same_training = {**baseline, "table": "anchors"}                       # anchors 3 x 3 is the baseline's run
    other = {"table": "lambda", "output": "model", "map50": 0.86, "map50_std": 0.008, "seeds_done": 2,
             "per_seed": [{"run": "d"}, {"run": "e"}]}
    one_stage = {"table": "stages", "kind": "one_stage", "output": "model", "map50": 0.6, "map50_std": 0.05,
                 "seeds_done": 3, "per_seed": [{"run": "f"}, {"run": "g"}, {"run": "h"}]}
    collapsed = {"table": "fine-tuning", "output": "model", "map50": 0.2, "map50_std": 0.08, "seeds_done": 3,
                 "per_seed": [{"run": "i"}, {"run": "j"}, {"run": "k"}]}
    band, sigma = noise_band({"rows": [baseline, same_training, other, one_stage, collapsed]})
    assert sigma == pytest.approx(((2 * 0.006 ** 2 + 1 * 0.008 ** 2) / 3) ** 0.5)   # degrees of freedom: 2 + 1
    assert band == pytest.approx(2 * sigma * (2 / 2) ** 0.5)                        # the fewest seeds: 2


def test_verdicts_compare_changes_with_the_noise_and_the_paper():
    rows = [{"table": "lambda", "name": name, "map50": m, "paper": p}
            for name, m, p in (("0.1", 0.80, 67.2), ("1", 0.895, 68.9), ("10", 0.90, 69.9), ("100", 0.93, 69.1))]
    found = {c["row"]: c["verdict"] for c in compare_with_paper(rows, "lambda", noise=0.01)}
    assert found == {"0.1": "same direction", "1": "within noise here", "10": "reference",
                        "100": "opposite direction"}
    wide = {c["row"]: c["verdict"] for c in compare_with_paper(rows, "lambda", noise=0.05)}
    assert wide["100"] == "within noise here" and wide["0.1"] == "same direction"
    rows = [{"table": "pretraining", "name": "from scratch", "map50": 0.80, "paper": None},
            {"table": "pretraining", "name": "pretrained", "map50": 0.90, "paper": None}]
    verdicts = {c["row"]: c["verdict"] for c in compare_with_paper(rows, "pretraining", noise=0.02)}
    assert verdicts["from scratch"] == "a clear change; not in the paper"
    assert "noise: +-2.0 points" in comparison_table(rows, "pretraining", noise=0.02)
