"""NMS: the loop, the vectorised version and batched NMS keep exactly the indices
torchvision keeps, in the same order: random, tied, empty and degenerate inputs."""
import numpy as np
import pytest
import torch
import torchvision.ops as tv_ops

from minifrcnn.nms import batched_nms, kernel_threshold, nms, nms_loop, score_order

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NMS_FNS = {"loop": nms_loop, "vectorised": nms}



def random_boxes(n, generator, size=100.0, max_wh=40.0, dtype=torch.float32):
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * max_wh + 0.5
    return torch.cat((xy, xy + wh), dim=1).to(dtype)


def grid_boxes(n, generator, dtype=torch.float32):
    """Integer boxes on a small grid: many exact duplicates, equal IoUs and ties."""
    xy = torch.randint(0, 12, (n, 2), generator=generator)
    wh = torch.randint(1, 8, (n, 2), generator=generator)
    return torch.cat((xy, xy + wh), dim=1).to(dtype)


def assert_same(got, expected):
    assert got.dtype == torch.int64
    assert got.device == expected.device
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NMS_FNS)
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_random_boxes(name, threshold, device):
    g = torch.Generator().manual_seed(int(threshold * 10))
    for trial in range(20):
        n = int(torch.randint(1, 150, (1,), generator=g))
        boxes, scores = random_boxes(n, g).to(device), torch.rand(n, generator=g).to(device)
        assert_same(NMS_FNS[name](boxes, scores, threshold), tv_ops.nms(boxes, scores, threshold))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_many_ties(name, device):
    """Scores from {0, 1, 2, 3} and boxes on an integer grid: ties everywhere. Only a
    stable sort (equal scores visited in index order) keeps torchvision's boxes."""
    g = torch.Generator().manual_seed(1)
    for trial in range(60):
        n = int(torch.randint(1, 200, (1,), generator=g))
        boxes = grid_boxes(n, g).to(device)
        scores = torch.randint(0, 4, (n,), generator=g).float().to(device)
        for threshold in (0.2, 0.5, 0.7):
            assert_same(NMS_FNS[name](boxes, scores, threshold), tv_ops.nms(boxes, scores, threshold))


def test_unstable_sort_would_fail():
    """The test above can fail: with a non-stable sort the order of tied boxes differs."""
    scores = torch.zeros(40)
    assert not torch.equal(torch.sort(scores, descending=True).indices, score_order(scores))
    assert score_order(scores).tolist() == list(range(40))


def test_the_threshold_is_compared_as_each_device_kernel_compares_it():
    # The CPU kernel compares with a double, the GPU kernel with a float32: an IoU of
    # exactly float32(0.2) is above 0.2 on the CPU and not above float32(0.2) on a GPU.
    assert kernel_threshold(0.2, "cpu") == 0.2
    assert kernel_threshold(0.2, torch.device("cuda")) == float(np.float32(0.2)) > 0.2
    boxes, scores = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 2]]), torch.tensor([1.0, 0.5])  # IoU 1/5
    for name in NMS_FNS:
        assert NMS_FNS[name](boxes, scores, 0.2).tolist() == tv_ops.nms(boxes, scores, 0.2).tolist() == [0]


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_all_scores_equal_and_identical_boxes(name):
    boxes = torch.tensor([[10.0, 10, 20, 20]]).repeat(7, 1)
    scores = torch.full((7,), 0.5)
    assert_same(NMS_FNS[name](boxes, scores, 0.7), tv_ops.nms(boxes, scores, 0.7))
    assert NMS_FNS[name](boxes, scores, 0.7).tolist() == [0]  # the first of the tied boxes


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_empty_input(name):
    keep = NMS_FNS[name](torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64
    assert_same(keep, tv_ops.nms(torch.zeros(0, 4), torch.zeros(0), 0.5))


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_single_box(name):
    assert_same(NMS_FNS[name](torch.tensor([[0.0, 0, 5, 5]]), torch.tensor([0.1]), 0.5),
                torch.tensor([0]))


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_degenerate_boxes(name):
    """Zero-area boxes: 0 / 0 = NaN IoU between identical points never suppresses."""
    boxes = torch.tensor([[5.0, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 0], [0, 0, 10, 0],
                          [0, 0, 10, 10], [2, 2, 2, 8], [3, 3, 3, 3]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.5])
    for threshold in (0.0, 0.5, 0.9):
        expected = tv_ops.nms(boxes, scores, threshold)
        assert_same(NMS_FNS[name](boxes, scores, threshold), expected)
    assert set(expected.tolist()) == set(range(7))  # nothing suppressed


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_threshold_compared_in_float64(name):
    """IoU exactly 0.5 (representable) against a threshold a hair below 0.5: the C++ kernel
    compares in double and suppresses; a float32 comparison would round the threshold up
    to 0.5 and keep the box."""
    boxes = torch.tensor([[0.0, 0, 2, 1], [0, 0, 1, 1]])
    scores = torch.tensor([0.9, 0.8])
    for threshold in (0.5 - 1e-10, 0.5, 0.5 + 1e-10):
        assert_same(NMS_FNS[name](boxes, scores, threshold), tv_ops.nms(boxes, scores, threshold))
    assert nms(boxes, scores, 0.5 - 1e-10).tolist() == [0]
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]  # IoU must be strictly greater


@pytest.mark.parametrize("name", NMS_FNS)
def test_nms_float64(name):
    g = torch.Generator().manual_seed(3)
    boxes, scores = random_boxes(80, g, dtype=torch.float64), torch.rand(80, generator=g, dtype=torch.float64)
    assert_same(NMS_FNS[name](boxes, scores, 0.4), tv_ops.nms(boxes, scores, 0.4))


def test_nms_does_not_change_inputs():
    g = torch.Generator().manual_seed(4)
    boxes, scores = random_boxes(50, g), torch.rand(50, generator=g)
    b, s = boxes.clone(), scores.clone()
    nms(boxes, scores, 0.5)
    nms_loop(boxes, scores, 0.5)
    assert torch.equal(b, boxes) and torch.equal(s, scores)


def test_nms_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores"):
        nms_loop(torch.zeros(3, 4), torch.zeros(4), 0.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [0, 1, 30, 999, 1000, 1001, 3000])
def test_batched_nms_both_paths(n, device):
    """Below and above torchvision's switch (1000 boxes = 4000 coordinates on CPU), with
    ties across groups, which the two paths order differently."""
    g = torch.Generator().manual_seed(n)
    boxes = (grid_boxes(n, g) * 4).to(device)
    scores = torch.randint(0, 5, (n,), generator=g).float().to(device)
    idxs = torch.randint(0, 4, (n,), generator=g).to(device)
    for threshold in (0.3, 0.7):
        assert_same(batched_nms(boxes, scores, idxs, threshold),
                    tv_ops.batched_nms(boxes, scores, idxs, threshold))


@pytest.mark.parametrize("n", [50, 1500])
def test_batched_nms_with_the_loop(n):
    g = torch.Generator().manual_seed(7)
    boxes, scores = random_boxes(n, g), torch.rand(n, generator=g)
    idxs = torch.randint(0, 3, (n,), generator=g)
    assert_same(batched_nms(boxes, scores, idxs, 0.5, nms_fn=nms_loop),
                tv_ops.batched_nms(boxes, scores, idxs, 0.5))


def test_batched_nms_groups_do_not_suppress_each_other():
    boxes = torch.tensor([[0.0, 0, 10, 10]]).repeat(4, 1)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.zeros(4, dtype=torch.int64), 0.5).tolist() == [0]


def test_nms_keeps_what_torchvision_keeps_on_many_proposals():
    """6000 overlapping boxes with saturated (tied) scores, as a trained RPN gives."""
    g = torch.Generator().manual_seed(5)
    boxes = random_boxes(6000, g, size=120, max_wh=60)
    scores = torch.sigmoid(torch.randn(6000, generator=g) * 20)  # many exact 0s and 1s
    assert (scores == 1).sum() > 10
    assert_same(nms(boxes, scores, 0.7), tv_ops.nms(boxes, scores, 0.7))


@pytest.mark.parametrize("block_size", [1, 2, 7, 64])
def test_nms_blocks_do_not_change_the_result(block_size):
    """The vectorised NMS works a block of boxes at a time: block boundaries must not matter."""
    g = torch.Generator().manual_seed(block_size)
    for trial in range(15):
        n = int(torch.randint(1, 300, (1,), generator=g))
        boxes = grid_boxes(n, g)
        scores = torch.randint(0, 4, (n,), generator=g).float()
        for threshold in (0.3, 0.7):
            assert_same(nms(boxes, scores, threshold, block_size=block_size),
                        tv_ops.nms(boxes, scores, threshold))


@pytest.mark.parametrize("max_kept", [0, 1, 5, 100, 299, 300, 10_000])
def test_nms_stops_after_max_kept_with_the_same_boxes(max_kept):
    """Stopping once max_kept boxes are kept gives torchvision's first max_kept, ties and block
    boundaries included; batched_nms passes it on to each group on both of its paths."""
    g = torch.Generator().manual_seed(max_kept)
    for n in (40, 1000, 1500):
        boxes = grid_boxes(n, g) * 4
        scores = torch.randint(0, 6, (n,), generator=g).float()
        idxs = torch.randint(0, 3, (n,), generator=g)
        for threshold in (0.3, 0.7):
            assert_same(nms(boxes, scores, threshold, block_size=64, max_kept=max_kept),
                        tv_ops.nms(boxes, scores, threshold)[:max_kept])
            assert_same(batched_nms(boxes, scores, idxs, threshold, max_kept=max_kept),
                        tv_ops.batched_nms(boxes, scores, idxs, threshold)[:max_kept])
