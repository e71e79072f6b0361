"""Project hygiene: notebooks committed clean, environment.yml in sync, README commands."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from minifrcnn.course.editions import SOLUTION_NOTE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"torch": "pytorch", "playwright": "playwright-python"}  # conda-forge's names


def requirement_name_and_spec(requirement):
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(?:#.*)?$", requirement)
    return match.group(1).lower(), match.group(2).replace(" ", "")


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 4, "lessons 00-03 must exist"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), f"lessons must be numbered 00, 01, ...: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_clean(path):
    nb = json.loads(path.read_text())
    missing = [i for i, c in enumerate(nb["cells"]) if "id" not in c]
    assert not missing, f"cells {missing} have no id (added by a script?): the student edition keys on them"
    nbformat.validate(nbformat.from_dict(nb))
    assert nb["metadata"]["kernelspec"]["name"] == "python3", "kernelspec must be python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for i, cell in enumerate(code):
        assert not cell.get("outputs"), f"code cell {i} has outputs: clear them before committing"
        assert cell.get("execution_count") is None, f"code cell {i} has an execution count"
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert ("nbval-skip" in tags) == ("skip-execution" in tags), \
            f"code cell {i}: skip a cell with both tags nbval-skip and skip-execution"
    first = "".join(code[0]["source"])
    assert first.lstrip().startswith("%matplotlib inline"), "first cell must start with %matplotlib inline"
    assert "seed_everything" in first, "first cell must seed (minifrcnn.seed_everything)"
    text = json.dumps(nb)
    assert "set_matplotlib_formats" not in text and "'svg'" not in text, "no SVG figures"
    for i, cell in enumerate(nb["cells"]):
        # A generator script's "\approx" in a normal string becomes a bell character + "pprox".
        bad = sorted({hex(ord(ch)) for ch in "".join(cell["source"]) if ord(ch) < 32 and ch not in "\n\t"})
        assert not bad, f"cell {i} has control characters {bad} (an unescaped backslash in a generator?)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_goals_exercise_and_summary(path):
    nb = json.loads(path.read_text())
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").lower()
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "goals" in markdown, "a lesson states its learning goals"
    assert "summary" in markdown, "a lesson ends with a summary"
    assert "arxiv.org/abs/1506.01497" in markdown, "the summary links the paper"
    assert "exercise" in markdown and re.search(r"^(\w+) = checked\(\1, check_\w+\)", code, re.M), \
        "at least one exercise with a checker, as my_x = checked(my_x, check_x) (the student edition runs on)"
    assert "## check yourself" in markdown and markdown.count("<details>") >= 3, "3 or more check-yourself questions"
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, "exercise solutions are tagged 'solution' (the student edition stubs them)"


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(requirement_name_and_spec(r) for r in project["dependencies"])
    for extra in ("course", "test", "data", "classroom"):
        wanted.update(requirement_name_and_spec(r) for r in project["optional-dependencies"][extra])
    wanted = {CONDA_NAMES.get(name, name): spec for name, spec in wanted.items()}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"], "one channel: every package, the same builds for every user"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    listed = dict(requirement_name_and_spec(d.replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=]", d) else d)
                  for d in conda)
    python = listed.pop("python")
    listed.pop("pip")
    assert python.startswith("==3.11")
    assert listed == wanted
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(line.strip().endswith("-e .") for line in pip_section), "environment.yml installs the package"


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["make lab", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_lists_every_lesson():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert path.name in readme, f"README's lesson list misses {path.name}"


@pytest.mark.slow
def test_a_plain_install_has_and_imports_every_module(tmp_path):
    """`pip install .` (not editable): the wheel holds every module of the source tree, and
    each imports from it, away from the checkout (no data folder beside it)."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there, and reuse it
    shutil.copytree(ROOT / "minifrcnn", source / "minifrcnn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("minifrcnn-*.whl"))
    in_wheel = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    in_source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "minifrcnn").rglob("*.py")}
    assert in_source - in_wheel == set(), "modules missing from the wheel"

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = ("import importlib, pkgutil, minifrcnn\n"
              f"assert minifrcnn.__file__.startswith({str(site)!r}), minifrcnn.__file__\n"
              "for m in pkgutil.walk_packages(minifrcnn.__path__, 'minifrcnn.'):\n"
              "    if not m.name.endswith('__main__'):\n"
              "        importlib.import_module(m.name)\n")
    env = {k: v for k, v in os.environ.items() if k != "MINIFRCNN_DATA"}
    env["PYTHONPATH"] = str(site)
    imported = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-2000:]


def internal_imports(path):
    """The ``minifrcnn`` modules a file imports (absolute names, function-local imports too)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{target}.{a.name}" for a in node.names} if node.module is None else {target}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minifrcnn"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("minifrcnn")}
    return found


DETECTOR_MODULES = sorted(p for p in (ROOT / "minifrcnn").glob("*.py") if p.stem not in ("__init__", "__main__"))


@pytest.mark.parametrize("path", DETECTOR_MODULES, ids=lambda p: p.stem)
def test_the_detector_never_imports_the_course(path):
    assert not {m for m in internal_imports(path) if m.startswith("minifrcnn.course")}


def test_the_architecture_document_draws_the_graph_as_it_is():
    names = {p.stem for p in DETECTOR_MODULES}
    edges = {(p.stem, m.split(".")[1]) for p in DETECTOR_MODULES for m in internal_imports(p)
             if m.count(".") >= 1 and m.split(".")[1] in names and m.split(".")[1] != p.stem}
    document = (ROOT / "docs" / "architecture.md").read_text()
    graph = re.search(r"```mermaid\n(.*?)```", document, re.S).group(1)
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", graph, re.M))
    assert drawn == edges, f"missing from docs/architecture.md: {edges - drawn}; not in the code: {drawn - edges}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_collapsed_and_announced(path):
    """A learner's first contact with an exercise is an attempt: every solution cell is
    committed collapsed, and the prompt above it says where the solution is and how to get
    a copy without it."""
    cells = json.loads(path.read_text())["cells"]
    for i, cell in enumerate(cells):
        if "solution" in cell["metadata"].get("tags", []):
            assert cell["metadata"].get("jupyter", {}).get("source_hidden"), f"cell {i} is not collapsed"
            prompt = "".join(cells[i - 1]["source"])
            assert cells[i - 1]["cell_type"] == "markdown" and prompt.rstrip().endswith(SOLUTION_NOTE), \
                f"cell {i - 1}, before solution cell {i}, does not end with the note that the solution is hidden"


def _hidden(cell):
    return cell["cell_type"] == "code" and bool(cell["metadata"].get("jupyter", {}).get("source_hidden"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_teaching_cells_stay_short_and_collapsed_cells_are_announced(path):
    """Issue 13, section 5: a visible cell carries one idea and stays short (the first code
    cell, the imports, excepted); longer drawing code and pinned numbers live in collapsed
    cells, and a note in the text says where each one is ("after the code below", "above")."""
    cells = json.loads(path.read_text())["cells"]
    first = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    for i, cell in enumerate(cells):
        lines = len("".join(cell["source"]).splitlines())
        if cell["cell_type"] == "code" and i != first and not _hidden(cell) and "solution" not in cell["metadata"].get(
                "tags", []):
            assert lines <= 22, f"cell {i} has {lines} visible lines: split it, or move its drawing code to a " \
                                f"collapsed cell or minifrcnn.course.draw"
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "collapsed cell" in text and "solution" not in text:
            near = cells[max(0, i - 4):i] if "collapsed cell above" in text else cells[i + 1:i + 8]
            assert any(_hidden(c) for c in near), f"cell {i} announces a collapsed cell that is not there"
