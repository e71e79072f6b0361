"""minifrcnn.anchors against torchvision's AnchorGenerator (one feature map)."""
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TvAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from minifrcnn.anchors import AnchorGenerator, base_anchors, feature_stride, grid_anchors


def torchvision_anchors(sizes, ratios, image_size, feature_size, dtype=torch.float32):
    generator = TvAnchorGenerator(sizes=(tuple(sizes),), aspect_ratios=(tuple(ratios),))
    images = ImageList(torch.zeros(1, 3, *image_size, dtype=dtype), [image_size])
    features = [torch.zeros(1, 8, *feature_size, dtype=dtype)]
    return generator(images, features)[0]


@pytest.mark.parametrize("sizes,ratios,image_size,feature_size", [
    ((128, 256, 512), (0.5, 1.0, 2.0), (600, 1000), (37, 62)),  # the paper's setting
    ((16, 32, 64), (0.5, 1.0, 2.0), (128, 128), (16, 16)),  # course scale, stride 8
    ((16, 32, 64), (0.5, 1.0, 2.0), (128, 128), (8, 8)),  # stride 16
    ((24,), (1.0,), (96, 160), (12, 20)),  # one anchor per cell, non-square image
    ((10, 20), (0.25, 0.7, 1.3, 3.0), (64, 48), (8, 3)),  # odd ratios, different strides
    ((32,), (1.0,), (32, 32), (1, 1)),  # a single cell
])
def test_equals_torchvision(sizes, ratios, image_size, feature_size):
    ours = AnchorGenerator(sizes, ratios)(image_size, feature_size)
    theirs = torchvision_anchors(sizes, ratios, image_size, feature_size)
    assert ours.shape == (feature_size[0] * feature_size[1] * len(sizes) * len(ratios), 4)
    assert torch.equal(ours, theirs)  # same values, same order


def test_float64_equals_torchvision():
    ours = AnchorGenerator((16, 32), (0.5, 2.0))((64, 64), (8, 8), dtype=torch.float64)
    assert ours.dtype == torch.float64
    assert torch.equal(ours, torchvision_anchors((16, 32), (0.5, 2.0), (64, 64), (8, 8), torch.float64))


def test_base_anchors_shape_area_and_order():
    cell = base_anchors((32, 64), (0.5, 1.0, 2.0))
    assert cell.shape == (6, 4)
    widths, heights = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    # Ratio-major: the first two anchors are ratio 0.5 (wide) with sizes 32 and 64.
    assert widths[0] > heights[0] and widths[1] > heights[1] and widths[1] > widths[0]
    assert torch.equal(widths[2:4], heights[2:4])  # ratio 1: squares
    assert torch.allclose(widths * heights, torch.tensor([32.0, 64, 32, 64, 32, 64]) ** 2, rtol=0.05)
    assert torch.equal(cell[:, :2], -cell[:, 2:])  # centred on (0, 0)


def test_paper_anchor_count():
    # The paper's ~60 x 40 feature map with 9 anchors: ~20,000 anchors (section 3.3).
    assert AnchorGenerator()((600, 1000), (38, 63)).shape[0] == 38 * 63 * 9 == 21546
    # A 50 x 50 map with 9 anchors has 22,500 anchors.
    assert AnchorGenerator()((800, 800), (50, 50)).shape[0] == 22500


def test_centre_convention_is_cell_corner():
    anchors = grid_anchors(base_anchors((8,), (1.0,)), (2, 3), 16)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    expected = torch.tensor([[x, y] for y in (0, 16) for x in (0, 16, 32)], dtype=torch.float32)
    assert torch.equal(centres, expected)  # cell (i, j) -> (j * 16, i * 16), row-major


def test_feature_stride_and_rectangular_stride():
    assert feature_stride((128, 96), (8, 12)) == (16, 8)
    anchors = grid_anchors(base_anchors((4,), (1.0,)), (2, 2), (16, 8))
    assert anchors[:, 0].unique().tolist() == [-2.0, 6.0] and anchors[:, 1].unique().tolist() == [-2.0, 14.0]


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="at least one"):
        base_anchors((), (1.0,))
    with pytest.raises(ValueError, match="positive"):
        base_anchors((16, -4), (1.0,))


def test_empty_feature_map_gives_no_anchors():
    assert grid_anchors(base_anchors((8,), (1.0,)), (0, 5), 8).shape == (0, 4)
