"""The exercise machinery's messages for functions that are not written yet (the student
edition's stubs, minifrcnn/course/editions.py) and for ones that raise."""
import pytest
import torch

from minifrcnn.course.exercises._check import Case, ExerciseError, call_learner, check_against, checked, report_failures

CASES = [Case("two boxes", (torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]]),), hint="width times height")]


def reference_area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def failure(fn):
    with pytest.raises(ExerciseError) as info:
        check_against(fn, reference_area, CASES, what="your box_area")
    return str(info.value)


def test_a_stub_is_named_as_the_exercise_stub_to_fill_in():
    def my_box_area(boxes):
        # TODO: write the body of my_box_area
        raise NotImplementedError("exercise stub: fill in the TODO in my_box_area")

    message = failure(my_box_area)
    assert "this is the exercise stub: fill in the TODO in my_box_area" in message
    assert "not written yet" in message and "raise NotImplementedError" in message
    assert "case 1" not in message, "a stub is not a failed case"


def test_a_bare_raise_not_implemented_error_is_a_stub_too():
    def my_box_area(boxes):
        raise NotImplementedError

    assert "fill in the TODO in my_box_area" in failure(my_box_area)


def test_the_stub_that_raised_is_named_not_the_function_that_called_it():
    def my_helper(boxes):
        raise NotImplementedError("exercise stub: fill in the TODO in my_helper")

    def my_box_area(boxes):
        return my_helper(boxes)

    message = failure(my_box_area)
    assert "fill in the TODO in my_helper (your my_box_area calls it)" in message


def test_a_stub_message_hides_the_traceback_chain():
    def my_box_area(boxes):
        raise NotImplementedError

    with pytest.raises(ExerciseError) as info:
        check_against(my_box_area, reference_area, CASES)
    assert info.value.__suppress_context__ and info.value.__cause__ is None


def test_a_library_not_implemented_error_is_reported_as_an_error_of_the_case():
    def my_box_area(boxes):
        raise NotImplementedError("the 'meta' backend has no kernel for this op")

    message = failure(my_box_area)
    assert "stub" not in message
    assert "case 1 (two boxes)" in message and "the 'meta' backend" in message
    assert "tensor of shape (2, 4)" in message, "the inputs are described"


def test_other_errors_name_the_case_the_inputs_and_the_hint():
    def my_box_area(boxes):
        return boxes[:, 2] - boxes[:, 5]

    message = failure(my_box_area)
    assert "case 1 (two boxes)" in message and "IndexError" in message
    assert "hint: width times height" in message


def test_call_learner_returns_the_result_of_a_working_function():
    assert torch.equal(call_learner(reference_area, CASES[0], "your box_area", "case 1"), torch.tensor([4.0, 6.0]))
    assert check_against(reference_area, reference_area, CASES) == 1


# ----------------------------------------------------------------------------- checked(): the lesson goes on

def checker(fn):
    return check_against(fn, reference_area, CASES, what="your box_area")


checker.fallback = reference_area


def stub_area(boxes):
    raise NotImplementedError("exercise stub: fill in the TODO in stub_area")


@pytest.fixture
def report_mode():
    report_failures()
    yield
    report_failures(False)


def test_checked_gives_back_a_passing_function_and_raises_for_a_failing_one(capsys):
    def my_area(boxes):
        return reference_area(boxes)

    assert checked(my_area, checker) is my_area
    assert "Well done" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not written yet"):  # the course edition: nbval must fail
        checked(stub_area, checker)


def test_in_report_mode_a_failure_is_printed_and_the_package_stands_in(report_mode, capsys):
    assert checked(stub_area, checker) is reference_area
    out, err = capsys.readouterr()
    assert err.startswith("Not yet: your box_area is not written yet")
    assert "The cells below use reference_area until your stub_area passes checker." in out

    def crashes_the_checker(boxes):
        return None  # check_against reports a wrong type; a checker of its own may crash on it

    def fragile_checker(fn):
        return fn(CASES[0].args[0]).sum()

    fragile_checker.fallback = reference_area
    assert checked(crashes_the_checker, fragile_checker) is reference_area
    assert "the checker could not run crashes_the_checker: AttributeError" in capsys.readouterr().err


def every_checker():
    import importlib
    import pkgutil

    import minifrcnn.course.exercises as package
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("check_") and callable(value) and value.__module__ == module.__name__:
                yield value


@pytest.mark.parametrize("checker_fn", list(every_checker()), ids=lambda f: f.__name__)
def test_every_checker_has_a_fallback_that_passes_it(checker_fn, capsys):
    """The package's stand-in has the learner's signature: it passes the very checker it stands in
    for, which says "Well done" (what the grader reads)."""
    assert checker_fn.fallback.__module__.startswith("minifrcnn"), checker_fn.__name__
    assert checked(checker_fn.fallback, checker_fn) is checker_fn.fallback
    assert capsys.readouterr().out.startswith("Well done")


def test_there_is_a_checker_for_every_exercise_of_the_lessons():
    assert len(list(every_checker())) == 20
