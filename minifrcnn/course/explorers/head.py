"""Lesson 07's explorers: which RoIs the Fast R-CNN head trains on, and what its
post-processing keeps.

* The **RoI sampler**: sliders for the foreground IoU threshold, the lower end of the
  background range (0 in the paper and torchvision; 0.1 in the original Fast R-CNN code,
  "hard" background), the number of RoIs per image and the foreground fraction, a toggle
  for appending the ground truth to the proposals, and a seed to draw another sample.
  Foreground, background and ignored candidates in distinct colours, the sampled ones
  drawn, with an IoU histogram. Paper: Faster R-CNN section 3.2; Fast R-CNN section 2.3
  ("Mini-batch sampling").
* The **post-processing**: sliders for the score threshold, the NMS threshold and the
  number of detections kept, a toggle for per-class vs class-agnostic NMS; the candidates
  before NMS, the detections after, and a funnel of the counts at each stage.

Parts, as every explorer: pure state functions (:func:`roi_sampling_state`,
:func:`detection_state`, unit-tested against ``minifrcnn.head``), draw functions, and small
factories (:func:`make_sampling_explorer`, :func:`make_postprocess_explorer`).
"""
import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from ...boxes import HEAD_BOX_WEIGHTS, BoxCoder, box_iou, clip_boxes_to_image, remove_small_boxes
from ...matching import BalancedSampler
from ...nms import batched_nms, nms
from ..draw import LABEL_COLORS, class_color, draw_box_outlines, draw_boxes, show_image
from ._base import Explorer
from .proposals import draw_funnel

KINDS = ("foreground", "background", "ignored")
KIND_COLORS = {"foreground": LABEL_COLORS["positive"], "background": LABEL_COLORS["negative"],
               "ignored": LABEL_COLORS["ignored"]}
HEAD_WEIGHTS = HEAD_BOX_WEIGHTS
# Sampled background RoIs are drawn in black: red is also the colour of class 3 (the digit "2")
# in ``class_color``, which the foreground RoIs use.
SAMPLED_BACKGROUND = "black"


# ----------------------------------------------------------------------------- the RoI sampler


def roi_sampling_state(proposals, gt_boxes, gt_labels, fg_iou=0.5, bg_low=0.0, batch_size=128,
                       positive_fraction=0.25, append_gt=True, seed=0):
    """Label and sample the RoIs of one image, as the head's training does.

    Args:
        proposals (Tensor): ``(R, 4)``; gt_boxes (Tensor): ``(G, 4)``; gt_labels (Tensor): ``(G,)``.
        fg_iou (float): foreground if the best IoU with a ground truth is >= this (paper: 0.5).
        bg_low (float): background if the best IoU is in ``[bg_low, fg_iou)``; below
            ``bg_low`` a candidate is ignored (paper and torchvision: 0; the original Fast
            R-CNN code: 0.1).
        batch_size (int), positive_fraction (float): the sampler (paper: 128, 0.25).
        append_gt (bool): add the ground-truth boxes to the candidates first.
        seed (int): the sampler's random generator.

    Returns:
        dict: ``candidates`` ``(C, 4)`` (proposals, then the ground truth if appended);
        ``is_gt`` ``(C,)`` bool; ``iou`` ``(C,)`` best IoU; ``matches`` ``(C,)`` index of the
        best ground truth; ``labels`` ``(C,)`` int64 (class, 0 background, -1 ignored);
        ``positive`` / ``negative`` ``(C,)`` bool (sampled); ``counts`` (kind -> number,
        plus ``"sampled foreground"`` / ``"sampled background"``); and the settings.
        With ``bg_low = 0`` the labels equal ``minifrcnn.head.assign_targets`` with
        ``Matcher(fg_iou, fg_iou)``.
    """
    gt_boxes = gt_boxes.to(proposals.dtype)
    candidates = torch.cat((proposals, gt_boxes)) if append_gt else proposals
    is_gt = torch.zeros(len(candidates), dtype=torch.bool)
    if append_gt:
        is_gt[len(proposals):] = True
    if len(gt_boxes):
        iou, matches = box_iou(gt_boxes, candidates).max(dim=0)
        labels = gt_labels[matches].to(torch.int64)
    else:
        iou = torch.zeros(len(candidates), dtype=candidates.dtype)
        matches = torch.zeros(len(candidates), dtype=torch.int64)
        labels = torch.zeros(len(candidates), dtype=torch.int64)
    labels[iou < fg_iou] = 0
    labels[iou < bg_low] = -1
    positive, negative = BalancedSampler(batch_size, positive_fraction)(
        labels, generator=torch.Generator().manual_seed(seed))
    counts = {"candidates": len(candidates), "foreground": int((labels > 0).sum()),
              "background": int((labels == 0).sum()), "ignored": int((labels == -1).sum()),
              "sampled foreground": int(positive.sum()), "sampled background": int(negative.sum())}
    return dict(candidates=candidates, is_gt=is_gt, iou=iou, matches=matches, labels=labels, positive=positive,
                negative=negative, counts=counts, gt_boxes=gt_boxes, gt_labels=gt_labels, fg_iou=fg_iou,
                bg_low=bg_low, batch_size=batch_size, positive_fraction=positive_fraction, append_gt=append_gt,
                seed=seed)


def _kind_masks(labels):
    return {"foreground": labels > 0, "background": labels == 0, "ignored": labels == -1}


def draw_iou_histogram(ax, state):
    """Every candidate's best IoU, stacked by kind: all candidates light, the sampled ones solid."""
    iou = state["iou"].cpu().numpy()
    sampled = (state["positive"] | state["negative"]).cpu().numpy()
    bins = np.linspace(0, 1, 41)
    masks = {k: m.cpu().numpy() for k, m in _kind_masks(state["labels"]).items()}
    colors = [KIND_COLORS[k] for k in KINDS]
    ax.hist([iou[masks[k]] for k in KINDS], bins=bins, stacked=True, color=colors, alpha=0.3)
    ax.hist([iou[masks[k] & sampled] for k in KINDS], bins=bins, stacked=True, color=colors,
            label=[f"sampled {k}" for k in KINDS[:2]] + ["ignored"])
    ax.axvline(state["fg_iou"], color=KIND_COLORS["foreground"], linestyle="--", linewidth=1.5)
    if state["bg_low"] > 0:
        ax.axvline(state["bg_low"], color=KIND_COLORS["ignored"], linestyle="--", linewidth=1.5)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(0, 1)
    ax.set_xlabel("each candidate's best IoU with a ground truth")
    ax.set_ylabel("candidates (log scale)")
    ax.set_title("light: all candidates; solid: the sampled ones", fontsize=9)
    ax.legend(fontsize=8, loc="upper center")


def draw_sampled_rois(ax, state, max_unsampled=150):
    """Sampled background RoIs (black), sampled foreground RoIs (in their class's colour) and
    a few unsampled candidates (light grey)."""
    labels = state["labels"]
    sampled = state["positive"] | state["negative"]
    boxes = state["candidates"]
    rest = boxes[~sampled]
    if len(rest) > max_unsampled:
        rest = rest[np.linspace(0, len(rest) - 1, max_unsampled).astype(int)]
    draw_box_outlines(ax, rest, color="0.75", linewidth=0.4, alpha=0.5).set_gid("unsampled")
    draw_box_outlines(ax, boxes[state["negative"]], color=SAMPLED_BACKGROUND, linewidth=0.7,
                      alpha=0.6).set_gid("sampled background")
    fg = torch.where(state["positive"])[0]
    colors = [class_color(int(labels[i])) for i in fg]
    draw_box_outlines(ax, boxes[fg], color=colors if len(fg) else "k", linewidth=1.6).set_gid("sampled foreground")


def draw_ground_truth(ax, gt_boxes, gt_labels, class_names=None):
    """Ground-truth boxes as white dashed outlines, captioned with their class (in its colour)."""
    if len(gt_boxes):
        draw_box_outlines(ax, gt_boxes, color="white", linewidth=1.8, linestyle="--").set_gid("gt")
        draw_boxes(ax, gt_boxes, gt_labels, class_names=class_names, linewidth=0, fontsize=7)


def draw_roi_sampling_state(figure, state):
    """Image with the sampled RoIs and the ground truth (left), IoU histogram (right)."""
    ax, ax_hist = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    show_image(state["image"], ax)
    draw_sampled_rois(ax, state)
    draw_ground_truth(ax, state["gt_boxes"], state["gt_labels"], state.get("class_names"))
    height, width = state["image"].shape[-2:]
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    c = state["counts"]
    fg_label = f"sampled fg, class colour ({c['sampled foreground']})"
    handles = [Line2D([], [], color=class_color(1), lw=1.6, label=fg_label),
               Line2D([], [], color=SAMPLED_BACKGROUND, lw=1, label=f"sampled bg ({c['sampled background']})"),
               Line2D([], [], color="0.75", lw=1, label="not sampled"),
               Line2D([], [], color="white", lw=2, ls="--", label="ground truth")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, facecolor="0.6")
    bg = f"[{state['bg_low']:.2f}, {state['fg_iou']:.2f})"
    ax.set_title(f"{state.get('name', '')}: fg IoU >= {state['fg_iou']:.2f}, bg {bg}"
                 f"{'' if state['append_gt'] else ', NO ground truth appended'}\n"
                 f"{c['candidates']} candidates: {c['foreground']} fg, {c['background']} bg, {c['ignored']} ignored;"
                 f" {c['sampled foreground'] + c['sampled background']} sampled", fontsize=9)
    draw_iou_histogram(ax_hist, state)
    figure.tight_layout()


def make_sampling_explorer(samples, class_names=None, fg_iou=0.5, bg_low=0.0, batch_size=128,
                           positive_fraction=0.25, append_gt=True, figsize=(11, 5.2)):
    """The interactive RoI sampler.

    Args:
        samples (list of dict): ``name``, ``image`` ``(3, H, W)``, ``proposals`` ``(R, 4)``,
            ``gt_boxes`` ``(G, 4)``, ``gt_labels`` ``(G,)``.
        class_names (sequence of str): captions of the ground truth.
        fg_iou, bg_low, batch_size, positive_fraction, append_gt: the starting values.

    Returns:
        Explorer: controls ``image``, ``fg_iou``, ``bg_low``, ``batch_size``,
        ``positive_fraction``, ``append_gt``, ``seed``; ``state`` from :func:`roi_sampling_state`.
    """
    samples = list(samples)
    style = {"description_width": "initial"}
    slider = dict(step=0.05, continuous_update=False, readout_format=".2f", style=style)
    controls = {
        "image": widgets.Dropdown(options=[(s["name"], i) for i, s in enumerate(samples)], value=0,
                                  description="image"),
        "fg_iou": widgets.FloatSlider(value=fg_iou, min=0.3, max=0.9, description="foreground IoU >=", **slider),
        "bg_low": widgets.FloatSlider(value=bg_low, min=0.0, max=0.4, description="background IoU >=", **slider),
        "batch_size": widgets.Dropdown(options=[32, 64, 128, 256, 512], value=batch_size, description="RoIs/image"),
        "positive_fraction": widgets.FloatSlider(value=positive_fraction, min=0.05, max=1.0,
                                                 description="foreground fraction", **slider),
        "append_gt": widgets.Checkbox(value=append_gt, description="append the ground truth"),
        "seed": widgets.IntSlider(value=0, min=0, max=9, description="sample #", continuous_update=False),
    }

    def compute(image, fg_iou, bg_low, batch_size, positive_fraction, append_gt, seed):
        s = samples[image]
        state = roi_sampling_state(s["proposals"], s["gt_boxes"], s["gt_labels"], fg_iou, min(bg_low, fg_iou),
                                   batch_size, positive_fraction, append_gt, seed)
        state.update(image=s["image"], name=s["name"], class_names=class_names)
        return state

    return Explorer(controls, compute, draw_roi_sampling_state, figsize=figsize, columns=4)


# ----------------------------------------------------------------------------- post-processing

STAGES = ("proposals", "(proposal, class) pairs", "score > threshold", "not tiny", "after NMS", "top detections")


def detection_state(class_logits, box_deltas, proposals, image_size, score_threshold=0.05, nms_threshold=0.3,
                    detections_per_image=100, per_class_nms=True, min_size=1e-2):
    """The head's post-processing for one image, keeping every intermediate step.

    Args:
        class_logits (Tensor): ``(R, K)``; box_deltas (Tensor): ``(R, 4K)``; proposals (Tensor): ``(R, 4)``.
        image_size (tuple): ``(height, width)``.
        score_threshold, nms_threshold, detections_per_image: as ``HeadSettings``.
        per_class_nms (bool): NMS within each class (the paper, torchvision) or over all
            classes at once (for comparison).

    Returns:
        dict: ``counts`` (stage -> number, in the order of ``STAGES``); ``before_boxes``,
        ``before_scores``, ``before_labels`` (the candidates NMS sees); ``boxes``, ``scores``,
        ``labels`` (the detections: with ``per_class_nms`` they equal
        ``minifrcnn.head.postprocess``); and the settings.
    """
    class_logits, box_deltas = class_logits.detach(), box_deltas.detach()
    num_classes = class_logits.shape[-1]
    counts = {"proposals": len(proposals), "(proposal, class) pairs": len(proposals) * (num_classes - 1)}
    boxes = clip_boxes_to_image(BoxCoder(HEAD_WEIGHTS).decode(box_deltas, proposals), image_size)
    scores = F.softmax(class_logits, -1)
    labels = torch.arange(num_classes).expand_as(scores)
    boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
    keep = torch.where(scores > score_threshold)[0]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    counts["score > threshold"] = len(keep)
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    counts["not tiny"] = len(keep)
    keep = batched_nms(boxes, scores, labels, nms_threshold) if per_class_nms else nms(boxes, scores, nms_threshold)
    counts["after NMS"] = len(keep)
    keep = keep[:detections_per_image]
    counts["top detections"] = len(keep)
    return dict(counts=counts, before_boxes=boxes, before_scores=scores, before_labels=labels, boxes=boxes[keep],
                scores=scores[keep], labels=labels[keep], score_threshold=score_threshold,
                nms_threshold=nms_threshold, detections_per_image=detections_per_image, per_class_nms=per_class_nms)


def draw_candidates(ax, boxes, scores, labels, max_drawn=400):
    """Boxes in their class's colour, the more transparent the lower their score."""
    order = torch.argsort(scores)[-max_drawn:]  # the best ones, drawn last (on top)
    colors = [(*class_color(int(labels[i]))[:3], float(0.15 + 0.85 * scores[i])) for i in order]
    return draw_box_outlines(ax, boxes[order], color=colors if len(order) else "k", linewidth=1.0)


def draw_detection_state(figure, state, class_names=None, max_captions=12):
    """Candidates before NMS (left), detections after (middle), the funnel (right)."""
    ax_before, ax_after, ax_funnel = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.9]})
    height, width = state["image"].shape[-2:]
    for ax in (ax_before, ax_after):
        show_image(state["image"], ax)
        if len(state["gt_boxes"]):
            draw_box_outlines(ax, state["gt_boxes"], color="white", linewidth=1.2, linestyle=":")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    draw_candidates(ax_before, state["before_boxes"], state["before_scores"], state["before_labels"])
    ax_before.set_title(f"before NMS: {len(state['before_boxes'])} candidates\nwith score > "
                        f"{state['score_threshold']:.2f} (opacity = score)", fontsize=9)
    captioned = min(len(state["boxes"]), max_captions)
    draw_boxes(ax_after, state["boxes"][:captioned], state["labels"][:captioned], state["scores"][:captioned],
               class_names=class_names, linewidth=1.5, fontsize=7)
    draw_candidates(ax_after, state["boxes"][captioned:], state["scores"][captioned:], state["labels"][captioned:])
    kind = "per-class" if state["per_class_nms"] else "class-AGNOSTIC"
    ax_after.set_title(f"after {kind} NMS at {state['nms_threshold']:.2f}: {len(state['boxes'])} detections\n"
                       f"(the best {captioned} captioned; dotted: ground truth)", fontsize=9)
    draw_funnel(ax_funnel, state["counts"])
    ax_funnel.set_title("the post-processing funnel", fontsize=10)
    figure.tight_layout()


def make_postprocess_explorer(samples, class_names=None, score_threshold=0.05, nms_threshold=0.3,
                              detections_per_image=100, figsize=(14, 4.8)):
    """The interactive post-processing.

    Args:
        samples (list of dict): ``name``, ``image`` ``(3, H, W)``, ``class_logits`` ``(R, K)``,
            ``box_deltas`` ``(R, 4K)``, ``proposals`` ``(R, 4)``, ``gt_boxes`` ``(G, 4)``.
        class_names (sequence of str): for the captions.
        score_threshold, nms_threshold, detections_per_image: the starting values.

    Returns:
        Explorer: controls ``image``, ``score_threshold``, ``nms_threshold``,
        ``detections_per_image``, ``per_class_nms``; ``state`` from :func:`detection_state`.
    """
    samples = list(samples)
    style = {"description_width": "initial"}
    controls = {
        "image": widgets.Dropdown(options=[(s["name"], i) for i, s in enumerate(samples)], value=0,
                                  description="image"),
        "score_threshold": widgets.FloatSlider(value=score_threshold, min=0.0, max=0.95, step=0.05,
                                               description="score >", continuous_update=False, style=style),
        "nms_threshold": widgets.FloatSlider(value=nms_threshold, min=0.1, max=1.0, step=0.05,
                                             description="NMS IoU >", continuous_update=False, style=style),
        "detections_per_image": widgets.IntSlider(value=detections_per_image, min=1, max=300,
                                                  description="at most", continuous_update=False, style=style),
        "per_class_nms": widgets.ToggleButtons(options=[("per-class NMS", True), ("class-agnostic NMS", False)],
                                               value=True),
    }

    def compute(image, score_threshold, nms_threshold, detections_per_image, per_class_nms):
        s = samples[image]
        state = detection_state(s["class_logits"], s["box_deltas"], s["proposals"], tuple(s["image"].shape[-2:]),
                                score_threshold, nms_threshold, detections_per_image, per_class_nms)
        state.update(image=s["image"], name=s["name"], gt_boxes=s["gt_boxes"])
        return state

    def draw(figure, state):
        draw_detection_state(figure, state, class_names=class_names)

    return Explorer(controls, compute, draw, figsize=figsize, columns=3)
