"""The machinery shared by every exercise checker."""
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


def _describe(value):
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}: [" + ", ".join(_describe(v) for v in value) + "]"
    return repr(value)


def _compare(got, expected, atol, rtol, path="result"):
    """None if ``got`` matches ``expected``, else a sentence saying how it differs."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"{path} should be a {type(expected).__name__} of {len(expected)} values, got {_describe(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = _compare(g, e, atol, rtol, f"{path}[{i}]")
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


def check_against(student_fn, reference_fn, cases, atol=1e-5, rtol=1e-5, what="your function"):
    """Run ``student_fn`` and ``reference_fn`` on every case and compare the results.

    Returns:
        int: the number of cases passed (all of them; otherwise an ``ExerciseError`` is raised).
    """
    for i, case in enumerate(cases, 1):
        try:
            got = student_fn(*case.args, **case.kwargs)
        except NotImplementedError:
            raise ExerciseError(f"{what} is not written yet: replace the `raise NotImplementedError` "
                                f"line with your code, then run this cell again.") from None
        except Exception as exc:
            raise ExerciseError(f"case {i} ({case.name}): {what} raised {type(exc).__name__}: {exc}\n"
                                f"  inputs: {_describe(case.args)}\n  hint: {case.hint}") from exc
        expected = reference_fn(*case.args, **case.kwargs)
        problem = _compare(got, expected, atol, rtol)
        if problem:
            raise ExerciseError(f"case {i} ({case.name}): {problem}\n  inputs: {_describe(case.args)}"
                                + (f"\n  hint: {case.hint}" if case.hint else ""))
    print(f"Well done: {what} passes all {len(cases)} checks.")
    return len(cases)
