"""Helpers of the GPU validation (issue 16): the wheel bundle, the install, the timings, the report.

benchmarks/gpu_check.sh runs the whole check on a lent GPU machine in one call; this file does
the parts that are easier in Python. Its subcommands:

    bundle   download, here, the wheels the GPU machine lacks (``make gpu-bundle``)
    dry-env  make a venv that looks like the GPU machine, for the dry run here (``make gpu-dry-run``)
    install  install a bundle offline there, without touching torch, torchvision or numpy
    env      versions, GPU name, as JSON
    timing   time the detector's training and inference steps, and the results lesson's timing table
    report   collect the phases, the JUnit files and the timings into report.json and report.md

Only the standard library is imported at the top: ``bundle`` and ``install`` run before the
project's dependencies are there.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 64 * 1024 * 1024  # what a device call may send: working tree + carried paths

# The GPU machine's Python packages (the device tool's KINDS.md, read on 2026-11-17). Its
# python3 is 3.12 with torch 2.11 (CUDA 13) and torchvision 0.26.
GPU_PYTHON = "3.12"
GPU_PINS = ["torch==2.11.*", "torchvision==0.26.*", "numpy==2.5.*"]
GPU_PACKAGES = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# Never bundled, never installed over: the machine's own builds (CUDA) and what they are built against.
NEVER = {"torch", "torchvision", "torchaudio", "triton", "numpy", "jax", "jaxlib", "cupy-cuda13x"}
NEVER_PREFIXES = ("nvidia-", "cuda-", "jax-cuda")
# What the course needs that the bundle leaves out on purpose (tests/test_browser.py skips without them).
LEFT_OUT = {"jupyterlab": "`make lab` and the browser test only (tests/test_browser.py skips without it)",
            "playwright": "the browser test only, which also needs Chromium (tests/test_browser.py skips)",
            "ruff": "the linter, run by make test here; gpu_check.sh runs pytest only (its wheel is ~10 MiB)"}
# A package the machine has is left out of the bundle, except a small one (a pure-Python wheel
# under this size), kept as a fallback in case the machine's version is older than required.
FALLBACK_MAX_BYTES = 1024 * 1024
# The modules the check imports after the install, to prove it worked.
CHECK_IMPORTS = ["nbval", "nbformat", "nbclient", "nbconvert", "ipykernel", "ipywidgets", "pycocotools",
                 "faster_coco_eval", "yaml", "matplotlib", "PIL", "tqdm", "pytest"]


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def never(name):
    name = canonical(name)
    return name in NEVER or name.startswith(NEVER_PREFIXES)


def wheel_name(path):
    return canonical(Path(path).name.split("-")[0])


def requirement_name(requirement):
    return canonical(re.match(r"[A-Za-z0-9_.\-]+", requirement.strip()).group(0))


def course_requirements():
    """What the package, the tests and the lessons need (pyproject.toml: the dependencies and the
    ``course`` and ``test`` extras), less the GPU machine's own packages and ``LEFT_OUT``."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("test", "course"):
        wanted += project["optional-dependencies"].get(extra, [])
    keep, seen = [], set()
    for requirement in wanted:
        name = requirement_name(requirement)
        if name in seen or name in LEFT_OUT or name in GPU_PACKAGES:
            continue
        seen.add(name)
        keep.append(requirement.split(";")[0].strip())
    return keep


def platforms(max_glibc):
    tags = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
    tags += [f"manylinux_2_{n}_x86_64" for n in range(5, max_glibc + 1)]
    return tags


def pins_from(python):
    """``NAME==VERSION`` for every package of ``python`` that the GPU machine has too (the dry
    run's bundle resolves against the versions of the venv that plays the GPU machine)."""
    listed = json.loads(subprocess.run([python, "-m", "pip", "list", "--format", "json"], check=True,
                                       capture_output=True, text=True).stdout)
    return [f"{p['name']}=={p['version']}" for p in listed
            if canonical(p["name"]) in GPU_PACKAGES and "+" not in p["version"]]


def working_tree_bytes():
    """Tracked and untracked-not-ignored files: what a device call sends besides ``carry``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    total = 0
    for name in set(filter(None, listed)):
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def mib(n):
    return f"{n / 2**20:.1f} MiB"


def cmd_bundle(args):
    dest = Path(args.dest)
    if not dest.is_absolute():
        dest = ROOT / dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    requirements = course_requirements()
    pins = pins_from(args.pins_from) if args.pins_from else list(GPU_PINS if args.python == GPU_PYTHON else [])
    pins += args.pin
    constraints = dest / "constraints.txt"
    constraints.write_text("".join(p + "\n" for p in pins))
    tags = platforms(args.max_glibc)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:",
               "--python-version", args.python, "--implementation", "cp", "-d", str(dest),
               "-c", str(constraints)] + [x for t in tags for x in ("--platform", t)] + requirements
    print("$ " + " ".join(command[:14]) + " ... " + " ".join(requirements), flush=True)
    subprocess.run(command, check=True)

    kept, dropped = [], []
    for wheel in sorted(dest.glob("*.whl")):
        name, size = wheel_name(wheel), wheel.stat().st_size
        pure = wheel.name.endswith("-none-any.whl")
        if never(name) or (name in GPU_PACKAGES and not (pure and size <= FALLBACK_MAX_BYTES)):
            dropped.append({"wheel": wheel.name, "bytes": size,
                            "why": "the machine's own build" if never(name) else "on the machine already"})
            wheel.unlink()
        else:
            kept.append({"wheel": wheel.name, "bytes": size,
                         "fallback": name in GPU_PACKAGES})
    other = [p.name for p in dest.iterdir() if p.is_file() and not p.name.endswith(".whl")
             and p.name != "constraints.txt"]
    if other:
        raise SystemExit(f"pip saved files that are not wheels: {other}")
    (dest / "requirements.txt").write_text("".join(r + "\n" for r in requirements))
    bundle = folder_bytes(dest)
    tree = working_tree_bytes()
    manifest = {"python": args.python, "platforms": tags, "requirements": requirements, "pins": pins,
                "left_out": LEFT_OUT, "wheels": kept, "dropped": dropped, "bundle_bytes": bundle,
                "working_tree_bytes": tree, "limit_bytes": LIMIT_BYTES,
                "headroom_bytes": LIMIT_BYTES - tree - bundle - 4096,
                "made": time.strftime("%Y-%m-%d %H:%M:%S")}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    bundle = folder_bytes(dest)
    headroom = LIMIT_BYTES - tree - bundle
    print(f"\n{dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}: {len(kept)} wheels for CPython "
          f"{args.python} ({sum(w['fallback'] for w in kept)} of them fallbacks of packages the machine has), "
          f"{len(dropped)} dropped; bundle {mib(bundle)}")
    print(f"working tree {mib(tree)} + bundle {mib(bundle)} = {mib(tree + bundle)} of {mib(LIMIT_BYTES)}: "
          f"{mib(headroom)} left")
    if headroom < 0:
        raise SystemExit("over the 64 MiB a device call may send")


def cmd_dry_env(args):
    """A venv at ``args.venv`` that holds what the GPU machine holds (torch, torchvision, numpy,
    matplotlib, pytest, pytest-xdist, pytest-timeout, ...) and lacks what it lacks (nbval,
    ipykernel, pycocotools, ...): the packages of ``args.like`` (this project's .venv) that are
    on the GPU machine's list are linked in through a .pth file, not copied (torch is GBs)."""
    venv, like = Path(args.venv), Path(args.like)
    base = subprocess.run([str(like), "-c", "import sys; print(sys._base_executable)"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # The links live outside the venv: pip never uninstalls a package outside its environment,
    # so an upgrade there cannot reach through a link into the project's venv.
    shadow = Path(str(venv) + "-gpu-machine-packages")
    for path in (venv, shadow):
        if path.exists():
            shutil.rmtree(path)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", purelib],
                               capture_output=True, text=True, check=True).stdout.strip())
    like_site = Path(subprocess.run([str(like), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    shadow.mkdir()
    linked = []
    for info in sorted(like_site.glob("*.dist-info")):
        name = canonical(info.name[:-len(".dist-info")].rsplit("-", 1)[0])
        if name not in GPU_PACKAGES or name in ("pip", "setuptools", "wheel"):
            continue
        tops = set()
        record = info / "RECORD"
        for line in record.read_text().splitlines() if record.exists() else []:
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first and not first.startswith("..") and first != "__pycache__":
                tops.add(first)
        for top in sorted(tops):
            source, target = like_site / top, shadow / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
        linked.append(name)
    (site / "zz_gpu_machine_packages.pth").write_text(str(shadow) + "\n")
    # What the GPU machine has and this project's venv lacks.
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "pytest-xdist", "pytest-timeout"], check=True)
    print(f"{venv}: {len(linked)} packages of {like_site} linked in ({', '.join(linked)}), "
          f"pytest-xdist and pytest-timeout installed")


def installed_versions(python):
    code = ("import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version "
            "for d in m.distributions() if d.metadata['Name']}))")
    found = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    return {canonical(k): v for k, v in found.items()}


def cmd_install(args):
    """pip's resolver first: it keeps every installed package that satisfies the requirements
    and takes the rest from the bundle (never torch, torchvision, numpy: pinned at their installed
    versions). If that fails (a package there too old, and no fallback wheel), or the
    environment is not writable: every bundled wheel not installed yet, --no-deps, then pip check."""
    bundle = Path(args.bundle)
    python = args.python
    result = {"bundle": str(bundle), "method": None, "target": None, "steps": []}
    before = installed_versions(python)
    pins = [f"{name}=={before[name]}" for name in sorted(before) if never(name)]
    pin_file = Path(args.work) / "pins.txt"
    pin_file.write_text("".join(p + "\n" for p in pins))
    base = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links",
            str(bundle), "--no-cache-dir", "--no-compile"]

    def run(command, step):
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        print("$ " + " ".join(command), flush=True)
        print(proc.stdout[-6000:] + proc.stderr[-6000:], flush=True)
        result["steps"].append({"step": step, "rc": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
                                "tail": (proc.stdout + proc.stderr)[-1500:]})
        return proc.returncode

    purelib = subprocess.run([python, "-c", "import os, sysconfig; p = sysconfig.get_paths()['purelib']; "
                              "print(int(os.access(p, os.W_OK)))"], capture_output=True, text=True).stdout.strip()
    if purelib == "1" and run(base + ["-r", str(bundle / "requirements.txt"), "-c", str(pin_file)], "resolver") == 0:
        result["method"] = "resolver"
    else:
        missing = [str(w) for w in sorted(bundle.glob("*.whl")) if wheel_name(w) not in before]
        extra = []
        if purelib != "1":
            result["target"] = args.target
            extra = ["--target", args.target]
        rc = run(base + ["--no-deps"] + extra + missing, "no-deps")
        result["method"] = "no-deps" + (" --target" if extra else "") if rc == 0 else "failed"
    env = dict(os.environ)
    if result["target"]:
        env["PYTHONPATH"] = result["target"] + os.pathsep + env.get("PYTHONPATH", "")
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, env=env)
    result["pip_check"] = (check.stdout + check.stderr).strip()[-3000:]
    print("$ pip check\n" + result["pip_check"], flush=True)
    after = installed_versions(python) if not result["target"] else before
    result["added"] = {k: v for k, v in sorted(after.items()) if before.get(k) != v}
    result["changed_protected"] = {k: [before.get(k), v] for k, v in result["added"].items()
                                   if never(k) and k in before}
    code = ("import importlib, json; out = {}\nfor m in %r:\n    try:\n"
            "        importlib.import_module(m); out[m] = 'ok'\n"
            "    except Exception as e:\n        out[m] = repr(e)\nprint(json.dumps(out))") % CHECK_IMPORTS
    imports = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    try:
        result["imports"] = json.loads(imports.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result["imports"] = {"error": (imports.stdout + imports.stderr)[-1500:]}
    result["ok"] = result["method"] != "failed" and all(v == "ok" for v in result["imports"].values()) \
        and not result["changed_protected"]
    print(f"install: {result['method']}, {len(result['added'])} packages added or changed; imports "
          f"{'all ok' if all(v == 'ok' for v in result['imports'].values()) else result['imports']}", flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["ok"] else 1


def cmd_env(args):
    import platform

    info = {"python": platform.python_version(), "executable": sys.executable, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "versions": {}}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    for module in ("torch", "torchvision", "numpy", "matplotlib", "PIL", "pytest", "nbval", "ipykernel", "nbclient",
                   "nbconvert", "ipywidgets", "pycocotools", "faster_coco_eval"):
        try:
            m = __import__(module)
            info["versions"][module] = getattr(m, "__version__", "?")
        except Exception as e:  # broad on purpose: reported, not raised
            info["versions"][module] = f"missing ({type(e).__name__})"
    import importlib.metadata as metadata
    for dist in ("pytest-xdist", "pytest-timeout", "nbval", "pycocotools"):
        try:
            info["versions"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    import torch

    info["cuda_available"] = torch.cuda.is_available()
    info["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["cudnn"] = torch.backends.cudnn.version()
    from minifrcnn.utils import get_device

    info["minifrcnn_device"] = str(get_device())
    text = json.dumps(info, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.require_cuda and not info["cuda_available"]:
        print("error: CUDA was asked for and torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    return 0


def cmd_timing(args):
    """The detector's training and inference steps on the device, and the results lesson's
    timing table (``minifrcnn.course.timing.time_parts`` / ``timing_table``: backbone, RPN, head in ms per image).
    Each part runs even if one before it failed; the exit status is 1 if any failed."""
    import traceback

    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from minifrcnn.course.ablations import environment, load_baseline, load_results
    from minifrcnn.course.timing import time_parts, timing_table
    from minifrcnn.data import cache, load_digits
    from minifrcnn.detector import DetectorConfig, FasterRCNN, detect
    from minifrcnn.evaluation import evaluate_voc
    from minifrcnn.training import TrainSettings, train
    from minifrcnn.utils import get_device

    device = get_device(args.device)
    out = {"device": str(device), "environment": environment(device), "errors": {}}
    state = {}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def part(name):
        def wrap(fn):
            try:
                fn()
            except Exception:  # broad on purpose: recorded; the other parts still run
                out["errors"][name] = traceback.format_exc()[-3000:]
                print(f"{name}: FAILED\n{out['errors'][name]}", flush=True)
            Path(args.out).write_text(json.dumps(out, indent=1, default=str) + "\n")
        return wrap

    @part("data")
    def _():
        t0 = time.perf_counter()
        train_data = load_digits("train")
        state["train"] = cache([train_data[i] for i in range(min(args.train_images, len(train_data)))])
        test_data = load_digits("test")
        state["test"] = cache([test_data[i] for i in range(min(args.test_images, len(test_data)))])
        out["data_load_s"] = round(time.perf_counter() - t0, 2)
        print(f"device {device}; {len(state['train'])} training images, {len(state['test'])} test images "
              f"decoded in {out['data_load_s']} s", flush=True)

    @part("training")
    def _():
        # The course detector and training settings (DetectorConfig.course(), TrainSettings());
        # untimed warm-up steps on another model first (allocator, cuDNN's algorithm search).
        defaults = TrainSettings()
        settings = TrainSettings(steps=args.steps, checkpoint_every=10**9)
        torch.manual_seed(0)
        warm = FasterRCNN(DetectorConfig.course())
        train(warm, state["train"], TrainSettings(steps=args.warmup_steps), device=device, progress=False)
        del warm
        torch.manual_seed(0)
        model = FasterRCNN(DetectorConfig.course())
        sync()
        start = time.perf_counter()
        history = train(model, state["train"], settings, device=device, progress=False)
        sync()
        seconds = time.perf_counter() - start
        out["training"] = {"steps": args.steps, "batch_size": settings.batch_size, "seconds": round(seconds, 3),
                           "s_per_step": seconds / args.steps,
                           "images_per_s": args.steps * settings.batch_size / seconds,
                           "default_steps": defaults.steps,
                           "default_steps_s_estimate": round(defaults.steps * seconds / args.steps, 1),
                           "first_loss": history[0]["loss"], "last_loss": history[-1]["loss"]}
        print(f"training: {args.steps} steps x {settings.batch_size} images in {seconds:.2f} s "
              f"({1000 * seconds / args.steps:.1f} ms a step, {out['training']['images_per_s']:.0f} images/s; "
              f"TrainSettings().steps = {defaults.steps} -> ~{out['training']['default_steps_s_estimate']} s)",
              flush=True)

    @part("baseline")
    def _():
        state["results"] = load_results()
        state["baseline"] = load_baseline(state["results"], device=device)

    @part("inference")
    def _():
        # The saved baseline (data/results: the results lesson's detector), eval mode, no grad.
        baseline = state["baseline"]
        images = [image.to(device) for image, _ in state["test"]]
        batches = [images[s:s + 16] for s in range(0, len(images), 16)]
        with torch.no_grad():
            baseline(batches[0])
            passes = []
            for _ in range(args.repeats):
                sync()
                start = time.perf_counter()
                for batch in batches:
                    baseline(batch)
                sync()
                passes.append(time.perf_counter() - start)
        median = float(np.median(passes))
        out["inference"] = {"images": len(images), "batch_size": 16, "passes_s": passes,
                            "images_per_s": len(images) / median, "ms_per_image": 1000 * median / len(images)}
        print(f"inference: {len(images)} test images in batches of 16: {out['inference']['images_per_s']:.0f} "
              f"images/s ({out['inference']['ms_per_image']:.2f} ms an image, median of {args.repeats})", flush=True)

    @part("baseline_map50")
    def _():
        # The baseline's test mAP@0.5 on this device against the one recorded in data/results.
        baseline, test = state["baseline"], state["test"]
        detections = detect(baseline, [image for image, _ in test], batch_size=16, device=device)
        map50 = evaluate_voc(detections, [t for _, t in test], baseline.config.num_classes)["map"]
        recorded = (state["results"].get("baseline_weights") or {}).get("map50")
        if len(test) != 200:
            recorded = None  # recorded on all 200 test images
        out["baseline_map50"] = {"device": map50, "images": len(test), "recorded": recorded,
                                 "difference": None if recorded is None else map50 - recorded}
        print(f"baseline test mAP@0.5 on {device} ({len(test)} images): {map50:.4f} (recorded {recorded})",
              flush=True)

    @part("time_parts")
    def _():
        # The results lesson's timing table: 20 test images one at a time, on the CPU with one
        # thread (as the lesson) and on the device.
        baseline = state["baseline"]
        sample = [image for image, _ in state["test"][:20]]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            measured = {"course, CPU 1 thread": time_parts(baseline, sample, device="cpu", warmup=3, repeats=3)}
        finally:
            torch.set_num_threads(threads)
        if device.type == "cuda":
            measured["course, GPU"] = time_parts(baseline, sample, device=device, warmup=3, repeats=3)
        out["time_parts"] = measured
        out["timing_table"] = timing_table(measured)
        print("\nthe results lesson's timing table (ms per image, median):\n" + out["timing_table"], flush=True)

    return 1 if out["errors"] else 0


def read_junit(path):
    """Every test case of a JUnit XML file: id, seconds, outcome, message."""
    cases = []
    if not path or not Path(path).exists():
        return cases
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return cases
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                details = "\n" + child.text if child.text and outcome != "skipped" else ""
                message = (child.get("message") or "") + details
                break
        cases.append({"classname": case.get("classname", ""), "name": case.get("name", ""),
                      "file": case.get("file", ""), "seconds": float(case.get("time") or 0),
                      "outcome": outcome, "message": message.strip()})
    return cases


def summarise_tests(cases):
    counts = {}
    for c in cases:
        counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
    cuda = [c for c in cases if "cuda" in c["name"].lower()]
    skipped = {}
    for c in cases:
        if c["outcome"] == "skipped":
            skipped[c["message"][:160]] = skipped.get(c["message"][:160], 0) + 1
    return {"counts": counts, "total": len(cases),
            "cuda_cases": {"total": len(cuda), "passed": sum(c["outcome"] == "passed" for c in cuda)},
            "failures": [{"id": f"{c['classname']}::{c['name']}", "message": c["message"][:1500]}
                         for c in cases if c["outcome"] in ("failed", "error")],
            "skipped": skipped,
            "slowest": [{"id": f"{c['classname']}::{c['name']}", "seconds": round(c["seconds"], 2)}
                        for c in sorted(cases, key=lambda c: -c["seconds"])[:10]]}


def summarise_lessons(cases, lessons):
    per = {Path(p).name: {"cells": 0, "passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0, "failures": []}
           for p in lessons}
    for c in cases:
        match = re.search(r"(\d\d_[^./\\]+)\.ipynb", c["file"] + " " + c["classname"])
        if not match:
            continue
        row = per.setdefault(match.group(1) + ".ipynb",
                             {"cells": 0, "passed": 0, "failed": 0, "skipped": 0, "seconds": 0.0, "failures": []})
        row["cells"] += 1
        row["seconds"] += c["seconds"]
        row["failed" if c["outcome"] in ("failed", "error") else c["outcome"]] += 1
        if c["outcome"] in ("failed", "error"):
            row["failures"].append({"cell": c["name"], "message": c["message"][:1500]})
    for name, row in per.items():
        row["seconds"] = round(row["seconds"], 1)
        row["status"] = ("not run" if row["cells"] == 0 else "failed" if row["failed"] else "passed")
    return per


def read_phases(path):
    phases = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            name, rc, seconds, cap, note = (line.split("\t") + [""] * 5)[:5]
            phases.append({"phase": name, "rc": int(rc), "seconds": float(seconds), "cap_s": cap, "note": note})
    return phases


def load_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def cmd_report(args):
    work, out = Path(args.work), Path(args.out)
    phases = read_phases(work / "phases.tsv")
    lessons = [line for line in (work / "lessons.txt").read_text().split() if line] \
        if (work / "lessons.txt").exists() else []
    tests = summarise_tests(read_junit(out / "junit-tests.xml"))
    lesson_rows = summarise_lessons(read_junit(out / "junit-notebooks.xml"), lessons)
    report = {"summary": None, "options": load_json(work / "options.json"), "phases": phases,
              "environment": load_json(work / "env.json"), "install": load_json(work / "install.json"),
              "tests": tests, "lessons": lesson_rows, "timing": load_json(work / "timing.json"),
              "bench_detector": load_json(work / "bench.json")}
    by_phase = {p["phase"]: p for p in phases}
    problems = [f"{p['phase']}: exit {p['rc']}" + (f" ({p['note']})" if p["note"] else "")
                for p in phases if p["rc"] not in (0,)]
    report["ok"] = not problems
    report["summary"] = "all phases passed" if not problems else "; ".join(problems)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")

    env = report["environment"] or {}
    opts = report["options"] or {}
    md = ["# GPU check: " + ("PASSED" if report["ok"] else "FAILED"), "",
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {report['summary']}.", ""]
    versions = env.get("versions", {})
    md += [f"* machine: {env.get('gpu', 'no GPU')} ({env.get('gpu_memory_gib', '-')} GiB, capability "
           f"{env.get('gpu_capability', '-')}), {env.get('cpu', '?')}, {env.get('cpu_count', '?')} CPUs; "
           f"{env.get('platform', '?')}",
           f"* Python {env.get('python', '?')}, torch {versions.get('torch', '?')} (CUDA {env.get('torch_cuda')}), "
           f"torchvision {versions.get('torchvision', '?')}, numpy {versions.get('numpy', '?')}, "
           f"pytest {versions.get('pytest', '?')}, nbval {versions.get('nbval', '?')}; "
           f"MINIFRCNN_DEVICE={opts.get('device', '?')} -> {env.get('minifrcnn_device', '?')}"]
    inst = report["install"] or {}
    if inst:
        md.append(f"* bundle install: {inst.get('method')}, {len(inst.get('added', {}))} packages added; "
                  f"pip check: {(inst.get('pip_check') or '').splitlines()[0] if inst.get('pip_check') else '-'}")
    if opts:
        subset = []
        if opts.get("tests_k"):
            subset.append(f"tests -k {opts['tests_k']!r}")
        if opts.get("lessons_filter"):
            subset.append(f"lessons {opts['lessons_filter']}")
        md.append(f"* options: budget {opts.get('budget')} s, {opts.get('workers')} test workers, "
                  f"{opts.get('nb_workers')} lesson workers" + (f"; subset: {', '.join(subset)}" if subset else
                                                                "; the whole suite and every lesson"))
    md += ["", "## Phases", "", "| phase | exit | seconds | cap (s) | note |", "|---|---:|---:|---:|---|"]
    md += [f"| {p['phase']} | {p['rc']} | {p['seconds']:.0f} | {p['cap_s']} | {p['note']} |" for p in phases]
    c = tests["counts"]
    md += ["", "## Package tests", "",
           f"{tests['total']} cases: {c.get('passed', 0)} passed, {c.get('failed', 0)} failed, "
           f"{c.get('error', 0)} errors, {c.get('skipped', 0)} skipped; CUDA-parametrised: "
           f"{tests['cuda_cases']['passed']} of {tests['cuda_cases']['total']} passed."]
    for f in tests["failures"][:20]:
        md += [f"* FAILED `{f['id']}`: {f['message'].splitlines()[0] if f['message'] else ''}"[:400]]
    for reason, n in list(tests["skipped"].items())[:10]:
        md.append(f"* skipped x{n}: {reason}")
    md += ["", "## Lessons (nbval)", "", "| lesson | cells | passed | failed | seconds (cells) | status |",
           "|---|---:|---:|---:|---:|---|"]
    for name, row in lesson_rows.items():
        md.append(f"| {name} | {row['cells']} | {row['passed']} | {row['failed']} | {row['seconds']} "
                  f"| {row['status']} |")
    if "notebooks" in by_phase and opts.get("nb_workers", 1) not in (1, "1"):
        md.append(f"\nThe lessons ran {opts.get('nb_workers')} at a time (pytest-xdist, one lesson per worker): "
                  "each one's seconds are its cells' time while the others ran.")
    for name, row in lesson_rows.items():
        for f in row["failures"][:3]:
            md.append(f"* {name} {f['cell']}: {f['message'].splitlines()[-1] if f['message'] else ''}"[:400])
    timing = report["timing"] or {}
    md += ["", "## Detector timings", ""]
    tr, inf, m = timing.get("training"), timing.get("inference"), timing.get("baseline_map50")
    if tr:
        md.append(f"* training (the course detector, batch {tr['batch_size']}): {1000 * tr['s_per_step']:.1f} ms a "
                  f"step, {tr['images_per_s']:.0f} images/s over {tr['steps']} steps; TrainSettings' default "
                  f"{tr['default_steps']} steps ~{tr['default_steps_s_estimate']} s")
    if inf:
        md.append(f"* inference (the saved baseline, batches of {inf['batch_size']}): {inf['images_per_s']:.0f} "
                  f"images/s ({inf['ms_per_image']:.2f} ms an image)")
    if m:
        md.append(f"* the baseline's test mAP@0.5 on {timing.get('device')} ({m.get('images')} images): "
                  f"{m['device']:.4f} (recorded on the CPU: {m['recorded']})")
    if timing.get("timing_table"):
        md += ["", "The results lesson's timing table (`minifrcnn.course.timing.time_parts`, ms per image, median):",
               "",
               "```", timing["timing_table"], "```"]
    for name, error in (timing.get("errors") or {}).items():
        md.append(f"* {name} FAILED: {error.strip().splitlines()[-1]}"[:400])
    if not timing:
        md.append("(no timings: see timing.log)")
    bench = report["bench_detector"]
    if bench or "bench" in by_phase:
        md += ["", "## bench_detector.py (minifrcnn vs torchvision)", ""]
        log = out / "timing.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        table = [line for line in lines if line.startswith("|")]
        md += table or ["(no table: see timing.log)"]
    (out / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("bundle", help="download the wheels the GPU machine lacks")
    p.add_argument("--python", default=GPU_PYTHON,
                   help=f"target CPython version (default {GPU_PYTHON}, the GPU machine's)")
    p.add_argument("--dest", default=".gpu-bundle")
    p.add_argument("--max-glibc", type=int, default=28, help="newest manylinux_2_N tag accepted (default 28)")
    p.add_argument("--pins-from", default=None, help="resolve against this Python's versions of the GPU "
                   "machine's packages (the dry run: the project's .venv)")
    p.add_argument("--pin", action="append", default=[], help="one more constraint, NAME==VERSION")
    p.set_defaults(func=cmd_bundle)
    p = sub.add_parser("dry-env", help="a venv that looks like the GPU machine")
    p.add_argument("venv")
    p.add_argument("--like", default=str(ROOT / ".venv" / "bin" / "python"))
    p.set_defaults(func=cmd_dry_env)
    p = sub.add_parser("install", help="install a bundle offline")
    p.add_argument("--bundle", required=True)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--work", required=True)
    p.add_argument("--target", default="/tmp/gpu-check-site")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_install)
    p = sub.add_parser("env", help="versions and GPU as JSON")
    p.add_argument("--out", default=None)
    p.add_argument("--require-cuda", action="store_true")
    p.set_defaults(func=cmd_env)
    p = sub.add_parser("timing", help="training and inference steps, the results lesson's timing table")
    p.add_argument("--device", default=None)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--train-images", type=int, default=400)
    p.add_argument("--test-images", type=int, default=200, help="default all 200")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_timing)
    p = sub.add_parser("report", help="report.json and report.md")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
