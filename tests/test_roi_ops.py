"""minifrcnn.roi_ops against torchvision.ops.roi_pool / roi_align: outputs and feature
gradients on random inputs with awkward boxes; gradcheck of the RoI warp in the boxes."""
import pytest
import torch
import torchvision.ops as tv

from minifrcnn import roi_ops as R

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}


def random_rois(k, images, image_size, generator, dtype=torch.float64):
    """``(k, 5)`` RoIs of every awkward kind, in image pixels: inside the image, partly or
    wholly outside it, smaller than a bin (even than a cell), inverted (x2 < x1), and on
    half-cell corners (where C's round and torch.round differ)."""
    h, w = image_size
    kind = torch.randint(0, 6, (k,), generator=generator)
    xy = torch.rand(k, 2, generator=generator, dtype=torch.float64) * torch.tensor([w, h]) * 1.4 - 0.2 * w
    wh = torch.rand(k, 2, generator=generator, dtype=torch.float64) * torch.tensor([w, h]) * 0.8
    wh = torch.where((kind == 1)[:, None], wh * 0.02, wh)  # tiny: smaller than a bin and a cell
    boxes = torch.cat((xy, xy + wh), dim=1)
    boxes = torch.where((kind == 2)[:, None], boxes[:, [2, 3, 0, 1]], boxes)  # inverted
    boxes = torch.where((kind == 3)[:, None], boxes + torch.tensor([2 * w, 0, 2 * w, 0]), boxes)  # outside
    boxes = torch.where((kind == 4)[:, None], (boxes / 8).round() * 8, boxes)  # 8 px = half a cell at 1/16
    batch = torch.randint(0, images, (k, 1), generator=generator).double()
    return torch.cat((batch, boxes), dim=1).to(dtype)


def compare(ours, theirs, features, rois, dtype, device, **kwargs):
    """Outputs and feature gradients of ``ours`` and ``theirs`` agree."""
    f1 = features.to(device, dtype, copy=True).requires_grad_()  # copies: each gets its own .grad
    f2 = features.to(device, dtype, copy=True).requires_grad_()
    rois = rois.to(device, dtype)
    out1, out2 = ours(f1, rois, **kwargs), theirs(f2, rois, **kwargs)
    assert out1.shape == out2.shape and out1.dtype == out2.dtype
    torch.testing.assert_close(out1, out2, **TOL[dtype])
    grad = torch.randn(out1.shape, generator=torch.Generator().manual_seed(1), dtype=dtype).to(device)
    out1.backward(grad)
    out2.backward(grad)
    torch.testing.assert_close(f1.grad, f2.grad, **TOL[dtype])


CASES = [  # images, channels, H, W, K, output_size, spatial_scale, image size
    (1, 3, 8, 8, 50, 7, 1 / 16, (128, 128)),  # the course's scale
    (3, 4, 13, 17, 200, (7, 5), 1 / 16, (208, 272)),  # several images, non-square bins
    (2, 2, 25, 19, 120, (2, 3), 0.25, (100, 76)),  # big bins
    (2, 5, 6, 9, 80, 1, 1 / 8, (48, 72)),  # one bin
    (1, 2, 10, 10, 60, 14, 1 / 3, (30, 30)),  # more bins than cells, an odd scale
    (2, 3, 12, 12, 40, 4, 1.0, (12, 12)),  # stride 1
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_roi_pool_equals_torchvision(case, dtype, device):
    n, c, h, w, k, size, scale, image_size = case
    g = torch.Generator().manual_seed(k)
    features = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    rois = random_rois(k, n, image_size, g)
    compare(R.roi_pool, tv.roi_pool, features, rois, dtype, device, output_size=size, spatial_scale=scale)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2, 3])
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_roi_align_equals_torchvision(case, aligned, sampling_ratio, dtype, device):
    n, c, h, w, k, size, scale, image_size = case
    g = torch.Generator().manual_seed(k + sampling_ratio)
    features = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    rois = random_rois(k, n, image_size, g)
    compare(R.roi_align, tv.roi_align, features, rois, dtype, device, output_size=size,
            spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned)


def test_roi_pool_ties_send_the_gradient_to_the_first_maximum():
    # Integer features (like ReLU zeros) make ties in most bins; torchvision's backward
    # gives the gradient to the first maximum in row-major order, and so must ours.
    g = torch.Generator().manual_seed(0)
    features = torch.randint(0, 3, (2, 3, 9, 11), generator=g).double()
    rois = random_rois(100, 2, (144, 176), g)
    compare(R.roi_pool, tv.roi_pool, features, rois, torch.float64, "cpu", output_size=3, spatial_scale=1 / 16)


def test_roi_pool_rounds_halves_away_from_zero():
    # x1 = 24 px at 1/16 is 1.5 cells: C's round gives 2, torch.round would give 2 too, but
    # 40 px = 2.5 cells gives 3 in C and 2 in torch.round.
    features = torch.arange(64.0).reshape(1, 1, 8, 8)
    rois = torch.tensor([[0, 40.0, 40.0, 72.0, 72.0], [0, 24.0, 24.0, 56.0, 56.0]])
    torch.testing.assert_close(R.roi_pool(features, rois, 2, 1 / 16), tv.roi_pool(features, rois, 2, 1 / 16))
    assert R.roi_pool(features, rois, 1, 1 / 16)[0, 0, 0, 0] == 5 * 8 + 5  # cells 3..5 (2.5 -> 3, 4.5 -> 5)


def pool_one_by_one(features, rois, output_size, spatial_scale):
    return torch.stack([R.roi_pool_one(features[int(r[0])], r[1:], output_size, spatial_scale) for r in rois])


def align_one_by_one(features, rois, output_size, spatial_scale, **kwargs):
    return torch.stack([R.roi_align_one(features[int(r[0])], r[1:], output_size, spatial_scale, **kwargs)
                        for r in rois])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size, scale", [(7, 1 / 16), ((3, 4), 1 / 8), (2, 1 / 3)])
def test_one_roi_loops_equal_torchvision(size, scale, dtype):
    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 3, 7, 9, generator=g, dtype=torch.float64)
    rois = random_rois(30, 2, (7 / scale, 9 / scale), g)
    compare(pool_one_by_one, tv.roi_pool, features, rois, dtype, "cpu", output_size=size, spatial_scale=scale)
    for kwargs in (dict(), dict(sampling_ratio=2, aligned=True), dict(sampling_ratio=1)):
        compare(align_one_by_one, tv.roi_align, features, rois, dtype, "cpu", output_size=size,
                spatial_scale=scale, **kwargs)


@pytest.mark.parametrize("fn", [R.roi_pool, R.roi_align, R.roi_warp])
def test_list_of_boxes_equals_the_k5_tensor(fn):
    g = torch.Generator().manual_seed(4)
    features = torch.randn(3, 2, 8, 8, generator=g)
    boxes = [random_rois(n, 1, (128, 128), g, torch.float32)[:, 1:] for n in (4, 0, 6)]
    rois = torch.cat([torch.cat((torch.full((len(b), 1), float(i)), b), 1) for i, b in enumerate(boxes)])
    torch.testing.assert_close(fn(features, boxes, 7, 1 / 16), fn(features, rois, 7, 1 / 16))
    assert torch.equal(R.as_roi_tensor(boxes), rois)


@pytest.mark.parametrize("order", ["by image", "shuffled"])
def test_roi_align_in_image_order_or_not_equals_torchvision(order):
    """RoI Align assembles its output in one piece when the RoIs come image by image (the
    detector's case) and scatters it otherwise: both equal torchvision, gradients too."""
    g = torch.Generator().manual_seed(5)
    features = torch.randn(3, 4, 16, 16, generator=g, dtype=torch.float64)
    rois = random_rois(90, 3, (128, 128), g)
    rois = rois[torch.sort(rois[:, 0], stable=True).indices]
    if order == "shuffled":
        rois = rois[torch.randperm(len(rois), generator=g)]
    compare(R.roi_align, tv.roi_align, features, rois, torch.float64, "cpu", output_size=7,
            spatial_scale=1 / 8, sampling_ratio=2, aligned=True)


@pytest.mark.parametrize("order", ["by image", "shuffled", "a batch index outside"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_path_equals_the_training_path_to_the_last_bits(order, dtype):
    """Without a gradient (inference), RoI Align writes blocks of channels straight into its
    output; with one, it assembles pieces autograd can follow. Both give the same numbers up to
    the last bit or two, and the inference path equals torchvision too. 37 channels: not a
    multiple of the block. (The two paths multiply matrices of different shapes, and BLAS may
    round those differently on some CPUs: benchmarks/README.md, "RoI ops".)"""
    g = torch.Generator().manual_seed(7)
    features = torch.randn(3, 37, 16, 20, generator=g, dtype=torch.float64).to(dtype)
    rois = random_rois(120, 3, (128, 160), g).to(dtype)
    rois = rois[torch.sort(rois[:, 0], stable=True).indices]
    if order == "shuffled":
        rois = rois[torch.randperm(len(rois), generator=g)]
    if order == "a batch index outside":
        rois[5, 0] = 7
    with torch.no_grad():
        inference = R.roi_align(features, rois, 7, 1 / 8, 2, True)
    training = R.roi_align(features.clone().requires_grad_(), rois, 7, 1 / 8, 2, True)
    assert training.requires_grad
    ulp = torch.finfo(dtype).eps * float(features.abs().max())  # a wrong block or place is off by ~1, not this
    torch.testing.assert_close(inference, training.detach(), rtol=0, atol=4 * ulp)
    if order != "a batch index outside":
        torch.testing.assert_close(inference, tv.roi_align(features, rois, 7, 1 / 8, 2, True), **TOL[dtype])
    else:
        assert not inference[5].any()


def test_roi_align_gives_zeros_for_a_batch_index_outside_the_batch():
    features = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0, 8.0, 8, 40, 40], [5, 8, 8, 40, 40], [1, 0, 0, 60, 30]])
    out = R.roi_align(features, rois, 7, 1 / 8, 2, True)
    assert out.shape == (3, 3, 7, 7) and not out[1].any() and out[0].any() and out[2].any()


@pytest.mark.parametrize("fn", [R.roi_pool, R.roi_align, R.roi_warp])
def test_no_rois(fn):
    out = fn(torch.randn(2, 4, 8, 8), torch.zeros(0, 5), (7, 6), 1 / 16)
    assert out.shape == (0, 4, 7, 6)


def test_bad_roi_shape_is_explained():
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        R.roi_align(torch.randn(1, 2, 8, 8), torch.zeros(3, 4), 7)


# ----------------------------------------------------------------------------- the box gradient

@pytest.mark.parametrize("sampling_ratio", [1, 2, -1])
@pytest.mark.parametrize("aligned", [True, False])
def test_roi_warp_forward_equals_roi_align(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(5)
    features = torch.randn(2, 3, 10, 12, generator=g)
    rois = random_rois(80, 2, (160, 192), g, torch.float32)
    ours = R.roi_warp(features, rois, 7, 1 / 16, sampling_ratio, aligned)
    torch.testing.assert_close(ours, tv.roi_align(features, rois, 7, 1 / 16, sampling_ratio, aligned),
                               **TOL[torch.float32])


@pytest.mark.parametrize("sampling_ratio, aligned", [(2, True), (1, False), (3, True), (-1, True)])
def test_roi_warp_gradcheck_features_and_boxes(sampling_ratio, aligned):
    g = torch.Generator().manual_seed(6)
    features = torch.randn(2, 3, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    # Random boxes: no sample lands exactly on a cell centre, where bilinear weights have
    # a kink. Some reach past the map's border, where the clamping rules apply.
    xy = torch.rand(5, 2, generator=g, dtype=torch.float64) * torch.tensor([60.0, 50.0]) - 5
    wh = torch.rand(5, 2, generator=g, dtype=torch.float64) * 50 + 4
    boxes = torch.cat((xy, xy + wh), dim=1)
    first, second = boxes[:3].clone().requires_grad_(), boxes[3:].clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, b1, b2: R.roi_warp(f, [b1, b2], (3, 4), 1 / 8, sampling_ratio, aligned),
        (features, first, second))


def test_only_the_warp_gives_a_box_gradient():
    features = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    for fn in (R.roi_pool, R.roi_align, tv.roi_pool, tv.roi_align, R.roi_warp):
        rois = torch.tensor([[0, 13.3, 21.7, 90.2, 77.9]], dtype=torch.float64, requires_grad=True)
        out = fn(features, rois, 7, 1 / 16)
        if out.requires_grad:
            out.sum().backward()
        if fn is R.roi_warp:
            assert rois.grad is not None and rois.grad[0, 1:].abs().min() > 0 and rois.grad[0, 0] == 0
        else:
            assert rois.grad is None


def test_warp_box_gradient_moves_the_box_towards_the_bright_spot():
    # A single bright cell right of the box: the warp's mean output grows if the box
    # moves right, so d(mean)/d(x1) and d(mean)/d(x2) are positive.
    features = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    features[0, 0, 3, 6] = 1.0
    box = torch.tensor([[20.0, 36.0, 100.0, 76.0]], dtype=torch.float64, requires_grad=True)
    R.roi_warp(features, [box], 4, 1 / 16).mean().backward()
    assert box.grad[0, 0] > 0 and box.grad[0, 2] > 0


# ----------------------------------------------------------------------------- the detector's switch

@pytest.mark.parametrize("kind", ["pool", "align", "warp"])
def test_roi_op_implementations_agree(kind):
    g = torch.Generator().manual_seed(7)
    features = torch.randn(2, 3, 8, 8, generator=g)
    rois = random_rois(30, 2, (128, 128), g, torch.float32)
    ours = R.RoIOp(kind, implementation="minifrcnn", aligned=kind == "warp")(features, rois)
    reference = R.RoIOp("pool" if kind == "pool" else "align", aligned=kind == "warp",
                        implementation="torchvision")(features, rois)
    assert ours.shape == (30, 3, 7, 7)
    torch.testing.assert_close(ours, reference, **TOL[torch.float32])
    if kind == "align":  # torchvision's Faster R-CNN head: MultiScaleRoIAlign, ratio 2, not aligned
        expected = tv.roi_align(features, rois, 7, 1 / 16, sampling_ratio=2, aligned=False)
        torch.testing.assert_close(R.RoIOp()(features, rois), expected, **TOL[torch.float32])


def test_roi_op_defaults_and_errors():
    op = R.RoIOp()
    assert (op.kind, op.implementation, op.output_size, op.sampling_ratio, op.aligned) == \
        ("align", "minifrcnn", (7, 7), 2, False)
    assert R.RoIOp("warp").implementation == "minifrcnn"
    assert R.RoIOp("pool").implementation == "torchvision"
    assert "align" in repr(op)
    with pytest.raises(ValueError):
        R.RoIOp("warp", implementation="torchvision")
    with pytest.raises(ValueError):
        R.RoIOp("max")
