"""Lesson 05's proposals explorer, headless: its state equals the package's proposal
layer, its funnel counts are consistent, and its controls redraw the right boxes."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from minifrcnn.anchors import AnchorGenerator  # noqa: E402
from minifrcnn.boxes import box_iou  # noqa: E402
from minifrcnn.course.explorers.proposals import STAGES, make_proposal_explorer, proposal_samples, proposal_state  # noqa: E402
from minifrcnn.course.train_rpn import make_rpn_model, recall_vs_proposals  # noqa: E402
from minifrcnn.rpn import generate_proposals  # noqa: E402

ANCHORS = AnchorGenerator((16, 32, 64), (0.5, 1.0, 2.0))((128, 128), (16, 16))



def fake_sample(seed, name="fake"):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(3, 2, generator=g) * 80
    gt = torch.cat((xy, xy + torch.rand(3, 2, generator=g) * 30 + 10), 1)
    # objectness high for anchors that overlap the ground truth: a stand-in for a trained RPN
    objectness = box_iou(gt, ANCHORS).max(0).values * 12 - 6 + torch.randn(ANCHORS.shape[0], generator=g)
    deltas = torch.randn(ANCHORS.shape[0], 4, generator=g) * 0.1
    return dict(name=name, image=torch.rand(3, 128, 128, generator=g), gt_boxes=gt, anchors=ANCHORS,
                objectness=objectness, deltas=deltas, image_size=(128, 128))


@pytest.mark.parametrize("settings", [dict(), dict(pre_nms_top_n=200, post_nms_top_n=50, nms_thresh=0.5),
                                      dict(score_thresh=0.5, min_size=4.0)])
def test_state_equals_the_proposal_layer(settings):
    s = fake_sample(0)
    state = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"], **settings)
    full = dict(pre_nms_top_n=1000, post_nms_top_n=300, nms_thresh=0.7, score_thresh=0.0, min_size=1e-3)
    full.update(settings)
    boxes, scores = generate_proposals(s["anchors"], s["objectness"][None], s["deltas"][None], [s["image_size"]],
                                       **full)
    assert torch.equal(state["proposals"], boxes[0]) and torch.equal(state["scores"], scores[0])
    assert torch.equal(state["boxes"], boxes[0])  # after_nms=True shows the proposals
    recall = recall_vs_proposals(boxes, [s["gt_boxes"]], top_ns=(full["post_nms_top_n"],))
    assert state["recall"] == {t: pytest.approx(float(recall[t][0])) for t in (0.5, 0.7)}


def test_funnel_counts():
    s = fake_sample(1)
    state = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"],
                           pre_nms_top_n=800, post_nms_top_n=100, score_thresh=0.2)
    counts = state["counts"]
    assert tuple(counts) == STAGES
    values = list(counts.values())
    assert values[0] == 2304 and values[1] == 800
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert counts["post-NMS top-N"] == state["proposals"].shape[0] <= 100
    assert (state["scores"] >= 0.2).all()


def test_before_nms_keeps_the_best_boxes_with_their_duplicates():
    s = fake_sample(2)
    before = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"],
                            post_nms_top_n=100, after_nms=False)
    after = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"],
                           post_nms_top_n=100, after_nms=True)
    assert before["boxes"].shape[0] == 100
    assert torch.all(before["box_scores"][:-1] >= before["box_scores"][1:])
    iou = box_iou(before["boxes"], before["boxes"]).fill_diagonal_(0)
    assert (iou > 0.7).any()  # duplicates: what NMS removes
    iou = box_iou(after["boxes"], after["boxes"]).fill_diagonal_(0)
    assert not (iou > 0.7).any()
    assert torch.equal(before["proposals"], after["proposals"])


def test_explorer_controls_redraw():
    explorer = make_proposal_explorer([fake_sample(3, "a"), fake_sample(4, "b")])
    state = explorer.state
    ax = explorer.figure.axes[0]
    lines = [c for c in ax.collections if c.get_gid() == "proposals"]
    assert len(lines) == 1 and len(lines[0].get_segments()) == state["boxes"].shape[0]
    assert len([c for c in ax.collections if c.get_gid() == "gt_boxes"][0].get_segments()) == 3
    explorer.controls["post_nms_top_n"].value = 5
    assert explorer.state["boxes"].shape[0] == 5 and explorer.redraws == 2
    explorer.controls["after_nms"].value = False
    assert "NO NMS" in explorer.figure.axes[0].get_title()
    explorer.controls["score_thresh"].value = 0.99
    assert explorer.state["counts"]["score >= threshold"] < explorer.state["counts"]["clipped, >= min size"]
    explorer.controls["image"].value = 1
    assert explorer.state["name"] == "b"
    explorer.controls["nms_thresh"].value = 0.3
    assert explorer.state["nms_thresh"] == 0.3


def test_proposal_samples_from_a_model():
    torch.manual_seed(0)
    model = make_rpn_model()
    g = torch.Generator().manual_seed(5)
    data = [(torch.rand(3, 128, 128, generator=g), {"boxes": torch.tensor([[10.0, 10, 50, 60]])})]
    samples = proposal_samples(model, data, [0])
    s = samples[0]
    assert s["objectness"].shape == (2304,) and s["deltas"].shape == (2304, 4) and s["image_size"] == (128, 128)
    proposals = model([data[0][0]])[0]
    state = proposal_state(s["anchors"], s["objectness"], s["deltas"], s["image_size"], s["gt_boxes"])
    assert torch.equal(state["proposals"], proposals[0])  # the model's eval-mode proposals
