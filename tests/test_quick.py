"""Quick runs of the lessons that train (minifrcnn/course/quick.py): MINIFRCNN_QUICK_STEPS caps their steps."""
import importlib
import json
from pathlib import Path

import pytest

from minifrcnn.course import quick


def test_unset_means_the_full_budget(monkeypatch):
    monkeypatch.delenv(quick.QUICK_STEPS_VARIABLE, raising=False)
    assert quick.quick_steps() is None and quick.lesson_steps(1000) == 1000
    assert quick.lesson_images(list(range(200))) == list(range(200))
    assert importlib.reload(quick).FULL_RUN


@pytest.mark.parametrize("value, steps", [("40", [40, 12, 40]), (" 7 ", [7, 7, 7])])
def test_a_cap_shortens_only_longer_budgets(monkeypatch, value, steps):
    monkeypatch.setenv(quick.QUICK_STEPS_VARIABLE, value)
    assert [quick.lesson_steps(n) for n in (1000, 12, 40)] == steps
    assert quick.lesson_images(list(range(200))) == list(range(quick.QUICK_IMAGES))
    assert quick.lesson_images([1, 2]) == [1, 2]
    assert not importlib.reload(quick).FULL_RUN
    monkeypatch.delenv(quick.QUICK_STEPS_VARIABLE)
    importlib.reload(quick)


@pytest.mark.parametrize("value", ["0", "-3", "ten", "2.5"])
def test_a_bad_cap_is_refused_in_one_line(monkeypatch, value):
    monkeypatch.setenv(quick.QUICK_STEPS_VARIABLE, value)
    with pytest.raises(ValueError, match=rf"^MINIFRCNN_QUICK_STEPS='{value}' is not a number of steps >= 1 "
                                         r"\(unset it to run the lessons in full\)$"):
        quick.lesson_steps(100)


@pytest.mark.parametrize("lesson", ["04_rpn", "07_detection_head", "08_pretraining", "09_full_detector",
                                    "10_training_schemes"])
def test_every_lesson_that_trains_reads_the_cap(lesson):
    """A training call without lesson_steps would make the quick runs as slow as the full ones."""
    cells = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{lesson}.ipynb").read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "from minifrcnn.course.quick import FULL_RUN" in source
    assert "lesson_steps(" in source and "if FULL_RUN:" in source and "MINIFRCNN_QUICK_STEPS" in source


@pytest.mark.parametrize("lesson", ["08_pretraining", "09_full_detector", "10_training_schemes", "11_results"])
def test_every_lesson_that_scores_the_test_split_reads_the_cap(lesson):
    """Scoring detectors on the whole test split would make the quick runs as slow as the full ones."""
    cells = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / f"{lesson}.ipynb").read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert 'test_data = lesson_images(cache(load_digits("test")))' in source and "MINIFRCNN_QUICK_STEPS" in source
