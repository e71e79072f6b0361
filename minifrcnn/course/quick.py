"""Quick runs of the lessons that train, for tests: ``MINIFRCNN_QUICK_STEPS=N`` caps their training.

A learner's run, and nbval's, leave the variable unset: every lesson trains its full budget and
checks what the training achieved. The course's own tests of the student edition and of the
lessons in a browser set it (e.g. to 40), to see in seconds that every cell, picture and explorer
runs. The lessons that train (04, 06-09) read it in two places:

* ``lesson_steps(n)``: the number of steps to train, ``n`` or at most the cap;
* ``FULL_RUN``: ``False`` in a quick run. The checks of what training achieved (a loss fell by a
  factor, an mAP above a bar) sit under ``if FULL_RUN:``; a few dozen steps cannot pass them, and
  they say nothing about whether the cells run. Every other check (parity with torchvision, shapes,
  the exercises' checkers) runs either way.
"""
import os

QUICK_STEPS_VARIABLE = "MINIFRCNN_QUICK_STEPS"


def quick_steps():
    """The cap on training steps that ``MINIFRCNN_QUICK_STEPS`` sets, or None when it is unset (a full run)."""
    value = os.environ.get(QUICK_STEPS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{QUICK_STEPS_VARIABLE}={value!r} is not a number of steps >= 1 "
                         f"(unset it to run the lessons in full)")
    return int(value)


def lesson_steps(steps):
    """``steps``, the lesson's own budget, or fewer in a quick run (at most ``MINIFRCNN_QUICK_STEPS``)."""
    cap = quick_steps()
    return steps if cap is None else min(steps, cap)


FULL_RUN = quick_steps() is None
