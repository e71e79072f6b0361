"""Box-delta playground (lesson 03): move a ground-truth box against one anchor.

Paper, section 3.1.2, equation 2: a box is regressed from an anchor through four deltas,

    tx = (x - xa) / wa,   ty = (y - ya) / ha,   tw = log(w / wa),   th = log(h / ha),

(centres ``x, y``, sizes ``w, h``). The RPN regresses them as they are (box-coder weights
(1, 1, 1, 1)); the Fast R-CNN head multiplies them by (10, 10, 5, 5), which divides them
by their typical spread (0.1, 0.1, 0.2, 0.2) so that all four have a similar scale.

Parts: :func:`delta_state` (pure), :func:`draw_delta_state` and :func:`make_delta_playground`.
"""
import ipywidgets as widgets
import numpy as np
import torch

from ...anchors import base_anchors
from ...boxes import BBOX_XFORM_CLIP, HEAD_BOX_WEIGHTS, RPN_BOX_WEIGHTS, BoxCoder, box_iou, cxcywh_to_xyxy
from ..draw import draw_box_outlines, show_image
from ._base import Explorer

RPN_WEIGHTS = RPN_BOX_WEIGHTS
HEAD_WEIGHTS = HEAD_BOX_WEIGHTS
DELTA_NAMES = ("tx", "ty", "tw", "th")
COLORS = {"anchor": "tab:blue", "gt": "tab:green", "decoded": "tab:red"}


def delta_state(gt_x, gt_y, gt_w, gt_h, anchor=(32, 1.0), anchor_centre=(64.0, 64.0)):
    """Encode a ground-truth box against an anchor with both box coders, and decode back.

    Args:
        gt_x, gt_y (float): centre of the ground-truth box, in pixels.
        gt_w, gt_h (float): its width and height (> 0).
        anchor (tuple): ``(size, ratio)`` of the anchor (``ratio = h / w``, see
            :func:`minifrcnn.anchors.base_anchors`).
        anchor_centre (tuple): ``(x, y)`` of the anchor's centre.

    Returns:
        dict: ``gt``, ``anchor``, ``decoded`` and ``decoded_head``: ``(4,)`` xyxy boxes;
        ``deltas`` ``(4,)`` (weights 1, 1, 1, 1), ``weighted`` ``(4,)`` (weights 10, 10, 5,
        5); ``iou`` (float); ``clamped`` (bool: would decoding clamp ``tw`` or ``th``).
    """
    size, ratio = anchor
    cx, cy = anchor_centre
    anchor_box = base_anchors((size,), (ratio,)) + torch.tensor([cx, cy, cx, cy])
    gt = cxcywh_to_xyxy(torch.tensor([[gt_x, gt_y, gt_w, gt_h]], dtype=torch.float32))
    rpn, head = BoxCoder(RPN_WEIGHTS), BoxCoder(HEAD_WEIGHTS)
    deltas = rpn.encode(gt, anchor_box)
    weighted = head.encode(gt, anchor_box)
    return {
        "gt": gt[0],
        "anchor": anchor_box[0],
        "deltas": deltas[0],
        "weighted": weighted[0],
        "decoded": rpn.decode(deltas, anchor_box)[0, 0],
        "decoded_head": head.decode(weighted, anchor_box)[0, 0],
        "iou": float(box_iou(gt, anchor_box)[0, 0]),
        "clamped": bool((deltas[0, 2:] > BBOX_XFORM_CLIP).any()),
    }


def draw_delta_state(figure, state, image=None, canvas=128):
    """Boxes on the image (left) and the deltas as bars, unweighted and weighted (right)."""
    ax_boxes, ax_bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    if image is not None:
        show_image(image, ax_boxes)
    else:
        ax_boxes.set_facecolor("0.95")
        ax_boxes.set_xticks([])
        ax_boxes.set_yticks([])
    for key, style, width in (("anchor", "--", 2.0), ("gt", "-", 3.0), ("decoded", ":", 2.0)):
        draw_box_outlines(ax_boxes, state[key][None], color=COLORS[key], linewidth=width, linestyle=style)
    a, g = state["anchor"].tolist(), state["gt"].tolist()
    ax_boxes.annotate("", xy=((g[0] + g[2]) / 2, (g[1] + g[3]) / 2), xytext=((a[0] + a[2]) / 2, (a[1] + a[3]) / 2),
                      arrowprops=dict(arrowstyle="->", color="black", linewidth=1.5))
    ax_boxes.set_xlim(-0.5, canvas - 0.5)
    ax_boxes.set_ylim(canvas - 0.5, -0.5)
    ax_boxes.plot([], [], "--", color=COLORS["anchor"], label="anchor")
    ax_boxes.plot([], [], "-", color=COLORS["gt"], label="ground truth")
    ax_boxes.plot([], [], ":", color=COLORS["decoded"], label="decode(encode(gt))")
    ax_boxes.legend(fontsize=8, loc="lower right")
    ax_boxes.set_title(f"IoU(anchor, gt) = {state['iou']:.2f}", fontsize=10)
    ax_bars.margins(y=0.15)  # room for the value labels

    x = np.arange(4)
    d, w = state["deltas"].numpy(), state["weighted"].numpy()
    ax_bars.bar(x - 0.2, d, 0.4, label="weights (1, 1, 1, 1): RPN", color="tab:gray")
    ax_bars.bar(x + 0.2, w, 0.4, label="weights (10, 10, 5, 5): head", color="tab:purple")
    for i in range(4):
        ax_bars.text(x[i] - 0.2, d[i], f"{d[i]:.2f}", ha="center", va="bottom" if d[i] >= 0 else "top", fontsize=8)
        ax_bars.text(x[i] + 0.2, w[i], f"{w[i]:.2f}", ha="center", va="bottom" if w[i] >= 0 else "top", fontsize=8)
    ax_bars.axhline(0, color="black", linewidth=0.8)
    ax_bars.set_xticks(x, ["tx", "ty", "tw", "th"])
    ax_bars.set_ylabel("delta")
    ax_bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    note = "  (decoding would clamp tw/th!)" if state["clamped"] else ""
    ax_bars.set_title("deltas (tx, ty, tw, th)" + note, fontsize=10)
    figure.tight_layout()


def make_delta_playground(image=None, anchor_centre=(64.0, 64.0), gt=(72.0, 58.0, 20.0, 40.0),
                          anchors=((32, 1.0), (32, 2.0), (32, 0.5), (16, 1.0), (64, 1.0))):
    """Sliders move and resize a ground-truth box against one anchor.

    Args:
        image (Tensor, optional): ``(3, H, W)`` image to draw under the boxes.
        anchor_centre (tuple): ``(x, y)`` of the anchor.
        gt (tuple): starting ``(cx, cy, w, h)`` of the ground-truth box.
        anchors (sequence): ``(size, ratio)`` choices for the anchor.

    Returns:
        Explorer: controls ``gt_x``, ``gt_y``, ``gt_w``, ``gt_h``, ``anchor``; ``state`` as
        :func:`delta_state`.
    """
    canvas = 128 if image is None else int(max(image.shape[-2:]))
    common = dict(continuous_update=False, step=1.0, style={"description_width": "initial"})
    controls = {
        "gt_x": widgets.FloatSlider(value=gt[0], min=0, max=canvas, description="gt centre x", **common),
        "gt_y": widgets.FloatSlider(value=gt[1], min=0, max=canvas, description="gt centre y", **common),
        "gt_w": widgets.FloatSlider(value=gt[2], min=2, max=canvas, description="gt width", **common),
        "gt_h": widgets.FloatSlider(value=gt[3], min=2, max=canvas, description="gt height", **common),
        "anchor": widgets.Dropdown(options=[(f"{s} px, h/w = {r:g}", (s, r)) for s, r in anchors],
                                   value=tuple(anchors[0]), description="anchor"),
    }

    def compute(gt_x, gt_y, gt_w, gt_h, anchor):
        return delta_state(gt_x, gt_y, gt_w, gt_h, anchor, anchor_centre)

    def draw(figure, state):
        draw_delta_state(figure, state, image, canvas)

    return Explorer(controls, compute, draw, figsize=(10, 4.5), columns=3)
