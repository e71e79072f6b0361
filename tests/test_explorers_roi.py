"""The RoI explorer (lesson 06): its pure state against torchvision and hand-computed
geometry, and the widget glue, headless."""
import math

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision.ops as tv  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

from minifrcnn.course.explorers.roi import OPS, make_roi_explorer, roi_state  # noqa: E402

STRIDE = 16


@pytest.fixture
def features():
    return torch.randn(4, 19, 29, generator=torch.Generator().manual_seed(0))


def rois_of(box):
    return torch.tensor([[0.0, *box]])


def test_pool_state_matches_torchvision_and_the_rounded_region(features):
    box = (134, 85, 206, 146)
    state = roi_state(features, box, "pool", 7, channel=2, stride=STRIDE)
    expected = tv.roi_pool(features[None], rois_of(box), 7, 1 / STRIDE)[0]
    assert torch.equal(state["output"], expected) and torch.equal(state["pooled"], expected[2])
    # cells x 8..13, y 5..9: the end cell is included
    assert state["region"].tolist() == [128, 80, 224, 160]
    assert state["edge_error"].tolist() == [-6, -5, 18, 14]
    assert state["misalignment"] == pytest.approx(10.75)
    assert state["region_iou"] == pytest.approx(72 * 61 / (96 * 80))
    assert state["bins"].shape == (49, 4) and (state["bins"] % STRIDE == 0).all()
    assert state["grid"] == (1, 1) and len(state["points"]) == 49


def test_pool_points_are_the_argmax_of_their_bins(features):
    state = roi_state(features, (30, 40, 200, 150), "pool", (3, 4), channel=1, stride=STRIDE)
    channel = features[1]
    for (x1, y1, x2, y2), (px, py), value in zip(state["bins"].tolist(), state["points"].tolist(),
                                                 state["pooled"].reshape(-1).tolist()):
        assert x1 <= px <= x2 and y1 <= py <= y2
        assert channel[int(py // STRIDE), int(px // STRIDE)] == pytest.approx(value)
        assert channel[int(y1) // STRIDE:int(y2) // STRIDE, int(x1) // STRIDE:int(x2) // STRIDE].max() == \
            pytest.approx(value)


def test_pool_state_with_empty_bins(features):
    # Right of the map (29 cells = 464 px): bins wholly outside are empty, have no argmax, and give 0.
    state = roi_state(features, (420, 100, 520, 200), "pool", 4, stride=STRIDE)
    empty = (state["bins"][:, 2] <= state["bins"][:, 0]) | (state["bins"][:, 3] <= state["bins"][:, 1])
    assert empty.any() and len(state["points"]) == int((~empty).sum())
    assert (state["pooled"].reshape(-1)[empty] == 0).all()


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [2, 1, 0])
def test_align_state_matches_torchvision(features, aligned, ratio):
    box = (134.0, 85.0, 206.0, 146.0)
    state = roi_state(features, box, "align", (7, 5), channel=3, stride=STRIDE, sampling_ratio=ratio,
                      aligned=aligned)
    expected = tv.roi_align(features[None], rois_of(box), (7, 5), 1 / STRIDE, ratio, aligned)[0]
    torch.testing.assert_close(state["output"], expected)
    gx, gy = (ratio, ratio) if ratio > 0 else (math.ceil(72 / 16 / 5), math.ceil(61 / 16 / 7))
    assert state["grid"] == (gx, gy) and state["points"].shape == (7 * 5 * gx * gy, 2)
    shift = 0 if aligned else STRIDE / 2  # aligned=False reads the box half a cell right and down
    assert torch.allclose(state["region"], torch.tensor(box, dtype=torch.float64) + shift)
    assert state["misalignment"] == pytest.approx(shift)
    # every sample lies inside its bin, and the bins tile the region read
    bins, points = state["bins"], state["points"]
    assert torch.allclose(bins[0, :2], state["region"][:2]) and torch.allclose(bins[-1, 2:], state["region"][2:])
    assert ((points[:, 0] > state["region"][0]) & (points[:, 0] < state["region"][2])).all()
    assert ((points[:, 1] > state["region"][1]) & (points[:, 1] < state["region"][3])).all()


def test_align_state_sample_positions_are_torchvision_s(features):
    # One bin, one sample, aligned: the sample is the box's centre.
    state = roi_state(features, (100, 60, 140, 90), "align", 1, stride=STRIDE, sampling_ratio=1, aligned=True)
    assert state["points"].tolist() == [[120.0, 75.0]]


def test_unknown_op_raises(features):
    with pytest.raises(ValueError, match="op must be"):
        roi_state(features, (0, 0, 10, 10), "warp")


def test_explorer_redraws_when_a_control_moves(features):
    image = torch.rand(3, 300, 451, generator=torch.Generator().manual_seed(1))
    names = ["a", "b", "c", "d"]
    explorer = make_roi_explorer(image, features[None], box=(134, 85, 206, 146), channel_names=names, channel=1)
    assert explorer.redraws == 1 and explorer.state["op"] == "pool" and explorer.state["channel"] == 1
    assert set(explorer.controls) == {"x", "y", "w", "h", "size", "op", "channel", "ratio"}
    assert list(explorer.controls["op"].options) == list(OPS)
    figure = explorer.figure
    assert len(figure.axes) == 4  # image, map, output, colorbar
    assert "RoI pooling" in figure.axes[2].get_title() and "b" in figure.axes[1].get_title()
    assert sum(len(c.get_segments()) for c in figure.axes[1].collections if isinstance(c, LineCollection)) == 49

    explorer.controls["op"].value = "RoI Align, aligned"
    explorer.controls["x"].value = 150
    explorer.controls["size"].value = 3
    state = explorer.state
    assert explorer.redraws == 4 and state["op"] == "align" and state["aligned"]
    assert state["box"].tolist() == [150, 85, 222, 146] and state["pooled"].shape == (3, 3)
    assert state["misalignment"] == 0
    scatter = [c for c in explorer.figure.axes[1].collections if isinstance(c, PathCollection)]
    assert len(scatter) == 1 and len(scatter[0].get_offsets()) == 3 * 3 * 2 * 2
    expected = tv.roi_align(features[None], rois_of((150, 85, 222, 146)), 3, 1 / 16, 2, True)[0, 1]
    torch.testing.assert_close(state["pooled"], expected)

    explorer.controls["ratio"].value = 0
    explorer.controls["channel"].value = 3
    assert explorer.state["grid"] == (math.ceil(72 / 16 / 3), math.ceil(61 / 16 / 3))
    assert "RoI Align, aligned" in explorer.figure.axes[2].get_title() and "d" in explorer.figure.axes[1].get_title()
