"""Smoke test of benchmarks/bench_detector.py: a few steps on a tiny detector, then the JSON."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_detector.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_detector", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_sets_types_values_and_routes_them():
    bench = load_script()
    config, settings = bench.parse_sets(["backbone_channels=8,8,16", "anchor_sizes=32", "rpn_nms_thresh=1",
                                         "head_hidden=16", "lr=0.04", "schedule=step"])
    assert config == {"backbone_channels": (8, 8, 16), "anchor_sizes": (32,), "rpn_nms_thresh": 1.0, "head_hidden": 16}
    assert settings == {"lr": 0.04, "schedule": "step"}


@pytest.mark.slow
def test_quick_run_writes_finite_numbers(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "bench.json"
    report = bench.main(["--quick", "--steps", "2", "--threads", "1", "--device", "cpu", "--out", str(out),
                         "--set", "backbone_channels=8,8,16", "--set", "backbone_blocks=1,1,1",
                         "--set", "backbone_weights=None", "--set", "head_hidden=16", "--set", "batch_size=4"])
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["train_settings"]["steps"] == 2 and saved["seeds"] == [0]
    assert saved["config"]["backbone_channels"] == [8, 8, 16] and saved["config_changes"]["head_hidden"] == 16
    assert saved["detectors"] == ["minifrcnn", "torchvision"] and saved["old_recipe"] is None
    run = saved["per_seed"][0]
    assert run["initial_weights_max_abs_diff"] == 0.0
    # Same weights, seed and samples: the first step's losses agree (the RoI ops differ in rounding only).
    assert run["first_step_losses_max_abs_diff"] < 1e-4
    for name in ("minifrcnn", "torchvision"):
        for key in ("train_s", "train_images_per_s", "inference_images_per_s", "test_map50", "test_ap"):
            assert math.isfinite(run[name][key]), (name, key)
            assert saved["summary"][name][key] == run[name][key] and saved["summary"][name][key + "_std"] == 0
        assert run[name]["train_images_per_s"] > 0 and run[name]["inference_images_per_s"] > 0
        assert 0 <= run[name]["test_map50"] <= 1 and 0 <= run[name]["test_ap"] <= 1
    assert saved["ratios"] == run["ratios"] and all(math.isfinite(v) for v in saved["ratios"].values())
    difference = saved["paired_differences"]
    assert difference["test_map50"] == run["minifrcnn"]["test_map50"] - run["torchvision"]["test_map50"]
    assert difference["test_map50_std"] == 0
    assert set(saved["targets"]) == {"map50_at_least_torchvision_minus_one_spread", "train_images_per_s_at_least_1.0x",
                                     "inference_images_per_s_at_least_1.0x", "map50_at_least_0.90"}
    machine = saved["machine"]
    assert machine["device"] == "cpu" and machine["threads"] == 1 and machine["cpu_count"] >= 1
    assert machine["torch"] and machine["torchvision"]
    assert saved["command"].startswith("python benchmarks/bench_detector.py --quick")
    assert report["ratios"] == saved["ratios"]
    printed = capsys.readouterr().out
    assert "| test mAP@0.5 |" in printed and "| train images/s |" in printed and "training" in printed


@pytest.mark.slow
def test_seeds_and_the_old_recipe_are_summarised(tmp_path):
    """Two seeds and the old recipe: every detector has a mean and a spread over the seeds."""
    bench = load_script()
    out = tmp_path / "bench.json"
    bench.main(["--seeds", "0", "1", "--steps", "1", "--threads", "1", "--device", "cpu", "--out", str(out),
                "--repeats", "1", "--set", "backbone_channels=8,8,16", "--set", "backbone_blocks=1,1,1",
                "--set", "backbone_weights=None", "--set", "head_hidden=16", "--set", "batch_size=2",
                "--split", "val", "--limit", "6"])
    saved = json.loads(out.read_text())
    assert saved["detectors"] == ["minifrcnn", "torchvision", "old recipe"] and len(saved["per_seed"]) == 2
    old = saved["old_recipe"]["config"]
    assert old["min_size"] == 128 and old["backbone_weights"] is None
    for name in saved["detectors"]:
        values = [run[name]["test_map50"] for run in saved["per_seed"]]
        assert abs(saved["summary"][name]["test_map50"] - sum(values) / 2) < 1e-12
        assert saved["summary"][name]["test_map50_std"] >= 0


def fake_run(seeds, map50s, old=False, **changes):
    """A report as bench_detector.main writes it, with made-up numbers: (ours, torchvision) per seed."""
    bench = load_script()
    names = ["minifrcnn", "torchvision"] + (["old recipe"] if old else [])
    per_seed = []
    for ours, theirs in map50s:
        row = {name: {"test_map50": value, "test_ap": value - 0.3, "train_images_per_s": speed,
                      "inference_images_per_s": speed, "train_s": 100.0}
               for name, value, speed in (("minifrcnn", ours, 30.0), ("torchvision", theirs, 15.0),
                                          ("old recipe", 0.7, 40.0))[:len(names)]}
        row["ratios"] = {"train": 2.0, "inference": 2.0}
        per_seed.append(row)
    run = {key: None for key in bench.SAME_IN_MERGED_RUNS}
    run.update(config={"min_size": 192}, train_settings={"steps": 1200}, quick=False, detectors=names,
               seeds=list(seeds), per_seed=per_seed, command="python benchmarks/bench_detector.py", machine={})
    run.update(changes)
    return run


def test_merge_pools_the_seeds_of_two_runs_and_refuses_runs_that_differ(tmp_path, capsys):
    bench = load_script()
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(fake_run([0, 1], [(0.91, 0.92), (0.93, 0.92)], old=True)))
    second.write_text(json.dumps(fake_run([2], [(0.92, 0.92)])))
    out = tmp_path / "merged.json"
    report = bench.main(["--merge", str(first), str(second), "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert report["seeds"] == [0, 1, 2] and report["detectors"] == ["minifrcnn", "torchvision"]
    assert abs(report["summary"]["minifrcnn"]["test_map50"] - 0.92) < 1e-12
    assert abs(report["summary"]["minifrcnn"]["test_map50_std"] - 0.01) < 1e-12
    # Paired: ours - theirs per seed is -1, +1, 0 points.
    assert abs(report["paired_differences"]["test_map50"]) < 1e-12
    assert abs(report["paired_differences"]["test_map50_std"] - 0.01) < 1e-12
    assert report["targets"]["map50_at_least_torchvision_minus_one_spread"] is True
    assert report["targets"]["train_images_per_s_at_least_1.0x"] is True
    assert "minifrcnn - torchvision per seed" in capsys.readouterr().out
    second.write_text(json.dumps(fake_run([2], [(0.92, 0.92)], train_settings={"steps": 1000})))
    with pytest.raises(SystemExit, match="differs from .* in train_settings"):
        bench.main(["--merge", str(first), str(second), "--out", str(out)])
    second.write_text(json.dumps(fake_run([1], [(0.92, 0.92)])))
    with pytest.raises(SystemExit, match="a seed appears in two runs"):
        bench.main(["--merge", str(first), str(second), "--out", str(out)])
    with pytest.raises(SystemExit, match="cannot read .*missing.json"):
        bench.main(["--merge", str(first), str(tmp_path / "missing.json")])
    second.write_text(json.dumps({"seeds": [3]}))
    with pytest.raises(SystemExit, match="not a report of this script"):
        bench.main(["--merge", str(first), str(second)])


@pytest.mark.slow
def test_inference_benchmark_gives_both_detectors_the_same_weights(tmp_path, capsys):
    """benchmarks/bench_inference.py on 16 test images: the twin with the shipped detector's
    weights detects the same boxes (the script asserts it), and the JSON holds the ratio."""
    path = SCRIPT.parent / "bench_inference.py"
    spec = importlib.util.spec_from_file_location("bench_inference", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "inference.json"
    report = bench.main(["--limit", "16", "--repeats", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["images"] == 16 and math.isfinite(saved["ratio_torchvision_over_minifrcnn"])
    assert report["ratio_torchvision_over_minifrcnn"] > 0 and "ratio" in capsys.readouterr().out
