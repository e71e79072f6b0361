"""minifrcnn.matching against torchvision's Matcher and BalancedPositiveNegativeSampler."""
import pytest
import torch
import torchvision.ops as tv_ops
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TvSampler
from torchvision.models.detection._utils import Matcher as TvMatcher

from minifrcnn.anchors import AnchorGenerator
from minifrcnn.boxes import box_iou
from minifrcnn.matching import (
    BELOW_LOW_THRESHOLD,
    BETWEEN_THRESHOLDS,
    BalancedSampler,
    Matcher,
    head_matcher,
    match_labels,
    rpn_matcher,
)


def random_iou(gen, num_gt, num_anchors):
    """A realistic IoU matrix: random boxes against course-scale anchors."""
    anchors = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))[:num_anchors]
    xy = torch.rand(num_gt, 2, generator=gen) * 100
    wh = torch.rand(num_gt, 2, generator=gen) * 50 + 8
    return box_iou(torch.cat((xy, xy + wh), 1), anchors)


@pytest.mark.parametrize("allow_low_quality", [True, False])
@pytest.mark.parametrize("high,low", [(0.7, 0.3), (0.5, 0.5), (0.5, 0.1), (0.9, 0.0)])
@pytest.mark.parametrize("num_gt", [1, 3, 12])
def test_matcher_equals_torchvision_random(allow_low_quality, high, low, num_gt):
    gen = torch.Generator().manual_seed(num_gt)
    iou = random_iou(gen, num_gt, 2304)
    ours = Matcher(high, low, allow_low_quality)(iou)
    theirs = TvMatcher(high, low, allow_low_quality)(iou)
    assert ours.dtype == torch.int64
    assert torch.equal(ours, theirs)


def test_matcher_thresholds_and_band():
    iou = torch.tensor([[0.8, 0.7, 0.69, 0.3, 0.29, 0.0]])
    matches = Matcher(0.7, 0.3, allow_low_quality_matches=False)(iou)
    assert matches.tolist() == [0, 0, BETWEEN_THRESHOLDS, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD,
                                BELOW_LOW_THRESHOLD]
    assert match_labels(matches).tolist() == [1.0, 1.0, -1.0, -1.0, 0.0, 0.0]


def test_best_anchor_rule_keeps_ties():
    # gt 1 overlaps nothing above 0.7: its two tied best anchors (0.4) become positive.
    iou = torch.tensor([[0.9, 0.1, 0.1, 0.0],
                        [0.0, 0.4, 0.4, 0.2]])
    without = Matcher(0.7, 0.3)(iou)
    with_rule = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    assert without.tolist() == [0, BETWEEN_THRESHOLDS, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD]
    assert with_rule.tolist() == [0, 1, 1, BELOW_LOW_THRESHOLD]
    assert torch.equal(with_rule, TvMatcher(0.7, 0.3, True)(iou))


def test_no_ground_truth_means_all_negative():
    iou = torch.zeros(0, 10)
    with pytest.raises(ValueError):  # torchvision raises; its RPN special-cases empty images
        TvMatcher(0.7, 0.3, True)(iou)
    assert rpn_matcher()(iou).tolist() == [BELOW_LOW_THRESHOLD] * 10
    assert rpn_matcher()(torch.zeros(0, 0)).shape == (0,)


def test_no_anchors_gives_empty_matches():
    assert rpn_matcher()(torch.zeros(3, 0)).shape == (0,)


def test_zero_area_ground_truth_gives_no_nan():
    gt = torch.tensor([[10.0, 10.0, 10.0, 10.0], [0.0, 0.0, 20.0, 20.0]])
    anchors = AnchorGenerator((16,), (1.0,))((32, 32), (2, 2))
    matches = rpn_matcher()(box_iou(gt, anchors))
    assert (matches != 0).all()  # the zero-area box never wins an anchor


def test_settings_and_errors():
    assert (rpn_matcher().high_threshold, rpn_matcher().low_threshold) == (0.7, 0.3)
    assert rpn_matcher().allow_low_quality_matches and not head_matcher().allow_low_quality_matches
    with pytest.raises(ValueError, match="low_threshold <= high_threshold"):
        Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match=r"\(G, A\)"):
        Matcher(0.7, 0.3)(torch.zeros(5))


@pytest.mark.parametrize("batch_size,fraction", [(256, 0.5), (128, 0.25), (16, 1.0)])
@pytest.mark.parametrize("num_pos,num_neg", [(300, 5000), (3, 5000), (0, 100), (50, 10), (0, 0)])
def test_sampler_equals_torchvision_with_same_seed(batch_size, fraction, num_pos, num_neg):
    gen = torch.Generator().manual_seed(1)
    labels = torch.cat((torch.ones(num_pos), torch.zeros(num_neg), -torch.ones(40)))
    labels = labels[torch.randperm(len(labels), generator=gen)]
    torch.manual_seed(123)
    pos, neg = BalancedSampler(batch_size, fraction)(labels)
    torch.manual_seed(123)
    tv_pos, tv_neg = TvSampler(batch_size, fraction)([labels])
    assert torch.equal(pos, tv_pos[0].bool()) and torch.equal(neg, tv_neg[0].bool())
    expected_pos = min(num_pos, int(batch_size * fraction))
    assert int(pos.sum()) == expected_pos
    assert int(neg.sum()) == min(num_neg, batch_size - expected_pos)
    assert not (pos & neg).any() and (labels[pos] == 1).all() and (labels[neg] == 0).all()


def test_sampler_counts_class_labels_as_positive_and_uses_generator():
    labels = torch.tensor([0, 3, 0, 7, -1, 0, 1, 0])  # head labels: classes >= 1 are foreground
    sampler = BalancedSampler(4, 0.5)
    pos, neg = sampler(labels, generator=torch.Generator().manual_seed(0))
    pos2, neg2 = sampler(labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pos, pos2) and torch.equal(neg, neg2)
    assert int(pos.sum()) == 2 and int(neg.sum()) == 2 and not (pos & (labels < 1)).any()


def test_sampler_bad_settings():
    with pytest.raises(ValueError):
        BalancedSampler(0, 0.5)
    with pytest.raises(ValueError):
        BalancedSampler(256, 1.5)


def test_matcher_on_real_boxes_equals_torchvision_iou_pipeline():
    gen = torch.Generator().manual_seed(5)
    anchors = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))
    xy = torch.rand(6, 2, generator=gen) * 90
    gt = torch.cat((xy, xy + torch.rand(6, 2, generator=gen) * 40 + 10), 1)
    assert torch.equal(rpn_matcher()(box_iou(gt, anchors)), TvMatcher(0.7, 0.3, True)(tv_ops.box_iou(gt, anchors)))


def test_the_course_data_labels_anchors_alike_in_float32_and_float64():
    """Lesson 03's claim: on every image of the three splits, the paper's rule (with the
    best-anchor rule, where a float32 tie could differ) gives the same anchor labels from a
    float32 IoU matrix as from a float64 one."""
    from minifrcnn.data import DATA_DIR, read_coco
    anchors = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))
    images = 0
    for split in ("train", "val", "test"):
        coco = read_coco(DATA_DIR / "digits" / f"{split}.json")
        boxes = {}
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
        for info in coco["images"]:
            gt = torch.tensor(boxes.get(info["id"], []), dtype=torch.float64).reshape(-1, 4)
            labels = [match_labels(rpn_matcher()(box_iou(gt.to(dtype), anchors.to(dtype))))
                      for dtype in (torch.float32, torch.float64)]
            assert torch.equal(*labels), (split, info["id"])
            images += 1
    assert images == 1600
