"""The IoU explorer (lesson 01): move and resize box B against box A, watch IoU live.

``iou_state`` is the pure part (numbers only, unit-tested); ``draw_iou`` draws a state;
``make_iou_explorer`` wires four sliders to them through :class:`Explorer`.

The right-hand panel places the IoU against the thresholds of the paper: an anchor is a
positive for the RPN at IoU >= 0.7 and a negative below 0.3 (section 3.1.2); a proposal
is foreground for the Fast R-CNN head at IoU >= 0.5.
"""
import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.patches import Rectangle

from ... import boxes as B
from ..draw import show_image
from ._base import Explorer

RPN_POSITIVE, RPN_NEGATIVE, HEAD_FOREGROUND = 0.7, 0.3, 0.5
# (threshold, what crossing it means), drawn as lines on the IoU gauge.
THRESHOLDS = ((RPN_NEGATIVE, "RPN negative below 0.3"), (HEAD_FOREGROUND, "head foreground from 0.5"),
              (RPN_POSITIVE, "RPN positive from 0.7"))


def iou_state(box_a, x, y, w, h, image_size=(128, 128)):
    """Everything the IoU picture shows, for box A and box B = ``(x, y, x + w, y + h)``.

    Args:
        box_a (sequence of 4 floats): box A, xyxy.
        x, y (float): top-left corner of box B.
        w, h (float): width and height of box B (may be 0).
        image_size (tuple): ``(height, width)`` of the canvas.

    Returns:
        dict with ``box_a``, ``box_b`` (float64 tensors ``(4,)``), ``inter_box`` (``(4,)``,
        or None when the boxes do not overlap), ``area_a``, ``area_b``, ``inter``,
        ``union``, ``iou`` (floats, ``iou`` from :func:`minifrcnn.boxes.box_iou`),
        ``rpn`` (what B would be as an anchor for A: "positive", "ignored" or
        "negative"), ``head`` (as a proposal: "foreground" or "background"),
        ``image_size``.
    """
    box_a = torch.as_tensor(box_a, dtype=torch.float64).reshape(4)
    box_b = torch.tensor([x, y, x + w, y + h], dtype=torch.float64)
    top_left = torch.max(box_a[:2], box_b[:2])
    bottom_right = torch.min(box_a[2:], box_b[2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = float(wh[0] * wh[1])
    area_a, area_b = (float(a) for a in B.box_area(torch.stack((box_a, box_b))))
    iou = float(B.box_iou(box_a[None], box_b[None])[0, 0])
    return {
        "box_a": box_a, "box_b": box_b,
        "inter_box": torch.cat((top_left, bottom_right)) if inter > 0 else None,
        "area_a": area_a, "area_b": area_b, "inter": inter, "union": area_a + area_b - inter,
        "iou": iou,
        "rpn": "positive" if iou >= RPN_POSITIVE else "negative" if iou < RPN_NEGATIVE else "ignored",
        "head": "foreground" if iou >= HEAD_FOREGROUND else "background",
        "image_size": tuple(image_size),
    }


def _rectangle(box, **style):
    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1, y1), x2 - x1, y2 - y1, **style)


def draw_iou(figure, state, image=None):
    """Draw a state of :func:`iou_state`: the boxes (left) and an IoU gauge (right).

    Args:
        figure (matplotlib.figure.Figure): an empty figure to draw on.
        state (dict): from :func:`iou_state`.
        image (optional): an image to draw the boxes on; default: a blank canvas.
    """
    ax, gauge = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    height, width = state["image_size"]
    if image is not None:
        show_image(image, ax)
    else:
        ax.imshow(np.full((height, width, 3), 0.96), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
    ax.set_xlim(-0.5, width - 0.5), ax.set_ylim(height - 0.5, -0.5)
    ax.add_patch(_rectangle(state["box_a"], fill=False, edgecolor="tab:blue", linewidth=2.5, label="A"))
    ax.add_patch(_rectangle(state["box_b"], fill=False, edgecolor="tab:orange", linewidth=2.5, label="B"))
    if state["inter_box"] is not None:
        ax.add_patch(_rectangle(state["inter_box"], facecolor="tab:purple", alpha=0.45,
                                edgecolor="none", label="A ∩ B"))
    ax.legend(loc="upper right", fontsize=9, framealpha=0.85)
    ax.set_title(f"|A ∩ B| = {state['inter']:.0f}   |A ∪ B| = {state['area_a']:.0f} + "
                 f"{state['area_b']:.0f} - {state['inter']:.0f} = {state['union']:.0f}", fontsize=10)

    iou = state["iou"]
    gauge.bar([0.3], [iou], width=0.35, color="tab:purple")
    for threshold, text in THRESHOLDS:
        gauge.axhline(threshold, color="gray", linestyle="--", linewidth=1)
        gauge.text(-0.47, threshold + 0.01, text, fontsize=7.5, color="dimgray", ha="left", va="bottom")
    gauge.set_xlim(-0.5, 0.5), gauge.set_ylim(0, 1)
    gauge.set_xticks([])
    gauge.set_ylabel("IoU")
    gauge.set_title(f"IoU = {iou:.3f}", fontsize=11)
    gauge.set_xlabel(f"B as an anchor: {state['rpn']}\nB as a proposal: {state['head']}", fontsize=9)
    figure.tight_layout()


def make_iou_explorer(image=None, box_a=(36, 40, 84, 100), box_b=(56, 52, 40, 56)):
    """Sliders for box B's ``x, y, w, h``; box A stays fixed.

    Args:
        image (optional): a ``(3, H, W)`` image to draw on (e.g. a photo from
            ``minifrcnn.data.load_photos``); default: a blank 128 x 128 canvas.
        box_a (4 floats): box A, xyxy.
        box_b (4 ints): box B's starting ``(x, y, w, h)``.

    Returns:
        Explorer: ``explorer.state`` is the current :func:`iou_state`.
    """
    if image is not None:
        height, width = (image.shape[-2:] if isinstance(image, torch.Tensor) else np.asarray(image).shape[:2])
    else:
        height, width = 128, 128
    x, y, w, h = (int(v) for v in box_b)
    style = dict(continuous_update=True, layout=widgets.Layout(width="260px"))
    controls = {
        "x": widgets.IntSlider(value=x, min=-width // 2, max=width, description="B x", **style),
        "y": widgets.IntSlider(value=y, min=-height // 2, max=height, description="B y", **style),
        "w": widgets.IntSlider(value=w, min=0, max=width, description="B width", **style),
        "h": widgets.IntSlider(value=h, min=0, max=height, description="B height", **style),
    }
    return Explorer(
        controls,
        compute=lambda **v: iou_state(box_a, image_size=(height, width), **v),
        draw=lambda figure, state: draw_iou(figure, state, image),
        figsize=(9, 4.5), columns=2)
