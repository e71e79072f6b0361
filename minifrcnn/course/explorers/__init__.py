"""Interactive explorers for the lessons.

Each explorer is a pure function (widget values in, a plain "state" of tensors and
numbers out) plus thin ipywidgets glue that redraws a matplotlib figure when a control
moves. The pure functions are unit-tested; the glue is tested headlessly by setting
``explorer.controls[name].value`` and checking ``explorer.state`` and ``explorer.figure``.
"""
from ._base import Explorer  # noqa: F401
