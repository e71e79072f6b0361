"""minifrcnn.boxes against torchvision.ops and torchvision's BoxCoder, on random and edge inputs."""
import math

import pytest
import torch
import torchvision.ops as tv_ops
from torchvision.models.detection._utils import BoxCoder as TvBoxCoder

from minifrcnn.boxes import (
    BBOX_XFORM_CLIP,
    BoxCoder,
    box_area,
    box_iou,
    check_boxes,
    clip_boxes_to_image,
    cxcywh_to_xyxy,
    remove_small_boxes,
    xyxy_to_cxcywh,
)


def random_boxes(n, generator, scale=100.0, min_size=0.0, dtype=torch.float32):
    """``n`` valid xyxy boxes with sides in [min_size, min_size + scale)."""
    xy = torch.rand(n, 2, generator=generator, dtype=dtype) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=dtype) * scale + min_size
    return torch.cat((xy, xy + wh), dim=1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,m", [(1, 1), (7, 13), (200, 50)])
def test_iou_equals_torchvision_random(gen, n, m, dtype):
    a, b = random_boxes(n, gen, dtype=dtype), random_boxes(m, gen, dtype=dtype)
    ours = box_iou(a, b)
    assert ours.shape == (n, m) and ours.dtype == dtype
    assert torch.equal(ours, tv_ops.box_iou(a, b))


def test_iou_edge_cases():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    cases = {
        "identical": ([[0.0, 0.0, 10.0, 10.0]], 1.0),
        "disjoint": ([[20.0, 20.0, 30.0, 30.0]], 0.0),
        "touching edge": ([[10.0, 0.0, 20.0, 10.0]], 0.0),
        "contained": ([[0.0, 0.0, 5.0, 5.0]], 0.25),
        "half overlap": ([[5.0, 0.0, 15.0, 10.0]], 50.0 / 150.0),
        "zero-area inside": ([[5.0, 5.0, 5.0, 5.0]], 0.0),
        "outside the image (negative coords)": ([[-10.0, -10.0, 5.0, 5.0]], 25.0 / 300.0),
    }
    for name, (b, expected) in cases.items():
        b = torch.tensor(b)
        assert box_iou(a, b).item() == pytest.approx(expected), name
        assert box_iou(a, b).item() == pytest.approx(tv_ops.box_iou(a, b).item()), name


def test_iou_of_two_zero_area_boxes_is_zero_not_nan():
    point = torch.tensor([[5.0, 5.0, 5.0, 5.0]])
    assert torch.isnan(tv_ops.box_iou(point, point)).all()  # torchvision: 0 / 0
    assert box_iou(point, point).item() == 0.0  # ours: defined, never NaN


@pytest.mark.parametrize("n,m", [(0, 5), (5, 0), (0, 0)])
def test_iou_empty(gen, n, m):
    iou = box_iou(random_boxes(n, gen), random_boxes(m, gen))
    assert iou.shape == (n, m)
    assert iou.shape == tv_ops.box_iou(random_boxes(n, gen), random_boxes(m, gen)).shape


def test_area_and_conversions_equal_torchvision(gen):
    boxes = random_boxes(100, gen)
    assert torch.equal(box_area(boxes), tv_ops.box_area(boxes))
    cxcywh = xyxy_to_cxcywh(boxes)
    assert torch.equal(cxcywh, tv_ops.box_convert(boxes, "xyxy", "cxcywh"))
    assert torch.equal(cxcywh_to_xyxy(cxcywh), tv_ops.box_convert(cxcywh, "cxcywh", "xyxy"))
    assert torch.allclose(cxcywh_to_xyxy(cxcywh), boxes, atol=1e-5)
    assert xyxy_to_cxcywh(torch.zeros(0, 4)).shape == (0, 4)


@pytest.mark.parametrize("size", [(50, 80), (128, 128), (1, 1)])
def test_clip_equals_torchvision(gen, size):
    boxes = random_boxes(100, gen, scale=150.0) - 30.0  # many boxes partly or fully outside
    assert torch.equal(clip_boxes_to_image(boxes, size), tv_ops.clip_boxes_to_image(boxes, size))


def test_clip_keeps_leading_dimensions(gen):
    boxes = random_boxes(12, gen, scale=150.0).reshape(3, 4, 4)
    clipped = clip_boxes_to_image(boxes, (64, 32))
    assert clipped.shape == (3, 4, 4)
    assert clipped[..., 0::2].max() <= 32 and clipped[..., 1::2].max() <= 64 and clipped.min() >= 0


@pytest.mark.parametrize("min_size", [0.0, 1e-3, 5.0, 50.0])
def test_remove_small_boxes_equals_torchvision(gen, min_size):
    boxes = random_boxes(200, gen, scale=60.0)
    boxes[:10, 2] = boxes[:10, 0]  # zero width
    assert torch.equal(remove_small_boxes(boxes, min_size), tv_ops.remove_small_boxes(boxes, min_size))


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_coder_equals_torchvision(gen, weights, dtype):
    refs = random_boxes(300, gen, min_size=1.0, dtype=dtype)
    targets = random_boxes(300, gen, min_size=1.0, dtype=dtype)
    ours, theirs = BoxCoder(weights), TvBoxCoder(weights)
    deltas = ours.encode(targets, refs)
    assert torch.equal(deltas, theirs.encode_single(targets, refs))
    # Decoding: one class (RPN) and several classes (head), with huge deltas to hit the clamp.
    for num_classes in (1, 3):
        codes = torch.randn(300, 4 * num_classes, generator=gen, dtype=dtype) * 3
        codes[:5] = 50.0
        decoded = ours.decode(codes, refs)
        assert decoded.shape == (300, num_classes, 4)
        assert torch.equal(decoded, theirs.decode_single(codes, refs).reshape(300, -1, 4))
        assert torch.isfinite(decoded).all()


def test_box_coder_round_trip(gen):
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    refs = random_boxes(100, gen, min_size=1.0, dtype=torch.float64)
    targets = random_boxes(100, gen, min_size=1.0, dtype=torch.float64)
    decoded = coder.decode(coder.encode(targets, refs), refs)[:, 0]
    assert torch.allclose(decoded, targets, atol=1e-9)


def test_box_coder_clamp_prevents_overflow():
    ref = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    huge = torch.tensor([[0.0, 0.0, 1e4, 1e4]])
    box = BoxCoder().decode(huge, ref)[0, 0]
    assert torch.isfinite(box).all()
    assert (box[2] - box[0]).item() == pytest.approx(16 * math.exp(BBOX_XFORM_CLIP), rel=1e-5)  # 1000 px


def test_box_coder_errors():
    with pytest.raises(ValueError, match="4 values"):
        BoxCoder((1.0, 1.0))
    with pytest.raises(ValueError, match="same shape"):
        BoxCoder().encode(torch.zeros(3, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(R, 4\*C\)"):
        BoxCoder().decode(torch.zeros(3, 5), torch.zeros(3, 4))


def test_box_coder_empty():
    coder = BoxCoder()
    assert coder.encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert coder.decode(torch.zeros(0, 8), torch.zeros(0, 4)).shape == (0, 2, 4)


def test_check_boxes_names_the_problem():
    check_boxes(torch.zeros(0, 4))
    check_boxes(torch.tensor([[1.0, 1.0, 1.0, 5.0]]))  # zero-area allowed by default
    with pytest.raises(ValueError, match=r"gt\[0\].*zero-area"):
        check_boxes(torch.tensor([[1.0, 1.0, 1.0, 5.0]]), name="gt", allow_degenerate=False)
    with pytest.raises(ValueError, match=r"boxes\[1\].*inverted"):
        check_boxes(torch.tensor([[0.0, 0.0, 2.0, 2.0], [5.0, 0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"shape \(R, 4\)"):
        check_boxes(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="floating point"):
        check_boxes(torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="not finite"):
        check_boxes(torch.tensor([[0.0, 0.0, float("nan"), 1.0]]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_boxes([[0, 0, 1, 1]])
