"""Detection metrics from scratch: VOC-style AP@0.5 and COCO-style AP@[.5:.95].

Both sort all detections of a class by score, decide for each whether it is a true
positive (it matches a ground-truth box not matched before) or a false positive, and
integrate the precision-recall curve. They differ in two details:

- **VOC** (the paper's metric, PASCAL VOC 2010+ devkit): a detection is matched to the
  ground-truth box it overlaps most; it is a true positive if that IoU is > 0.5 and the box
  was not detected yet (a duplicate is a false positive). AP is the area under the
  precision envelope, at every recall point ("all-point interpolation").
- **COCO** (``pycocotools`` / ``faster-coco-eval``): at each IoU threshold 0.50, 0.55, ...,
  0.95 a detection is matched to the *unmatched* ground-truth box it overlaps most with IoU
  >= threshold; at most 100 detections per image and class are scored; AP is the mean
  precision envelope at 101 recall points, averaged over thresholds (and classes).

Inputs, for ``N`` images (what the detector returns, and what the dataset gives)::

    detections[i]    = {"boxes": (D_i, 4) xyxy, "scores": (D_i,), "labels": (D_i,)}
    ground_truths[i] = {"boxes": (G_i, 4) xyxy, "labels": (G_i,)}

Boxes follow torchvision's convention (no "+1" pixel). ``tests/test_evaluation.py``
checks the COCO numbers against faster-coco-eval to 1e-6.
"""
import numpy as np
import torch

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def iou_numpy(boxes1, boxes2):
    """Pairwise IoU in float64 NumPy (``(D, 4)`` x ``(G, 4)`` -> ``(D, G)``)."""
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    union = area1[:, None] + area2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def to_numpy(value, dtype):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _per_class(detections, ground_truths, label):
    """Per image: (det boxes sorted by score, their scores, gt boxes) of one class."""
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truths)} images")
    result = []
    for det, gt in zip(detections, ground_truths):
        det_labels = to_numpy(det["labels"], np.int64)
        keep = det_labels == label
        scores = to_numpy(det["scores"], np.float64)[keep]
        boxes = to_numpy(det["boxes"], np.float64).reshape(-1, 4)[keep]
        order = np.argsort(-scores, kind="mergesort")  # stable: equal scores keep their order
        gt_boxes = to_numpy(gt["boxes"], np.float64).reshape(-1, 4)[to_numpy(gt["labels"], np.int64) == label]
        result.append((boxes[order], scores[order], gt_boxes))
    return result


def _precision_recall(scores, is_tp, num_gt):
    """Precision and recall after each detection, best score first (stable order)."""
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(is_tp[order], dtype=np.float64)
    fp = np.cumsum(~is_tp[order], dtype=np.float64)
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    return precision, recall


def _envelope(precision):
    """Make precision non-increasing in recall: p(r) <- max over r' >= r of p(r')."""
    return np.maximum.accumulate(precision[::-1])[::-1]


def voc_ap(recall, precision):
    """All-point interpolated AP: the area under the precision envelope (VOC 2010+).

    Args:
        recall, precision (ndarray): ``(D,)`` after each detection, best score first.
    """
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = _envelope(np.concatenate(([0.0], precision, [0.0])))
    steps = np.where(recall[1:] != recall[:-1])[0]  # where recall moves, add a rectangle
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def evaluate_voc(detections, ground_truths, num_classes, iou_threshold=0.5):
    """VOC-style AP per class at one IoU threshold, and their mean (mAP).

    Args:
        detections, ground_truths: see the module docstring.
        num_classes (int): labels ``1 .. num_classes - 1`` are evaluated (0 is background).
        iou_threshold (float): a match needs IoU > threshold (VOC: 0.5).

    Returns:
        dict: ``"ap"``: {label: AP} for every class with ground truth; ``"map"``: their mean;
        ``"curves"``: {label: (precision (D,), recall (D,))} for plotting.
    """
    ap, curves = {}, {}
    for label in range(1, num_classes):
        scores, is_tp, num_gt = [], [], 0
        for boxes, det_scores, gt_boxes in _per_class(detections, ground_truths, label):
            num_gt += len(gt_boxes)
            is_tp.append(match_voc(boxes, det_scores, gt_boxes, iou_threshold)[0])
            scores.append(det_scores)
        if num_gt == 0:
            continue  # AP is undefined for a class that never appears
        precision, recall = _precision_recall(np.concatenate(scores), np.concatenate(is_tp), num_gt)
        ap[label] = voc_ap(recall, precision)
        curves[label] = (precision, recall)
    return {"ap": ap, "map": float(np.mean(list(ap.values()))) if ap else 0.0, "curves": curves}


def _coco_matches(iou, threshold):
    """COCO's greedy matching in one image: each detection (best score first) takes the
    unmatched ground truth it overlaps most with IoU >= threshold. Returns ``(D,)`` bool."""
    num_det, num_gt = iou.shape
    taken = np.zeros(num_gt, dtype=bool)
    is_tp = np.zeros(num_det, dtype=bool)
    for d in range(num_det):
        best_iou, best = min(threshold, 1 - 1e-10), -1
        for g in range(num_gt):
            # ">=" and scanning every g: on a tie the last ground truth wins, as in pycocotools.
            if not taken[g] and iou[d, g] >= best_iou:
                best_iou, best = iou[d, g], g
        if best >= 0:
            taken[best] = is_tp[d] = True
    return is_tp


def coco_precision_at(recall, precision):
    """Precision envelope sampled at COCO's 101 recall points (0 where never reached)."""
    precision = _envelope(precision)
    index = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
    return np.array([precision[i] if i < len(precision) else 0.0 for i in index])


def evaluate_coco(detections, ground_truths, num_classes, max_detections=100):
    """COCO-style AP: mean over IoU thresholds 0.50:0.05:0.95, 101 recall points and classes.

    Returns:
        dict: ``"ap"`` (AP@[.5:.95]), ``"ap50"``, ``"ap75"``, ``"per_class"``: {label:
        AP@[.5:.95]} and ``"precision"``: ``(T, 101, K)`` array (-1 for classes without
        ground truth), as ``COCOeval.eval["precision"]`` for area "all".
    """
    labels = list(range(1, num_classes))
    precision = -np.ones((len(COCO_IOU_THRESHOLDS), len(COCO_RECALL_POINTS), len(labels)))
    for k, label in enumerate(labels):
        per_image = _per_class(detections, ground_truths, label)
        num_gt = sum(len(gt) for _, _, gt in per_image)
        if num_gt == 0:
            continue
        per_image = [(b[:max_detections], s[:max_detections], gt) for b, s, gt in per_image]
        ious = [iou_numpy(b, gt) for b, _, gt in per_image]
        scores = np.concatenate([s for _, s, _ in per_image])
        for t, threshold in enumerate(COCO_IOU_THRESHOLDS):
            is_tp = np.concatenate([_coco_matches(iou, threshold) for iou in ious]) if ious else np.zeros(0, bool)
            if len(scores) == 0:
                precision[t, :, k] = 0.0
                continue
            p, r = _precision_recall(scores, is_tp, num_gt)
            precision[t, :, k] = coco_precision_at(r, p)

    def mean(values):
        values = values[values > -1]
        return float(values.mean()) if values.size else -1.0

    return {
        "ap": mean(precision),
        "ap50": mean(precision[0]),
        "ap75": mean(precision[5]),
        "per_class": {label: mean(precision[:, :, k]) for k, label in enumerate(labels)
                      if (precision[:, :, k] > -1).any()},
        "precision": precision,
    }


def to_coco(detections, ground_truths, num_classes):
    """The same data as COCO dicts (ground-truth dataset, result list), e.g. to cross-check
    with ``faster_coco_eval`` or ``pycocotools``. Image ids are ``1 .. N`` in list order."""
    def xywh(box):
        x1, y1, x2, y2 = (float(v) for v in box)
        return [x1, y1, x2 - x1, y2 - y1]

    images, annotations, results = [], [], []
    for i, (det, gt) in enumerate(zip(detections, ground_truths), start=1):
        images.append({"id": i, "width": 0, "height": 0, "file_name": f"{i}.png"})
        for box, label in zip(to_numpy(gt["boxes"], np.float64).reshape(-1, 4), to_numpy(gt["labels"], np.int64)):
            bbox = xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
        for box, score, label in zip(to_numpy(det["boxes"], np.float64).reshape(-1, 4),
                                     to_numpy(det["scores"], np.float64), to_numpy(det["labels"], np.int64)):
            results.append({"image_id": i, "category_id": int(label), "bbox": xywh(box), "score": float(score)})
    categories = [{"id": c, "name": str(c)} for c in range(1, num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def match_voc(boxes, scores, gt_boxes, iou_threshold=0.5):
    """VOC's matching of one class in one image: which detections are true positives.

    The rule :func:`evaluate_voc` applies, as a function a lesson can call (lesson 09):
    detections are taken best score first (a stable sort: equal scores keep their order);
    each is compared with the ground-truth box it overlaps **most**; it is a true positive
    if that IoU is > ``iou_threshold`` and the box was not matched before. Otherwise it is
    a false positive: a *duplicate* if the box was already matched (VOC does not fall back
    to the next-best box; COCO's matching does), a poor box if the IoU is too low.

    Args:
        boxes (Tensor or ndarray): ``(D, 4)`` detections of one class, xyxy, in any order.
        scores (Tensor or ndarray): ``(D,)``.
        gt_boxes (Tensor or ndarray): ``(G, 4)`` ground truth of the same class.
        iou_threshold (float): VOC: 0.5.

    Returns:
        tuple: ``is_tp`` ``(D,)`` bool and ``compared`` ``(D,)`` int64, the index of the
        ground truth each detection was compared with (-1 if there is none), both in the
        input order.
    """
    boxes = to_numpy(boxes, np.float64).reshape(-1, 4)
    scores = to_numpy(scores, np.float64).reshape(-1)
    gt_boxes = to_numpy(gt_boxes, np.float64).reshape(-1, 4)
    if len(scores) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    is_tp = np.zeros(len(boxes), dtype=bool)
    compared = -np.ones(len(boxes), dtype=np.int64)
    if len(gt_boxes) == 0:
        return is_tp, compared
    iou = iou_numpy(boxes, gt_boxes)
    detected = np.zeros(len(gt_boxes), dtype=bool)
    for d in np.argsort(-scores, kind="mergesort"):
        best = int(np.argmax(iou[d]))  # the first of equal IoUs, as evaluate_voc
        compared[d] = best
        if iou[d, best] > iou_threshold and not detected[best]:
            detected[best] = is_tp[d] = True
    return is_tp, compared
