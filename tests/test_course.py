"""The classroom tools (minifrcnn/course/editions.py): the student edition and the HTML site.

Kept cheap: every lesson's stubs are checked statically and against its checker (run
directly, in a namespace built from the lesson's imports and functions, no kernel); the student
editions of the lessons without an explorer (and 01) run top to bottom here, the others in the
browser test, the lessons that train as quick runs; one lesson (01) is built as HTML.
"""
import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

from minifrcnn.course.editions import (
    REPORT_FAILURES,
    SOLUTION_NOTE,
    STUB_NOTE,
    STUB_TAG,
    build_site,
    is_solution,
    learning_goals,
    lesson_title,
    lessons,
    main,
    notebook_client,
    stub_source,
)
from minifrcnn.course.exercises import ExerciseError

ROOT = Path(__file__).resolve().parents[1]
LESSONS = lessons(ROOT / "notebooks")
STUB_SAYS = "this is the exercise stub: fill in the TODO in {}"


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert main(["student", str(out), "--lessons", str(ROOT / "notebooks")]) == 0
    return out


def function_names(source):
    return [node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)]


def checker_calls(source, names):
    """The calls ``check_x(name, ...)`` or ``checked(name, check_x, ...)`` in ``source`` whose first
    argument is one of ``names``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
            and isinstance(node.args[0], ast.Name) and node.args[0].id in names
            and (node.func.id.startswith("check_") or node.func.id == "checked" and len(node.args) >= 2
                 and isinstance(node.args[1], ast.Name) and node.args[1].id.startswith("check_"))]


def first_checker(nb, index, names):
    """(index, call) of the first code cell after ``index`` that checks one of ``names``."""
    for later in range(index + 1, len(nb.cells)):
        if nb.cells[later].cell_type == "code":
            calls = checker_calls(nb.cells[later].source, names)
            if calls:
                return later, calls[0]
    return None, None


# --------------------------------------------------------------------------------------------
# stub_source on its own

def test_a_stub_keeps_the_signature_and_the_comments_under_it():
    source = ("def my_box_area(boxes):\n"
              "    # Areas of boxes (R, 4) xyxy -> (R,).\n"
              "    width = boxes[:, 2] - boxes[:, 0]\n"
              "    return width * (boxes[:, 3] - boxes[:, 1])\n")
    stub, names = stub_source(source)
    assert names == ["my_box_area"]
    assert stub.startswith("def my_box_area(boxes):\n    # Areas of boxes (R, 4) xyxy -> (R,).\n")
    assert "width =" not in stub and "return width" not in stub, "the solution is gone"
    assert "# TODO: write my_box_area" in stub
    assert 'raise NotImplementedError("exercise stub: fill in the TODO")' in stub
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="exercise stub"):
        namespace["my_box_area"](None)


def test_a_stub_keeps_a_long_signature_a_docstring_decorators_and_imports():
    source = ('import math\n\n'
              '@staticmethod\n'
              'def encode(targets, references,\n'
              '           weights=(1.0, 1.0, 1.0, 1.0)):\n'
              '    """Deltas (R, 4): paper, equation 2\n'
              '    (two lines)."""\n'
              '    return math.log(2)\n')
    stub, names = stub_source(source)
    assert names == ["encode"]
    assert stub.startswith('import math\n\n@staticmethod\ndef encode(targets, references,\n'
                           '           weights=(1.0, 1.0, 1.0, 1.0)):\n    """Deltas (R, 4): paper, equation 2\n'
                           '    (two lines)."""\n    # TODO')
    assert "log" not in stub
    compile(stub, "stub", "exec")


def test_a_one_line_function_and_non_ascii_defaults_are_cut_at_the_body():
    stub, names = stub_source('def f(x="é"): return x * 2\n')
    assert names == ["f"] and stub.startswith('def f(x="é"):\n    # TODO') and "x * 2" not in stub
    compile(stub, "stub", "exec")


def test_a_class_keeps_its_attributes_and_stubs_its_methods():
    stub, names = stub_source("class Head:\n    size = 3\n\n    def forward(self, x):\n        return x + 1\n")
    assert names == ["forward"]
    assert "    size = 3" in stub and "    def forward(self, x):\n        # TODO" in stub and "x + 1" not in stub
    compile(stub, "stub", "exec")


def test_code_that_is_not_a_function_is_left_to_write_with_a_todo_and_a_raise():
    stub, names = stub_source("def f(x):\n    return x\n\nthreshold = 0.7\nresult = f(threshold)\n")
    assert names == ["f"] and "0.7" not in stub and "result" not in stub
    assert stub.rstrip().endswith('raise NotImplementedError("exercise stub: fill in the TODO")')
    assert "# TODO: write the rest of this cell" in stub
    for source in ("threshold = 0.7\n", "%timeit x = 1\n", ""):
        stub, names = stub_source(source)
        assert names == [] and "TODO" in stub and "0.7" not in stub and "timeit" not in stub
        assert stub.endswith('raise NotImplementedError("exercise stub: fill in the TODO")')
        assert "# TODO: write this cell" in stub


# --------------------------------------------------------------------------------------------
# The student edition of every lesson

@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_student_edition_stubs_every_solution_and_changes_nothing_else(path, student_dir):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    nbformat.validate(student)
    assert student.metadata.kernelspec.name == "python3"
    assert [c.get("id") for c in student.cells] == [c.get("id") for c in original.cells]
    first_markdown = next(i for i, c in enumerate(original.cells) if c.cell_type == "markdown")
    first_code = next(i for i, c in enumerate(original.cells) if c.cell_type == "code")
    assert student.cells[first_code].source == original.cells[first_code].source.rstrip() + REPORT_FAILURES
    stubs = 0
    for index, (cell, mine) in enumerate(zip(original.cells, student.cells)):
        if cell.cell_type == "code":
            assert not mine.outputs and mine.execution_count is None
        if not is_solution(cell):
            assert mine.source == cell.source.replace(SOLUTION_NOTE, STUB_NOTE) or (
                index == first_markdown and "Student edition" in mine.source) or index == first_code
            assert SOLUTION_NOTE not in mine.source
            continue
        assert not mine.metadata.get("jupyter", {}).get("source_hidden"), "a stub is not collapsed"
        stubs += 1
        tags = mine.metadata.get("tags", [])
        assert "solution" not in tags and STUB_TAG in tags
        assert "TODO" in mine.source and "raise NotImplementedError" in mine.source
        names = [node.name for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)]
        assert function_names(mine.source) == function_names(cell.source)
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.FunctionDef):
                assert cell.source.splitlines()[node.lineno - 1] in mine.source, "the def line is kept"
        for node in ast.parse(mine.source).body:
            if isinstance(node, ast.FunctionDef):  # the body is gone: an optional docstring, then the raise
                statements = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
                assert len(statements) == 1 and isinstance(statements[0], ast.Raise)
        assert names, f"solution cell {index} defines no function for the checker to call"
    assert stubs >= 1, "every lesson has an exercise"


def lesson_namespace(nb, upto):
    """A namespace with the imports and the functions of the lesson's code cells before
    ``upto``: enough to call a checker without running the lesson's computations."""
    namespace = {}
    for cell in nb.cells[:upto]:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.startswith("%")))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)):
                try:
                    exec(compile(ast.Module([node], []), "lesson", "exec"), namespace)
                except NameError:  # a default value computed by the lesson: not needed here
                    pass
    return namespace


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_checker_explains_its_stub_and_passes_the_solution(path, student_dir):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    for index, cell in enumerate(original.cells):
        if not is_solution(cell):
            continue
        names = function_names(cell.source)
        checker_index, call = first_checker(original, index, names)
        assert call is not None, f"solution cell {index} ({names}) is followed by no checker cell check_...({names[0]})"
        namespace = lesson_namespace(original, index)
        exec(compile(ast.Module([n for n in ast.parse(original.cells[checker_index].source).body
                                 if isinstance(n, (ast.Import, ast.ImportFrom))], []), "checker", "exec"), namespace)
        checker = compile(ast.Expression(call), "checker", "eval")

        exec(student.cells[index].source, namespace)
        with pytest.raises(ExerciseError) as info:
            eval(checker, namespace)
        assert STUB_SAYS.format(call.args[0].id) in str(info.value)

        exec(cell.source, namespace)
        eval(checker, namespace)  # the solution passes


def figures(cell):
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def stream(cell, name):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == name)


# The student edition of every lesson runs top to bottom, "Run All" with nothing written: the lessons with an
# explorer (01-03, 05-07, 09) in JupyterLab (tests/test_browser.py), the others here, in a kernel, and lesson 01 also
# in nbgrader's autograder (tests/test_nbgrader.py: its figures are compared with the solution's, cell by
# cell, and its release is proven to be the student edition). The lessons that train run as
# quick runs (MINIFRCNN_QUICK_STEPS, minifrcnn.course.quick): a few dozen steps, their checks of what training
# achieved waiting for a full run. In the lessons other than 01, every cell that draws must have drawn.
IN_THE_BROWSER = ["01_boxes_and_iou", "02_anchors", "03_anchor_labels", "05_proposals", "06_roi_pooling",
                  "07_detection_head", "09_full_detector"]
RUN_THROUGH = sorted(path.stem for path in LESSONS if path.stem not in IN_THE_BROWSER)
QUICK_STEPS = "40"
DRAWS = re.compile(r"\b(plt\.(?!rcParams|close)|ax\.|axes\[|show_image\(|draw_\w+\()")


def test_every_student_edition_runs_here_or_in_the_browser():
    tree = ast.parse((ROOT / "tests" / "test_browser.py").read_text())
    browser = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                   and getattr(node.targets[0], "id", "") == "RUN_ALL_TIMEOUT_S")
    assert sorted(Path(name).stem for name in browser) == IN_THE_BROWSER
    assert set(RUN_THROUGH) | set(IN_THE_BROWSER) == {path.stem for path in LESSONS}
    assert "01_boxes_and_iou" in (ROOT / "tests" / "test_nbgrader.py").read_text(), "runs in nbgrader's autograder"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", RUN_THROUGH)
def test_student_edition_runs_through_with_nothing_written(lesson, student_dir, monkeypatch):
    """"Run All" on a student notebook in which no exercise is done reaches the last cell: each
    checker says its exercise is not written yet (and raises nothing), the cells after it use
    the package's version, and every figure of the course edition is drawn. Then the solution
    put back into a stub passes its checker, and the lesson goes on with it."""
    monkeypatch.setenv("MINIFRCNN_QUICK_STEPS", QUICK_STEPS)   # the kernels inherit it
    original = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    student = nbformat.read(student_dir / f"{lesson}.ipynb", as_version=4)
    client = notebook_client(student, student_dir)
    with client.setup_kernel():
        for index, cell in enumerate(student.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)  # raises CellExecutionError if a cell fails
        checkers = []
        for index, cell in enumerate(student.cells):
            if STUB_TAG in cell.metadata.get("tags", []):
                names = function_names(cell.source)
                checker, call = first_checker(student, index, names)
                checkers.append(checker)
                name = call.args[0].id
                assert ("Not yet: your" in stream(student.cells[checker], "stderr")
                        and STUB_SAYS.format(name) in stream(student.cells[checker], "stderr")), checker
                assert f"until your {name} passes" in stream(student.cells[checker], "stdout")
        assert checkers, "the lesson has exercises"
        for index, mine in enumerate(student.cells):
            assert not any(o.output_type == "error" for o in mine.get("outputs", [])), index
            if mine.cell_type == "code" and DRAWS.search(mine.source) and "def " not in mine.source:
                assert figures(mine) or any(o.output_type == "display_data" for o in mine.outputs), \
                    f"cell {index} draws nothing"
        stub = next(i for i, c in enumerate(student.cells) if STUB_TAG in c.metadata.get("tags", []))
        checker = checkers[0]
        student.cells[stub].source = original.cells[stub].source
        for index in (stub, checker):
            client.execute_cell(student.cells[index], index)
    assert "Well done" in stream(student.cells[checker], "stdout")
    assert "until your" not in stream(student.cells[checker], "stdout") + stream(student.cells[checker], "stderr")


@pytest.mark.slow
def test_grade_scores_a_learners_notebook_by_its_checkers(student_dir, tmp_path, capsys):
    """The checkers are the autograder: one exercise written, one not, scores 1 / 2. The learner's
    notebook is lesson 01's student edition cut to its set-up, exercises and checkers (the whole
    lesson runs in nbgrader's autograder, tests/test_nbgrader.py)."""
    original = nbformat.read(ROOT / "notebooks" / "01_boxes_and_iou.ipynb", as_version=4)
    learner = nbformat.read(student_dir / "01_boxes_and_iou.ipynb", as_version=4)
    first = next(i for i, c in enumerate(learner.cells) if STUB_TAG in c.metadata.get("tags", []))
    learner.cells[first].source = original.cells[first].source  # my_box_area written, my_iou not
    setup = next(i for i, c in enumerate(learner.cells) if c.cell_type == "code")
    keep = {setup} | {i for i, c in enumerate(learner.cells) if STUB_TAG in c.metadata.get("tags", [])
                      or "= checked(" in c.source}
    learner.cells = [c for i, c in enumerate(learner.cells) if i in keep]
    path = tmp_path / "alice.ipynb"
    nbformat.write(learner, path)
    assert main(["grade", str(path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{path}: 1 / 2 exercises pass"
    assert printed[1].split()[:2] == ["pass", "my_box_area"] and "Well done" in printed[1]
    assert printed[2].split()[:3] == ["not", "yet", "my_iou"] and "not written yet" in printed[2]


def test_student_edition_of_a_folder_without_lessons_is_a_one_line_error(tmp_path, capsys):
    assert main(["student", str(tmp_path / "out"), "--lessons", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: no lessons (NN_name.ipynb) in {tmp_path}\n"
    assert not (tmp_path / "out").exists(), "nothing written"


def test_grade_names_a_missing_notebook(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nobody.ipynb")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no such notebook: {tmp_path / 'nobody.ipynb'}"


# --------------------------------------------------------------------------------------------
# The HTML site

@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_lesson_has_a_title_and_learning_goals_for_the_index(path):
    nb = nbformat.read(path, as_version=4)
    assert re.match(rf"Lesson {path.name[:2]}\b", lesson_title(nb, "")), "the first heading is 'Lesson NN ...'"
    goals = learning_goals(nb)
    assert "goals" in goals.lower() and re.search(r"^\s*(1\.|[-*]) ", goals, re.M), goals
    assert "summary" not in goals.lower() and len(goals) < 3000, "the goals stop at the end of their list"


@pytest.mark.slow
def test_html_site_of_one_lesson(tmp_path, write_lesson):
    """A small lesson in the course's form (the lessons themselves run under nbval): its title, learning
    goals, a formula, figures and an exercise with its checker."""
    lesson = write_lesson(
        "01_boxes.ipynb", "# Lesson 01 — Boxes and IoU\n\n**Learning goals.** By the end\n\n1. compute IoU\n"
        "2. read $\\frac{|A \\cap B|}{|A \\cup B|}$",
        ("code", "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport torch\n\n"
                 "from minifrcnn.course.exercises import checked\n"
                 "from minifrcnn.course.exercises.boxes import check_box_area"),
        ("code", "def my_box_area(boxes):\n    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])"),
        ("code", "my_box_area = checked(my_box_area, check_box_area)"),
        ("code", "for k in range(2):\n    plt.figure(figsize=(2, 2))\n    plt.plot([0, k])\n    plt.show()"))
    assert main(["html", str(tmp_path / "site"), str(lesson)]) == 0
    page = (tmp_path / "site" / "01_boxes.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2, "the figures are embedded PNGs"
    assert 'src="data:image/svg+xml' not in page and "<svg" not in page, "no SVG figures"
    assert "<title>Lesson 01 — Boxes and IoU</title>" in page
    assert "Well done" in page, "the lesson ran, its checkers too"
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="01_boxes.html"' in index and "Lesson 01" in index and "Boxes and IoU" in index
    assert "Learning goals" in index and "<ol" in index


@pytest.mark.slow
def test_build_site_marks_a_lesson_whose_cell_fails(tmp_path, write_lesson):
    lesson = write_lesson("99_broken.ipynb", "# Lesson 99 — Broken\n\n**Learning goals.**\n\n1. fail",
                          ("code", "import sys\nprint('before', sys.executable)"), ("code", "1 / 0"))
    pages = build_site([lesson], tmp_path / "site")
    assert pages[0]["title"] == "Lesson 99 — Broken" and "ZeroDivisionError" in pages[0]["error"]
    assert f"before {sys.executable}" in (tmp_path / "site" / "99_broken.html").read_text(), "this Python's kernel"
    assert "a cell failed" in (tmp_path / "site" / "index.html").read_text()


def test_make_targets_and_ignored_outputs():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^student:", makefile, re.M) and "minifrcnn.course student student" in makefile
    assert re.search(r"^site:", makefile, re.M) and "minifrcnn.course html site" in makefile
    assert re.search(r"^grade:", makefile, re.M) and "minifrcnn.course grade $(NOTEBOOKS)" in makefile
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "site/" in ignored and "student/" in ignored


def test_a_decorated_first_method_keeps_its_decorators_once():
    stub, names = stub_source("class Box:\n    @property\n    def area(self):\n        return 1\n\n"
                              "    @staticmethod\n    def make():\n        return Box()\n")
    assert names == ["area", "make"]
    assert stub.count("@property") == 1 and stub.count("@staticmethod") == 1, stub
    compile(stub, "stub", "exec")

