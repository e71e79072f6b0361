"""Drawing helpers accept tensors, NumPy arrays and PIL images, and draw what they are given."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from minifrcnn.course.draw import (  # noqa: E402
    draw_anchor_labels,
    draw_box_outlines,
    draw_boxes,
    draw_filters,
    filter_grid,
    show_image,
    to_numpy_image,
)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.mark.parametrize("image,shape", [
    (torch.rand(3, 20, 30), (20, 30, 3)),
    (torch.randint(0, 255, (3, 20, 30), dtype=torch.uint8), (20, 30, 3)),
    (torch.rand(20, 30), (20, 30)),
    (torch.rand(1, 20, 30), (20, 30)),
    (np.zeros((20, 30, 3), dtype=np.uint8), (20, 30, 3)),
    (Image.new("RGB", (30, 20)), (20, 30, 3)),
])
def test_to_numpy_image_accepts_every_form(image, shape):
    assert to_numpy_image(image).shape == shape


def test_to_numpy_image_clips_floats_and_rejects_bad_shapes():
    assert to_numpy_image(torch.full((3, 2, 2), 2.0)).max() == 1.0
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        to_numpy_image(torch.rand(5, 8, 8))
    with pytest.raises(ValueError):
        to_numpy_image(torch.rand(2, 3, 8, 8))


def test_draw_boxes_with_names_and_scores(ax):
    show_image(torch.rand(3, 64, 64), ax)
    texts = draw_boxes(ax, torch.tensor([[1.0, 2, 30, 40], [5, 5, 9, 9]]), labels=torch.tensor([1, 8]),
                       scores=torch.tensor([0.91, 0.5]), class_names=["bg"] + [str(d) for d in range(10)])
    assert [t.get_text() for t in texts] == ["0 0.91", "7 0.50"]
    outlines = ax.collections[-1].get_segments()
    assert len(outlines) == 2 and np.allclose(outlines[0][0], [1, 2]) and np.allclose(outlines[0][2], [30, 40])


def test_draw_boxes_checks_lengths_and_handles_empty(ax):
    assert draw_boxes(ax, torch.zeros(0, 4)) == []
    with pytest.raises(ValueError, match="labels has 1 entries for 2 boxes"):
        draw_boxes(ax, torch.zeros(2, 4), labels=[1])


def test_draw_anchor_labels_counts_and_caps(ax):
    anchors = torch.tensor([[0.0, 0, 10, 10]] * 6)
    labels = torch.tensor([1, 0, 0, 0, -1, 0])
    counts = draw_anchor_labels(ax, anchors, labels, max_per_kind=2)
    assert counts == {"positive": 1, "negative": 4, "ignored": 1}
    assert [len(c.get_segments()) for c in ax.collections] == [2, 1, 1]  # negatives capped at 2


def test_draw_box_outlines_from_numpy(ax):
    lines = draw_box_outlines(ax, np.array([[0, 0, 4, 4], [1, 1, 2, 2]]))
    assert len(lines.get_segments()) == 2


def test_filter_grid_places_each_filter_scaled_on_its_own(ax):
    weight = torch.zeros(10, 3, 3, 3)
    weight[0, 0, 1, 1] = 5.0    # filter 0: one red weight, its strongest: white in red
    weight[1, 2, 0, 0] = -0.01  # filter 1: one small negative blue weight: still full contrast
    grid = filter_grid(weight, columns=4, gap=1)
    assert grid.shape == (3 * 4 - 1, 4 * 4 - 1, 3) and grid.min() >= 0 and grid.max() <= 1
    assert tuple(grid[1, 1]) == (1.0, 0.5, 0.5) and tuple(grid[0, 4]) == (0.5, 0.5, 0.0)
    assert (grid[3] == 1).all() and (grid[:, 3] == 1).all()  # white gaps between filters
    assert (grid[8:, 8:] == 1).all()  # no 11th and 12th filter: white
    draw_filters(ax, weight, columns=4, title="filters")
    assert ax.get_title() == "filters" and len(ax.images) == 1
    with pytest.raises(ValueError, match="RGB conv filters"):
        filter_grid(torch.zeros(4, 1, 3, 3))


def test_crop_image_or_features_draws_four_panels_and_returns_the_crops():
    from minifrcnn.course.draw import draw_crop_image_or_features, tile
    image, features = torch.rand(3, 64, 64), torch.rand(16, 8, 8)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [10.0, 20.0, 60.0, 50.0], [5.0, 5.0, 9.0, 30.0]])
    fig, axes = plt.subplots(1, 4)
    crops, cells = draw_crop_image_or_features(axes, image, boxes, features, spatial_scale=1 / 8, crop_size=16)
    assert crops.shape == (3, 3, 16, 16) and cells.shape == (3, 3, 7, 7)
    assert all(ax.images for ax in axes) and "3 crops of the image" in axes[1].get_title()
    assert float(cells.min()) == 0.0 and float(cells.max()) == 1.0      # scaled to [0, 1] for the picture
    assert tile(torch.zeros(5, 3, 4, 4), columns=2).shape == (3 * 6 - 2, 2 * 6 - 2, 3)
    plt.close(fig)
