"""Lesson 09's detection explorer, headless: at the model's own settings it shows the
model's detections; moving the sliders redoes the post-processing and the counts."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from minifrcnn.course.diagnosis import classify_detections  # noqa: E402
from minifrcnn.course.explorers.detections import (  # noqa: E402
    candidate_detections,
    detection_explorer_state,
    make_detection_explorer,
    select_detections,
    total_counts,
)
from minifrcnn.detector import DetectorConfig, FasterRCNN, detect  # noqa: E402
from minifrcnn.nms import batched_nms  # noqa: E402


def tiny_model(seed=0, **changes):
    torch.manual_seed(seed)
    config = DetectorConfig.course(backbone_weights=None, backbone_channels=(8, 16, 16), backbone_blocks=(1, 1, 1),
                                   head_hidden=32, **changes)
    model = FasterRCNN(config).eval()
    with torch.no_grad():  # spread the untrained scores, so that no two candidates tie
        model.head.box_predictor.cls_score.weight.normal_(std=0.5)
        model.head.box_predictor.bbox_pred.weight.normal_(std=0.05)
    return model


def random_images(seed, n=3):
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(n):
        images.append(torch.rand(3, 128, 128, generator=gen))
        xy = torch.rand(3, 2, generator=gen) * 70
        targets.append({"boxes": torch.cat((xy, xy + 12 + torch.rand(3, 2, generator=gen) * 40), 1),
                        "labels": torch.randint(1, 11, (3,), generator=gen)})
    return images, targets


@pytest.fixture(scope="module")
def model_and_samples():
    model = tiny_model()
    images, targets = random_images(0)
    candidates = candidate_detections(model, images)
    samples = [dict(name=f"image {i}", image=im, candidates=c, gt_boxes=t["boxes"], gt_labels=t["labels"])
               for i, (im, c, t) in enumerate(zip(images, candidates, targets))]
    return model, images, samples


def test_candidates_at_the_model_settings_give_the_model_detections(model_and_samples):
    model, images, samples = model_and_samples
    expected = detect(model, images)
    for s, det in zip(samples, expected):
        assert len(s["candidates"]["boxes"]) > len(det["boxes"])  # NMS off: more candidates
        got = select_detections(s["candidates"], model.config.box_score_thresh, model.config.box_nms_thresh,
                                model.config.box_detections_per_img)
        for key in ("boxes", "scores", "labels"):
            assert torch.allclose(got[key].float(), det[key].float(), atol=1e-5), key
    assert not model.training  # left as it was


def test_select_detections_is_threshold_nms_and_top_n():
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(60, 2, generator=gen) * 90
    candidates = {"boxes": torch.cat((xy, xy + 20), 1), "scores": torch.rand(60, generator=gen),
                  "labels": torch.randint(1, 4, (60,), generator=gen)}
    got = select_detections(candidates, 0.3, 0.4, 5)
    keep = torch.where(candidates["scores"] > 0.3)[0]
    kept = keep[batched_nms(candidates["boxes"][keep], candidates["scores"][keep], candidates["labels"][keep], 0.4)][:5]
    assert torch.equal(got["boxes"], candidates["boxes"][kept]) and len(got["boxes"]) == 5
    assert (got["scores"][:-1] >= got["scores"][1:]).all()


def test_state_classifies_the_selected_detections(model_and_samples):
    _, _, samples = model_and_samples
    s = samples[0]
    state = detection_explorer_state(s["candidates"], s["gt_boxes"], s["gt_labels"], score_threshold=0.1,
                                     nms_threshold=0.5)
    expected = classify_detections(state["boxes"], state["scores"], state["labels"], s["gt_boxes"], s["gt_labels"])
    assert state["kinds"] == expected["kinds"]
    c = state["counts"]
    assert c["tp"] + c["fp"] == c["detections"] == len(state["boxes"])
    assert c["tp"] + c["missed"] == c["objects"] == 3


def test_hand_made_state_counts():
    gt_boxes, gt_labels = torch.tensor([[10.0, 10, 50, 50], [60, 60, 100, 100]]), torch.tensor([2, 5])
    candidates = {"boxes": torch.tensor([[10.0, 10, 50, 50], [11, 10, 51, 50], [0, 100, 20, 120]]),
                  "scores": torch.tensor([0.9, 0.8, 0.3]), "labels": torch.tensor([2, 2, 7])}
    state = detection_explorer_state(candidates, gt_boxes, gt_labels, score_threshold=0.2, nms_threshold=1.0)
    assert state["kinds"] == ["correct", "duplicate", "background"]
    assert (state["counts"]["tp"], state["counts"]["fp"], state["counts"]["missed"]) == (1, 2, 1)
    state = detection_explorer_state(candidates, gt_boxes, gt_labels, score_threshold=0.5, nms_threshold=0.3)
    assert state["kinds"] == ["correct"]  # NMS removed the duplicate, the threshold the background
    totals = total_counts([state, state])
    assert totals["tp"] == 2 and totals["precision"] == 1.0 and totals["recall"] == 0.5


def test_explorer_redraws_on_slider_changes(model_and_samples):
    _, _, samples = model_and_samples
    explorer = make_detection_explorer(samples, score_threshold=0.1, nms_threshold=0.3)
    first = explorer.state
    assert explorer.redraws == 1 and first["name"] == "image 0" and first["num_images"] == 3
    explorer.controls["nms_threshold"].value = 0.9  # looser NMS: more detections survive
    assert explorer.redraws == 2 and explorer.state["counts"]["detections"] >= first["counts"]["detections"]
    explorer.controls["score_threshold"].value = 0.95  # nothing is that sure: everything missed
    assert explorer.state["counts"]["detections"] == 0 and explorer.state["counts"]["missed"] == 3
    assert explorer.state["totals"]["recall"] == 0.0
    explorer.controls["image"].value = 2
    assert explorer.state["name"] == "image 2" and explorer.redraws == 4
    explorer.controls["score_threshold"].value = 0.1
    explorer.controls["nms_threshold"].value = 0.3
    again = explorer.state
    assert explorer.figure is not None and len(explorer.figure.axes) == 3
    explorer.controls["image"].value = 0
    assert torch.equal(explorer.state["boxes"], first["boxes"]) and explorer.state["kinds"] == first["kinds"]
    assert again["totals"] == first["totals"]  # the totals cover all images whichever is shown


def test_error_gallery_shows_the_most_confident_errors_of_each_kind():
    import matplotlib.pyplot as plt

    from minifrcnn.course.diagnosis import diagnose
    from minifrcnn.course.explorers.detections import describe_error, draw_error_gallery
    from minifrcnn.data import CLASS_NAMES

    gt = [{"boxes": torch.tensor([[10.0, 10, 50, 50], [70, 70, 110, 110]]), "labels": torch.tensor([4, 8])}]
    det = [{"boxes": torch.tensor([[11.0, 10, 51, 50], [10, 12, 50, 52], [10, 10, 30, 50], [70, 71, 110, 111],
                                   [0, 80, 20, 120], [72, 70, 112, 110]]),
            "scores": torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.95]), "labels": torch.tensor([4, 4, 4, 2, 8, 3])}]
    result = diagnose(det, gt)
    assert [e["kind"] for e in result["errors"]] == ["duplicate", "mislocalised", "confusion", "confusion",
                                                     "background", "missed"]
    assert result["errors"][2]["score"] == pytest.approx(0.95)  # most confident first
    assert result["errors"][-1]["cause"] == "confusion"
    assert describe_error(result["errors"][2], gt[0]["labels"], CLASS_NAMES) == "'2' 0.95 on a '7' (IoU 0.90)"
    assert describe_error(result["errors"][-1], gt[0]["labels"], CLASS_NAMES) == "missed '7': called another digit"
    fig = plt.figure()
    shown = draw_error_gallery(fig, result["errors"], [torch.rand(3, 128, 128)], gt, CLASS_NAMES, per_kind=1)
    assert {k: len(v) for k, v in shown.items()} == {"duplicate": 1, "mislocalised": 1, "confusion": 1,
                                                     "background": 1, "missed": 1}
    assert shown["confusion"][0]["score"] == pytest.approx(0.95)
    assert len(fig.axes) == 5 and fig.axes[2].get_title() == "'2' 0.95 on a '7' (IoU 0.90)"
    plt.close(fig)
