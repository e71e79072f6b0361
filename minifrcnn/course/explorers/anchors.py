"""Lesson 02's anchor explorer and anchor-coverage helpers.

The explorer shows the anchors of one feature-map cell over an image: sliders for the
anchor sizes, aspect ratios, stride and the cell ``(row, col)``; counts of anchors per
cell, in total and fully inside the image. As every explorer, it is a pure function
(:func:`anchor_explorer_state`), a draw function (:func:`draw_anchor_explorer`) and a
small factory (:func:`make_anchor_explorer`).

Paper: Ren et al., Faster R-CNN, NIPS 2015, section 3.1.1 ("Anchors").
"""
import functools
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.lines import Line2D

from ...anchors import base_anchors, grid_anchors
from ...boxes import box_iou
from ..draw import draw_box_outlines, show_image, to_numpy_image
from ._base import Explorer

# One colour per aspect ratio (by position in the sorted list), one line style per size.
RATIO_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
SIZE_STYLES = ("-", "--", ":", "-.")


def inside_image(anchors, image_size):
    """Which anchors lie fully inside the image (the paper's training anchors).

    Section 3.3 of the paper ignores "cross-boundary" anchors during training: an anchor
    counts only if ``0 <= x1``, ``0 <= y1``, ``x2 <= width`` and ``y2 <= height``.

    Args:
        anchors (Tensor): ``(A, 4)`` xyxy.
        image_size (tuple of int): ``(height, width)``.

    Returns:
        Tensor: ``(A,)`` bool.
    """
    height, width = image_size
    return ((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0)
            & (anchors[:, 2] <= width) & (anchors[:, 3] <= height))


def best_anchor_iou(gt_boxes, anchors, chunk_size=2048):
    """For every ground-truth box, the IoU of its best anchor and that anchor's index.

    If the best IoU is below the RPN's positive threshold (0.7), the box gets no positive
    anchor from the IoU rule and has to rely on the "best anchor per box" rule (lesson 03);
    below ~0.3 the box is poorly covered by the anchor design altogether.

    Args:
        gt_boxes (Tensor): ``(G, 4)`` xyxy (e.g. every box of a data set whose images all
            have the size the anchors were made for).
        anchors (Tensor): ``(A, 4)`` xyxy.
        chunk_size (int): boxes per IoU matrix, to bound memory at ``chunk_size * A``.

    Returns:
        tuple: ``(best_iou (G,), best_index (G,))``. ``(0, 0)`` for every box if there
        are no anchors.
    """
    gt_boxes = gt_boxes.to(anchors.dtype)
    if anchors.shape[0] == 0:
        zeros = torch.zeros(gt_boxes.shape[0])
        return zeros.to(anchors.dtype), zeros.long()
    values, indices = [], []
    for start in range(0, gt_boxes.shape[0], chunk_size):
        best = box_iou(gt_boxes[start:start + chunk_size], anchors).max(dim=1)
        values.append(best.values)
        indices.append(best.indices)
    if not values:
        return torch.zeros(0, dtype=anchors.dtype), torch.zeros(0, dtype=torch.long)
    return torch.cat(values), torch.cat(indices)


def num_cells(image_size, stride):
    """Feature-map size ``(H, W)`` for an image: one cell per ``stride`` pixels, a partial
    tile at the right or bottom border included (``ceil``, what a padded conv backbone
    gives; equal to ``image_size // stride`` when the stride divides the image)."""
    return math.ceil(image_size[0] / stride), math.ceil(image_size[1] / stride)


def anchor_explorer_state(image_size=(128, 128), sizes=(16, 32, 64), ratios=(0.5, 1.0, 2.0),
                          stride=8, row=0, col=0, tile=-1):
    """Everything the anchor explorer draws, for one setting of its controls.

    Args:
        image_size (tuple of int): ``(height, width)`` of the image.
        sizes (sequence of float): anchor sizes (sorted ascending here).
        ratios (sequence of float): aspect ratios ``h / w`` (sorted ascending here).
        stride (int): image pixels per feature-map cell.
        row, col (int): the chosen cell; clamped to the feature map.
        tile (int): index ``0..k-1`` of an anchor shape to show at every cell, or -1.

    Returns:
        dict: ``sizes``, ``ratios`` (sorted tuples), ``stride``, ``image_size``,
        ``feature_size`` ``(H, W)``, ``k``, ``anchors`` ``(H * W * k, 4)`` (the order of
        :func:`minifrcnn.anchors.grid_anchors`), ``centres`` ``(H * W, 2)`` xy,
        ``inside`` ``(H * W * k,)`` bool, ``num_anchors``, ``num_inside``, ``row``,
        ``col`` (clamped), ``first_index`` (global index of the cell's first anchor),
        ``cell_anchors`` ``(k, 4)``, ``cell_shapes`` (``(ratio, size)`` per anchor of a
        cell), ``tile`` and ``tile_anchors`` (``(H * W, 4)`` or None), ``message``
        (why nothing is drawn, or "").
    """
    sizes = tuple(sorted(float(s) for s in sizes))
    ratios = tuple(sorted(float(r) for r in ratios))
    feature_size = num_cells(image_size, stride)
    height, width = feature_size
    row, col = min(max(int(row), 0), height - 1), min(max(int(col), 0), width - 1)
    state = dict(image_size=tuple(image_size), sizes=sizes, ratios=ratios, stride=int(stride),
                 feature_size=feature_size, row=row, col=col, first_index=0, tile=-1,
                 tile_anchors=None, message="")
    # Anchor centres (x, y) = (j * stride, i * stride), row-major: torchvision's convention.
    ys, xs = torch.meshgrid(torch.arange(height) * stride, torch.arange(width) * stride, indexing="ij")
    state["centres"] = torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1).float()
    if not sizes or not ratios:
        empty = torch.zeros(0, 4)
        state.update(k=0, anchors=empty, inside=torch.zeros(0, dtype=torch.bool), num_anchors=0,
                     num_inside=0, cell_anchors=empty, cell_shapes=[],
                     message="choose at least one size and one ratio")
        return state
    k = len(sizes) * len(ratios)
    anchors = grid_anchors(base_anchors(sizes, ratios), feature_size, int(stride))
    inside = inside_image(anchors, image_size)
    first = (row * width + col) * k  # cell-major: cell (i, j) owns anchors first .. first + k - 1
    state.update(k=k, anchors=anchors, inside=inside, num_anchors=anchors.shape[0],
                 num_inside=int(inside.sum()), first_index=first,
                 cell_anchors=anchors[first:first + k],
                 cell_shapes=[(r, s) for r in ratios for s in sizes])  # ratio-major, like the anchors
    if 0 <= tile < k:
        state.update(tile=int(tile), tile_anchors=anchors[tile::k])
    return state


def _shape_style(state, index):
    """Colour (by ratio) and line style (by size) of anchor ``index`` of a cell."""
    n_sizes = len(state["sizes"])
    return (RATIO_COLORS[(index // n_sizes) % len(RATIO_COLORS)],
            SIZE_STYLES[(index % n_sizes) % len(SIZE_STYLES)])


def draw_anchor_explorer(figure, state, image=None, boxes=None):
    """Draw an :func:`anchor_explorer_state` on ``figure``: the image with the grid of
    anchor centres, the ``k`` anchors of the chosen cell (colour = ratio, line style =
    size), optionally one anchor shape at every cell, and a table of the cell's anchors.

    Box outlines are ``LineCollection`` s with a gid: ``"cell_anchors"`` (``k`` boxes),
    ``"tile_anchors"`` (``H * W``), ``"gt_boxes"``, ``"image_border"`` (1).
    """
    ax, table = figure.subplots(1, 2, gridspec_kw=dict(width_ratios=(2.2, 1)))
    figure.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=0.9, wspace=0.08)
    img_h, img_w = state["image_size"]
    if image is not None:
        show_image(image, ax)
    ax.set_axis_on()
    ax.tick_params(labelsize=8)
    draw_box_outlines(ax, torch.tensor([[0.0, 0.0, img_w, img_h]]), color="black",
                      linewidth=1.0, linestyle="--").set_gid("image_border")
    centres = state["centres"].numpy()
    ax.scatter(centres[:, 0], centres[:, 1], s=6, c="white", edgecolors="black", linewidths=0.4,
               zorder=3, label="anchor centres")
    if boxes is not None and len(boxes):
        draw_box_outlines(ax, boxes, color="white", linewidth=2.0, alpha=0.9).set_gid("gt_boxes")
    k, stride, row, col = state["k"], state["stride"], state["row"], state["col"]
    if state["tile_anchors"] is not None:
        color, style = _shape_style(state, state["tile"])
        draw_box_outlines(ax, state["tile_anchors"], color=color, linewidth=0.6, alpha=0.5,
                          linestyle=style).set_gid("tile_anchors")
    if k:
        styles = [_shape_style(state, c) for c in range(k)]
        draw_box_outlines(ax, state["cell_anchors"], color=[c for c, _ in styles], linewidth=2.0,
                          linestyle=[s for _, s in styles]).set_gid("cell_anchors")
        # The cell's stride x stride tile: its top-left corner is the anchor centre.
        x0, y0 = col * stride, row * stride
        ax.add_patch(plt.Rectangle((x0, y0), stride, stride, fill=False, edgecolor="magenta",
                                   linewidth=1.0, linestyle=":"))
        ax.plot([x0], [y0], marker="+", color="magenta", markersize=12, markeredgewidth=2, zorder=4)
    # Fixed limits (independent of the cell) with room for anchors that cross the border.
    half = float(state["cell_anchors"][:, 2:].max()) if k else 0.0
    pad = min(half, 0.3 * max(img_h, img_w)) + 2
    ax.set_xlim(-pad, img_w + pad)
    ax.set_ylim(img_h + pad, -pad)
    ax.set_title(f"stride {stride}: {state['feature_size'][0]}x{state['feature_size'][1]} cells x "
                 f"k={k} = {state['num_anchors']:,} anchors, {state['num_inside']:,} fully inside\n"
                 f"cell (row {row}, col {col}) holds anchors {state['first_index']}.."
                 f"{state['first_index'] + k - 1}", fontsize=10)
    handles = [Line2D([], [], color=RATIO_COLORS[i % len(RATIO_COLORS)], lw=2, label=f"ratio {r:g}")
               for i, r in enumerate(state["ratios"])]
    handles += [Line2D([], [], color="gray", lw=2, linestyle=SIZE_STYLES[i % len(SIZE_STYLES)],
                       label=f"size {s:g}") for i, s in enumerate(state["sizes"])]
    _draw_cell_table(table, state)
    if handles:  # under the table, so that it never hides an anchor
        table.legend(handles=handles, loc="lower left", fontsize=8, ncol=2, framealpha=0.9)


def _draw_cell_table(ax, state):
    """Text table: global anchor index -> (row, col, ratio, size, w x h, inside?)."""
    ax.set_axis_off()
    if state["message"]:
        ax.text(0.0, 0.5, state["message"], fontsize=11, color="tab:red", transform=ax.transAxes)
        return
    cell, first = state["cell_anchors"], state["first_index"]
    lines = [("index  row col  ratio  size    w x h   inside", "black")]
    for c, (ratio, size) in enumerate(state["cell_shapes"][:24]):
        x1, y1, x2, y2 = cell[c].tolist()
        inside = "yes" if bool(state["inside"][first + c]) else "no"
        lines.append((f"{first + c:5d}  {state['row']:3d} {state['col']:3d}  {ratio:5g}  {size:4g}"
                      f"  {x2 - x1:4.0f}x{y2 - y1:<4.0f} {inside:>4}", _shape_style(state, c)[0]))
    if len(state["cell_shapes"]) > 24:
        lines.append((f"... {len(state['cell_shapes']) - 24} more", "black"))
    lines.append(("", "black"))
    lines.append((f"index = (row * W + col) * k + ratio_i * {len(state['sizes'])} + size_i", "black"))
    step = min(0.06, 0.95 / len(lines))
    for n, (text, color) in enumerate(lines):
        ax.text(-0.05, 1.0 - n * step, text, family="monospace", fontsize=8, color=color,
                transform=ax.transAxes, va="top")


def make_anchor_explorer(image, boxes=None, sizes=(16, 32, 64), ratios=(0.5, 1.0, 2.0), stride=8,
                         row=None, col=None,
                         size_options=(8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512),
                         ratio_options=(0.25, 0.5, 1.0, 2.0, 4.0), stride_options=(4, 8, 16, 32),
                         figsize=(11, 6)):
    """An interactive anchor explorer over ``image``.

    Args:
        image: the picture to draw on (any form :func:`minifrcnn.course.draw.show_image` takes);
            its size is the image size of the anchors.
        boxes: optional ``(G, 4)`` ground-truth boxes to draw in white.
        sizes, ratios, stride: the initial anchor design (must be among the options).
        row, col (int): the initial cell; default: the middle of the feature map.

    Returns:
        Explorer: controls ``sizes``, ``ratios``, ``stride``, ``row``, ``col``, ``tile``.
    """
    image_size = tuple(to_numpy_image(image).shape[:2])
    height, width = num_cells(image_size, stride)
    controls = dict(
        sizes=widgets.SelectMultiple(options=size_options, value=tuple(sizes), rows=4,
                                     description="sizes"),
        ratios=widgets.SelectMultiple(options=ratio_options, value=tuple(ratios), rows=4,
                                      description="ratios h/w"),
        stride=widgets.Dropdown(options=stride_options, value=stride, description="stride"),
        row=widgets.IntSlider(value=height // 2 if row is None else row, min=0, max=height - 1,
                              description="row"),
        col=widgets.IntSlider(value=width // 2 if col is None else col, min=0, max=width - 1,
                              description="col"),
        tile=widgets.Dropdown(options=_tile_options(sizes, ratios), value=-1, description="tile shape"),
    )

    def on_stride(change):  # the feature map's size depends on the stride
        h, w = num_cells(image_size, change["new"])
        controls["row"].max, controls["col"].max = h - 1, w - 1

    def on_shapes(change):  # the list of anchor shapes depends on the sizes and ratios
        controls["tile"].options = _tile_options(controls["sizes"].value, controls["ratios"].value)

    # Registered before the Explorer's own observer, so the sliders are in range when it redraws.
    controls["stride"].observe(on_stride, names="value")
    controls["sizes"].observe(on_shapes, names="value")
    controls["ratios"].observe(on_shapes, names="value")
    compute = functools.partial(anchor_explorer_state, image_size)
    draw = functools.partial(draw_anchor_explorer, image=image, boxes=boxes)
    return Explorer(controls, compute, draw, figsize=figsize, columns=3)


def _tile_options(sizes, ratios):
    """Dropdown entries ``(label, index)``: "off" and every anchor shape of a cell."""
    shapes = [(r, s) for r in sorted(ratios) for s in sorted(sizes)]
    return [("off", -1)] + [(f"#{c}: ratio {r:g}, size {s:g}", c) for c, (r, s) in enumerate(shapes)]
