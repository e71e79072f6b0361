"""Checker for lesson 10's exercise: which parameters each step of the 4-step alternating
training trains (paper, section 3.2)."""
import torch

from ...detector import DetectorConfig, FasterRCNN
from ..schemes import ALTERNATING_STEPS, set_trainable
from ._check import Case, ExerciseError, call_learner, falls_back_to

WHY = {
    1: "step 1 trains the RPN end to end, its conv layers included; the detection head is not used yet",
    2: "step 2 trains Fast R-CNN (its own conv layers and its head) on step 1's proposals; this network's "
       "RPN is not used in step 2",
    3: "step 3 trains only the RPN's own layers: from step 3 on the shared conv layers are fixed",
    4: "step 4 fine-tunes only Fast R-CNN's own layers (the head): the shared conv layers and the RPN are fixed",
}


def _tiny_model(frozen_stages=0):
    with torch.random.fork_rng():  # seeded, without resetting the learner's own random state
        torch.manual_seed(0)
        return FasterRCNN(DetectorConfig.course(backbone_weights=None, backbone_frozen_stages=frozen_stages,
                                                backbone_channels=(8, 8, 16), backbone_blocks=(1, 1, 1),
                                                head_hidden=16))


def _cases():
    """Each case: ``(stages the config fixes, steps applied before, step to check)``. Every
    case starts from a fresh model, set by the reference for the earlier steps, so that a
    function which only ever freezes, and never unfreezes, fails."""
    return [Case("step 3 on a fresh model", (0, (), 3)),
            Case("step 1 on a fresh model", (0, (), 1)),
            Case("step 2 on a fresh model", (0, (), 2)),
            Case("step 4 after step 3 (the head must become trainable again, the RPN fixed)", (0, (3,), 4)),
            Case("step 3 after step 2 (the backbone trained in step 2 is now fixed)", (0, (2,), 3)),
            Case("step 2 after step 4 (everything the step trains must be trainable)", (0, (4,), 2)),
            Case("step 1 on a model whose config fixes the backbone's first stage", (1, (), 1)),
            Case("step 2 after step 4, the config fixing the first stage", (1, (4,), 2))]


@falls_back_to(set_trainable)
def check_set_trainable(student_fn):
    """Check ``student_fn(model, step)`` against :func:`minifrcnn.course.schemes.set_trainable`.

    The function must set ``requires_grad`` on every parameter of a FasterRCNN for step
    1, 2, 3 or 4 (True for the parts the step trains, False for the others, and False for
    the backbone stages the config fixes), leave the weights alone, and return the
    trainable parameters in ``model.parameters()`` order.
    """
    __tracebackhide__ = True
    cases = _cases()
    for i, case in enumerate(cases, 1):
        frozen_stages, before, step = case.args
        label = f"case {i} ({case.name})"
        model, reference = _tiny_model(frozen_stages), _tiny_model(frozen_stages)
        for earlier in before:
            set_trainable(model, earlier)
        set_trainable(reference, step)
        expected_flags = {name: p.requires_grad for name, p in reference.named_parameters()}
        weights = {k: v.clone() for k, v in model.state_dict().items()}
        returned = call_learner(student_fn, Case(case.name, (model, step)), "your function", label)
        for name, value in model.state_dict().items():
            if not torch.equal(value, weights[name]):
                raise ExerciseError(f"{label}: your function changed the weights ({name}): it should only set "
                                    f"requires_grad.\n  hint: param.requires_grad_(flag) or "
                                    f"module.requires_grad_(flag) changes no value.")
        for name, param in model.named_parameters():
            expected = expected_flags[name]
            if param.requires_grad and not expected and name.split(".")[0] in ALTERNATING_STEPS[step]:  # a fixed stage
                raise ExerciseError(
                    f"{label}: after your_function(model, {step}), {name} has requires_grad="
                    f"{param.requires_grad}, expected {expected}: the config fixes the backbone's first "
                    f"{frozen_stages} stage(s), and a step that trains the backbone must leave them fixed.\n  hint: "
                    f"after setting the backbone's flags, model.backbone.freeze(model.backbone.frozen_stages).")
            if param.requires_grad != expected:
                raise ExerciseError(
                    f"{label}: after your_function(model, {step}), {name} has requires_grad="
                    f"{param.requires_grad}, expected {expected}.\n  hint: {WHY[step]}. Set the flag of "
                    f"every part, True as well as False: the model may come from an earlier step.")
        expected_params = [p for p in model.parameters() if p.requires_grad]
        if not isinstance(returned, (list, tuple)) or len(returned) != len(expected_params) or any(
                a is not b for a, b in zip(returned, expected_params)):
            count = len(returned) if isinstance(returned, (list, tuple)) else type(returned).__name__
            raise ExerciseError(
                f"{label}: the flags are right, but your function returned {count} "
                f"{'parameters' if isinstance(count, int) else ''}; expected the {len(expected_params)} "
                f"trainable parameters of the model, in model.parameters() order.\n  hint: return "
                f"[p for p in model.parameters() if p.requires_grad]: that list is what the optimiser gets.")
    print(f"Well done: your function passes all {len(cases)} checks.")
    return len(cases)
