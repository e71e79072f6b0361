"""The exercise machinery's messages for functions that are not written yet (the student
edition's stubs, minifrcnn/course/editions.py) and for ones that raise."""
import pytest
import torch

from minifrcnn.course.exercises._check import Case, ExerciseError, call_learner, check_against

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
