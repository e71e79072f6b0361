"""Lesson 09's explorer: a trained detector's detections, judged against the ground truth.

Sliders for the score threshold and the NMS threshold over test images (an image
selector): the detections that survive, each coloured by its kind from
:func:`minifrcnn.course.diagnosis.classify_detections` (correct, duplicate, mislocalised,
confusion, background), the ground truth dashed, the missed objects marked, and the
counts of true positives, false positives and misses, for the image and for all the
images given (precision and recall at these thresholds).

The model runs once per image, with NMS switched off (:func:`candidate_detections`), so
that moving a slider only redoes the cheap part: score threshold, per-class NMS, top-N. At
the model's own settings the explorer shows exactly the model's detections.

Parts, as every explorer: :func:`detection_explorer_state` (pure), :func:`draw_detection_explorer`
(matplotlib), :func:`make_detection_explorer` (widgets). Also the lesson's failure gallery:
:func:`draw_error_gallery`, the most confident errors of each kind from
:func:`minifrcnn.course.diagnosis.diagnose`, zoomed in.
"""
import copy
from dataclasses import replace

import ipywidgets as widgets
import torch
from matplotlib.lines import Line2D

from ...detector import detect
from ...head import HeadSettings
from ...head import select_detections as head_select_detections
from ..diagnosis import ERRORS, KINDS, classify_detections
from ..draw import draw_box_outlines, draw_boxes, show_image
from ._base import Explorer

# One colour per kind; tab10's green / orange / purple / red / blue, and magenta for misses.
KIND_COLORS = {"correct": "tab:green", "duplicate": "tab:orange", "mislocalised": "tab:purple",
               "confusion": "tab:red", "background": "tab:blue", "missed": "magenta"}


@torch.no_grad()
def candidate_detections(model, images, batch_size=16):
    """The detections of ``model`` on ``images`` *before* NMS: every (proposal, class) pair
    with a score above the model's score threshold, clipped and not tiny.

    A copy of the model whose head has NMS off (threshold 1.0: no two distinct boxes
    overlap by more) and no cap on the number of detections. Filtering them by score, then
    per-class NMS and the best ``detections_per_image`` gives the model's own detections.

    Returns:
        list of dict: per image ``{"boxes" (C, 4), "scores" (C,), "labels" (C,)}`` on the CPU.
    """
    no_nms = copy.deepcopy(model)
    no_nms.head.settings = replace(model.head.settings, nms_thresh=1.0, detections_per_img=10 ** 6)
    return detect(no_nms, list(images), batch_size=batch_size)


def select_detections(candidates, score_threshold=0.05, nms_threshold=0.3, detections_per_image=100):
    """The head's last steps on pre-NMS candidates: score > threshold, per-class NMS, top-N.

    Returns:
        dict: ``boxes``, ``scores``, ``labels`` of the kept detections, best score first.
    """
    # The candidates already passed the model's small-box filter: min_box_size 0 keeps them all.
    settings = HeadSettings(score_thresh=score_threshold, nms_thresh=nms_threshold,
                            detections_per_img=detections_per_image, min_box_size=0.0)
    return head_select_detections(candidates["boxes"], candidates["scores"], candidates["labels"], settings)


def detection_explorer_state(candidates, gt_boxes, gt_labels, score_threshold=0.5, nms_threshold=0.3,
                             detections_per_image=100, iou_threshold=0.5):
    """What one image's detections are at these thresholds.

    Args:
        candidates (dict): ``boxes`` ``(C, 4)``, ``scores`` ``(C,)``, ``labels`` ``(C,)``
            before NMS (:func:`candidate_detections`).
        gt_boxes (Tensor): ``(G, 4)``; gt_labels (Tensor): ``(G,)``.
        score_threshold, nms_threshold, detections_per_image: the post-processing.
        iou_threshold (float): a correct detection overlaps its object by more (VOC: 0.5).

    Returns:
        dict: ``boxes``, ``scores``, ``labels`` (the detections, best first); ``kinds``,
        ``gt_index``, ``iou``, ``missed`` (from ``classify_detections``); ``counts``: kind ->
        number, ``"missed"``, ``"tp"``, ``"fp"``, ``"objects"``, ``"detections"``; the settings.
    """
    detections = select_detections(candidates, score_threshold, nms_threshold, detections_per_image)
    result = classify_detections(detections["boxes"], detections["scores"], detections["labels"], gt_boxes,
                                 gt_labels, iou_threshold)
    counts = dict(result["counts"])
    counts.update(tp=counts["correct"], fp=sum(counts[kind] for kind in ERRORS), objects=len(gt_boxes),
                  detections=len(detections["boxes"]))
    return dict(detections, kinds=result["kinds"], gt_index=result["gt_index"], iou=result["iou"],
                missed=torch.as_tensor(result["missed"]), counts=counts, gt_boxes=gt_boxes, gt_labels=gt_labels,
                score_threshold=score_threshold, nms_threshold=nms_threshold,
                detections_per_image=detections_per_image)


def total_counts(states):
    """Sum the counts of several images' states; adds ``"precision"`` and ``"recall"``."""
    totals = {}
    for state in states:
        for key, value in state["counts"].items():
            totals[key] = totals.get(key, 0) + value
    totals["precision"] = totals["tp"] / totals["detections"] if totals.get("detections") else 0.0
    totals["recall"] = totals["tp"] / totals["objects"] if totals.get("objects") else 0.0
    return totals


def draw_judged_detections(ax, image, state, class_names=None, fontsize=7):
    """The image, the ground truth (white, dashed), the missed objects (magenta) and the
    detections coloured by kind, captioned with class and score."""
    show_image(image, ax)
    gt_boxes = state["gt_boxes"]
    if len(gt_boxes):
        draw_box_outlines(ax, gt_boxes, color="white", linewidth=1.0, linestyle="--").set_gid("gt")
    missed = gt_boxes[state["missed"]] if len(gt_boxes) else gt_boxes
    if len(missed):
        draw_box_outlines(ax, missed, color=KIND_COLORS["missed"], linewidth=2.2, linestyle="--").set_gid("missed")
    # Worst-scored first, so that the confident detections are drawn on top.
    order = torch.argsort(state["scores"]).tolist()
    if order:
        colors = [KIND_COLORS[state["kinds"][i]] for i in order]
        draw_boxes(ax, state["boxes"][order], state["labels"][order], state["scores"][order],
                   class_names=class_names, linewidth=1.6, fontsize=fontsize)
        # draw_boxes colours by class; outline again in the kind's colour (the caption keeps the class colour).
        draw_box_outlines(ax, state["boxes"][order], color=colors, linewidth=1.6).set_gid("detections")
    height, width = image.shape[-2:]
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)


def kind_legend(ax, counts=None, loc="upper center", **legend_kwargs):
    """A legend of the kinds' colours (with counts when given)."""
    names = KINDS + ("missed",)
    handles = [Line2D([], [], color=KIND_COLORS[k], lw=2, ls="--" if k == "missed" else "-",
                      label=f"{k} ({counts[k]})" if counts else k) for k in names]
    options = dict(fontsize=8, ncol=3, framealpha=0.9)
    options.update(legend_kwargs)
    return ax.legend(handles=handles, loc=loc, **options)


def draw_counts(ax, counts, title=""):
    """A horizontal bar per kind (and missed), in the kinds' colours."""
    names = KINDS + ("missed",)
    values = [counts[k] for k in names]
    bars = ax.barh(range(len(names)), values, color=[KIND_COLORS[k] for k in names])
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    for bar, value in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center", fontsize=8)
    ax.set_xlim(0, max(values + [1]) * 1.25)
    ax.set_title(title, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)


def draw_detection_explorer(figure, state, class_names=None):
    """The judged detections of one image (left), its counts and the totals (right)."""
    ax, ax_image_counts, ax_totals = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.6, 0.7, 0.7]})
    draw_judged_detections(ax, state["image"], state, class_names)
    c = state["counts"]
    ax.set_title(f"{state.get('name', '')}: score > {state['score_threshold']:.2f}, NMS at "
                 f"{state['nms_threshold']:.2f}\n{c['tp']} true positives, {c['fp']} false positives, "
                 f"{c['missed']} of {c['objects']} digits missed", fontsize=9)
    kind_legend(ax, loc="upper center", bbox_to_anchor=(0.5, 0.0), facecolor="0.85")
    draw_counts(ax_image_counts, c, "this image")
    t = state["totals"]
    draw_counts(ax_totals, t, f"all {state['num_images']} images: precision {t['precision']:.2f},\n"
                              f"recall {t['recall']:.2f} ({t['tp']} of {t['objects']} digits)")
    figure.tight_layout()


def make_detection_explorer(samples, class_names=None, score_threshold=0.5, nms_threshold=0.3,
                            detections_per_image=100, figsize=(13, 5.2)):
    """The interactive detection explorer.

    Args:
        samples (list of dict): ``name``, ``image`` ``(3, H, W)``, ``candidates`` (from
            :func:`candidate_detections`), ``gt_boxes`` ``(G, 4)``, ``gt_labels`` ``(G,)``.
        class_names (sequence of str): for the captions.
        score_threshold, nms_threshold, detections_per_image: the starting values.

    Returns:
        Explorer: controls ``image``, ``score_threshold``, ``nms_threshold``; ``state`` from
        :func:`detection_explorer_state`, plus ``totals`` (:func:`total_counts` over every
        sample at the same thresholds), ``image``, ``name`` and ``num_images``.
    """
    samples = list(samples)
    style = {"description_width": "initial"}
    controls = {
        "image": widgets.Dropdown(options=[(s["name"], i) for i, s in enumerate(samples)], value=0,
                                  description="image"),
        "score_threshold": widgets.FloatSlider(value=score_threshold, min=0.05, max=0.95, step=0.05,
                                               description="score >", continuous_update=False, style=style),
        "nms_threshold": widgets.FloatSlider(value=nms_threshold, min=0.1, max=1.0, step=0.05,
                                             description="NMS IoU >", continuous_update=False, style=style),
    }

    def compute(image, score_threshold, nms_threshold):
        states = [detection_explorer_state(s["candidates"], s["gt_boxes"], s["gt_labels"], score_threshold,
                                           nms_threshold, detections_per_image) for s in samples]
        state = states[image]
        state.update(image=samples[image]["image"], name=samples[image]["name"], totals=total_counts(states),
                     num_images=len(samples))
        return state

    def draw(figure, state):
        draw_detection_explorer(figure, state, class_names=class_names)

    return Explorer(controls, compute, draw, figsize=figsize, columns=3)


# ----------------------------------------------------------------------------- the failure gallery


def describe_error(error, gt_labels, class_names=None):
    """A one-line caption of an error row of :func:`minifrcnn.course.diagnosis.diagnose`."""
    def name(label):
        return f"'{class_names[label]}'" if class_names is not None else str(label)

    kind, g = error["kind"], error["gt_index"]
    if kind == "missed":
        cause = {"confusion": "called another digit", "mislocalised": "only poor boxes",
                 "not found": "nothing on it"}[error.get("cause", "not found")]
        return f"missed {name(error['label'])}: {cause}"
    head = f"{name(error['label'])} {error['score']:.2f}"
    if kind == "background":
        return f"{head} on clutter (IoU {error['iou']:.2f})"
    if kind == "confusion":
        return f"{head} on a {name(int(gt_labels[g]))} (IoU {error['iou']:.2f})"
    return f"{head}, IoU {error['iou']:.2f}"  # duplicate, mislocalised


def draw_error(ax, image, error, gt_boxes, gt_labels, class_names=None, margin=10):
    """One error, zoomed: the image around the error's box and its object, the ground truth
    (white, dashed, captioned), and the error's box in its kind's colour."""
    show_image(image, ax)
    gt_boxes = torch.as_tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4)
    if len(gt_boxes):
        draw_box_outlines(ax, gt_boxes, color="white", linewidth=1.0, linestyle="--")
    box = torch.as_tensor(error["box"], dtype=torch.float32).reshape(1, 4)
    color = KIND_COLORS[error["kind"]]
    draw_box_outlines(ax, box, color=color, linewidth=2.0, linestyle="--" if error["kind"] == "missed" else "-")
    region = box
    if error["gt_index"] >= 0 and len(gt_boxes):
        region = torch.cat((region, gt_boxes[error["gt_index"]][None]))
    x1, y1 = (region[:, :2].min(0).values - margin).tolist()
    x2, y2 = (region[:, 2:].max(0).values + margin).tolist()
    side = max(x2 - x1, y2 - y1)  # a square view, so that every thumbnail has the same scale of zoom
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    ax.set_xlim(cx - side / 2, cx + side / 2)
    ax.set_ylim(cy + side / 2, cy - side / 2)
    ax.set_title(describe_error(error, gt_labels, class_names), fontsize=8, color="black")
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(3)


def draw_error_gallery(figure, errors, images, ground_truths, class_names=None,
                       kinds=("duplicate", "mislocalised", "confusion", "background", "missed"), per_kind=5):
    """A row per kind of error, its most confident ``per_kind`` examples (from
    :func:`minifrcnn.course.diagnosis.diagnose`'s ``errors``, which are sorted that way).

    Returns:
        dict: kind -> the error rows drawn.
    """
    axes = figure.subplots(len(kinds), per_kind, squeeze=False)
    shown = {}
    for row, kind in zip(axes, kinds):
        examples = [e for e in errors if e["kind"] == kind][:per_kind]
        shown[kind] = examples
        for ax, error in zip(row, examples):
            gt = ground_truths[error["image"]]
            draw_error(ax, images[error["image"]], error, gt["boxes"], gt["labels"], class_names)
            ax.set_axis_on()
            ax.set_xticks([]), ax.set_yticks([])
        for ax in row[len(examples):]:
            ax.set_axis_off()
        row[0].set_ylabel(kind, fontsize=11, color=KIND_COLORS[kind])
        if not examples:
            row[0].set_axis_on(), row[0].set_xticks([]), row[0].set_yticks([])
            row[0].text(0.5, 0.5, "none", ha="center", va="center", transform=row[0].transAxes)
    figure.tight_layout()
    return shown
