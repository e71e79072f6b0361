"""The lessons as an nbgrader course: one assignment per lesson, autograded by its own checkers.

    python -m minifrcnn.course nbgrader COURSE_DIR [--lessons DIR]

writes the folders nbgrader works in (docs/teaching.md, "Running it on a JupyterHub")::

    COURSE_DIR/nbgrader_config.py               the course id, the exercise stub, the cell timeout, the kernel client
    COURSE_DIR/source/NN_name/NN_name.ipynb     one assignment per lesson

The lessons' ``solution`` tags are the one source of truth. Each solution cell becomes an
nbgrader solution cell with its answers between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
(``editions.mark_solution``), so ``nbgrader generate_assignment`` releases the same notebooks as
``make student`` (tests/test_nbgrader.py compares them). Each checker cell
(``my_x = checked(my_x, check_x)``) becomes an autograded test cell worth ``points``. The release
keeps the student edition's ``report_failures()``: a checker that fails prints "Not yet: ..." on
stderr, which nbgrader scores 0 and shows in the feedback, and hands the rest of the lesson the
package's version, so one missing exercise does not cost the others; a checker that passes
prints "Well done" and scores the points. The first code cell (imports, seeds,
``report_failures()``) is read-only: autograding restores it, so a submission cannot turn the
checkers off.
"""
from pathlib import Path

import nbformat

from .editions import CELL_TIMEOUT, CHECKER_CELL, CODE_STUB, LESSONS_DIR, learner_edition, lessons, mark_solution

COURSE_ID = "minifrcnn"
SCHEMA_VERSION = 3  # nbgrader's cell metadata format (nbgrader 0.9)
CONFIG = f'''\
# Written by `python -m minifrcnn.course nbgrader`: run nbgrader's commands in this folder.
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = {COURSE_ID!r}
# What replaces each answer in the released notebooks: the student edition's stub (`make student`),
# which the checkers recognise ("this is the exercise stub: fill in the TODO in my_iou").
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
# Seconds per cell when autograding: lessons 04 and later train for minutes (nbgrader's default is 30).
c.Execute.timeout = {CELL_TIMEOUT}
# A kernel client that cannot sleep through a reply that has arrived (minifrcnn/course/kernel_client.py:
# jupyter_client's asyncio client sometimes did, after an explorer cell, for a whole cell timeout).
c.AsyncKernelManager.client_factory = "minifrcnn.course.kernel_client.SteadyAsyncKernelClient"
'''


def _cell_meta(grade_id, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def nbgrader_notebook(nb, points=1):
    """The nbgrader source version of lesson ``nb``: the student edition's text with every solution
    cell's answers marked (an nbgrader solution cell), every checker cell an autograded test cell
    worth ``points``, and the first code cell read-only."""
    used = set()

    def unique(grade_id):
        n, base = 1, grade_id
        while grade_id in used:
            n, grade_id = n + 1, f"{base}_{n + 1}"
        used.add(grade_id)
        return grade_id

    def mark(cell):
        cell.source, names = mark_solution(cell.source)
        cell.metadata["nbgrader"] = _cell_meta(unique(f"write_{names[0] if names else 'cell'}"), solution=True)

    nb = learner_edition(nb, mark)
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is not None and "nbgrader" not in first_code.metadata:
        first_code.metadata["nbgrader"] = _cell_meta(unique("setup"), locked=True)
    for cell in nb.cells:
        match = CHECKER_CELL.search(cell.source) if cell.cell_type == "code" else None
        if match and "nbgrader" not in cell.metadata:
            cell.metadata["nbgrader"] = _cell_meta(unique(match.group(3)), grade=True, locked=True, points=points)
    nb.metadata["minifrcnn"] = {"edition": "nbgrader"}
    return nb


def write_nbgrader_course(course_dir, src_dir=LESSONS_DIR, points=1):
    """Write ``course_dir/nbgrader_config.py`` and one nbgrader assignment per lesson of
    ``src_dir`` (default: the course's) under ``course_dir/source/``. An existing
    ``nbgrader_config.py`` is kept (a teacher may have edited it).

    Returns:
        list of Path: the source notebooks written, in course order.
    """
    course_dir = Path(course_dir)
    paths = lessons(src_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG)
    written = []
    for path in paths:
        nb = nbgrader_notebook(nbformat.read(path, as_version=4), points)
        nbformat.validate(nb)
        target = course_dir / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written
