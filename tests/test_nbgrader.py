"""The lessons as an nbgrader course (minifrcnn/course/nbgrader_course.py), graded by nbgrader itself.

nbgrader's own commands run as a teacher runs them (docs/teaching.md, "Running it on a JupyterHub"):
`generate_assignment` releases every lesson, and the releases must be `make student`'s notebooks;
then lesson 01 is autograded for two submissions, an untouched release (0 points, each exercise's
feedback "not written yet") and the reference solution (full marks). Lesson 01's student edition
runs through here, in nbgrader's kernel, rather than in tests/test_course.py.
"""
import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minifrcnn.course.editions import (
    CODE_STUB,
    STUB_TAG,
    clear_solutions,
    is_solution,
    lessons,
    main,
    make_student_edition,
    mark_solution,
    stub_source,
)
from minifrcnn.course.nbgrader_course import nbgrader_notebook, write_nbgrader_course

nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is in the classroom extra: pip install -e '.[classroom]'")

ROOT = Path(__file__).resolve().parents[1]
LESSONS = lessons(ROOT / "notebooks")
GRADED = "01_boxes_and_iou"
NOT_WRITTEN = "is not written yet: this is the exercise stub: fill in the TODO in {}"


def run_nbgrader(course_dir, *args):
    """``nbgrader ARGS`` in ``course_dir``, as a teacher types it in a shell where the venv is active
    (nbgrader runs `alembic` from PATH)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


# --------------------------------------------------------------------------------------------
# Our stubbing rule is nbgrader's

SOURCES = {
    "function": "def f(x):\n    # what f does\n    y = x + 1\n    return y\n",
    "docstring": ('import math\n\n@staticmethod\ndef g(a,\n      b=1):\n    """Two\n    lines."""\n'
                  '    return math.log(a)\n'),
    "one line": 'def f(x="é"): return x * 2\n',
    "class": "class Head:\n    size = 3\n\n    @property\n    def area(self):\n        return 1\n",
    "code around": "import torch\n\nthreshold = 0.7\n\ndef f(x):\n    return x\n\nresult = f(threshold)\n",
    "magic": "%timeit x = 1\n",
    "empty": "",
}


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_clearing_the_marked_regions_is_nbgraders_rule(source):
    from nbgrader.preprocessors import ClearSolutions

    marked, _ = mark_solution(source)
    cell = nbformat.v4.new_code_cell(marked)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "x",
                                 "schema_version": 3}
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": kernel})
    cleared, _ = ClearSolutions(code_stub={"python": CODE_STUB}).preprocess(nb, {})
    assert cleared.cells[0].source == clear_solutions(marked) == stub_source(source)[0]
    assert "### BEGIN SOLUTION" not in cleared.cells[0].source
    compile(cleared.cells[0].source, "stub", "exec")


def test_marked_answers_stay_whole_and_run():
    marked, names = mark_solution(SOURCES["code around"])
    assert names == ["f"]
    assert marked.count("### BEGIN SOLUTION") == 3, "f's body, the code before it and the code after it"
    namespace = {}
    exec(marked, namespace)  # the teacher's copy is the lesson's solution, markers being comments
    assert namespace["result"] == 0.7


def test_every_solution_cell_is_an_nbgrader_solution_and_every_checker_a_graded_test():
    for path in LESSONS:
        original = nbformat.read(path, as_version=4)
        nb = nbgrader_notebook(original, points=2)
        meta = [c.metadata.get("nbgrader") for c in nb.cells]
        assert sum(1 for m in meta if m and m["solution"]) == sum(map(is_solution, original.cells)) > 0, path.name
        graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert len(graded) >= sum(map(is_solution, original.cells)), f"{path.name}: an exercise without a checker"
        assert all(c.metadata.nbgrader.points == 2 and c.metadata.nbgrader.locked for c in graded)
        assert all("checked(" in c.source for c in graded)
        ids = [m["grade_id"] for m in meta if m]
        assert len(ids) == len(set(ids)), f"{path.name}: grade ids are unique"
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.metadata.nbgrader.locked and "report_failures()" in first_code.source


def test_the_command_line_writes_the_course_and_keeps_a_teachers_config(tmp_path, capsys):
    assert main(["nbgrader", str(tmp_path), "--lessons", str(ROOT / "notebooks")]) == 0
    assert "nbgrader generate_assignment 00_overview" in capsys.readouterr().out
    assert sorted(p.parent.name for p in (tmp_path / "source").glob("*/*.ipynb")) == [p.stem for p in LESSONS]
    config = tmp_path / "nbgrader_config.py"
    assert CODE_STUB in config.read_text()
    assert 'c.AsyncKernelManager.client_factory = "minifrcnn.course.kernel_client.SteadyAsyncKernelClient"' in \
        config.read_text(), "autograding waits on replies with the course's kernel client (kernel_client.py)"
    config.write_text(config.read_text() + "c.Exchange.root = '/srv/nbgrader/exchange'\n")
    write_nbgrader_course(tmp_path, ROOT / "notebooks")
    assert "/srv/nbgrader/exchange" in config.read_text(), "a teacher's edits survive a rewrite"
    assert main(["nbgrader", str(tmp_path), "--points", "0"]) == 2
    assert "more than 0 points" in capsys.readouterr().err
    assert main(["nbgrader", str(tmp_path), "--lessons", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("error: no lessons (NN_name.ipynb) in ")


# --------------------------------------------------------------------------------------------
# nbgrader's own commands

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """An nbgrader course directory with every lesson released (`nbgrader generate_assignment`)."""
    course_dir = tmp_path_factory.mktemp("course")
    write_nbgrader_course(course_dir, ROOT / "notebooks")
    run_nbgrader(course_dir, "generate_assignment", "*")
    return course_dir


@pytest.mark.slow
def test_nbgrader_releases_the_student_edition(course, tmp_path):
    student_dir = tmp_path / "student"
    make_student_edition(ROOT / "notebooks", student_dir)
    for path in LESSONS:
        released = nbformat.read(course / "release" / path.stem / path.name, as_version=4)
        student = nbformat.read(student_dir / path.name, as_version=4)
        assert len(released.cells) == len(student.cells), path.name
        for index, (theirs, ours) in enumerate(zip(released.cells, student.cells)):
            where = f"{path.name}, cell {index}"
            assert (theirs.cell_type, theirs.source) == (ours.cell_type, ours.source), where
            assert theirs.metadata.get("tags") == ours.metadata.get("tags"), where
            assert not theirs.get("outputs"), where


def cell_feedback(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def figures(cell):
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.mark.slow
def test_nbgrader_autogrades_a_lesson_by_its_checkers(course):
    """alice hands in the release untouched, bob the reference solution (the teacher's source)."""
    name = f"{GRADED}.ipynb"
    for student, handed_in in (("alice", course / "release"), ("bob", course / "source")):
        (course / "submitted" / student / GRADED).mkdir(parents=True)
        (course / "submitted" / student / GRADED / name).write_bytes((handed_in / GRADED / name).read_bytes())
    run_nbgrader(course, "autograde", GRADED)
    run_nbgrader(course, "export", "--to", "grades.csv")
    run_nbgrader(course, "generate_feedback", GRADED)

    with open(course / "grades.csv") as f:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(f) if row["assignment"] == GRADED}  # the others: not handed in
    source = nbformat.read(course / "source" / GRADED / name, as_version=4)
    exercises = [c.metadata.nbgrader.grade_id for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(exercises) == 2
    assert scores == {"alice": (0.0, 2.0), "bob": (2.0, 2.0)}

    # alice's untouched student edition ran through: each checker said what is missing and the lesson
    # went on with minifrcnn's version; every figure of the reference solution's run is drawn
    alice = nbformat.read(course / "autograded" / "alice" / GRADED / name, as_version=4)
    bob = nbformat.read(course / "autograded" / "bob" / GRADED / name, as_version=4)
    for index, (mine, theirs) in enumerate(zip(alice.cells, bob.cells)):
        assert not any(o.output_type == "error" for o in mine.get("outputs", []) + theirs.get("outputs", [])), index
        assert figures(mine) == figures(theirs), f"cell {index}: {figures(mine)} figures, bob's has {figures(theirs)}"
    stubs = [c for c in alice.cells if STUB_TAG in c.metadata.get("tags", [])]
    checkers = [c for c in alice.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for stub, checker in zip(stubs, checkers):
        function = stub.source.split("def ", 1)[1].split("(", 1)[0]
        assert NOT_WRITTEN.format(function) in cell_feedback(checker)
        assert f"until your {function} passes" in cell_feedback(checker)
    assert all("Well done" in cell_feedback(c) for c in bob.cells if c.metadata.get("nbgrader", {}).get("grade"))

    feedback = (course / "feedback" / "alice" / GRADED / f"{GRADED}.html").read_text()
    assert NOT_WRITTEN.format("my_iou") in feedback and "Score: 0.0 / 2.0" in feedback
    assert "Score: 2.0 / 2.0" in (course / "feedback" / "bob" / GRADED / f"{GRADED}.html").read_text()
