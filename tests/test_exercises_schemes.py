"""Lesson 10's checker accepts a correct freezing function and rejects the usual mistakes
with a message that names them."""
import pytest
import torch

from minifrcnn.course.exercises import ExerciseError
from minifrcnn.course.exercises.schemes import check_set_trainable
from minifrcnn.course.schemes import ALTERNATING_STEPS, set_trainable


def ignores_fixed_stages(model, step):
    """Right for every part, but makes the stages the config fixes trainable again."""
    trained = {1: ("backbone", "rpn"), 2: ("backbone", "head"), 3: ("rpn",), 4: ("head",)}[step]
    for name, param in model.named_parameters():
        param.requires_grad = name.split(".")[0] in trained
    return [p for p in model.parameters() if p.requires_grad]


def by_parts(model, step):
    """A correct learner's version, written differently from the package's."""
    ignores_fixed_stages(model, step)
    if step in (1, 2):
        for stage in model.backbone.stages()[:model.backbone.frozen_stages]:
            for layer in stage:
                layer.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def test_correct_functions_pass(capsys):
    assert check_set_trainable(set_trainable) == 8
    assert check_set_trainable(by_parts) == 8
    assert "Well done" in capsys.readouterr().out


def only_freezes(model, step):
    """Forgets to make the trained parts trainable again."""
    for part in ("backbone", "rpn", "head"):
        if part not in ALTERNATING_STEPS[step]:
            getattr(model, part).requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def trains_the_backbone_in_step_3(model, step):
    by_parts(model, step)
    model.backbone.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def returns_everything(model, step):
    by_parts(model, step)
    return list(model.parameters())


def changes_weights(model, step):
    with torch.no_grad():
        model.backbone[0][0].weight.zero_()
    return by_parts(model, step)


def not_written(model, step):
    raise NotImplementedError


@pytest.mark.parametrize("fn,match", [
    (only_freezes, r"(?s)step 4 after step 3.*head\.\S+ has requires_grad=False, expected True.*True as well as False"),
    (trains_the_backbone_in_step_3, r"(?s)step 3.*backbone\.0\.0\.weight has requires_grad=True.*fixed"),
    (returns_everything, r"returned \d+ parameters; expected the \d+ trainable"),
    (changes_weights, r"changed the weights \(backbone\.0\.0\.weight\)"),
    (not_written, r"not written yet"),
    (ignores_fixed_stages, r"(?s)case 7 .*backbone\.0\.0\.weight has requires_grad=True, expected False: the config "
                           r"fixes the backbone's first 1 stage.*frozen_stages"),
])
def test_mistakes_are_named(fn, match):
    with pytest.raises(ExerciseError, match=match):
        check_set_trainable(fn)
