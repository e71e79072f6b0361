"""Lesson 03's explorers, headless: the anchor-label explorer against Matcher + match_labels,
and the box-delta playground against BoxCoder."""
import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from torchvision.models.detection._utils import BoxCoder as TvBoxCoder  # noqa: E402
from torchvision.models.detection._utils import Matcher as TvMatcher  # noqa: E402

from minifrcnn.anchors import AnchorGenerator  # noqa: E402
from minifrcnn.boxes import BoxCoder, box_iou  # noqa: E402
from minifrcnn.course.explorers.anchors import inside_image  # noqa: E402
from minifrcnn.course.explorers.deltas import delta_state, make_delta_playground  # noqa: E402
from minifrcnn.course.explorers.labels import (  # noqa: E402
    CROSSING_COLOR,
    NO_POSITIVE_COLOR,
    anchor_label_state,
    make_label_explorer,
)
from minifrcnn.data import load_digits  # noqa: E402
from minifrcnn.matching import Matcher, match_labels  # noqa: E402

ANCHORS = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))


def random_boxes(gen, n):
    xy = torch.rand(n, 2, generator=gen) * 100
    wh = torch.rand(n, 2, generator=gen) * 50 + 3
    return torch.cat((xy, xy + wh), dim=1)


def expected_labels(boxes, anchors, high, low, rule):
    return match_labels(Matcher(high, low, rule)(box_iou(boxes, anchors)))


@pytest.fixture(scope="module")
def lesson_image():
    """Training image 26 of the course digits: six digits, four without a >= 0.7 anchor."""
    image, target = load_digits("train")[26]
    return dict(name="digits train 26", image=image, boxes=target["boxes"].as_subclass(torch.Tensor),
                anchors=ANCHORS)


@pytest.fixture
def explorer(lesson_image):
    gen = torch.Generator().manual_seed(1)
    other = dict(name="random boxes", image=torch.rand(3, 128, 128, generator=gen),
                 boxes=random_boxes(gen, 4), anchors=ANCHORS)
    return make_label_explorer([lesson_image, other])


def magenta_collections(figure):
    """LineCollections drawn in the no-positive colour (one per box without a positive)."""
    target = to_rgba(NO_POSITIVE_COLOR)
    return [c for c in figure.axes[0].collections if isinstance(c, LineCollection)
            and tuple(c.get_edgecolor()[0]) == pytest.approx(target)]


@pytest.mark.parametrize("high, low", [(0.7, 0.3), (0.5, 0.5), (0.6, 0.1), (0.9, 0.0)])
@pytest.mark.parametrize("rule", [True, False])
def test_state_equals_matcher_on_random_boxes(high, low, rule):
    gen = torch.Generator().manual_seed(int(high * 10 + low * 100))
    for num in (1, 3, 7):
        boxes = random_boxes(gen, num)
        state = anchor_label_state(boxes, ANCHORS, high, low, rule)
        assert torch.equal(state["labels"], expected_labels(boxes, ANCHORS, high, low, rule))
        assert torch.equal(state["matches"], TvMatcher(high, low, rule)(box_iou(boxes, ANCHORS)))
        counts = state["counts"]
        assert sum(counts.values()) == len(ANCHORS)
        assert counts["positive"] == int((state["labels"] == 1).sum())
        assert state["positives_per_gt"].tolist() == [int((state["matches"] == g).sum()) for g in range(num)]


def test_state_without_ground_truth_is_all_negative():
    state = anchor_label_state(torch.zeros(0, 4), ANCHORS)
    assert state["counts"] == {"positive": 0, "ignored": 0, "negative": len(ANCHORS)}
    assert state["no_positive"] == [] and state["best_iou"].shape == (len(ANCHORS),)


def test_negative_threshold_above_positive_is_lowered():
    boxes = torch.tensor([[10.0, 10.0, 50.0, 60.0]])
    state = anchor_label_state(boxes, ANCHORS, pos_iou=0.4, neg_iou=0.6)
    assert state["neg_iou"] == 0.4 and state["counts"]["ignored"] == 0
    assert torch.equal(state["labels"], expected_labels(boxes, ANCHORS, 0.4, 0.4, True))


def test_lesson_image_numbers(lesson_image):
    state = anchor_label_state(lesson_image["boxes"], ANCHORS)
    assert state["counts"] == {"positive": 7, "ignored": 234, "negative": 2063}
    assert state["no_positive"] == []
    off = anchor_label_state(lesson_image["boxes"], ANCHORS, best_anchor_rule=False)
    assert off["counts"] == {"positive": 3, "ignored": 237, "negative": 2064}
    assert off["no_positive"] == [1, 2, 3, 4]  # the 7, the 9, a 2 and the thin 1


def test_explorer_sliders_and_toggle(explorer, lesson_image):
    boxes = lesson_image["boxes"]
    assert explorer.redraws == 1 and len(explorer.figure.axes) == 2
    assert explorer.state["counts"] == {"positive": 7, "ignored": 234, "negative": 2063}
    assert magenta_collections(explorer.figure) == []

    explorer.controls["best_anchor_rule"].value = False
    assert explorer.redraws == 2
    assert explorer.state["no_positive"] == [1, 2, 3, 4]
    assert torch.equal(explorer.state["labels"], expected_labels(boxes, ANCHORS, 0.7, 0.3, False))
    assert len(magenta_collections(explorer.figure)) == 4
    assert "4 ground truth(s) with NO positive anchor" in explorer.figure.axes[0].get_title()
    assert "rule OFF" in explorer.figure.axes[0].get_title()

    explorer.controls["pos_iou"].value = 0.55
    explorer.controls["neg_iou"].value = 0.2
    assert explorer.redraws == 4
    assert torch.equal(explorer.state["labels"], expected_labels(boxes, ANCHORS, 0.55, 0.2, False))
    assert explorer.state["counts"]["positive"] > 3 and explorer.state["no_positive"] == [4]
    legend = [t.get_text() for t in explorer.figure.axes[0].get_legend().get_texts()]
    assert legend[0] == f"positive ({explorer.state['counts']['positive']})"

    explorer.controls["best_anchor_rule"].value = True
    assert explorer.state["no_positive"] == []
    assert magenta_collections(explorer.figure) == []
    assert torch.equal(explorer.state["labels"], expected_labels(boxes, ANCHORS, 0.55, 0.2, True))
    # The histogram's two threshold lines follow the sliders.
    lines = [line.get_xdata()[0] for line in explorer.figure.axes[1].get_lines()]
    assert lines == [0.55, 0.2]


def test_explorer_show_checkboxes_and_image(explorer):
    def anchor_collections():
        return len([c for c in explorer.figure.axes[0].collections if isinstance(c, LineCollection)])

    everything = anchor_collections()
    explorer.controls["show_negative"].value = False
    explorer.controls["show_ignored"].value = False
    assert anchor_collections() == everything - 2
    assert explorer.state["show"] == ("positive",)
    assert explorer.state["counts"]["negative"] == 2063  # hidden, still counted

    explorer.controls["image"].value = 1
    assert explorer.state["name"] == "random boxes"
    boxes = explorer.state["gt_boxes"]
    assert torch.equal(explorer.state["labels"], expected_labels(boxes, ANCHORS, 0.7, 0.3, True))
    assert explorer.figure.axes[0].get_title().startswith("random boxes")


@pytest.mark.parametrize("rule", [True, False])
@pytest.mark.parametrize("high", [0.7, 0.5])
def test_simplified_rule_has_no_band(high, rule):
    """The notes' rule, "everything else is negative", is the matcher with both thresholds at the positive one."""
    gen = torch.Generator().manual_seed(3)
    boxes = random_boxes(gen, 5)
    state = anchor_label_state(boxes, ANCHORS, high, 0.3, rule, band="negative")
    assert torch.equal(state["labels"], expected_labels(boxes, ANCHORS, high, high, rule))
    assert state["counts"]["ignored"] == 0 and state["neg_iou"] == high and state["band"] == "negative"
    paper = anchor_label_state(boxes, ANCHORS, high, 0.3, rule)
    assert paper["counts"]["positive"] == state["counts"]["positive"]   # the same positives: only the band moves
    assert state["counts"]["negative"] == paper["counts"]["negative"] + paper["counts"]["ignored"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ignoring_border_crossing_anchors(seed):
    gen = torch.Generator().manual_seed(seed)
    boxes = random_boxes(gen, 4)
    inside = inside_image(ANCHORS, (128, 128))
    kept = anchor_label_state(boxes, ANCHORS, image_size=(128, 128))
    state = anchor_label_state(boxes, ANCHORS, image_size=(128, 128), ignore_crossing=True)
    assert torch.equal(state["crossing"], ~inside) and torch.equal(kept["crossing"], ~inside)
    assert (state["labels"][~inside] == -1).all()
    # The others are labelled as if the crossing ones were not there (a box's best anchor: its best inside).
    assert torch.equal(state["labels"][inside], expected_labels(boxes, ANCHORS[inside], 0.7, 0.3, True))
    assert state["crossing_ignored"] == int((kept["labels"][~inside] != -1).sum()) > 0
    assert kept["crossing_ignored"] == 0
    inside_matches = Matcher(0.7, 0.3, True)(box_iou(boxes, ANCHORS[inside]))
    assert state["positives_per_gt"].tolist() == [int((inside_matches == g).sum()) for g in range(4)]
    assert anchor_label_state(boxes, ANCHORS)["crossing"].sum() == 0   # no image size: nothing is known to cross


def test_an_image_smaller_than_every_anchor_ignores_them_all():
    boxes = torch.tensor([[2.0, 2.0, 10.0, 12.0]])
    state = anchor_label_state(boxes, ANCHORS, image_size=(12, 12), ignore_crossing=True)
    assert state["crossing"].all() and (state["labels"] == -1).all() and state["no_positive"] == [0]


def test_bad_rule_arguments_are_refused():
    boxes = torch.tensor([[10.0, 10.0, 50.0, 60.0]])
    with pytest.raises(ValueError, match="band must be one of"):
        anchor_label_state(boxes, ANCHORS, band="positive")
    with pytest.raises(ValueError, match="ignore_crossing needs the image size"):
        anchor_label_state(boxes, ANCHORS, ignore_crossing=True)


def test_explorer_rule_preset_and_border_toggle(explorer, lesson_image):
    boxes = lesson_image["boxes"]

    def crossing_collections():
        target = to_rgba(CROSSING_COLOR, 0.7)
        return [c for c in explorer.figure.axes[0].collections if isinstance(c, LineCollection)
                and tuple(c.get_edgecolor()[0]) == pytest.approx(target)]

    assert len(crossing_collections()) == 1 and "2304" not in explorer.figure.axes[0].get_title()
    assert f"{int((~inside_image(ANCHORS, (128, 128))).sum())} anchors cross the border" in \
        explorer.figure.axes[0].get_title()
    explorer.controls["band"].value = "negative"
    assert explorer.state["counts"] == {"positive": 7, "ignored": 0, "negative": 2063 + 234}
    assert torch.equal(explorer.state["labels"], expected_labels(boxes, ANCHORS, 0.7, 0.7, True))
    assert "(simplified: no band)" in explorer.figure.axes[0].get_title()
    explorer.controls["band"].value = "ignored"
    explorer.controls["ignore_crossing"].value = True
    crossing = ~inside_image(ANCHORS, (128, 128))
    assert (explorer.state["labels"][crossing] == -1).all() and explorer.state["crossing_ignored"] > 0
    assert f"{explorer.state['crossing_ignored']} of them turned to ignored" in explorer.figure.axes[0].get_title()
    explorer.controls["show_crossing"].value = False
    assert crossing_collections() == []


@pytest.mark.parametrize("gt", [(64, 64, 32, 32), (70, 50, 20, 45), (10, 120, 4, 90), (100, 30, 120, 8)])
@pytest.mark.parametrize("anchor", [(32, 1.0), (16, 2.0), (64, 0.5)])
def test_delta_state_equals_box_coders(gt, anchor):
    state = delta_state(*gt, anchor=anchor, anchor_centre=(64.0, 64.0))
    cx, cy, w, h = gt
    assert state["gt"].tolist() == [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    anchor_box = state["anchor"][None]
    assert (anchor_box[0, 2:] + anchor_box[0, :2]).tolist() == [128.0, 128.0]  # centred on (64, 64)
    assert torch.equal(state["deltas"], BoxCoder().encode(state["gt"][None], anchor_box)[0])
    expected = TvBoxCoder((1.0, 1.0, 1.0, 1.0)).encode_single(state["gt"][None], anchor_box)[0]
    assert torch.equal(state["deltas"], expected)
    head = TvBoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(state["gt"][None], anchor_box)[0]
    assert torch.allclose(state["weighted"], head)
    assert torch.allclose(state["weighted"], state["deltas"] * torch.tensor([10.0, 10.0, 5.0, 5.0]), atol=1e-5)
    assert torch.allclose(state["decoded"], state["gt"], atol=1e-4)
    assert torch.allclose(state["decoded_head"], state["gt"], atol=1e-4)
    assert state["iou"] == pytest.approx(float(box_iou(state["gt"][None], anchor_box)))
    assert not state["clamped"]


def test_delta_state_reports_the_clamp():
    state = delta_state(64, 64, 2000.0, 20.0, anchor=(16, 1.0))  # 125x the anchor's width
    assert state["deltas"][2] == pytest.approx(math.log(125))
    assert state["clamped"]


def test_delta_playground_headless():
    playground = make_delta_playground(torch.rand(3, 128, 128), anchor_centre=(80.0, 72.0),
                                       gt=(81.0, 74.5, 64.0, 53.0))
    assert playground.redraws == 1 and len(playground.figure.axes) == 2
    start = playground.state["deltas"].clone()
    playground.controls["gt_x"].value = 100.0
    playground.controls["gt_w"].value = 32.0
    playground.controls["anchor"].value = (32, 2.0)
    assert playground.redraws == 4
    expected = delta_state(100.0, 74.5, 32.0, 53.0, anchor=(32, 2.0), anchor_centre=(80.0, 72.0))
    assert torch.equal(playground.state["deltas"], expected["deltas"])
    assert not torch.equal(playground.state["deltas"], start)
    assert torch.allclose(playground.state["decoded"], playground.state["gt"], atol=1e-4)
    # Anchor, ground truth and decoded box are drawn; eight bars with their value labels.
    assert len([c for c in playground.figure.axes[0].collections if isinstance(c, LineCollection)]) == 3
    assert len(playground.figure.axes[1].patches) == 8
    title = playground.figure.axes[0].get_title()
    assert title == f"IoU(anchor, gt) = {playground.state['iou']:.2f}"
