"""The machinery shared by every exercise checker."""
import sys
from dataclasses import dataclass, field

import torch


class ExerciseError(AssertionError):
    """A learner's function disagrees with the reference (an AssertionError, so that an
    exercise cell fails visibly, and nbval fails when a solution is wrong)."""


@dataclass
class Case:
    """One test input for a checker.

    Attributes:
        name (str): what the case is about, shown when it fails ("two identical boxes").
        args (tuple): positional arguments for both functions.
        hint (str): what usually goes wrong in this case.
        kwargs (dict): keyword arguments for both functions.
    """

    name: str
    args: tuple
    hint: str = ""
    kwargs: dict = field(default_factory=dict)


def describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}: [" + ", ".join(describe(v) for v in value) + "]"
    return repr(value)


def compare(got, expected, atol, rtol, path="result"):
    """None if ``got`` matches ``expected``, else a sentence saying how it differs."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{path} should be a {type(expected).__name__} of {len(expected)} values, got {describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = compare(g, e, atol, rtol, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{path} should be a tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"{path} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.dtype.is_floating_point != expected.dtype.is_floating_point or (
                got.dtype == torch.bool) != (expected.dtype == torch.bool):
            return f"{path} has dtype {got.dtype}, expected {expected.dtype}"
        if expected.dtype.is_floating_point:
            if torch.isnan(got).any() and not torch.isnan(expected).any():
                return f"{path} contains NaN (a division by zero?)"
            close = torch.isclose(got.to(expected.dtype), expected, atol=atol, rtol=rtol, equal_nan=True)
        else:
            close = got == expected
        if not close.all() and expected.dim() == 0:
            return f"{path} is {got.item():.6g}, expected {expected.item():.6g}"
        if not close.all():
            bad = (~close).nonzero()[0].tolist()
            where = tuple(bad) if len(bad) > 1 else bad[0]
            return (f"{path}{list(bad)} is {got[tuple(bad)].item():.6g}, expected "
                    f"{expected[tuple(bad)].item():.6g} ({int((~close).sum())} of {close.numel()} "
                    f"values differ; first at index {where})")
        return None
    if got != expected:
        return f"{path} is {got!r}, expected {expected!r}"
    return None


def _changed(before, after):
    """True if a tensor argument was modified in place by the learner's function."""
    return isinstance(before, torch.Tensor) and (
        before.shape != after.shape or not torch.equal(torch.nan_to_num(before), torch.nan_to_num(after)))


def _stub_name(exc, fn):
    """The name of the exercise stub that raised ``exc`` (a ``NotImplementedError``), or None
    if it came from somewhere else (a library's own "not implemented" always has a message;
    a stub's is empty or says "exercise stub"). The innermost frame names the stub, which is
    not ``fn`` itself when ``fn`` calls another exercise that is not written yet."""
    if str(exc) and "stub" not in str(exc):
        return None
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_code.co_name
    return name if name.isidentifier() else getattr(fn, "__name__", "your function")


def call_learner(fn, case, what, label):
    """``fn(*case.args, **case.kwargs)``, with a friendly error if it is not written yet or
    raises (``label`` names the case in the message, e.g. "case 3 (ties)")."""
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message says it all
    try:
        return fn(*case.args, **case.kwargs)
    except NotImplementedError as exc:
        stub = _stub_name(exc, fn)
        if stub is None:
            raise ExerciseError(f"{label}: {what} raised NotImplementedError: {exc}\n"
                                f"  inputs: {describe(case.args)}") from exc
        fn_name = getattr(fn, "__name__", stub)
        caller = f" (your {fn_name} calls it)" if stub != fn_name else ""
        raise ExerciseError(f"{what} is not written yet: this is the exercise stub: fill in the TODO in "
                            f"{stub}{caller}, i.e. replace its `raise NotImplementedError` line with your "
                            f"code, then run this cell again.") from None
    except Exception as exc:
        raise ExerciseError(f"{label}: {what} raised {type(exc).__name__}: {exc}\n"
                            f"  inputs: {describe(case.args)}" + (f"\n  hint: {case.hint}" if case.hint else "")
                            ) from exc


def check_against(student_fn, reference_fn, cases, atol=1e-5, rtol=1e-5, what="your function", symptoms=None):
    """Run ``student_fn`` and ``reference_fn`` on every case and compare the results.

    Besides the numbers, two silent bugs are errors: changing an input tensor in place
    (the learner's function gets copies, compared afterwards), and losing precision (a
    float64 input must give a float64 result).

    Args:
        symptoms (callable, optional): ``symptoms(got, expected, args) -> str or None``
            turns a wrong result into a targeted hint ("negative IoU: clamp ..."); it may
            fail on odd results, which then just get the case's hint.

    Returns:
        int: the number of cases passed (all of them; otherwise an ``ExerciseError`` is raised).
    """
    __tracebackhide__ = True
    for i, case in enumerate(cases, 1):
        label = f"case {i} ({case.name})"
        copies = Case(case.name, tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in case.args),
                      case.hint, case.kwargs)
        got = call_learner(student_fn, copies, what, label)
        expected = reference_fn(*case.args, **case.kwargs)
        inputs = f"\n  inputs: {describe(case.args)}"
        hint = f"\n  hint: {case.hint}" if case.hint else ""
        # Checked first: a float32 result of float64 inputs is "close" but never equal.
        float64_in = any(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for a in case.args)
        if float64_in and isinstance(got, torch.Tensor) and got.is_floating_point() and got.dtype != torch.float64:
            raise ExerciseError(
                f"{label}: float64 inputs gave a {got.dtype} result.\n  hint: compute from the input "
                f"tensors (or pass dtype=x.dtype to torch.zeros / torch.tensor) so that the result keeps "
                f"the input's precision.")
        problem = compare(got, expected, atol, rtol)
        if problem:
            symptom = None
            if symptoms is not None:
                try:
                    symptom = symptoms(got, expected, case.args)
                except Exception:
                    symptom = None
            raise ExerciseError(f"{label}: {problem}{inputs}{hint}" + (f"\n  symptom: {symptom}" if symptom else ""))
        if any(_changed(a, c) for a, c in zip(case.args, copies.args)):
            raise ExerciseError(
                f"{label}: the numbers are right, but {what} changed its input in place.\n  hint: build "
                f"a new tensor (torch.stack, torch.cat, new_zeros, or .clone() first) instead of writing "
                f"into an input.")
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)


# ----------------------------------------------------------------------------- the lesson goes on

# What a failed check does: raise (the course edition: nbval fails on a wrong solution, and a
# learner sees the error where it is), or, once report_failures() has been called (the student
# edition's first cell does), print the message and let "Run All" go on to the end of the lesson.
_settings = {"report": False}


def report_failures(on=True):
    """From now on, :func:`checked` prints a failed check's message instead of raising it.

    The student edition calls this in its first cell: a learner who runs the whole lesson
    before doing the exercises sees every section, every picture and every checker's verdict,
    and the cells after an exercise use the package's version until theirs passes."""
    _settings["report"] = bool(on)


def falls_back_to(reference):
    """Decorator for a checker: ``reference`` is the package's version of the function it
    checks, with the learner's signature; :func:`checked` hands it to the rest of the lesson
    while the learner's function does not pass."""
    def mark(checker):
        checker.fallback = reference
        return checker
    return mark


def _name(fn):
    module = getattr(fn, "__module__", "") or ""
    return f"{module}.{fn.__name__}" if module.startswith("minifrcnn") else getattr(fn, "__name__", repr(fn))


def checked(fn, checker, *args, **kwargs):
    """Check a learner's function, and return the one the rest of the lesson should use.

    ``my_iou = checked(my_iou, check_iou)`` runs ``check_iou(my_iou)``. If it passes, the
    learner's ``my_iou`` comes back and the lesson goes on with it. If it fails, the course
    edition raises the checker's error; after :func:`report_failures` (the student edition),
    the message is printed and the package's version comes back (``checker.fallback``), with
    one line saying so, so that the cells below still run.

    Returns:
        callable: ``fn``, or the checker's fallback.
    """
    __tracebackhide__ = True
    try:
        checker(fn, *args, **kwargs)
        return fn
    except Exception as error:
        if not _settings["report"]:
            raise
        message = str(error) if isinstance(error, ExerciseError) else (
            f"the checker could not run {getattr(fn, '__name__', 'your function')}: {type(error).__name__}: {error}")
        print(f"Not yet: {message}", file=sys.stderr)
    fallback = checker.fallback
    print(f"The cells below use {_name(fallback)} until your {getattr(fn, '__name__', 'function')} passes "
          f"{checker.__name__}.")
    return fallback
