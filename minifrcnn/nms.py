"""Non-maximum suppression (NMS): keep the best box of every cluster of overlapping boxes.

Greedy NMS, as in the paper (section 3.3, "Implementation details"; the RPN uses an IoU
threshold of 0.7)::

    sort the boxes by score, highest first
    for each box, in that order:
        if no box kept so far overlaps it with IoU > threshold: keep it

Three versions, all returning exactly the indices ``torchvision.ops.nms`` /
``torchvision.ops.batched_nms`` return, in the same order (``tests/test_nms.py``):

* :func:`nms_loop`: the definition above, with plain Python loops. Read this one.
* :func:`nms`: the same algorithm, vectorised: the pairwise "IoU above the threshold"
  decisions are computed as boolean matrices, a block of boxes at a time, and a scan in
  score order only reads them (torchvision's GPU kernel works this way, with bitmasks).
* :func:`batched_nms`: NMS within each class (or feature level) separately, in one call.

The details that make the indices equal, not just "close":

* **ties**: boxes with equal scores are visited in index order (a *stable* descending
  sort), as torchvision's CPU and GPU kernels do; ``torch.sort(descending=True)`` without
  ``stable=True`` visits them in another order (on the CPU for 17 or more values, on a GPU
  for some small inputs), and then keeps other boxes.
* **arithmetic**: IoU is computed as ``inter / (area_i + area_j - inter)`` in the boxes'
  dtype, in that order. The CPU kernel compares it with the threshold as a double, the
  GPU kernel with the threshold rounded to a float32: ``float32(0.2) > 0.2``, so an IoU
  of exactly 1/5 is "above 0.2" on the CPU and not on the GPU (:func:`kernel_threshold`).
* **empty unions**: two zero-area boxes have IoU ``0 / 0 = NaN``, and ``NaN > threshold``
  is False: identical degenerate boxes never suppress each other.
"""
from functools import partial

import numpy as np
import torch

# torchvision's batched_nms switches from the coordinate trick to a loop over classes above
# this many box coordinates (boxes.numel()), on CPU and on GPU (torchvision 0.29).
_BATCHED_LOOP_ABOVE = {"cpu": 4000, "other": 100_000}


def _check_inputs(boxes, scores):
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape (N,) = ({boxes.shape[0]},), got {tuple(scores.shape)}")


def score_order(scores):
    """Indices ``(N,)`` that sort ``scores`` from highest to lowest, ties in index order."""
    return torch.sort(scores, descending=True, stable=True).indices


def kernel_threshold(iou_threshold, device):
    """The IoU threshold as torchvision's kernel on ``device`` compares with it, as a Python
    float: unchanged on the CPU (a double), rounded to float32 on a GPU (its kernel takes
    a ``float``)."""
    return float(iou_threshold) if torch.device(device).type == "cpu" else float(np.float32(iou_threshold))


def nms_loop(boxes, scores, iou_threshold):
    """Greedy NMS written as the definition: two nested Python loops.

    Args:
        boxes (Tensor): ``(N, 4)`` xyxy.
        scores (Tensor): ``(N,)``.
        iou_threshold (float): a box is suppressed by a kept box if their IoU is
            strictly greater than this.

    Returns:
        Tensor: ``(K,)`` int64 indices of the kept boxes, highest score first.

    ``O(N^2)`` Python steps: fine for a lesson's dozen boxes, slow for 6000 proposals.
    """
    _check_inputs(boxes, scores)
    order = score_order(scores).tolist()
    # NumPy scalars of the boxes' dtype, so that every operation below rounds as the
    # C++ kernel does (Python floats would compute in float64).
    x1, y1, x2, y2 = (boxes[:, c].detach().cpu().numpy() for c in range(4))
    threshold = kernel_threshold(iou_threshold, boxes.device)
    areas = (x2 - x1) * (y2 - y1)
    zero = areas.dtype.type(0)
    suppressed = [False] * len(order)
    keep = []
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 -> NaN is expected, see above
        for position, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(i)  # the best box not suppressed yet: keep it ...
            for j in order[position + 1:]:  # ... and suppress the lower-scored boxes it covers
                if suppressed[j]:
                    continue
                width = max(zero, min(x2[i], x2[j]) - max(x1[i], x1[j]))
                height = max(zero, min(y2[i], y2[j]) - max(y1[i], y1[j]))
                inter = width * height
                iou = inter / (areas[i] + areas[j] - inter)
                if float(iou) > threshold:  # compare in float64; NaN > t is False
                    suppressed[j] = True
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def iou_above(boxes1, boxes2, iou_threshold, chunk_size=1024):
    """Which pairs of boxes overlap by more than ``iou_threshold``: ``(N, M)`` bool.

    Computed with the C++ kernel's arithmetic (``inter / (area_i + area_j - inter)`` in the
    boxes' dtype, compared with :func:`kernel_threshold`), ``chunk_size`` rows at a time to
    bound the memory of the float intermediates.
    """
    threshold = kernel_threshold(iou_threshold, boxes2.device)
    x1, y1, x2, y2 = boxes2.unbind(1)
    areas2 = (x2 - x1) * (y2 - y1)
    rows = []
    for start in range(0, boxes1.shape[0], chunk_size):
        b = boxes1[start:start + chunk_size]
        areas1 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        # (rows, M) intersections and unions; in-place operations save memory traffic.
        inter = (torch.minimum(b[:, None, 2], x2) - torch.maximum(b[:, None, 0], x1)).clamp_(min=0)
        inter *= (torch.minimum(b[:, None, 3], y2) - torch.maximum(b[:, None, 1], y1)).clamp_(min=0)
        union = (areas1[:, None] + areas2).sub_(inter)
        iou = inter.div_(union)
        rows.append(iou.to(torch.float64) > threshold)  # NaN (empty union) -> False
    if not rows:
        return torch.zeros(0, boxes2.shape[0], dtype=torch.bool, device=boxes2.device)
    return torch.cat(rows)


def nms(boxes, scores, iou_threshold, block_size=256, max_kept=None):
    """Greedy NMS, vectorised block by block. Same arguments and result as
    :func:`nms_loop` and ``torchvision.ops.nms``; with ``max_kept``, the same result cut to
    its first ``max_kept`` boxes, computed faster: greedy NMS decides the boxes in score
    order and a decision never depends on a lower-scored box, so it can stop there (the
    proposal layer keeps 300 of 1,000 boxes at test time).

    The boxes, sorted by score, are taken ``block_size`` at a time (torchvision's GPU
    kernel does the same with blocks of 64):

    1. in parallel, drop every box of the block that a box kept in an earlier block
       covers (IoU above the threshold): one ``(kept, block)`` boolean matrix;
    2. inside the block, one cheap sequential scan over an ``(block, block)`` matrix of
       "box i would suppress box j": a box is kept if no kept box before it suppressed
       it, and keeping it marks its whole row as removed at once.

    All the IoU arithmetic happens in tensor operations; the Python loop only reads bools.
    The work is about ``N * (K + block_size)`` IoUs for ``K`` kept boxes, instead of the
    ``N * N`` of a full IoU matrix.
    """
    _check_inputs(boxes, scores)
    order = score_order(scores)
    boxes = boxes[order]
    kept = torch.zeros(0, dtype=torch.int64, device=boxes.device)  # positions in score order
    for start in range(0, boxes.shape[0], block_size):
        block = torch.arange(start, min(start + block_size, boxes.shape[0]), device=boxes.device)
        # 1. boxes already covered by a kept box of an earlier block are out
        block = block[~iou_above(boxes[kept], boxes[block], iou_threshold).any(dim=0)]
        # 2. greedy scan within the block
        suppresses = iou_above(boxes[block], boxes[block], iou_threshold).cpu().numpy()
        removed = np.zeros(block.numel(), dtype=bool)
        keep = []
        for i in range(block.numel()):
            if not removed[i]:
                keep.append(i)
                removed |= suppresses[i]  # also marks earlier boxes and i itself: already decided
        kept = torch.cat((kept, block[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]))
        if max_kept is not None and kept.numel() >= max_kept:
            break
    return order[kept[:max_kept]]


def batched_nms(boxes, scores, idxs, iou_threshold, nms_fn=nms, max_kept=None):
    """NMS within each group: boxes of different ``idxs`` never suppress each other.

    The coordinate-offset trick does it with a single NMS call: shift every box of group
    ``c`` by ``c * (max coordinate + 1)`` in x and y, so that boxes of different groups
    cannot overlap, then run ordinary NMS. Like torchvision, large inputs (more than
    1000 boxes on CPU) loop over the groups instead, which is faster there; the two ways
    keep the same boxes up to float rounding and ties, and we copy torchvision's choice
    so that the result is the same to the index.

    Args:
        boxes (Tensor): ``(N, 4)`` xyxy.
        scores (Tensor): ``(N,)``.
        idxs (Tensor): ``(N,)`` int64 group of each box (a class, or the RPN's feature level).
        iou_threshold (float): as in :func:`nms`.
        nms_fn (callable): the NMS to use inside (:func:`nms` or :func:`nms_loop`).
        max_kept (int, optional): only the first ``max_kept`` kept indices are wanted (the
            same result as cutting; up to the switch to groups, :func:`nms` stops early).

    Returns:
        Tensor: ``(K,)`` int64 kept indices, highest score first.
    """
    _check_inputs(boxes, scores)
    limit = _BATCHED_LOOP_ABOVE["cpu" if boxes.device.type == "cpu" else "other"]
    if boxes.numel() > limit:  # (no early stop per group: the final sort orders ties by what it is given)
        return _batched_nms_by_group(boxes, scores, idxs, iou_threshold, nms_fn)[:max_kept]
    if max_kept is not None and nms_fn is nms:
        nms_fn = partial(nms, max_kept=max_kept)
    return _batched_nms_by_offsets(boxes, scores, idxs, iou_threshold, nms_fn)[:max_kept]


def _batched_nms_by_offsets(boxes, scores, idxs, iou_threshold, nms_fn):
    """The coordinate-offset trick (one NMS over shifted boxes)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))  # torchvision's exact arithmetic
    return nms_fn(boxes + offsets[:, None], scores, iou_threshold)


def _batched_nms_by_group(boxes, scores, idxs, iou_threshold, nms_fn):
    """One NMS per group, then all kept boxes sorted by score (as torchvision does, with
    its same, non-stable, sort call: ties across groups come out in that sort's order)."""
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for group in torch.unique(idxs):
        members = torch.where(idxs == group)[0]
        keep_mask[members[nms_fn(boxes[members], scores[members], iou_threshold)]] = True
    keep = torch.where(keep_mask)[0]
    return keep[scores[keep].sort(descending=True)[1]]
