"""The paper's timing table (section 4.1; table 5 of the TPAMI version): the inference
time of a detector's three parts, per image; lesson 11.
"""
import time

import numpy as np
import torch

from ..utils import get_device

# Paper, section 4.1 (table 5 of the TPAMI version): ms per image on a K40 GPU.
PAPER_TIMING = {"VGG-16": {"conv": 141, "proposals": 10, "region-wise": 47, "total": 198},
                "ZF": {"conv": 31, "proposals": 3, "region-wise": 25, "total": 59}}


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_parts(model, images, device=None, warmup=3, repeats=3):
    """Inference time of each part of a detector, per image, like the paper's timing table.

    Each image runs alone (a batch of one, as in the paper): **conv** = image preparation
    + backbone, **proposals** = RPN head + proposal layer (NMS included), **region-wise**
    = RoI op + box head + post-processing (per-class NMS included). The first ``warmup``
    images run untimed; then every image is timed ``repeats`` times.

    Args:
        model (FasterRCNN).
        images (list of Tensor): ``(3, H, W)``.
        device: default ``minifrcnn.get_device()`` (a GPU when present).

    Returns:
        dict: median milliseconds per image for ``"conv"``, ``"proposals"``,
        ``"region-wise"`` and ``"total"`` (the median of the totals), plus ``"device"``,
        ``"threads"``, ``"images"``.
    """
    device = get_device(device) if device is None or isinstance(device, str) else device
    was_training = model.training
    model.to(device).eval()
    parts = {"conv": [], "proposals": [], "region-wise": [], "total": []}

    def run(image):
        _synchronize(device)
        t0 = time.perf_counter()
        batch, _, original_sizes = model.prepare([image])
        features = model.backbone(batch.tensors)
        _synchronize(device)
        t1 = time.perf_counter()
        proposals, _ = model.rpn(batch, features)
        _synchronize(device)
        t2 = time.perf_counter()
        detections, _ = model.head(features, proposals, batch.image_sizes)
        model.postprocess(detections, batch, original_sizes)
        _synchronize(device)
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2

    images = [image.to(device) for image in images]
    for image in images[:warmup]:
        run(image)
    for _ in range(repeats):
        for image in images:
            conv, proposals, region = run(image)
            for name, seconds in (("conv", conv), ("proposals", proposals), ("region-wise", region),
                                  ("total", conv + proposals + region)):
                parts[name].append(seconds * 1000)
    model.train(was_training)
    result = {name: float(np.median(values)) for name, values in parts.items()}
    result.update(device=str(device), threads=torch.get_num_threads(), images=len(images))
    return result


def timing_table(measured):
    """The paper's timing table with measured columns beside it.

    Args:
        measured (dict): column name -> :func:`time_parts` result.
    """
    columns = {**{f"paper {k} (K40)": v for k, v in PAPER_TIMING.items()}, **measured}
    widths = [max(12, len(name) + 2) for name in columns]
    lines = [f"{'ms per image':<14}" + "".join(f"{name:>{w}}" for name, w in zip(columns, widths))]
    for part in ("conv", "proposals", "region-wise", "total"):
        lines.append(f"{part:<14}" + "".join(f"{c[part]:>{w}.1f}" for c, w in zip(columns.values(), widths)))
    lines.append(f"{'fps':<14}" + "".join(f"{1000 / c['total']:>{w}.1f}" for c, w in zip(columns.values(), widths)))
    return "\n".join(lines)
