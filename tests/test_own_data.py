"""Your own COCO data, end to end: ``python -m minifrcnn train --train FILE --images DIR``,
``evaluate --data``, ``detect --data``, on a small data set of drawn shapes that the test
makes: images of several sizes and modes (RGB, grey, RGBA, palette), category ids that are
not contiguous (3, 7, 12) and an image without annotations."""
import json

import pytest
import torch
from PIL import Image, ImageDraw

from minifrcnn.__main__ import main
from minifrcnn.data import CocoDataset, cache
from minifrcnn.training import load_checkpoint

CATEGORIES = [{"id": 12, "name": "disc"}, {"id": 3, "name": "square"}, {"id": 7, "name": "bar"}]  # not sorted either
SIZES_AND_MODES = [((160, 120), "RGB"), ((128, 128), "L"), ((96, 144), "RGBA"), ((140, 100), "P")]


def draw_shapes(folder, name, count, seed):
    """``count`` images of shapes and their COCO file ``folder/name.json``; the last image is empty."""
    gen = torch.Generator().manual_seed(seed)
    images, annotations = [], []
    for i in range(count):
        (w, h), mode = SIZES_AND_MODES[i % len(SIZES_AND_MODES)]
        canvas = Image.new("RGB", (w, h), (int(torch.randint(0, 80, (1,), generator=gen)),) * 3)
        pen = ImageDraw.Draw(canvas)
        shapes = 0 if i == count - 1 else 1 + int(torch.randint(0, 3, (1,), generator=gen))
        for _ in range(shapes):
            category = CATEGORIES[int(torch.randint(0, 3, (1,), generator=gen))]
            side = int(torch.randint(20, 40, (1,), generator=gen))
            x, y = (int(torch.randint(0, limit - side, (1,), generator=gen)) for limit in (w, h))
            box = {"disc": (x, y, x + side, y + side), "square": (x, y, x + side, y + side),
                   "bar": (x, y, x + side, y + side // 3)}[category["name"]]
            colour = (255, 200, 40)
            (pen.ellipse if category["name"] == "disc" else pen.rectangle)(box, fill=colour)
            annotations.append({"id": len(annotations) + 1, "image_id": 100 + i, "category_id": category["id"],
                                "bbox": [box[0], box[1], box[2] - box[0] + 1, box[3] - box[1] + 1], "iscrowd": 0,
                                "area": (box[2] - box[0] + 1) * (box[3] - box[1] + 1)})
        file_name = f"{name}_{i}.png"
        (canvas.convert(mode) if mode != "P" else canvas.convert("P", palette=Image.ADAPTIVE)).save(folder / file_name)
        images.append({"id": 100 + i, "file_name": file_name, "width": w, "height": h})
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    (folder / "images").mkdir()
    return draw_shapes(folder / "images", "train", 12, 0), draw_shapes(folder / "images", "val", 5, 1), folder


def test_coco_dataset_maps_category_ids_to_labels_and_converts_every_mode(shapes):
    train_file, _, folder = shapes
    data = CocoDataset(train_file, folder / "images")
    assert data.category_ids == [3, 7, 12] and data.class_names == ("__background__", "square", "bar", "disc")
    coco = json.loads(train_file.read_text())
    for i, (image, target) in enumerate(data):
        entry = data.images[i]
        assert image.dtype == torch.float32 and image.shape == (3, entry["height"], entry["width"])
        anns = [a for a in coco["annotations"] if a["image_id"] == entry["id"]]
        assert [data.category_ids[label - 1] for label in target["labels"].tolist()] == [a["category_id"] for a in anns]
        x, y, w, h = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4).unbind(1)
        assert torch.equal(target["boxes"], torch.stack((x, y, x + w, y + h), dim=1))
    assert len(data[len(data) - 1][1]["boxes"]) == 0  # the image without annotations: background only
    assert len(cache(data)) == len(data)


def test_a_val_file_follows_the_training_sets_labels(shapes, tmp_path):
    train_file, val_file, folder = shapes
    train = CocoDataset(train_file, folder / "images")
    val = CocoDataset(val_file, folder / "images", categories=train.categories)
    assert val.category_ids == train.category_ids
    other = json.loads(val_file.read_text())
    other["categories"].append({"id": 99, "name": "star"})
    other["annotations"][0]["category_id"] = 99
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match=r"category ids \[99\] are not among the training set's \[3, 7, 12\]"):
        CocoDataset(tmp_path / "other.json", folder / "images", categories=train.categories)


def test_train_evaluate_and_detect_on_your_own_data(shapes, tmp_path, capsys):
    train_file, val_file, folder = shapes
    images, out = folder / "images", tmp_path / "run"
    assert main(["--device", "cpu", "train", "--train", str(train_file), "--images", str(images), "--val",
                 str(val_file), "--evaluate", "--steps", "3", "--batch-size", "2", "--min-size", "128",
                 "--max-size", "160", "--backbone-weights", "none", "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["config"]["num_classes"] == 4 and state["config"]["anchor_sizes"] == (16, 32, 64)
    assert state["data"]["class_names"] == ["__background__", "square", "bar", "disc"]
    assert state["data"]["category_ids"] == [3, 7, 12]
    metrics = json.loads((out / "metrics_val.json").read_text())
    assert 0 <= metrics["map50"] <= 1 and metrics["data"] == str(val_file)

    assert main(["--device", "cpu", "evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--data", str(val_file),
                 "--images", str(images)]) == 0
    assert main(["--device", "cpu", "detect", "--checkpoint", str(out / "checkpoint.pt"), "--data", str(val_file),
                 "--images", str(images), "--score", "0", "--out-dir", str(out / "detections")]) == 0
    results = json.loads((out / "detections" / "detections.json").read_text())
    assert len(list((out / "detections").glob("val_*_detections.png"))) == 5
    assert {r["category_id"] for r in results} <= {3, 7, 12}
    assert {r["image_id"] for r in results} <= set(range(100, 105))

    from faster_coco_eval import COCO, COCOeval_faster  # the results file is read as is
    truth = COCO(str(val_file))
    evaluation = COCOeval_faster(truth, truth.loadRes(str(out / "detections" / "detections.json")), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert -1 <= evaluation.stats[0] <= 1
    capsys.readouterr()


def test_detect_on_image_files_names_the_checkpoints_classes(shapes, tmp_path):
    train_file, _, folder = shapes
    out = tmp_path / "run"
    assert main(["--device", "cpu", "train", "--train", str(train_file), "--images", str(folder / "images"),
                 "--steps", "1", "--batch-size", "2", "--backbone-weights", "none", "--out", str(out)]) == 0
    grey = folder / "images" / "train_1.png"
    assert main(["--device", "cpu", "detect", str(grey), "--checkpoint", str(out / "checkpoint.pt"), "--score",
                 "0", "--out-dir", str(out / "det")]) == 0
    results = json.loads((out / "det" / "detections.json").read_text())
    assert all(r["image_id"] == 1 and r["category_id"] in (3, 7, 12) for r in results)
    assert (out / "det" / "train_1_detections.png").exists()


def test_a_torchvision_backbone_with_local_weights_from_the_command_line(shapes, tmp_path):
    """--backbone resnet18 --backbone-weights FILE: the file's weights (a whole classifier's state
    dict, as torchvision saves them) become the backbone's; nothing is downloaded."""
    from torchvision.models import resnet18
    train_file, _, folder = shapes
    torch.manual_seed(3)
    weights = tmp_path / "resnet18.pth"
    torch.save(resnet18().state_dict(), weights)
    out = tmp_path / "run"
    assert main(["--device", "cpu", "train", "--train", str(train_file), "--images", str(folder / "images"),
                 "--steps", "1", "--batch-size", "2", "--min-size", "96", "--max-size", "128", "--backbone",
                 "resnet18", "--backbone-weights", str(weights), "--out", str(out)]) == 0
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["config"]["backbone"] == "resnet18" and state["config"]["backbone_weights"] == str(weights)
    first_conv = torch.load(weights, weights_only=True)["conv1.weight"]
    assert torch.equal(state["model"]["backbone.0.weight"], first_conv)  # fixed stages keep the file's weights
