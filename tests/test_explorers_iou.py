"""The IoU explorer: its pure state against box_iou / torchvision, and the widget headless."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision.ops as tv_ops  # noqa: E402

from minifrcnn.boxes import box_iou  # noqa: E402
from minifrcnn.course.explorers.iou import iou_state, make_iou_explorer  # noqa: E402


@pytest.mark.parametrize("x, y, w, h, expected", [
    (0, 0, 10, 10, 1.0),         # B == A
    (5, 0, 10, 10, 50 / 150),    # half overlap
    (10, 0, 10, 10, 0.0),        # touching edge
    (30, 30, 5, 5, 0.0),         # disjoint
    (2, 2, 5, 5, 25 / 100),      # inside A
    (-5, -5, 20, 20, 100 / 400), # A inside B, partly outside the image
    (3, 3, 0, 0, 0.0),           # zero-area B
])
def test_iou_state_numbers(x, y, w, h, expected):
    state = iou_state((0, 0, 10, 10), x, y, w, h)
    assert state["iou"] == pytest.approx(expected)
    assert state["union"] == pytest.approx(state["area_a"] + state["area_b"] - state["inter"])
    assert state["box_b"].tolist() == [x, y, x + w, y + h]
    if state["union"] > 0:
        assert state["iou"] == pytest.approx(state["inter"] / state["union"])
    assert (state["inter_box"] is None) == (state["inter"] == 0)


@pytest.mark.parametrize("x, rpn, head", [(0, "positive", "foreground"), (1, "positive", "foreground"),
                                          (2, "ignored", "foreground"), (4, "ignored", "background"),
                                          (6, "negative", "background")])
def test_iou_state_verdicts(x, rpn, head):
    # a 10x10 box A and B = A shifted by x: IoU = (10 - x) / (10 + x) = 1, 0.82, 0.67, 0.43, 0.25
    state = iou_state((0, 0, 10, 10), x, 0, 10, 10)
    assert (state["rpn"], state["head"]) == (rpn, head)


def test_iou_state_matches_torchvision_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        x, y, w, h = (torch.rand(4, generator=g) * 60 + 1).tolist()
        state = iou_state((20, 30, 70, 90), x, y, w, h)
        tv = tv_ops.box_iou(state["box_a"][None], state["box_b"][None]).item()
        assert state["iou"] == pytest.approx(tv, abs=1e-12)
        if state["inter_box"] is not None:  # the shaded rectangle's area is the intersection
            ib = state["inter_box"]
            assert float((ib[2] - ib[0]) * (ib[3] - ib[1])) == pytest.approx(state["inter"])


def _texts(figure):
    return " ".join(ax.get_title() for ax in figure.axes)


def test_explorer_headless_updates_state_and_figure():
    explorer = make_iou_explorer(box_a=(36, 40, 84, 100), box_b=(56, 52, 40, 56))
    assert explorer.redraws == 1 and set(explorer.controls) == {"x", "y", "w", "h"}
    first = explorer.state["iou"]
    for name, value in (("x", 40), ("y", 40), ("w", 48), ("h", 60)):
        explorer.controls[name].value = value
    state = explorer.state
    assert explorer.redraws == 5
    assert state["box_b"].tolist() == [40, 40, 88, 100]
    expected = box_iou(state["box_a"][None], state["box_b"][None]).item()
    assert state["iou"] == pytest.approx(expected) and state["iou"] != first
    # The figure shows the new numbers: two panels, IoU in a title, A, B and A ∩ B drawn.
    assert len(explorer.figure.axes) == 2
    assert f"IoU = {state['iou']:.3f}" in _texts(explorer.figure)
    assert len(explorer.figure.axes[0].patches) == 3
    assert state["rpn"] in explorer.figure.axes[1].get_xlabel()


def test_explorer_disjoint_draws_no_intersection():
    explorer = make_iou_explorer(box_a=(0, 0, 20, 20), box_b=(60, 60, 10, 10))
    assert explorer.state["iou"] == 0.0 and explorer.state["inter_box"] is None
    assert len(explorer.figure.axes[0].patches) == 2  # A and B only
    explorer.controls["x"].value = 10
    explorer.controls["y"].value = 10
    assert explorer.state["iou"] == pytest.approx(100 / 400)
    assert len(explorer.figure.axes[0].patches) == 3


def test_explorer_on_an_image():
    image = torch.rand(3, 60, 90)
    explorer = make_iou_explorer(image=image, box_a=(10, 10, 40, 40), box_b=(20, 20, 30, 30))
    assert explorer.state["image_size"] == (60, 90)
    assert explorer.controls["x"].max == 90 and explorer.controls["h"].max == 60
    assert len(explorer.figure.axes[0].images) == 1
