"""Checkers for the lessons' exercises.

Each checker runs a learner's function on a list of cases (random and edge inputs),
compares it with the package's finished version, and either prints a one-line success or
raises an ``AssertionError`` that says which case failed, how, and a hint. They never
just say "wrong". One module per lesson topic (``boxes``, ``anchors``, ``matching``, ...):
``from minifrcnn.course.exercises.boxes import check_iou``.

In a lesson, ``my_iou = checked(my_iou, check_iou)`` runs the checker and gives the rest of the
lesson the learner's function once it passes; in the student edition (:func:`report_failures`)
a failure is printed and the package's version stands in for it until then.
"""
from ._check import Case, ExerciseError, check_against, checked, report_failures  # noqa: F401
