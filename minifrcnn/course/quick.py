"""Quick runs of the lessons that train, for tests: ``MINIFRCNN_QUICK_STEPS=N`` caps their training.

A learner's run, and nbval's, leave the variable unset: every lesson trains its full budget and
checks what the training achieved. The course's own tests of the student edition and of the
lessons in a browser set it (e.g. to 40), to see in seconds that every cell, picture and explorer
runs. The lessons that train (04, 06-09) and lesson 11 read it in up to three places:

* ``lesson_steps(n)``: the number of steps to train, ``n`` or at most the cap;
* ``lesson_images(items)``: the test split that lessons 08-11 score detectors on, or its first
  ``QUICK_IMAGES`` images (scoring a detector on all 200 takes seconds per model: more than a quick
  run's training);
* ``FULL_RUN``: ``False`` in a quick run. The checks of what training achieved (a loss fell by a
  factor, an mAP above a bar) sit under ``if FULL_RUN:``; a few dozen steps cannot pass them, and
  they say nothing about whether the cells run; so do checks of numbers over the whole test split.
  Every other check (parity with torchvision, shapes, the exercises' checkers) runs either way.
"""
import os

QUICK_STEPS_VARIABLE = "MINIFRCNN_QUICK_STEPS"
QUICK_IMAGES = 50  # test images a quick run scores


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


def lesson_images(items):
    """``items`` (a lesson's test split), or their first ``QUICK_IMAGES`` in a quick run."""
    return items if quick_steps() is None else items[:QUICK_IMAGES]


FULL_RUN = quick_steps() is None
