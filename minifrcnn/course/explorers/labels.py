"""Anchor-label explorer (lesson 03): which anchors are positive, negative or ignored.

Paper, section 3.1.2: an anchor is positive if its IoU with some ground-truth box is
>= 0.7 or if it is the best anchor of some ground-truth box; negative if its IoU is
< 0.3 with every ground-truth box; ignored otherwise. The explorer lets a learner move
both thresholds, switch the best-anchor rule (torchvision's ``allow_low_quality_matches``)
off and on, and see the counts change and which ground-truth box is left with no
positive anchor at all.

Two switches show what the lesson argues:

* ``band="negative"``: the simplified rule of many notes, "everything that is not positive is
  negative": no ignored band (the negative threshold is raised to the positive one);
* ``ignore_crossing``: the paper's training rule for anchors that cross the image border
  (section 3.3): they are ignored, and the others are labelled as if they were not there (a box's
  best anchor is then its best anchor inside the image). They are drawn in their own colour either way.

Parts: :func:`anchor_label_state` (pure: boxes and settings in, labels and counts out),
:func:`draw_anchor_label_state` (matplotlib) and :func:`make_label_explorer` (widgets).
"""
import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from ...boxes import box_iou
from ...matching import BETWEEN_THRESHOLDS, Matcher, match_labels
from ..draw import LABEL_COLORS, draw_anchor_labels, draw_box_outlines, label_legend, show_image
from ._base import Explorer
from .anchors import inside_image

KINDS = ("positive", "ignored", "negative")
NO_POSITIVE_COLOR = "magenta"
CROSSING_COLOR = "tab:cyan"
BANDS = {"ignored": "the band is ignored (paper)", "negative": "everything else is negative (simplified)"}


def anchor_label_state(gt_boxes, anchors, pos_iou=0.7, neg_iou=0.3, best_anchor_rule=True, band="ignored",
                       image_size=None, ignore_crossing=False):
    """Label anchors with the paper's rule and summarise the result.

    Args:
        gt_boxes (Tensor): ``(G, 4)`` ground-truth boxes, xyxy.
        anchors (Tensor): ``(A, 4)`` anchors, xyxy.
        pos_iou (float): IoU at or above which an anchor is positive (paper: 0.7).
        neg_iou (float): IoU below which an anchor is negative (paper: 0.3). If it is above
            ``pos_iou`` it is lowered to ``pos_iou`` (no band), as a slider can cross over.
        best_anchor_rule (bool): the best anchor(s) of each ground truth are positive too.
        band (str): ``"ignored"`` (the paper) or ``"negative"``: the simplified rule, every anchor
            that is not positive is negative (``neg_iou`` is raised to ``pos_iou``).
        image_size (tuple of int, optional): ``(height, width)``, to find the anchors that cross
            the image border.
        ignore_crossing (bool): ignore them, as the paper's training does (needs ``image_size``):
            the other anchors are labelled without them.

    Returns:
        dict: ``iou`` ``(G, A)``; ``best_iou`` ``(A,)`` (each anchor's best IoU);
        ``matches`` ``(A,)`` (``Matcher`` output); ``labels`` ``(A,)`` (1 / 0 / -1);
        ``counts`` (kind -> number); ``positives_per_gt`` ``(G,)`` (anchors matched to
        each ground truth); ``best_iou_per_gt`` ``(G,)``; ``no_positive`` (list of the
        ground-truth indices with no positive anchor); ``pos_iou``, ``neg_iou`` (used),
        ``best_anchor_rule``, ``band``; ``crossing`` ``(A,)`` bool (all False without
        ``image_size``), ``ignore_crossing``, ``crossing_ignored`` (anchors this rule turned
        to ignored: positives and negatives that cross the border).
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of {sorted(BANDS)}, got {band!r}")
    if ignore_crossing and image_size is None:
        raise ValueError("ignore_crossing needs the image size (image_size=(height, width))")
    neg_iou = pos_iou if band == "negative" else min(neg_iou, pos_iou)
    iou = box_iou(gt_boxes, anchors)
    matcher = Matcher(pos_iou, neg_iou, allow_low_quality_matches=best_anchor_rule)
    matches = matcher(iou)
    crossing = (~inside_image(anchors, image_size) if image_size is not None
                else torch.zeros(anchors.shape[0], dtype=torch.bool))
    crossing_ignored = 0
    if ignore_crossing:
        # As the original code does it: the crossing anchors leave before labelling, so each box's best
        # anchor is its best anchor inside the image.
        crossing_ignored = int((crossing & (matches != BETWEEN_THRESHOLDS)).sum())
        matches = torch.full_like(matches, BETWEEN_THRESHOLDS)
        if (~crossing).any():  # an image smaller than every anchor has none inside
            matches[~crossing] = matcher(iou[:, ~crossing])
    labels = match_labels(matches)
    num_gt = gt_boxes.shape[0]
    # A ground truth "has" the positive anchors matched to it: those are the anchors whose
    # regression target it is (the best-anchor rule matches an anchor to the anchor's own
    # best ground truth, which is almost always the box it is best for).
    positives_per_gt = torch.bincount(matches[matches >= 0], minlength=num_gt)
    return {
        "iou": iou,
        "best_iou": iou.max(dim=0).values if num_gt else torch.zeros(anchors.shape[0]),
        "matches": matches,
        "labels": labels,
        "counts": {"positive": int((labels == 1).sum()), "ignored": int((labels == -1).sum()),
                   "negative": int((labels == 0).sum())},
        "positives_per_gt": positives_per_gt,
        "best_iou_per_gt": iou.max(dim=1).values if anchors.shape[0] else torch.zeros(num_gt),
        "no_positive": [g for g in range(num_gt) if positives_per_gt[g] == 0],
        "pos_iou": pos_iou,
        "neg_iou": neg_iou,
        "best_anchor_rule": best_anchor_rule,
        "band": band,
        "crossing": crossing,
        "ignore_crossing": ignore_crossing,
        "crossing_ignored": crossing_ignored,
    }


def draw_gt_boxes(ax, gt_boxes, state):
    """Ground truths in white, each captioned with its number of positive anchors; the
    boxes with none in thick dashed magenta."""
    boxes = gt_boxes.detach().cpu()
    missing = set(state["no_positive"])
    for g, box in enumerate(boxes):
        lost = g in missing
        draw_box_outlines(ax, box[None], color=NO_POSITIVE_COLOR if lost else "white",
                          linewidth=3.0 if lost else 1.8, linestyle="--" if lost else "-")
        n = int(state["positives_per_gt"][g])
        text = f"gt {g}: NO positive" if lost else f"gt {g}: {n} pos"
        top = float(box[1]) < 10  # a caption above a box at the top edge would leave the image
        ax.text(float(box[0]), float(box[1]) + (1 if top else -1), text, fontsize=7, color="white",
                va="top" if top else "bottom",
                bbox=dict(facecolor=NO_POSITIVE_COLOR if lost else "black", alpha=0.7, pad=1,
                          edgecolor="none"))


def draw_iou_histogram(ax, state):
    """Each anchor's best IoU, stacked by label, with the two thresholds (anchors with
    IoU 0 left out: there are thousands)."""
    best = state["best_iou"].cpu().numpy()
    labels = state["labels"].cpu().numpy()
    bins = np.linspace(0, 1, 41)
    values = {"positive": best[labels == 1], "ignored": best[labels == -1],
              "negative": best[(labels == 0) & (best > 0)]}
    ax.hist([values[k] for k in KINDS], bins=bins, stacked=True,
            color=[LABEL_COLORS[k] for k in KINDS], label=list(KINDS))
    ax.axvline(state["pos_iou"], color=LABEL_COLORS["positive"], linestyle="--", linewidth=1.5)
    ax.axvline(state["neg_iou"], color=LABEL_COLORS["negative"], linestyle="--", linewidth=1.5)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(NullFormatter())  # only the powers of ten are labelled
    ax.set_xlim(0, 1)
    ax.set_xlabel("each anchor's best IoU with a ground truth")
    ax.set_ylabel("anchors (log scale)")
    ax.set_title(f"{int((best == 0).sum())} anchors with IoU 0 not shown", fontsize=9)


def draw_anchor_label_state(figure, state):
    """Image with anchors coloured by label (left) and the IoU histogram (right)."""
    ax_image, ax_hist = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    show_image(state["image"], ax_image)
    shown = state["show"]
    # Thousands of negatives (and, with large anchors, ignored ones) would hide the image: draw an
    # evenly spaced few of them. Positives are always all drawn, last, on top.
    crossing = state["crossing"] if state["show_crossing"] else torch.zeros_like(state["crossing"])
    for kind in ("negative", "ignored", "positive"):
        if kind in shown:
            draw_anchor_labels(ax_image, state["anchors"][~crossing], state["labels"][~crossing], show=(kind,),
                               max_per_kind=None if kind == "positive" else state["max_drawn"])
    if crossing.any():  # dotted, in their own colour, whatever their label
        boxes = state["anchors"][crossing]
        if len(boxes) > state["max_drawn"]:
            boxes = boxes[np.linspace(0, len(boxes) - 1, state["max_drawn"]).astype(int)]
        draw_box_outlines(ax_image, boxes, color=CROSSING_COLOR, linewidth=0.8, alpha=0.7, linestyle=":")
    draw_gt_boxes(ax_image, state["gt_boxes"], state)
    height, width = state["image"].shape[-2:]
    ax_image.set_xlim(-0.5, width - 0.5)
    ax_image.set_ylim(height - 0.5, -0.5)
    label_legend(ax_image, state["counts"])
    legend = ax_image.get_legend()  # the same legend again, below the image where it hides no object
    handles, texts = list(legend.legend_handles), [t.get_text() for t in legend.get_texts()]
    if crossing.any():
        handles.append(Line2D([], [], color=CROSSING_COLOR, linestyle=":"))
        texts.append(f"crossing the border ({int(crossing.sum())})")
    ax_image.legend(handles=handles, labels=texts, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
                    ncol=2)
    rule = "on" if state["best_anchor_rule"] else "OFF"
    missing = len(state["no_positive"])
    simplified = " (simplified: no band)" if state["band"] == "negative" else ""
    border = (f"; {int(state['crossing'].sum())} anchors cross the border"
              + (f", {state['crossing_ignored']} of them turned to ignored" if state["ignore_crossing"] else "")
              if state["crossing"].any() else "")
    ax_image.set_title(f"{state['name']}: pos >= {state['pos_iou']:.2f}, neg < {state['neg_iou']:.2f}{simplified}, "
                       f"best-anchor rule {rule}\n"
                       + (f"{missing} ground truth(s) with NO positive anchor" if missing
                          else "every ground truth has a positive anchor") + border, fontsize=9)
    draw_iou_histogram(ax_hist, state)
    ax_hist.legend(fontsize=8, loc="upper center")
    figure.tight_layout()


def make_label_explorer(samples, pos_iou=0.7, neg_iou=0.3, best_anchor_rule=True, max_drawn=150, band="ignored",
                        ignore_crossing=False):
    """Interactive anchor labels on real images.

    Args:
        samples (list of dict): each with ``name`` (str), ``image`` ``(3, H, W)``,
            ``boxes`` ``(G, 4)`` ground truths and ``anchors`` ``(A, 4)`` (all xyxy).
        pos_iou, neg_iou (float): starting thresholds.
        best_anchor_rule (bool): starting state of the best-anchor toggle.
        max_drawn (int): at most this many negative, this many ignored, and this many
            border-crossing anchors are drawn (all of them are counted).
        band (str): the starting rule for anchors that are not positive (:data:`BANDS`).
        ignore_crossing (bool): starting state of the paper's border rule.

    Returns:
        Explorer: controls ``image``, ``pos_iou``, ``neg_iou``, ``band``, ``best_anchor_rule``,
        ``ignore_crossing``, ``show_positive``, ``show_ignored``, ``show_negative``,
        ``show_crossing``; ``state`` as :func:`anchor_label_state` (the image's size from the
        image) plus what was drawn.
    """
    samples = list(samples)
    slider = dict(min=0.0, max=1.0, step=0.05, continuous_update=False, readout_format=".2f",
                  style={"description_width": "initial"})
    controls = {
        "image": widgets.Dropdown(options=[(s["name"], i) for i, s in enumerate(samples)], value=0,
                                  description="image"),
        "pos_iou": widgets.FloatSlider(value=pos_iou, description="positive IoU >=", **slider),
        "neg_iou": widgets.FloatSlider(value=neg_iou, description="negative IoU <", **slider),
        "band": widgets.Dropdown(options=[(text, key) for key, text in BANDS.items()], value=band,
                                 description="not positive:", style={"description_width": "initial"}),
        "best_anchor_rule": widgets.Checkbox(value=best_anchor_rule, description="best-anchor rule"),
        "ignore_crossing": widgets.Checkbox(value=ignore_crossing, description="ignore border-crossing anchors"),
        "show_positive": widgets.Checkbox(value=True, description="show positive"),
        "show_ignored": widgets.Checkbox(value=True, description="show ignored"),
        "show_negative": widgets.Checkbox(value=True, description="show negative"),
        "show_crossing": widgets.Checkbox(value=True, description="show border-crossing"),
    }

    def compute(image, pos_iou, neg_iou, band, best_anchor_rule, ignore_crossing, show_positive, show_ignored,
                show_negative, show_crossing):
        sample = samples[image]
        state = anchor_label_state(sample["boxes"], sample["anchors"], pos_iou, neg_iou, best_anchor_rule, band,
                                   tuple(sample["image"].shape[-2:]), ignore_crossing)
        flags = {"positive": show_positive, "ignored": show_ignored, "negative": show_negative}
        state.update(name=sample["name"], image=sample["image"], gt_boxes=sample["boxes"],
                     anchors=sample["anchors"], show=tuple(k for k in KINDS if flags[k]),
                     show_crossing=show_crossing, max_drawn=max_drawn)
        return state

    return Explorer(controls, compute, draw_anchor_label_state, figsize=(11, 5.5), columns=4)
