"""Lesson 07's explorers, headless: the RoI sampler against minifrcnn.head's targets and
sampling, the post-processing against minifrcnn.head.postprocess (itself equal to
torchvision's RoIHeads, tests/test_head.py)."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from minifrcnn.boxes import BoxCoder  # noqa: E402
from minifrcnn.course.explorers.head import (  # noqa: E402
    STAGES,
    detection_state,
    make_postprocess_explorer,
    make_sampling_explorer,
    roi_sampling_state,
)
from minifrcnn.head import HeadSettings, assign_targets, postprocess, sample_proposals  # noqa: E402
from minifrcnn.matching import BalancedSampler, Matcher  # noqa: E402


def random_boxes(gen, n, size=128.0):
    xy = torch.rand(n, 2, generator=gen) * (size - 40)
    return torch.cat((xy, xy + 6 + torch.rand(n, 2, generator=gen) * 34), dim=1)


def jittered(gen, boxes, copies):
    boxes = boxes.repeat_interleave(copies, dim=0)
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    noisy = boxes + torch.randn(boxes.shape, generator=gen) * 0.2 * size
    return torch.cat((torch.minimum(noisy[:, :2], noisy[:, 2:] - 2), noisy[:, 2:]), dim=1)


def image_sample(seed, num_gt=4, name=None):
    gen = torch.Generator().manual_seed(seed)
    gt = random_boxes(gen, num_gt)
    proposals = torch.cat((jittered(gen, gt, 40), random_boxes(gen, 200))) if num_gt else random_boxes(gen, 300)
    return dict(name=name or f"sample {seed}", image=torch.rand(3, 128, 128, generator=gen), proposals=proposals,
                gt_boxes=gt, gt_labels=torch.randint(1, 11, (num_gt,), generator=gen))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fg_iou", [0.5, 0.7])
@pytest.mark.parametrize("append_gt", [True, False])
def test_labels_equal_the_head_targets(seed, fg_iou, append_gt):
    s = image_sample(seed)
    state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], fg_iou=fg_iou, append_gt=append_gt)
    candidates = torch.cat((s["proposals"], s["gt_boxes"])) if append_gt else s["proposals"]
    expected, _ = assign_targets(candidates, s["gt_boxes"], s["gt_labels"], Matcher(fg_iou, fg_iou))
    assert torch.equal(state["candidates"], candidates)
    assert torch.equal(state["labels"], expected)
    assert state["counts"]["ignored"] == 0
    assert int(state["is_gt"].sum()) == (len(s["gt_boxes"]) if append_gt else 0)
    if append_gt:  # every appended ground truth is foreground, with its own class
        assert torch.equal(state["labels"][state["is_gt"]], s["gt_labels"])


@pytest.mark.parametrize("batch_size, fraction", [(128, 0.25), (512, 0.25), (32, 0.5), (64, 1.0)])
def test_sampling_counts(batch_size, fraction):
    s = image_sample(3)
    state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], batch_size=batch_size,
                               positive_fraction=fraction)
    c = state["counts"]
    assert c["sampled foreground"] == min(c["foreground"], int(batch_size * fraction))
    assert c["sampled background"] == min(c["background"], batch_size - c["sampled foreground"])
    assert not (state["positive"] & state["negative"]).any()
    assert (state["labels"][state["positive"]] > 0).all() and (state["labels"][state["negative"]] == 0).all()


def test_sample_equals_sample_proposals_with_the_same_seed():
    """The explorer's seeded generator draws the RoIs the head's training draws after
    torch.manual_seed(seed)."""
    s = image_sample(4)
    for seed in (0, 5):
        state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], seed=seed)
        torch.manual_seed(seed)
        rois, labels, _ = sample_proposals(s["proposals"], s["gt_boxes"], s["gt_labels"], Matcher(0.5, 0.5),
                                           BalancedSampler(128, 0.25), BoxCoder((10.0, 10.0, 5.0, 5.0)))
        sampled = state["positive"] | state["negative"]
        assert torch.equal(state["candidates"][sampled], rois)
        assert torch.equal(state["labels"][sampled], labels)


def test_hard_background_ignores_low_iou():
    s = image_sample(5)
    state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], bg_low=0.1)
    iou, labels = state["iou"], state["labels"]
    assert torch.equal(labels == -1, iou < 0.1)
    assert torch.equal(labels == 0, (iou >= 0.1) & (iou < 0.5))
    assert state["counts"]["ignored"] > 0
    assert (iou[state["negative"]] >= 0.1).all()


def test_image_without_ground_truth():
    s = image_sample(6, num_gt=0)
    state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"])
    assert state["counts"]["background"] == 300 and state["counts"]["sampled background"] == 128
    hard = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], bg_low=0.1)
    assert hard["counts"]["ignored"] == 300 and hard["counts"]["sampled background"] == 0


def head_outputs(seed, num_classes=11, rows=300):
    gen = torch.Generator().manual_seed(seed)
    proposals = random_boxes(gen, rows)
    logits = torch.randn(rows, num_classes, generator=gen) * 3
    return logits, torch.randn(rows, 4 * num_classes, generator=gen), proposals


@pytest.mark.parametrize("score, nms_t, top", [(0.05, 0.3, 100), (0.05, 0.5, 100), (0.3, 0.3, 20), (0.0, 0.7, 300)])
def test_detection_state_equals_postprocess(score, nms_t, top):
    logits, deltas, proposals = head_outputs(int(score * 100 + nms_t * 10))
    state = detection_state(logits, deltas, proposals, (128, 128), score, nms_t, top)
    settings = HeadSettings(score_thresh=score, nms_thresh=nms_t, detections_per_img=top)
    expected = postprocess(logits, deltas, proposals, (128, 128), BoxCoder((10.0, 10.0, 5.0, 5.0)), settings)
    for key in ("boxes", "scores", "labels"):
        assert torch.equal(state[key], expected[key]), key
    counts = [state["counts"][name] for name in STAGES]
    assert counts[0] == 300 and counts[1] == 3000
    assert all(a >= b for a, b in zip(counts[1:], counts[2:]))
    assert counts[-1] == len(expected["boxes"])


def test_class_agnostic_nms_keeps_fewer():
    logits, deltas, proposals = head_outputs(7)
    per_class = detection_state(logits, deltas, proposals, (128, 128), per_class_nms=True, detections_per_image=1000)
    agnostic = detection_state(logits, deltas, proposals, (128, 128), per_class_nms=False, detections_per_image=1000)
    assert len(agnostic["boxes"]) < len(per_class["boxes"])
    assert torch.equal(agnostic["before_boxes"], per_class["before_boxes"])


def collection(figure, gid):
    return next(c for c in figure.axes[0].collections if c.get_gid() == gid)


def test_sampling_explorer_headless():
    samples = [image_sample(8, name="a"), image_sample(9, num_gt=2, name="b")]
    explorer = make_sampling_explorer(samples)
    assert explorer.redraws == 1 and len(explorer.figure.axes) == 2
    c = explorer.state["counts"]
    assert len(collection(explorer.figure, "sampled foreground").get_paths()) == c["sampled foreground"]
    assert len(collection(explorer.figure, "sampled background").get_paths()) == c["sampled background"]
    before = explorer.state["negative"].clone()
    explorer.controls["seed"].value = 3
    assert not torch.equal(before, explorer.state["negative"])
    explorer.controls["batch_size"].value = 512
    assert explorer.state["counts"]["sampled background"] > c["sampled background"]
    explorer.controls["bg_low"].value = 0.1
    assert explorer.state["counts"]["ignored"] > 0 and "[0.10, 0.50)" in explorer.figure.axes[0].get_title()
    explorer.controls["append_gt"].value = False
    assert not explorer.state["is_gt"].any() and "NO ground truth" in explorer.figure.axes[0].get_title()
    explorer.controls["image"].value = 1
    assert explorer.state["name"] == "b" and explorer.redraws == 6


def test_postprocess_explorer_headless():
    samples = []
    for seed in (10, 11):
        logits, deltas, proposals = head_outputs(seed)
        samples.append(dict(name=f"s{seed}", image=torch.rand(3, 128, 128), class_logits=logits, box_deltas=deltas,
                            proposals=proposals, gt_boxes=proposals[:3]))
    names = ("bg",) + tuple(str(d) for d in range(10))
    explorer = make_postprocess_explorer(samples, class_names=names)
    assert len(explorer.figure.axes) == 3 and len(explorer.state["boxes"]) == 100
    captions = [t.get_text() for t in explorer.figure.axes[1].texts]
    assert len(captions) == 12 and captions[0].split()[0] in names
    explorer.controls["score_threshold"].value = 0.5
    high = explorer.state["counts"]["score > threshold"]
    assert high < explorer.state["counts"]["(proposal, class) pairs"] and (explorer.state["scores"] > 0.5).all()
    explorer.controls["per_class_nms"].value = False
    assert "class-AGNOSTIC" in explorer.figure.axes[1].get_title()
    explorer.controls["detections_per_image"].value = 5
    assert len(explorer.state["boxes"]) <= 5
