"""What went wrong: each detection's kind of error, and the objects a detector missed.

Average precision says *how much* a detector gets wrong, not *what*. Following Hoiem,
Chodpathumwan and Dai, *Diagnosing Error in Object Detectors* (ECCV 2012), every detection
of one image is put in exactly one of five kinds, in this order of precedence:

* ``"correct"``: a true positive of VOC's matching at IoU > 0.5 (``evaluation.match_voc``,
  the rule of the AP of lesson 09): the best-scored detection of its class on an object;
* ``"duplicate"``: it overlaps an object of its own class by more than 0.5, but a
  better-scored detection already took that object (NMS let it through);
* then the object it overlaps **most**, whatever its class, decides:

  - ``"background"``: IoU below ``background_iou`` (0.1) with every object: it fires on
    clutter;
  - ``"mislocalised"``: that object has the detection's class but the IoU is at most 0.5:
    the right digit, a poor box;
  - ``"confusion"``: that object is of another class: the wrong digit, usually in the right
    place (a "7" called "1").

An object with no correct detection is **missed**. Every kind but ``"correct"`` is a false
positive for AP; a confusion also leaves its object missed unless another detection finds
it.

Inputs are one image's detections and ground truth, as the detector returns them and the
data set gives them (tensors or arrays)::

    boxes (D, 4) xyxy, scores (D,), labels (D,)     gt_boxes (G, 4), gt_labels (G,)
"""
import numpy as np

from ..evaluation import iou_numpy, match_voc, to_numpy

KINDS = ("correct", "duplicate", "mislocalised", "confusion", "background")
ERRORS = KINDS[1:]


def classify_detections(boxes, scores, labels, gt_boxes, gt_labels, iou_threshold=0.5, background_iou=0.1):
    """The kind of every detection of one image, and which objects were missed.

    Args:
        boxes (Tensor or ndarray): ``(D, 4)`` detections, xyxy (any order; the scores rank them).
        scores (Tensor or ndarray): ``(D,)``.
        labels (Tensor or ndarray): ``(D,)`` classes.
        gt_boxes (Tensor or ndarray): ``(G, 4)``; gt_labels (Tensor or ndarray): ``(G,)``.
        iou_threshold (float): a correct detection overlaps its object by more (VOC: 0.5).
        background_iou (float): below this IoU with every object, a detection is background
            (Hoiem et al.: 0.1).

    Returns:
        dict: ``kinds`` (list of D str from :data:`KINDS`, in the input order); ``gt_index``
        ``(D,)`` int64: the object the kind refers to (its own-class object for correct and
        duplicate detections, the most-overlapped object otherwise; -1 for background);
        ``iou`` ``(D,)`` float64: the IoU with that object (for background: the best IoU);
        ``missed`` ``(G,)`` bool: objects without a correct detection; ``counts``: kind ->
        number, plus ``"missed"``.
    """
    boxes = to_numpy(boxes, np.float64).reshape(-1, 4)
    scores = to_numpy(scores, np.float64).reshape(-1)
    labels = to_numpy(labels, np.int64).reshape(-1)
    gt_boxes = to_numpy(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = to_numpy(gt_labels, np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f"detections: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels")
    if len(gt_boxes) != len(gt_labels):
        raise ValueError(f"ground truth: {len(gt_boxes)} boxes and {len(gt_labels)} labels")
    if not 0 <= background_iou <= iou_threshold:
        raise ValueError(f"background_iou ({background_iou}) must be in [0, iou_threshold = {iou_threshold}]")

    num_det = len(boxes)
    kinds = [""] * num_det
    gt_index = -np.ones(num_det, dtype=np.int64)
    iou_out = np.zeros(num_det, dtype=np.float64)
    missed = np.ones(len(gt_boxes), dtype=bool)
    iou = iou_numpy(boxes, gt_boxes)  # (D, G)

    # 1-2. VOC's matching, class by class: correct detections and duplicates.
    for label in np.unique(labels):
        dets = np.where(labels == label)[0]
        gts = np.where(gt_labels == label)[0]
        is_tp, compared = match_voc(boxes[dets], scores[dets], gt_boxes[gts], iou_threshold)
        for d, tp, c in zip(dets, is_tp, compared):
            if c < 0:
                continue
            g = gts[c]
            if tp:
                kinds[d], gt_index[d], iou_out[d] = "correct", g, iou[d, g]
                missed[g] = False
            elif iou[d, g] > iou_threshold:
                kinds[d], gt_index[d], iou_out[d] = "duplicate", g, iou[d, g]

    # 3. The rest: the most-overlapped object, of any class, decides.
    for d in range(num_det):
        if kinds[d]:
            continue
        if len(gt_boxes) == 0:
            kinds[d] = "background"
            continue
        g = int(np.argmax(iou[d]))
        iou_out[d] = iou[d, g]
        if iou[d, g] < background_iou:
            kinds[d] = "background"
        else:
            kinds[d] = "mislocalised" if gt_labels[g] == labels[d] else "confusion"
            gt_index[d] = g
    counts = {kind: kinds.count(kind) for kind in KINDS}
    counts["missed"] = int(missed.sum())
    return {"kinds": kinds, "gt_index": gt_index, "iou": iou_out, "missed": missed, "counts": counts}


def diagnose(detections, ground_truths, score_threshold=0.0, iou_threshold=0.5, background_iou=0.1):
    """:func:`classify_detections` over a data set, keeping detections with a score above
    ``score_threshold``.

    Args:
        detections (list of dict): per image ``{"boxes", "scores", "labels"}``.
        ground_truths (list of dict): per image ``{"boxes", "labels"}``.

    Returns:
        dict: ``per_image``: the list of :func:`classify_detections` results (with the kept
        ``boxes``, ``scores`` and ``labels`` added); ``counts``: the totals (kinds and
        ``"missed"``, plus ``"objects"``); ``errors``: one row per error, a dict with
        ``image``, ``kind`` (an error kind or ``"missed"``), ``score`` (0 for a miss),
        ``box``, ``label``, ``gt_index``, ``iou``, sorted by kind and then by score, most
        confident first (misses in image order). A miss also has ``cause``: ``"confusion"``
        if a detection of another class sits on it, else ``"mislocalised"`` if a poor box of
        its class does, else ``"not found"``.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection entries for {len(ground_truths)} images")
    per_image, errors = [], []
    totals = {kind: 0 for kind in KINDS + ("missed", "objects")}
    for i, (det, gt) in enumerate(zip(detections, ground_truths)):
        scores = to_numpy(det["scores"], np.float64).reshape(-1)
        keep = scores > score_threshold
        boxes = to_numpy(det["boxes"], np.float64).reshape(-1, 4)[keep]
        labels = to_numpy(det["labels"], np.int64).reshape(-1)[keep]
        scores = scores[keep]
        gt_boxes = to_numpy(gt["boxes"], np.float64).reshape(-1, 4)
        gt_labels = to_numpy(gt["labels"], np.int64).reshape(-1)
        result = classify_detections(boxes, scores, labels, gt_boxes, gt_labels, iou_threshold, background_iou)
        result.update(boxes=boxes, scores=scores, labels=labels)
        per_image.append(result)
        for kind, n in result["counts"].items():
            totals[kind] += n
        totals["objects"] += len(gt_boxes)
        for d, kind in enumerate(result["kinds"]):
            if kind != "correct":
                errors.append(dict(image=i, kind=kind, score=float(scores[d]), box=boxes[d], label=int(labels[d]),
                                   gt_index=int(result["gt_index"][d]), iou=float(result["iou"][d])))
        for g in np.where(result["missed"])[0]:
            on_it = {kind for kind, index in zip(result["kinds"], result["gt_index"]) if index == g}
            cause = next((kind for kind in ("confusion", "mislocalised") if kind in on_it), "not found")
            errors.append(dict(image=i, kind="missed", score=0.0, box=gt_boxes[g], label=int(gt_labels[g]),
                               gt_index=int(g), iou=0.0, cause=cause))
    order = {kind: k for k, kind in enumerate(ERRORS + ("missed",))}
    errors.sort(key=lambda e: (order[e["kind"]], -e["score"]))
    return {"per_image": per_image, "counts": totals, "errors": errors}
