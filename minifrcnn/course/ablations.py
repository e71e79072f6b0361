"""The paper's training-time ablations at course scale (section 4 and its tables): lesson 11.

Each row of :data:`TRAINING_ROWS` trains one detector (or shares the training of a row with
the same settings): anchors (1 scale x 1 ratio ... 3 x 3), the RPN's box-loss weight lambda
(:func:`lambda_to_weight`), shared vs unshared convolutional layers (the paper's 4-step
alternating training, ``minifrcnn.course.schemes``), one stage
(:class:`minifrcnn.one_stage.OneStageDetector`) vs two, pretraining and which stages to
fine-tune. :func:`run_ablations` (``python -m minifrcnn ablations``) trains every row once
per seed and writes ``data/results/ablations.json`` and the baseline's weights
``data/results/baseline.pt``; it is resumable run by run, and then runs the test-time
ablations (``minifrcnn.course.test_time``) on the baseline. :func:`run_row` re-runs one row.

The other parts of lesson 11: ``minifrcnn.course.test_time`` (proposal variants),
``minifrcnn.course.timing`` (the timing table), ``minifrcnn.course.verdicts`` (the noise band
and the comparison with the paper).
"""
import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..data import CLASS_NAMES, DATA_DIR, cache, load_digits
from ..detector import RENAMED_FIELDS, DetectorConfig, FasterRCNN
from ..one_stage import OneStageDetector
from ..training import TrainSettings, load_checkpoint, train
from ..utils import get_device, seed_everything
from .schemes import evaluate_model as schemes_evaluate_model
from .schemes import split_steps, train_alternating
from .test_time import TEST_TIME_ROWS, ablate_proposals
from .verdicts import training_table

RESULTS_DIR = DATA_DIR / "results"
RESULTS_FILE = RESULTS_DIR / "ablations.json"
BASELINE_WEIGHTS = RESULTS_DIR / "baseline.pt"
PAPER_URL = "https://arxiv.org/abs/1506.01497"


# ----------------------------------------------------------------------------- training-time ablations


def lambda_to_weight(lam):
    """The course's RPN box-loss weight (``DetectorConfig.rpn_box_loss_weight``) for the
    paper's lambda.

    The paper's RPN loss (equation 1) is ``L_cls / N_cls + lambda * L_reg / N_reg`` with
    ``N_cls = 256`` (sampled anchors) and ``N_reg ~ 2400`` (anchor positions of a ~1000 x 600
    image), so the box loss weighs ``lambda * 256 / 2400 ~ lambda / 9.4`` relative to
    torchvision's (and the course's) ``L_reg / N_cls``. We round this to ``lambda / 10``:
    the paper's default lambda = 10 is the course's weight 1. (The course's 16 x 16 feature
    map has ``N_reg = 256`` positions; taking that literally would make the weight lambda
    itself, and the paper's lambda = 10 a box loss ten times heavier than its default.)
    """
    return lam / 10


@dataclass(frozen=True)
class Row:
    """One row of a training-time ablation table.

    Attributes:
        table (str), name (str): where it goes.
        kind (str): what is trained: ``"joint"`` (:class:`FasterRCNN`, approximate joint
            training), ``"one_stage"`` (:class:`OneStageDetector`), ``"alternating"`` (the
            paper's 4-step training; ``output`` picks the model).
        output (str): ``"model"``, or for ``"alternating"`` ``"unshared"`` (step 2: the RPN
            of step 1 and the Fast R-CNN of step 2, two backbones) / ``"shared"`` (step 4).
            Each of the 4 steps trains for the row's number of steps (the paper's steps each
            run a full schedule), so this row costs about 1.5 joint trainings (steps 3 and 4
            train the heads only).
        changes (tuple): ``DetectorConfig`` changes from the course defaults, a tuple of
            ``(field, value or callable(base config) -> value)``.
        paper (float): the paper's mAP for the same row (VOC 2007 test).
        paper_setting (str): what the paper measured.
    """

    table: str
    name: str
    kind: str = "joint"
    output: str = "model"
    changes: tuple = ()
    paper: float = None
    paper_setting: str = ""

    def config(self, base=None):
        base = base or DetectorConfig.course()
        return replace(base, **{k: (v(base) if callable(v) else v) for k, v in self.changes})


def _middle_size(config):
    return (config.anchor_sizes[len(config.anchor_sizes) // 2],)


# The paper's numbers: PASCAL VOC 2007 test, VGG-16 trained on 07 (anchors, lambda, sharing:
# TPAMI tables 8, 9 and 3), ZF (one vs two stages, table 10).
TRAINING_ROWS = (
    Row("baseline", "course", paper=69.9, paper_setting="VGG-16, RPN 300, shared, 07"),
    Row("anchors", "1x1", changes=(("anchor_sizes", _middle_size), ("aspect_ratios", (1.0,))),
        paper=65.8, paper_setting="128 px, 1:1"),
    Row("anchors", "1x3", changes=(("anchor_sizes", _middle_size),),
        paper=68.8, paper_setting="128 px, {2:1, 1:1, 1:2}"),
    Row("anchors", "3x1", changes=(("aspect_ratios", (1.0,)),),
        paper=69.8, paper_setting="{128, 256, 512} px, 1:1"),
    Row("anchors", "3x3", paper=69.9, paper_setting="the default"),
    Row("lambda", "0.1", changes=(("rpn_box_loss_weight", lambda_to_weight(0.1)),), paper=67.2),
    Row("lambda", "1", changes=(("rpn_box_loss_weight", lambda_to_weight(1)),), paper=68.9),
    Row("lambda", "10", changes=(("rpn_box_loss_weight", lambda_to_weight(10)),), paper=69.9,
        paper_setting="the default"),
    Row("lambda", "100", changes=(("rpn_box_loss_weight", lambda_to_weight(100)),), paper=69.1),
    Row("sharing", "unshared", kind="alternating", output="unshared", paper=68.5,
        paper_setting="VGG-16, 4-step, after step 2"),
    Row("sharing", "shared", kind="alternating", output="shared", paper=69.9,
        paper_setting="VGG-16, 4-step, after step 4"),
    Row("sharing", "joint", paper=70.0, paper_setting="VGG-16, joint training"),
    Row("stages", "one-stage", kind="one_stage", paper=53.9, paper_setting="ZF, dense, class-specific"),
    Row("stages", "two-stage", paper=58.7, paper_setting="ZF, RPN + Fast R-CNN"),
    # Section 3.1.3: the shared conv layers start from an ImageNet classifier; it never trains from scratch.
    Row("pretraining", "from scratch", changes=(("backbone_weights", None), ("backbone_frozen_stages", 0)),
        paper_setting="not in the paper: it always starts from ImageNet"),
    Row("pretraining", "pretrained", paper_setting="ImageNet-pretrained ZF / VGG-16"),
    # Which pretrained layers to fine-tune: the paper tunes conv3_1 and up on VGG-16 (section 3.1.3);
    # Fast R-CNN's table 5 measured it (VGG-16, VOC 2007): fc6 and up 61.4, conv3_1 and up 66.9, conv2_1 and up 67.2.
    Row("fine-tuning", "all stages", changes=(("backbone_frozen_stages", 0),), paper=67.2,
        paper_setting="Fast R-CNN, VGG-16: conv2_1 and up"),
    Row("fine-tuning", "stages 2-3", changes=(("backbone_frozen_stages", 1),), paper=66.9,
        paper_setting="Fast R-CNN, VGG-16: conv3_1 and up (the paper's choice)"),
    Row("fine-tuning", "stage 3", changes=(("backbone_frozen_stages", 2),),
        paper_setting="between conv3_1 and fc6"),
    Row("fine-tuning", "none (fixed)", changes=(("backbone_frozen_stages", 3),), paper=61.4,
        paper_setting="Fast R-CNN, VGG-16: fc6 and up (conv layers fixed)"),
)
TABLES = tuple(dict.fromkeys(row.table for row in TRAINING_ROWS))


def default_steps():
    """Training steps per row: the course's ``TrainSettings().steps`` (the baseline is the
    course's detector exactly), about 3 minutes per row on 2 idle CPU cores."""
    return TrainSettings().steps


def _plain(value):
    """JSON's view of a value (tuples -> lists), to compare settings with a file's."""
    return json.loads(json.dumps(value))


def row_settings(row, steps=None, seed=0, limit=0):
    """Everything that determines a row's result, as plain JSON values."""
    settings = replace(TrainSettings(), steps=steps or default_steps(), seed=seed)
    result = {"kind": row.kind, "output": row.output, "config": asdict(row.config()), "train": asdict(settings),
              "limit": limit, "eval_split": "test"}
    if row.kind == "alternating":
        result["steps_per_stage"] = split_steps(settings.steps, settings.steps)
    return _plain(result)


def run_key(settings):
    """Rows with the same run key come from one training run (e.g. the baseline, anchors
    3 x 3 and lambda 10; both outputs of the alternating training)."""
    same = {k: v for k, v in settings.items() if k != "output"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:16]


def find_row(table, name):
    for row in TRAINING_ROWS:
        if row.table == table and row.name == name:
            return row
    names = "\n  ".join(f"{r.table!r}, {r.name!r}" for r in TRAINING_ROWS)
    raise KeyError(f"no ablation row ({table!r}, {name!r}); the rows are:\n  {names}")


def expected_rows(steps=None, seeds=(0,), limit=0):
    """The rows the script writes, with their settings (what a results file must hold)."""
    return [{"table": row.table, "name": row.name,
             "settings": [row_settings(row, steps, seed, limit) for seed in seeds]} for row in TRAINING_ROWS]


def _load(split, limit):
    dataset = load_digits(split)
    if limit:
        dataset = [dataset[i] for i in range(min(limit, len(dataset)))]
    return cache(dataset)


def loss_curve(history, window=10):
    """A training history (one dict of losses per step) as the mean of every ``window``
    steps, per loss: ``{"window": 10, "loss": [...], "loss_objectness": [...], ...}``, rounded
    to 4 digits (small enough for the results file, enough for a plot)."""
    names = [k for k in history[0] if k.startswith("loss")] if history else []
    curve = {"window": window}
    for name in names:
        values = np.asarray([h[name] for h in history if name in h], dtype=np.float64)
        usable = len(values) // window * window
        curve[name] = [round(float(v), 4) for v in values[:usable].reshape(-1, window).mean(axis=1)]
    return curve


def train_run(kind, config, settings, train_data, device, progress=False):
    """Train what ``kind`` names; returns ``({output name: model}, loss curve)`` (see
    :func:`loss_curve`; the 4-step training's stages one after the other)."""
    seed_everything(settings.seed)
    if kind in ("joint", "one_stage"):
        model = FasterRCNN(config) if kind == "joint" else OneStageDetector(config)
        history = train(model, train_data, settings, device=device, progress=progress)
        return {"model": model}, loss_curve(history)
    if kind == "alternating":  # each of the 4 steps trains for the row's steps, as the paper's steps
        result = train_alternating(train_data, config, settings, steps_per_stage=settings.steps, device=device,
                                   progress=progress)
        history = [{"loss": h["loss"]} for stage in result.histories.values() for h in stage]
        return {"unshared": result.unshared_model, "shared": result.model}, loss_curve(history)
    raise ValueError(f"unknown kind {kind!r}: 'joint', 'one_stage' or 'alternating'")


def evaluate_model(model, test_data):
    """``{"map50", "ap", "eval_seconds"}`` of ``model`` on cached ``(image, target)`` items
    (:func:`minifrcnn.course.schemes.evaluate_model`, under the results file's key names)."""
    result = schemes_evaluate_model(model, test_data)
    return {"map50": result["map50"], "ap": result["ap"], "eval_seconds": result["seconds"]}


def run_row(table, name, steps=None, seed=0, limit=0, device=None, progress=True, train_data=None,
            test_data=None):
    """Train and evaluate one training-time ablation row, e.g. ``run_row("anchors", "1x1",
    steps=300)``; returns ``{"map50", "ap", "train_seconds", "eval_seconds",
    "settings", "model"}``. ``limit`` uses the first images of each split only."""
    row = find_row(table, name)
    settings = row_settings(row, steps, seed, limit)
    device = get_device(device) if device is None or isinstance(device, str) else device
    train_data = train_data if train_data is not None else _load("train", limit)
    test_data = test_data if test_data is not None else _load("test", limit)
    start = time.perf_counter()
    models, _ = train_run(row.kind, row.config(), TrainSettings(**_train_settings(settings)), train_data, device,
                          progress)
    seconds = time.perf_counter() - start
    model = models[row.output]
    return {**evaluate_model(model, test_data), "train_seconds": seconds,
            "settings": settings, "model": model}


def _train_settings(settings):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings["train"].items()}


def _config(settings):
    return DetectorConfig.from_dict(settings["config"])


def save_half(model, path):
    """Save ``model`` as a checkpoint the command line reads (``python -m minifrcnn detect``
    uses it when no other is given): its weights with floating tensors as float16 (half the
    size; ``load_state_dict`` converts them back), its config and the digits' class names.
    Returns the file's sha256."""
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
             for k, v in model.state_dict().items()}
    checkpoint = {"model": state, "config": asdict(model.config),
                  "data": {"class_names": list(CLASS_NAMES), "category_ids": list(range(1, len(CLASS_NAMES)))}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)
    return _sha256(path)


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_results(path=RESULTS_FILE):
    """The results file written by :func:`run_ablations` (one written with the config's
    earlier field names is read as if written with today's: :func:`upgrade_results`)."""
    return upgrade_results(json.loads(Path(path).read_text()))


def upgrade_results(results):
    """A results file whose settings use ``DetectorConfig``'s earlier field names
    (``minifrcnn.detector.RENAMED_FIELDS``), with the fields renamed and its runs re-keyed
    (:func:`run_key` hashes the settings): the runs it holds stay valid, and a resumed run
    keeps them. A file with today's names comes back unchanged."""
    def renamed(settings):
        return {**settings, "config": {RENAMED_FIELDS.get(k, k): v for k, v in settings["config"].items()}}

    keys = {run_key(s): run_key(renamed(s)) for row in results.get("rows", []) for s in row["settings"]}
    if all(old == new for old, new in keys.items()):
        return results
    results = dict(results)
    results["runs"] = {keys.get(key, key): outputs for key, outputs in results.get("runs", {}).items()}
    results["rows"] = [{**row, "settings": [renamed(s) for s in row["settings"]],
                        "per_seed": [{**m, "run": keys.get(m["run"], m["run"])} for m in row["per_seed"]]}
                       for row in results["rows"]]
    baseline = results.get("baseline_weights")
    if baseline:
        results["baseline_weights"] = {**baseline, "settings": renamed(baseline["settings"]),
                                       "config": renamed(baseline)["config"]}
    return results


def load_baseline(results=None, weights=None, device="cpu"):
    """The baseline detector of the results file (its recorded configuration) with the
    saved weights (float16 on disk, float32 here), in eval mode."""
    results = results if isinstance(results, dict) else load_results(results or RESULTS_FILE)
    weights = Path(weights or BASELINE_WEIGHTS)
    model = FasterRCNN(_config(results["baseline_weights"]))
    state = load_checkpoint(weights)
    state = state["model"] if isinstance(state.get("model"), dict) else state  # a checkpoint, or a bare state dict
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval()


def environment(device):
    """Versions and machine, for the results file."""
    import torchvision

    from .. import __version__
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
           "minifrcnn": __version__, "platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
           "threads": torch.get_num_threads(), "device": str(device)}
    if torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def _summarise(per_seed):
    """Mean (and spread, with several seeds) of the per-seed metrics."""
    out = {}
    for key in ("map50", "ap", "train_seconds", "eval_seconds"):
        values = [r[key] for r in per_seed]
        out[key] = float(np.mean(values))
        if len(values) > 1 and key in ("map50", "ap"):
            out[key + "_std"] = float(np.std(values, ddof=1))
    return out


def _runs_of(old):
    """``{run key: {output: per-seed metrics}}`` of a results file (older files only have rows)."""
    if "runs" in old:
        return {key: dict(outputs) for key, outputs in old["runs"].items()}
    runs = {}
    for row in old.get("rows", []):
        for metrics in row.get("per_seed", []):
            runs.setdefault(metrics["run"], {})[row["output"]] = metrics
    return runs


def _row_entry(row, expected, runs):
    """A row of the results file from the runs trained so far: one entry per seed done."""
    per_seed = [{**runs[run_key(s)][row.output], "run": run_key(s)}
                for s in expected["settings"] if run_key(s) in runs]
    if not per_seed:
        return None
    return {"table": row.table, "name": row.name, "kind": row.kind, "output": row.output,
            "changes": _plain({k: (v(DetectorConfig.course()) if callable(v) else v) for k, v in row.changes}),
            "paper": row.paper, "paper_setting": row.paper_setting, **_summarise(per_seed),
            "seeds_done": len(per_seed), "per_seed": per_seed, "settings": expected["settings"]}


def run_ablations(out=RESULTS_FILE, steps=None, seeds=(0, 1, 2), limit=0, force=False, only=None, device=None,
                  command=None, weights=None, log=None):
    """Train and evaluate every training-time ablation row, once per seed; write the results file.

    Resumable run by run: every training run is written to the file as soon as it is scored,
    and a run already in the file with the same settings is kept (unless ``force``). Rows
    with the same settings share one run (the baseline is also anchors 3 x 3, lambda 10, ...).
    The seeds go one after the other over all the rows, so an interrupted call leaves every
    row with the same number of seeds, give or take one. The baseline's weights (seed
    ``seeds[0]``) are saved as float16 next to the file (``baseline.pt``), and its mAP with
    those rounded weights is recorded.

    Args:
        out (Path): the JSON file.
        steps (int): training steps per run (per step of the 4-step training); default
            :func:`default_steps`.
        seeds (sequence of int): one training per seed and row; each row has every seed's
            numbers, their mean and their standard deviation (the noise of one run).
        limit (int): use the first ``limit`` images of the train and test splits (smoke test).
        force (bool): re-run the selected rows' runs even if they are in the file.
        only (sequence of str): ``"table"`` or ``"table/name"``: run these rows only (the
            others are kept from the file, if there).
        command (str): the command line, for the record.

    Returns:
        dict: the results (as written).
    """
    log = log or (lambda message: print(message, flush=True))
    out = Path(out)
    weights = Path(weights) if weights else out.parent / "baseline.pt"
    steps = steps or default_steps()
    seeds = [int(s) for s in seeds]
    device = get_device(device) if device is None or isinstance(device, str) else device
    old = load_results(out) if out.exists() else {}
    results = {
        "description": "Training-time ablations of the paper (section 4) at course scale: digits, "
                       "DetectorConfig.course(), TrainSettings() with the steps and seeds below; mAP on the "
                       "test split. Written by minifrcnn.course.ablations.run_ablations; lesson 11 reads it.",
        "paper": PAPER_URL,
        "command": command or "minifrcnn.course.ablations.run_ablations(...)",
        "steps": steps, "seeds": seeds, "limit": limit,
        "environment": environment(device),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "lambda_to_weight": "rpn_box_loss_weight = lambda / 10 (see minifrcnn.course.ablations.lambda_to_weight)",
        "baseline_weights": old.get("baseline_weights"),
        "test_time": old.get("test_time"),
    }
    wanted = expected_rows(steps, seeds, limit)
    selected = lambda row: not only or row.table in only or f"{row.table}/{row.name}" in only  # noqa: E731
    keys = {run_key(s) for expected in wanted for s in expected["settings"]}
    runs = {key: outputs for key, outputs in _runs_of(old).items() if key in keys}  # stale runs are dropped
    baseline_settings = wanted[0]["settings"][0]
    recorded = results["baseline_weights"] or {}
    if not (weights.exists() and recorded.get("sha256") == _sha256(weights)
            and recorded.get("settings") == baseline_settings):
        runs.pop(run_key(baseline_settings), None)  # no saved weights for it: train it again
    train_data = test_data = None
    fresh = set()  # run keys trained in this call
    rows_run = []  # "table/name" of the rows whose runs were (re)computed in this call
    start_all = time.perf_counter()

    def write():
        results["rows"] = [entry for entry in (_row_entry(r, e, runs) for r, e in zip(TRAINING_ROWS, wanted))
                           if entry is not None]
        results["runs"] = runs
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write(out, results)

    for seed_index, seed in enumerate(seeds):
        for i, (row, expected) in enumerate(zip(TRAINING_ROWS, wanted), 1):
            tag = f"[seed {seed}, {i}/{len(TRAINING_ROWS)}] {row.table} / {row.name}"
            settings = expected["settings"][seed_index]
            key = run_key(settings)
            if not selected(row):
                if seed_index == 0:
                    log(f"{tag}: not selected")
                continue
            if key in runs and row.output in runs[key] and (key in fresh or not force):
                if key not in fresh:
                    log(f"{tag}: kept from {out.name} (mAP@0.5 {runs[key][row.output]['map50']:.3f})")
                continue
            if train_data is None:
                train_data, test_data = _load("train", limit), _load("test", limit)
            t0 = time.perf_counter()
            load = _load_average()
            models, curve = train_run(row.kind, _config(settings), TrainSettings(**_train_settings(settings)),
                                      train_data, device)
            seconds = time.perf_counter() - t0
            runs[key] = {name: {**evaluate_model(m, test_data), "train_seconds": seconds, "seed": seed,
                                "load_average_before": load, "load_average_after": _load_average(),
                                "loss_curve": curve} for name, m in models.items()}
            fresh.add(key)
            if row.table == "baseline" and seed == seeds[0]:
                sha = save_half(models["model"], weights)
                rounded = load_baseline({"baseline_weights": {"config": settings["config"]}}, weights)
                scored = evaluate_model(rounded, test_data)
                results["baseline_weights"] = {
                    "path": weights.name, "sha256": sha, "bytes": weights.stat().st_size, "dtype": "float16",
                    "settings": settings, "config": settings["config"], "map50": scored["map50"], "ap": scored["ap"]}
            rows_run.append(f"{row.table}/{row.name}")
            write()
            log(f"{tag}: mAP@0.5 {runs[key][row.output]['map50']:.3f}  AP {runs[key][row.output]['ap']:.3f}  "
                f"(paper {row.paper})  train {seconds:.0f} s, {time.perf_counter() - start_all:.0f} s so far")
    write()
    if _test_time_section(results, weights, test_data, limit, log):
        rows_run.append("test-time")
    results["seconds"] = time.perf_counter() - start_all  # this call's (a resumed run: the rest only)
    # Every call that changed the file, oldest first: "command" above is only the last one.
    results["history"] = old.get("history", [])
    if rows_run:
        results["history"].append({"command": results["command"], "started": results["started"],
                                   "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   "seconds": round(results["seconds"], 1),
                                   "rows_run": list(dict.fromkeys(rows_run))})
    results["training_seconds_all_rows"] = sum(  # every training run of the file, once
        next(iter(outputs.values()))["train_seconds"] + sum(m["eval_seconds"] for m in outputs.values())
        for outputs in runs.values())
    write()
    return results


def _test_time_section(results, weights, test_data, limit, log):
    """Every test-time ablation of the saved baseline (its float16 weights, the test split),
    unless the file already has them for the same weights. Returns whether it ran them."""
    baseline = results.get("baseline_weights")
    if baseline is None or not weights.exists():
        return False
    previous = results.get("test_time") or {}
    if previous.get("sha256") == baseline["sha256"] and previous.get("rows_defined") == _plain(
            [[t, r, asdict(v)] for t, r, v, _, _ in TEST_TIME_ROWS]):
        return False
    start = time.perf_counter()
    test_data = test_data if test_data is not None else _load("test", limit)
    model = load_baseline(results, weights)
    results["test_time"] = {"sha256": baseline["sha256"], "seed": 0, "images": len(test_data),
                            "rows_defined": _plain([[t, r, asdict(v)] for t, r, v, _, _ in TEST_TIME_ROWS]),
                            "rows": ablate_proposals(model, test_data, seed=0)}
    log(f"test-time ablations of the baseline: {time.perf_counter() - start:.0f} s")
    return True


def main_args(args):
    """``python -m minifrcnn ablations`` (see ``minifrcnn.__main__``)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_ablations(args.out, steps=args.steps, seeds=args.seeds, limit=args.limit, force=args.force,
                            only=args.only, device=args.device, command=getattr(args, "command_line", None))
    print(training_table(results))
    print(f"-> {args.out} ({results['seconds']:.0f} s)")
    return results
