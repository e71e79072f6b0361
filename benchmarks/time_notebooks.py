"""Time every lesson the way a learner runs it: a fresh kernel, all cells, wall clock.

    python benchmarks/time_notebooks.py [notebooks/02_anchors.ipynb ...]

Prints a table and writes benchmarks/results/notebook_times.json. Kernel start-up is
included (it is part of what a learner waits for). Run it on a quiet machine: the figures
are wall-clock seconds and move with any other load.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def time_notebook(path):
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons to time (default: every lesson)")
    paths = [p.resolve() for p in parser.parse_args(argv).notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    paths = paths or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = []
    for path in paths:
        seconds = time_notebook(path)
        rows.append({"notebook": path.name, "seconds": round(seconds, 1)})
        print(f"{path.name:<32} {seconds:7.1f} s", flush=True)
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<32} {total:7.1f} s")
    result = {"command": "python benchmarks/time_notebooks.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                          "torch": torch.__version__},
              "notebooks": rows, "total_seconds": round(total, 1)}
    out = ROOT / "benchmarks" / "results" / "notebook_times.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
