"""Smoke test of benchmarks/bench_detector.py: a few steps on a tiny detector, then the JSON."""
import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_detector.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_detector", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_sets_types_values_and_routes_them():
    bench = load_script()
    config, settings = bench.parse_sets(["backbone_channels=8,8,16", "anchor_sizes=32", "rpn_nms=1",
                                         "head_hidden=16", "lr=0.04", "schedule=step"])
    assert config == {"backbone_channels": (8, 8, 16), "anchor_sizes": (32,), "rpn_nms": 1.0, "head_hidden": 16}
    assert settings == {"lr": 0.04, "schedule": "step"}


def test_quick_run_writes_finite_numbers(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "bench.json"
    report = bench.main(["--quick", "--steps", "2", "--threads", "1", "--device", "cpu", "--out", str(out),
                         "--set", "backbone_channels=8,8,16", "--set", "backbone_blocks=1,1,1",
                         "--set", "head_hidden=16", "--set", "batch_size=4"])
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["train_settings"]["steps"] == 2
    assert saved["config"]["backbone_channels"] == [8, 8, 16] and saved["config_changes"]["head_hidden"] == 16
    assert saved["initial_weights_max_abs_diff"] == 0.0
    # Same weights, seed and samples: the first step's losses agree (the RoI ops differ in rounding only).
    assert saved["first_step_losses_max_abs_diff"] < 1e-4
    for name in ("minifrcnn", "torchvision"):
        for key in ("train_s", "train_images_per_s", "inference_images_per_s", "test_map50", "test_ap"):
            assert math.isfinite(saved[name][key]), (name, key)
        assert saved[name]["train_images_per_s"] > 0 and saved[name]["inference_images_per_s"] > 0
        assert 0 <= saved[name]["test_map50"] <= 1 and 0 <= saved[name]["test_ap"] <= 1
    assert set(saved["ratios"]) == {"train", "inference"} and set(saved["differences"]) == {"map50", "ap"}
    assert all(math.isfinite(v) for v in [*saved["ratios"].values(), *saved["differences"].values()])
    assert set(saved["targets"]) == {"map50_within_0.01_of_torchvision", "train_images_per_s_at_least_0.9x",
                                     "inference_images_per_s_at_least_0.9x", "map50_at_least_0.90"}
    machine = saved["machine"]
    assert machine["device"] == "cpu" and machine["threads"] == 1 and machine["cpu_count"] >= 1
    assert machine["torch"] and machine["torchvision"]
    assert saved["command"].startswith("python benchmarks/bench_detector.py --quick")
    assert report["ratios"] == saved["ratios"]
    printed = capsys.readouterr().out
    assert "| train images/s |" in printed and "| test AP@[.5:.95] |" in printed and "roi_align" in printed
