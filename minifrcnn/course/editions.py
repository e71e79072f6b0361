"""Classroom tools: the student edition of the lessons and a readable HTML site.

    python -m minifrcnn.course student OUTDIR             # every lesson, solutions stubbed
    python -m minifrcnn.course html OUTDIR [NOTEBOOK...]  # execute lessons, write HTML + index
    python -m minifrcnn.course grade NOTEBOOK...          # run a learner's notebooks, score their checkers
    python -m minifrcnn.course nbgrader COURSE_DIR        # the lessons as nbgrader assignments

The student edition replaces every cell tagged ``solution`` by a stub: the function's
``def`` line (and its docstring and leading comments) stay, the body becomes a ``TODO`` and
``raise NotImplementedError``. The checker cell after it stays, so a learner who runs it
before writing the function is told "this is the exercise stub: fill in the TODO in ..."
(see ``minifrcnn.course.exercises._check.call_learner``). Its first code cell turns on
``report_failures()``: a checker cell (``my_iou = checked(my_iou, check_iou)``) then prints
what is wrong instead of raising, and hands the cells below the package's version until the
learner's passes, so that "Run All" reaches the end of the lesson.
"""
import argparse
import ast
import html
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

LESSONS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
SOLUTION_TAG = "solution"
STUB_TAG = "exercise-stub"
STUDENT_NOTE = ("\n\n> **Student edition.** The exercise cells are stubs: each says `TODO` and raises "
                "`NotImplementedError`. Write the code there, then run the checker cell below it; it tells "
                "you which case fails and why. Until your function passes, the cells after it use the "
                "package's version, so \"Run All\" runs the whole lesson.")
# The student edition's first code cell ends with these lines: a checker that fails prints why and
# the lesson runs on (minifrcnn.course.exercises.checked); the course edition raises, for nbval.
REPORT_FAILURES = ("\n\n# Student edition: a checker that fails says why, and the lesson runs on with minifrcnn's "
                   "version\nfrom minifrcnn.course.exercises import report_failures\n\nreport_failures()")
# Each exercise's prompt ends with SOLUTION_NOTE (the course edition: the solution cell under it is
# committed collapsed); the student edition says STUB_NOTE there instead, and shows the stub.
SOLUTION_NOTE = ("*The reference solution is hidden in the collapsed cell below: try first. `make student` gives "
                 "you a copy of every lesson without the solutions.*")
STUB_NOTE = "*Write your solution in the cell below, in place of its `TODO`, then run the checker under it.*"
CELL_TIMEOUT = 600  # seconds per cell when executing lessons: lesson 04 and later train


def lessons(src_dir=LESSONS_DIR):
    """The lessons' notebooks ``NN_name.ipynb`` in ``src_dir``, in course order; a folder with none is
    an error (``FileNotFoundError``): the command line says so in one line."""
    found = sorted(Path(src_dir).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no lessons (NN_name.ipynb) in {src_dir}")
    return found


def is_solution(cell):
    """True for a code cell tagged ``solution``: an exercise's worked answer."""
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


# --------------------------------------------------------------------------------------------
# Student edition
#
# A solution cell becomes a stub in two steps, the second of which is nbgrader's own rule: first
# its answers are marked as solution regions (mark_solution: every function's body, and any code
# that is not a function, between ### BEGIN SOLUTION and ### END SOLUTION), then each region is
# replaced by CODE_STUB (clear_solutions). `make student` does both here; the nbgrader course
# (write_nbgrader_course) ships the marked cells and lets `nbgrader generate_assignment` do the
# second step with the same CODE_STUB, so both give the same student notebooks.

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = 'raise NotImplementedError("exercise stub: fill in the TODO")'


def _todo(indent, what, then):
    return [f"{indent}# TODO: write {what} (the exercise above says {then}),",
            f"{indent}# in place of the raise below, then run the checker cell under this one."]


def _mark_function(node, lines, indent=""):
    """Source lines of the function ``node`` with its body marked as a solution region:
    decorators, signature, the comments between signature and body, and the docstring stay
    outside it."""
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body[0]
    has_docstring = (isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant)
                     and isinstance(body.value.value, str))
    before_body = lines[body.lineno - 1].encode()[:body.col_offset].decode()  # col_offset counts UTF-8 bytes
    if before_body.strip():
        # the body starts on the signature's last line ("def f(x): return x"): cut it there
        body_indent = indent + "    "
        kept = lines[first - 1:body.lineno - 1] + [before_body.rstrip()]
        answer = [body_indent + lines[body.lineno - 1].encode()[body.col_offset:].decode()]
        answer += lines[body.lineno:node.end_lineno]
    else:
        # the signature and the comments under it end where the first statement starts; a
        # docstring is kept whole
        body_indent = before_body
        end_kept = body.end_lineno if has_docstring else body.lineno - 1
        kept, answer = lines[first - 1:end_kept], lines[end_kept:node.end_lineno]
    return (kept + _todo(body_indent, node.name, "what it takes and returns")
            + [body_indent + BEGIN_SOLUTION] + answer + [body_indent + END_SOLUTION])


def _mark_class(node, lines):
    """A class with every method's body marked; its header, docstring and attributes kept."""
    def first_line(n):  # a decorated definition starts at its first decorator
        return n.decorator_list[0].lineno if getattr(n, "decorator_list", None) else n.lineno

    out = lines[first_line(node) - 1:first_line(node.body[0]) - 1]
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += _mark_function(item, lines, indent=" " * item.col_offset)
        else:
            out += lines[item.lineno - 1:item.end_lineno]
    return out


def mark_solution(source):
    """A solution cell's ``source`` with its answers between ``### BEGIN SOLUTION`` and
    ``### END SOLUTION``, as nbgrader marks them.

    Imports stay outside; so do a function's (or a class's methods') ``def`` lines, the comments
    under them and their docstrings; the bodies are solution regions, each after a TODO that
    names the function. Any other code is left for the learner to write: each run of it is a
    region. A cell that is not plain Python (a magic) is one region.

    Returns:
        (str, list of str): the marked source and the names of the functions in it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    if tree is None:
        return "\n".join(_todo("", "this cell", "what it must do") + [BEGIN_SOLUTION, source.rstrip("\n"),
                                                                       END_SOLUTION]), []
    lines = source.splitlines()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    what = "the rest of this cell" if any(isinstance(n, functions) for n in tree.body) else "this cell"
    out, names, run = [], [], []

    def add(block):
        out.extend(([""] if out else []) + block)

    def end_run():
        if run:
            add(_todo("", what, "what it must do") + [BEGIN_SOLUTION] + run + [END_SOLUTION])
            run.clear()

    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            end_run()
            out.extend(lines[node.lineno - 1:node.end_lineno])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end_run()
            add(_mark_function(node, lines))
            names.append(node.name)
        elif isinstance(node, ast.ClassDef):
            end_run()
            add(_mark_class(node, lines))
            names += [item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))]
        else:
            run.extend(lines[node.lineno - 1:node.end_lineno])
    end_run()
    if not names and BEGIN_SOLUTION not in out:  # nothing but imports (or nothing): the learner writes the cell
        add(_todo("", what, "what it must do") + [BEGIN_SOLUTION, END_SOLUTION])
    return "\n".join(out), names


def clear_solutions(marked, code_stub=CODE_STUB):
    """Every solution region of ``marked`` replaced by ``code_stub``, indented as its
    ``### BEGIN SOLUTION`` line: nbgrader's rule (its ``ClearSolutions`` preprocessor)."""
    out, inside = [], False
    for line in marked.split("\n"):
        if "BEGIN SOLUTION" in line:
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + stub_line for stub_line in code_stub.split("\n")]
            inside = True
        elif "END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def stub_source(source):
    """The student version of a solution cell's ``source``: :func:`mark_solution`, then
    :func:`clear_solutions`. Every answer becomes a TODO and ``raise NotImplementedError``.

    Returns:
        (str, list of str): the stub's source and the names of the stubbed functions.
    """
    marked, names = mark_solution(source)
    return clear_solutions(marked), names


def learner_edition(nb, solution_cell):
    """A copy of lesson ``nb`` as the learner gets it: outputs cleared, the notes that say where
    the solutions are rewritten, ``report_failures()`` in the first code cell; each solution cell
    rewritten by ``solution_cell(cell)`` and tagged ``exercise-stub`` instead of ``solution``."""
    nb = nbformat.from_dict(nb)  # a deep copy
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.cell_type == "markdown" and SOLUTION_NOTE in cell.source:
            cell.source = cell.source.replace(SOLUTION_NOTE, STUB_NOTE)
        if is_solution(cell):
            solution_cell(cell)
            tags = [t for t in cell.metadata.get("tags", []) if t != SOLUTION_TAG]
            cell.metadata["tags"] = tags + [STUB_TAG]
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)  # the stub is the learner's to see
    first_markdown = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_markdown is not None:
        first_markdown.source = first_markdown.source.rstrip() + STUDENT_NOTE
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    if first_code is not None:
        first_code.source = first_code.source.rstrip() + REPORT_FAILURES
    return nb


def student_notebook(nb):
    """A copy of notebook ``nb`` with its solution cells stubbed and its outputs cleared."""
    def stub(cell):
        cell.source, _ = stub_source(cell.source)

    nb = learner_edition(nb, stub)
    nb.metadata["minifrcnn"] = {"edition": "student"}
    return nb


def make_student_edition(src_dir, out_dir):
    """Write the student edition of every lesson in ``src_dir`` into ``out_dir``.

    Returns:
        list of Path: the notebooks written, in course order.
    """
    paths = lessons(src_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = student_notebook(nbformat.read(path, as_version=4))
        nbformat.validate(nb)
        target = out_dir / path.name
        nbformat.write(nb, target)
        written.append(target)
    return written


# --------------------------------------------------------------------------------------------
# HTML site

def lesson_title(nb, fallback):
    """The text of the notebook's first markdown heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def learning_goals(nb):
    """The markdown of the lesson's learning goals: from the line that says "learning goals"
    (a heading or a bold lead-in) to the end of the list that follows it; "" if none."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        start = next((i for i, line in enumerate(lines) if "learning goals" in line.lower()), None)
        if start is None:
            continue
        goals, seen_list = [], False
        for line in lines[start + (1 if lines[start].startswith("#") else 0):]:
            stripped = line.strip()
            if line.startswith("#") and goals:
                break
            is_item = bool(re.match(r"(\d+\.|[-*+])\s", stripped))
            seen_list |= is_item
            if seen_list and stripped and not is_item and not line.startswith((" ", "\t")):
                break  # the first paragraph after the list
            goals.append(line)
        return "\n".join(goals).strip()
    return ""


def notebook_client(nb, cwd, timeout=CELL_TIMEOUT):
    """An nbclient ``NotebookClient`` for ``nb`` whose kernel is this Python's own ipykernel
    (the venv's, whatever other ``python3`` kernels Jupyter knows of), started in ``cwd``."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    # with no kernel folders to search, "python3" is the native kernel: sys.executable
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    return NotebookClient(nb, km=kernel, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": str(cwd)}})


def execute_notebook(path, timeout=CELL_TIMEOUT):
    """Run every cell of the notebook at ``path`` in a fresh kernel (see ``notebook_client``),
    in the notebook's folder.

    Returns:
        (NotebookNode, float, str or None): the executed notebook, the wall time in seconds,
        and the error if a cell failed (the notebook then holds the outputs up to it).
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = notebook_client(nb, Path(path).resolve().parent, timeout)
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = str(exc)
    except (CellTimeoutError, DeadKernelError) as exc:  # not CellExecutionErrors, but a failed lesson all the same
        error = f"{type(exc).__name__}: {exc}"
    return nb, time.perf_counter() - start, error


# MathJax 2.7 beside the pages (the package jupyter-server-mathjax ships its files): formulas
# render in a classroom without internet. The config is the one that package has.
LOCAL_MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(out_dir):
    """Copy MathJax's files into ``out_dir/mathjax`` (without its 40 translations and the
    accessibility extensions, which the pages do not load: about 5 MB). Returns the URL the
    pages load it from, or the nbconvert's CDN URL (and says so) when jupyter-server-mathjax
    is not installed."""
    from nbconvert import HTMLExporter
    try:
        import jupyter_server_mathjax
    except ImportError:
        print("jupyter-server-mathjax is not installed (pip install -e '.[course]'): the pages load MathJax "
              "from a CDN, and without internet their formulas show as TeX")
        return HTMLExporter().mathjax_url
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(static, Path(out_dir) / "mathjax", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("localization", "a11y"))
    return LOCAL_MATHJAX_URL


def notebook_html(nb, title, mathjax_url=None):
    """The notebook as one HTML page, its figures embedded as PNG data. Formulas are typeset
    by MathJax from ``mathjax_url`` (default: nbconvert's CDN; :func:`build_site` copies it
    next to the pages). Widgets (the explorers) need a kernel: the page shows their text."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    if mathjax_url:
        exporter.mathjax_url = mathjax_url
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>minifrcnn: Faster R-CNN, built step by step</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 50em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }}
li.lesson {{ margin-bottom: 1.2em; }}
.goals {{ font-size: 0.92em; color: #333; }}
.meta {{ font-size: 0.85em; color: #666; }}
.failed {{ color: #b00; font-weight: bold; }}
ul.lessons {{ list-style: none; padding-left: 0; }}
</style>
<script type="text/x-mathjax-config">MathJax.Hub.Config({{tex2jax: {{inlineMath: [["$", "$"]]}}}});</script>
<script src="{mathjax_url}"></script>
</head>
<body>
<h1>minifrcnn: Faster R-CNN, built step by step</h1>
<p>The lessons, executed on {built} (each page shows every cell's output and figures).
The paper: Ren, He, Girshick and Sun, <em>Faster R-CNN: Towards Real-Time Object Detection with
Region Proposal Networks</em>, NIPS 2015, <a href="https://arxiv.org/abs/1506.01497">arXiv:1506.01497</a>.</p>
<ul class="lessons">
{items}
</ul>
</body>
</html>
"""


def _index_item(page):
    from nbconvert.filters import markdown2html

    status = ' <span class="failed">(a cell failed: the page stops there)</span>' if page["error"] else ""
    goals = markdown2html(page["goals"]) if page["goals"] else ""
    return (f'<li class="lesson"><a href="{html.escape(page["file"])}">{html.escape(page["title"])}</a>{status}\n'
            f'<div class="goals">{goals}</div>\n'
            f'<div class="meta">{html.escape(page["notebook"])}, ran in {page["seconds"]:.0f} s</div></li>')


def build_site(notebooks, out_dir, timeout=CELL_TIMEOUT):
    """Execute each notebook and write ``NN_name.html`` for it, plus ``index.html`` linking
    the lessons in order (title from the first heading, then the learning goals).

    A lesson whose cell fails still gets its page (up to the failure) and is marked on the
    index.

    Returns:
        list of dict: per lesson, ``notebook``, ``file``, ``title``, ``goals``, ``seconds``
        and ``error`` (None when every cell ran).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mathjax_url = copy_mathjax(out_dir)
    pages = []
    for path in sorted((Path(p) for p in notebooks), key=lambda p: p.name):
        print(f"executing {path.name} ...", flush=True)
        nb, seconds, error = execute_notebook(path, timeout)
        page = {"notebook": path.name, "file": path.stem + ".html", "title": lesson_title(nb, path.stem),
                "goals": learning_goals(nb), "seconds": seconds, "error": error}
        (out_dir / page["file"]).write_text(notebook_html(nb, page["title"], mathjax_url), encoding="utf-8")
        print(f"  {page['file']}: {seconds:.0f} s" + (" - A CELL FAILED" if error else ""), flush=True)
        pages.append(page)
    items = "\n".join(_index_item(page) for page in pages)
    (out_dir / "index.html").write_text(
        INDEX_TEMPLATE.format(built=time.strftime("%Y-%m-%d %H:%M"), items=items, mathjax_url=mathjax_url),
        encoding="utf-8")
    return pages


# --------------------------------------------------------------------------------------------
# Grading: the checkers are the autograder

CHECKER_CELL = re.compile(r"^(\w+) = checked\((\w+), (check_\w+)", re.M)


def _stream(cell, name):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def grade_notebook(path, timeout=CELL_TIMEOUT):
    """Run a learner's notebook top to bottom in a fresh kernel, as "Run All" does, and read
    every checker cell's verdict (``my_x = checked(my_x, check_x)``).

    A student edition reports each failure and runs on; a notebook that raises anyway (a
    course edition with a broken solution, a learner's own error) is read to the end too,
    and a checker cell that raised, or that never ran, counts as not passed.

    Returns:
        list of dict: one per checker cell, in order: ``exercise`` (the function's name),
        ``checker``, ``passed`` (bool) and ``message`` (the checker's verdict, one line).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = notebook_client(nb, Path(path).resolve().parent, timeout)
    client.allow_errors = True
    stopped = None
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as exc:
        stopped = f"the notebook stopped: {type(exc).__name__}"
    verdicts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for match in CHECKER_CELL.finditer(cell.source):
            out, err = _stream(cell, "stdout"), _stream(cell, "stderr")
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                passed, message = False, f"{errors[0].ename}: {errors[0].evalue}"
            elif "Not yet:" in err:
                passed, message = False, err[err.index("Not yet:"):].strip()
            elif "Well done" in out:
                passed, message = True, out[out.index("Well done"):].strip()
            else:
                passed, message = False, stopped or "the checker cell did not run"
            verdicts.append({"exercise": match.group(2), "checker": match.group(3), "passed": passed,
                             "message": message.splitlines()[0] if message else ""})
    return verdicts


def grade(notebooks, timeout=CELL_TIMEOUT):
    """Grade notebooks (:func:`grade_notebook`) and print one line per exercise and a score per
    notebook and in all; returns ``(passed, total)``."""
    passed = total = 0
    for path in notebooks:
        verdicts = grade_notebook(path, timeout)
        score = sum(v["passed"] for v in verdicts)
        print(f"{path}: {score} / {len(verdicts)} exercises pass")
        for v in verdicts:
            print(f"  {'pass   ' if v['passed'] else 'not yet'}  {v['exercise']:<22} {v['message'][:150]}")
        passed, total = passed + score, total + len(verdicts)
    if len(notebooks) > 1:
        print(f"in all: {passed} / {total} exercises pass")
    return passed, total


# --------------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minifrcnn.course", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write the student edition of every lesson")
    student.add_argument("out_dir", type=Path)
    student.add_argument("--lessons", type=Path, default=LESSONS_DIR,
                         help="folder of the lessons (default: %(default)s)")
    site = commands.add_parser("html", help="execute lessons and write HTML pages with an index")
    site.add_argument("out_dir", type=Path)
    site.add_argument("notebooks", nargs="*", type=Path, help="lessons to build (default: every lesson)")
    site.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default: %(default)s)")
    grading = commands.add_parser("grade", help="run notebooks top to bottom and score their checkers")
    grading.add_argument("notebooks", nargs="+", type=Path, help="a learner's notebooks (e.g. their student/*.ipynb)")
    grading.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell (default: %(default)s)")
    course = commands.add_parser("nbgrader", help="write the lessons as an nbgrader course (one assignment each)")
    course.add_argument("course_dir", type=Path)
    course.add_argument("--lessons", type=Path, default=LESSONS_DIR,
                        help="folder of the lessons (default: %(default)s)")
    course.add_argument("--points", type=float, default=1, help="points per checker cell (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except FileNotFoundError as exc:  # no lessons where --lessons points
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args):
    if args.command == "grade":
        missing = [str(p) for p in args.notebooks if not p.is_file()]
        if missing:
            print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
            return 2
        grade(args.notebooks, args.timeout)
        return 0
    if args.command == "nbgrader":
        from .nbgrader_course import write_nbgrader_course

        if not args.points > 0:
            print(f"error: --points {args.points:g}: each checker must be worth more than 0 points", file=sys.stderr)
            return 2

        written = write_nbgrader_course(args.course_dir, args.lessons, args.points)
        print(f"wrote {len(written)} nbgrader assignments to {args.course_dir}/source/; "
              f"next, where nbgrader is installed (e.g. source .venv/bin/activate): cd {args.course_dir} && "
              f"nbgrader generate_assignment {written[0].stem}")
        return 0
    if args.command == "student":
        written = make_student_edition(args.lessons, args.out_dir)
        print(f"wrote the student edition of {len(written)} lessons to {args.out_dir}/")
        return 0
    pages = build_site(args.notebooks or lessons(), args.out_dir, args.timeout)
    failed = [page["notebook"] for page in pages if page["error"]]
    print(f"wrote {len(pages)} lessons and index.html to {args.out_dir}/"
          + (f"; cells failed in {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
