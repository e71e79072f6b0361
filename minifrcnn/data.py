"""The course data: handwritten digits on clutter, and a few real photos.

Both come as COCO-style JSON files (boxes as ``[x, y, width, height]`` in pixels)
and load into exactly the form torchvision detectors take::

    image:  float32 tensor (3, H, W), values in [0, 1]
    target: {"boxes": float32 (N, 4) as (x1, y1, x2, y2), "labels": int64 (N,), "image_id": int}

Label 0 is the background in torchvision detectors, so the digit d has label
d + 1, and ``CLASS_NAMES[label]`` names any label. See ``data/README.md`` for
where the data come from and how ``data/digits/`` is regenerated.
"""
import contextlib
import io
import json
import math
import numbers
import os
from pathlib import Path

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# The course's data live beside the package in a checkout (data/). A copy installed with
# `pip install .` has no data folder beside it: MINIFRCNN_DATA then points at one.
DATA_DIR = Path(os.environ.get("MINIFRCNN_DATA") or Path(__file__).resolve().parent.parent / "data")


def course_data(*parts):
    """``DATA_DIR / parts``, or a one-line error saying where the course data are looked for."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"no course data at {path}: run from a checkout of minifrcnn (its data/ folder), "
                                f"or set MINIFRCNN_DATA to that folder")
    return path


CLASS_NAMES = ("__background__",) + tuple(str(d) for d in range(10))


def read_coco(path):
    """Load a COCO detection JSON file and check everything a detector relies on.

    Args:
        path: the JSON file.

    Returns:
        dict with lists "images", "annotations" and "categories".

    Raises:
        ValueError: naming the file and the offending entry, if the file is not
            JSON, lacks a key, has ids that are not unique integers, an image
            size that is not positive, an unknown image_id or category_id, or
            a bbox that is not 4 numbers with width, height > 0 inside its image.
    """
    path = Path(path)

    def fail(message):
        raise ValueError(f"{path}: {message}")

    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, not a file (give the COCO annotation file, a .json file)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a COCO annotation file is a JSON file; check the path)")
    try:
        coco = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        fail(f"not valid JSON ({e})")
    except UnicodeDecodeError:
        fail("not a text file, so not JSON (give the COCO annotation file, a .json file)")
    if not isinstance(coco, dict):
        fail("top level must be a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            fail(f'missing list "{key}" (a COCO detection file has "images", "annotations" and "categories")')

    def check_entries(key, required):
        """Check each entry has the required keys and a unique id; return {id: entry}."""
        by_id = {}
        for i, entry in enumerate(coco[key]):
            where = f"{key}[{i}]"
            if not isinstance(entry, dict):
                fail(f"{where} is not an object: {entry!r}")
            missing = [k for k in required if k not in entry]
            if missing:
                fail(f"{where} lacks {', '.join(missing)}: {entry}")
            if not isinstance(entry["id"], int) or isinstance(entry["id"], bool):
                fail(f"{where} id must be an integer, got {entry['id']!r}")
            if entry["id"] in by_id:
                fail(f"{where} repeats id {entry['id']!r}")
            by_id[entry["id"]] = entry
        return by_id

    images = check_entries("images", ("id", "file_name", "width", "height"))
    for i, image in enumerate(coco["images"]):
        if not all(isinstance(image[k], int) and image[k] > 0 for k in ("width", "height")):
            fail(f"images[{i}] width and height must be positive integers: {image}")
    categories = check_entries("categories", ("id", "name"))
    check_entries("annotations", ("id", "image_id", "category_id", "bbox"))
    for i, ann in enumerate(coco["annotations"]):
        where = f"annotations[{i}] (id {ann['id']!r})"
        if ann["image_id"] not in images:
            fail(f"{where} has unknown image_id {ann['image_id']!r}")
        if ann["category_id"] not in categories:
            fail(f"{where} has unknown category_id {ann['category_id']!r} (every category_id must be the id of "
                 f"an entry of \"categories\")")
        box = ann["bbox"]
        # bool is a Number in Python: exclude it explicitly.
        if not (isinstance(box, list) and len(box) == 4 and
                all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in box)):
            fail(f"{where} bbox must be 4 numbers [x, y, width, height], got {box!r}")
        x, y, w, h = box
        if not all(math.isfinite(v) for v in box):
            fail(f"{where} bbox {box} is not finite (NaN or infinity: fix or remove the annotation)")
        if w <= 0 or h <= 0:
            fail(f"{where} bbox {box} has width or height <= 0")
        image = images[ann["image_id"]]
        if x < 0 or y < 0 or x + w > image["width"] or y + h > image["height"]:
            fail(f"{where} bbox {box} is outside its {image['width']}x{image['height']} image")
    return coco


def _fill_empty(image, target):
    """Give images without objects boxes (0, 4) and labels (0,); make boxes float32.

    torchvision's COCO wrapper returns only {"image_id"} for such images, and
    keeps integer boxes as int64: detectors want neither.
    """
    if "boxes" not in target:
        target["boxes"] = tv_tensors.BoundingBoxes(
            torch.zeros(0, 4), format="XYXY", canvas_size=tuple(F.get_size(image)))
        target["labels"] = torch.zeros(0, dtype=torch.int64)
    target["boxes"] = target["boxes"].to(torch.float32)
    return image, target


def default_transforms():
    """PIL image -> float32 tensor (3, H, W) in [0, 1]; boxes and labels pass through."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def load_digits(split="train", root=None, transforms=None):
    """The digits detection data set: 128x128 images with up to 6 digits each.

    Args:
        split: "train" (1200 images), "val" (200) or "test" (200).
        root: folder holding ``{split}.json`` and ``{split}/``; default ``DATA_DIR / "digits"``.
        transforms: a torchvision.transforms.v2 transform called as
            ``transforms(image, target)`` on the PIL image and its target;
            default ``default_transforms()``.

    Returns:
        A torchvision ``CocoDetection`` wrapped for transforms v2. Item i is
        ``(image, target)``: image float32 (3, H, W) in [0, 1]; target
        {"boxes": float32 BoundingBoxes (N, 4) XYXY, "labels": int64 (N,),
        "image_id": int}. Images without digits give boxes (0, 4).
    """
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    root = Path(root) if root is not None else course_data("digits")
    ann_file = root / f"{split}.json"
    read_coco(ann_file)                                   # clear errors before pycocotools'
    transforms = v2.Compose([_fill_empty, transforms or default_transforms()])
    with contextlib.redirect_stdout(io.StringIO()):      # pycocotools prints progress
        dataset = CocoDetection(root / split, ann_file, transforms=transforms)
    return wrap_dataset_for_transforms_v2(dataset, target_keys=("image_id", "boxes", "labels"))


def load_photos(root=None):
    """The hand-annotated real photos for the visual lessons.

    Args:
        root: folder with ``annotations.json`` and the images; default ``DATA_DIR / "photos"``.

    Returns:
        (photos, class_names): photos is a list of (image, target), image float32
        (3, H, W) in [0, 1] and target {"boxes": float32 (N, 4) XYXY, "labels":
        int64 (N,), "names": list of N str, "image_id": int, "file_name": str};
        class_names is a tuple with "__background__" first, so that
        ``class_names[label]`` names a label.
    """
    root = Path(root) if root is not None else course_data("photos")
    coco = read_coco(root / "annotations.json")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    # Indexable by label; an id the file skips gets the name "".
    class_names = ("__background__",) + tuple(names.get(i, "") for i in range(1, max(names) + 1))
    photos = []
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        image = F.to_dtype(F.pil_to_tensor(Image.open(root / img["file_name"]).convert("RGB")),
                           torch.float32, scale=True)
        xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        photos.append((image, {
            "boxes": torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1),
            "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
            "names": [names[a["category_id"]] for a in anns],
            "image_id": img["id"], "file_name": img["file_name"]}))
    return photos, class_names


class CocoDataset:
    """Any COCO-format detection data set: your own images and boxes, for the detector the
    course built (``python -m minifrcnn train --train FILE --images DIR``).

    Item ``i`` is ``(image, target)`` as :func:`load_digits` gives them: ``image`` float32
    ``(3, H, W)`` in [0, 1] at the file's own size (grey, RGBA and palette images become RGB;
    the detector's ``min_size`` / ``max_size`` resize them), ``target`` ``{"boxes" (N, 4)
    x1, y1, x2, y2, "labels" (N,), "image_id"}``. Images without annotations give ``(0, 4)``
    boxes: they teach the detector background.

    Labels are ``1..K`` in the order of the category ids (0 is the background), whatever the
    ids: a file with categories 3, 7 and 12 gives labels 1, 2 and 3. ``category_ids[label - 1]``
    maps back, and a checkpoint records both lists, so that detections are written with the
    file's own ids.

    Args:
        annotation_file: a COCO JSON file (checked by :func:`read_coco`).
        images_dir: the folder that ``file_name`` is relative to.
        categories (list of dict, optional): ``[{"id", "name"}, ...]`` of the training set, for
            a val or test file: its labels then follow the training set's. Every category the
            file uses must be among them.
    """

    def __init__(self, annotation_file, images_dir, categories=None):
        self.annotation_file, self.images_dir = Path(annotation_file), Path(images_dir)
        coco = read_coco(self.annotation_file)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"{self.images_dir}: no such folder (the folder holding the images that "
                                    f"{self.annotation_file.name} names)")
        categories = sorted(categories or coco["categories"], key=lambda c: c["id"])
        if not categories:
            raise ValueError(f"{self.annotation_file}: no categories (a detector needs at least one class)")
        self.categories = [{"id": c["id"], "name": str(c["name"])} for c in categories]
        self.category_ids = [c["id"] for c in self.categories]
        self.class_names = ("__background__",) + tuple(c["name"] for c in self.categories)
        label_of = {cid: k for k, cid in enumerate(self.category_ids, 1)}
        unknown = sorted({a["category_id"] for a in coco["annotations"]} - set(label_of))
        if unknown:
            raise ValueError(f"{self.annotation_file}: category ids {unknown} are not among the training set's "
                             f"{self.category_ids} (evaluate on data with the classes the detector was trained on)")
        self.images = sorted(coco["images"], key=lambda image: image["id"])
        boxes = {image["id"]: [] for image in self.images}
        labels = {image["id"]: [] for image in self.images}
        for a in coco["annotations"]:
            if a.get("iscrowd", 0):  # COCO's crowd regions are neither objects nor background: left out
                continue
            x, y, w, h = a["bbox"]
            boxes[a["image_id"]].append([x, y, x + w, y + h])
            labels[a["image_id"]].append(label_of[a["category_id"]])
        self.targets = [{"boxes": torch.tensor(boxes[i["id"]], dtype=torch.float32).reshape(-1, 4),
                         "labels": torch.tensor(labels[i["id"]], dtype=torch.int64), "image_id": i["id"]}
                        for i in self.images]

    def __len__(self):
        return len(self.images)

    def _open(self, i):
        """Image ``i``'s file opened by PIL (its header read, not its pixels), its size checked
        against the JSON's; a clear error naming the file and the entry otherwise."""
        entry = self.images[i]
        path = self.images_dir / entry["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such image (images[{i}] of {self.annotation_file.name} names "
                                    f"it; check the images folder)")
        try:
            file = Image.open(path)
        except OSError:
            raise ValueError(f"{path}: not an image file PIL can read (images[{i}] of "
                             f"{self.annotation_file.name})") from None
        if file.size != (entry["width"], entry["height"]):
            file.close()
            raise ValueError(f"{path} is {file.size[0]}x{file.size[1]} pixels but {self.annotation_file.name} says "
                             f"{entry['width']}x{entry['height']} (fix the file's width and height)")
        return file

    def check_images(self):
        """Every image file exists, is an image and has the size the JSON states (its header is
        read, not its pixels): a mistake shows before training starts, not at step 500."""
        for i in range(len(self.images)):
            self._open(i).close()

    def read_image(self, i):
        """Image ``i`` as float32 ``(3, H, W)`` in [0, 1], checked against the size the file states."""
        with self._open(i) as file:
            try:
                rgb = file.convert("RGB")
            except OSError:  # a header PIL reads, pixels it cannot
                raise ValueError(f"{file.filename}: not an image file PIL can read (images[{i}] of "
                                 f"{self.annotation_file.name})") from None
        return F.to_dtype(F.pil_to_tensor(rgb), torch.float32, scale=True)

    def __getitem__(self, i):
        target = self.targets[i]
        return self.read_image(i), {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in target.items()}


def cache(dataset):
    """Read a whole data set into memory once: a list of ``(image, {"boxes", "labels",
    "image_id"})`` with plain tensors (not tv_tensors). Decoding the PNG files every
    epoch would cost about as much as a training step on the course's small images.
    The 1200 training images take about 240 MB as float32."""
    items = []
    for image, target in dataset:
        items.append((image.as_subclass(torch.Tensor),
                      {"boxes": target["boxes"].as_subclass(torch.Tensor).reshape(-1, 4),
                       "labels": target["labels"].as_subclass(torch.Tensor),
                       "image_id": target["image_id"]}))
    return items


def collate(batch):
    """Collate for DataLoader: [(image, target), ...] -> (images, targets) tuples.

    Detection images differ in size and box count, so they are not stacked.
    """
    return tuple(zip(*batch))
