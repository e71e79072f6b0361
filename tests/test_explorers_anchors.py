"""The anchor explorer (lesson 02): pure state, headless widget glue, coverage helpers."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torchvision.ops import box_iou as tv_box_iou  # noqa: E402

from minifrcnn.anchors import AnchorGenerator, base_anchors, grid_anchors  # noqa: E402
from minifrcnn.course.explorers.anchors import (  # noqa: E402
    anchor_explorer_state,
    best_anchor_iou,
    inside_image,
    make_anchor_explorer,
    num_cells,
)


def segments(figure, gid):
    """Number of box outlines in the figure's LineCollections with this gid."""
    return sum(len(c.get_segments()) for ax in figure.axes for c in ax.collections if c.get_gid() == gid)


@pytest.mark.parametrize("image_size,sizes,ratios,stride", [
    ((128, 128), (16, 32, 64), (0.5, 1.0, 2.0), 8),
    ((128, 128), (16, 32, 64), (0.5, 1.0, 2.0), 16),
    ((512, 512), (128, 256, 512), (0.5, 1.0, 2.0), 16),
    ((96, 160), (24,), (1.0,), 8),
    ((64, 96), (10, 20, 40, 80), (0.25, 0.7, 3.0), 4),
])
def test_state_equals_package(image_size, sizes, ratios, stride):
    state = anchor_explorer_state(image_size, sizes, ratios, stride, row=1, col=2)
    feature_size = (image_size[0] // stride, image_size[1] // stride)
    expected = AnchorGenerator(sizes, ratios)(image_size, feature_size)
    k = len(sizes) * len(ratios)
    assert state["feature_size"] == feature_size and state["k"] == k
    assert torch.equal(state["anchors"], expected)
    assert state["num_anchors"] == feature_size[0] * feature_size[1] * k
    first = (1 * feature_size[1] + 2) * k
    assert state["first_index"] == first
    assert torch.equal(state["cell_anchors"], expected[first:first + k])
    # The cell's anchors are centred on (col * stride, row * stride).
    centres = (state["cell_anchors"][:, :2] + state["cell_anchors"][:, 2:]) / 2
    assert torch.equal(centres, torch.tensor([[2.0 * stride, 1.0 * stride]]).expand(k, 2))
    assert state["cell_shapes"] == [(float(r), float(s)) for r in ratios for s in sizes]


def test_state_counts_inside_and_sorts():
    state = anchor_explorer_state((128, 128), (64, 16, 32), (2.0, 0.5, 1.0), 8, row=0, col=0)
    assert state["sizes"] == (16.0, 32.0, 64.0) and state["ratios"] == (0.5, 1.0, 2.0)
    anchors = state["anchors"]
    by_hand = sum(1 for x1, y1, x2, y2 in anchors.tolist() if x1 >= 0 and y1 >= 0 and x2 <= 128 and y2 <= 128)
    assert state["num_inside"] == by_hand == 1261  # measured in lesson 02
    assert state["num_anchors"] == 2304
    # Cell (0, 0): every anchor is centred on the image corner, so none is inside.
    assert not state["inside"][:9].any()


def test_state_clamps_cell_and_tiles_one_shape():
    state = anchor_explorer_state((128, 128), (16, 32), (1.0, 2.0), 16, row=99, col=-3, tile=3)
    assert (state["row"], state["col"]) == (7, 0)
    assert state["first_index"] == 7 * 8 * 4
    assert state["tile"] == 3 and torch.equal(state["tile_anchors"], state["anchors"][3::4])
    assert state["tile_anchors"].shape == (64, 4)
    assert anchor_explorer_state((128, 128), (16,), (1.0,), 16, tile=5)["tile_anchors"] is None


def test_state_partial_cells_and_empty_selection():
    # 100 px at stride 16: 7 cells (centres 0..96), the last one partial.
    state = anchor_explorer_state((100, 40), (16,), (1.0,), 16)
    assert num_cells((100, 40), 16) == state["feature_size"] == (7, 3)
    assert torch.equal(state["anchors"], grid_anchors(base_anchors((16,), (1.0,)), (7, 3), 16))
    empty = anchor_explorer_state((128, 128), (), (1.0,), 8)
    assert empty["k"] == 0 and empty["num_anchors"] == 0 and empty["message"]


def test_inside_image():
    anchors = torch.tensor([[0.0, 0, 10, 10], [-1, 0, 10, 10], [0, 0, 128, 64], [0, 0, 128, 65]])
    assert inside_image(anchors, (64, 128)).tolist() == [True, False, True, False]


def test_best_anchor_iou_matches_torchvision():
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=generator) * 100
    gt = torch.cat((xy, xy + 5 + torch.rand(50, 2, generator=generator) * 60), dim=1)
    anchors = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))
    best, index = best_anchor_iou(gt, anchors, chunk_size=7)  # several chunks
    expected = tv_box_iou(gt, anchors).max(dim=1)
    assert torch.allclose(best, expected.values)
    assert torch.allclose(tv_box_iou(gt, anchors)[torch.arange(50), index], expected.values)
    # A box equal to an anchor has best IoU 1, at that anchor.
    best, index = best_anchor_iou(anchors[[100, 2000]], anchors)
    assert torch.allclose(best, torch.ones(2)) and index.tolist() == [100, 2000]


def test_best_anchor_iou_edge_cases():
    anchors = base_anchors((16,), (1.0,))
    best, index = best_anchor_iou(torch.zeros(0, 4), anchors)
    assert best.shape == index.shape == (0,)
    best, index = best_anchor_iou(torch.tensor([[0.0, 0, 4, 4]]), torch.zeros(0, 4))
    assert best.tolist() == [0.0] and index.tolist() == [0]


@pytest.fixture
def explorer():
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[10.0, 20, 40, 70], [60, 60, 100, 90]])
    return make_anchor_explorer(image, boxes=boxes, sizes=(16, 32, 64), ratios=(0.5, 1.0, 2.0), stride=8)


def test_explorer_initial_state(explorer):
    state = explorer.state
    assert explorer.redraws == 1
    assert (state["row"], state["col"]) == (8, 8)  # middle of the 16 x 16 map
    assert explorer.controls["row"].max == explorer.controls["col"].max == 15
    assert segments(explorer.figure, "cell_anchors") == 9
    assert segments(explorer.figure, "gt_boxes") == 2
    assert segments(explorer.figure, "image_border") == 1
    assert segments(explorer.figure, "tile_anchors") == 0
    assert "2,304 anchors" in explorer.figure.axes[0].get_title()


def test_explorer_follows_stride_and_cell(explorer):
    redraws = explorer.redraws
    explorer.controls["stride"].value = 16
    assert explorer.redraws > redraws
    assert explorer.controls["row"].max == explorer.controls["col"].max == 7
    assert explorer.state["feature_size"] == (8, 8) and explorer.state["row"] <= 7
    explorer.controls["row"].value, explorer.controls["col"].value = 2, 5
    state = explorer.state
    anchors = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (8, 8))
    assert torch.equal(state["anchors"], anchors)
    assert torch.equal(state["cell_anchors"], anchors[(2 * 8 + 5) * 9:][:9])
    assert state["num_anchors"] == 576
    assert "576 anchors" in explorer.figure.axes[0].get_title()
    assert "anchors 189..197" in explorer.figure.axes[0].get_title()


def test_explorer_follows_sizes_ratios_and_tile(explorer):
    explorer.controls["sizes"].value = (32, 16)
    explorer.controls["ratios"].value = (1.0,)
    state = explorer.state
    assert state["k"] == 2 and state["sizes"] == (16.0, 32.0)
    assert torch.equal(state["anchors"], AnchorGenerator((16, 32), (1.0,))((128, 128), (16, 16)))
    assert segments(explorer.figure, "cell_anchors") == 2
    # The tile menu lists the new shapes; showing one draws it at all 256 cells.
    assert [value for _, value in explorer.controls["tile"].options] == [-1, 0, 1]
    redraws = explorer.redraws
    explorer.controls["tile"].value = 1
    assert explorer.redraws == redraws + 1
    assert segments(explorer.figure, "tile_anchors") == 256
    assert torch.equal(explorer.state["tile_anchors"], state["anchors"][1::2])
    # No size selected: nothing to draw, a message instead of an error.
    explorer.controls["sizes"].value = ()
    assert explorer.state["k"] == 0 and segments(explorer.figure, "cell_anchors") == 0
    assert any("at least one size" in t.get_text() for t in explorer.figure.axes[1].texts)
