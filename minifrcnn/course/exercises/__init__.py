"""Checkers for the lessons' exercises.

Each checker runs a learner's function on a list of cases (random and edge inputs),
compares it with the package's finished version, and either prints a one-line success or
raises an ``AssertionError`` that says which case failed, how, and a hint. They never
just say "wrong". One module per lesson topic (``boxes``, ``anchors``, ``matching``, ...):
``from minifrcnn.course.exercises.boxes import check_iou``.
"""
from ._check import Case, ExerciseError, check_against  # noqa: F401
