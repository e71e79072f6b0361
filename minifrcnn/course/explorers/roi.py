"""The RoI explorer (lesson 06): move and resize an RoI, pick the op and the output size,
and see the bins, the points each op reads, and the pooled output.

``roi_state`` is the pure part (numbers only, unit-tested); ``draw_roi`` draws a state;
``make_roi_explorer`` wires sliders to them through :class:`Explorer`.

Pixel <-> cell convention: feature cell ``i`` summarises image pixels ``[i * s, (i + 1) * s)``
(``s`` the stride), so its value sits at the cell's centre, pixel ``(i + 0.5) * s``, and a
real-valued feature coordinate ``u`` (cell centres at integers) is the pixel ``(u + 0.5) * s``.
That is the convention under which ``roi_align(aligned=True)`` reads exactly the box.
"""
import math

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.patches import Rectangle

from ... import boxes as B
from ...roi_ops import pool_edges, roi_align, roi_pool, round_half_away
from ..draw import draw_box_outlines, show_image
from ._base import Explorer

# name -> (op, aligned); the dropdown's choices
OPS = {"RoI pooling": ("pool", False), "RoI Align": ("align", False),
       "RoI Align, aligned": ("align", True)}
BOX_COLOR, READ_COLOR, BIN_COLOR, POINT_COLOR = "lime", "orange", "orange", "cyan"


def _pool_geometry(box, stride, feature_size, output_size):
    """RoI pooling's region read and bins, in pixels (see :func:`roi_state`)."""
    (H, W), (PH, PW) = feature_size, output_size
    x1, y1, x2, y2 = round_half_away(box / stride).tolist()  # the quantised RoI, in cells
    region = torch.tensor([x1, y1, x2 + 1, y2 + 1], dtype=torch.float64) * stride  # end cell included
    hs, he = pool_edges(torch.tensor([y1]), torch.tensor([y2]), PH, H)
    ws, we = pool_edges(torch.tensor([x1]), torch.tensor([x2]), PW, W)
    bins = torch.stack(torch.broadcast_tensors(ws[0][None, :], hs[0][:, None], we[0][None, :],
                                               he[0][:, None]), dim=-1).reshape(-1, 4) * stride
    return region, bins.to(torch.float64), (hs[0], he[0], ws[0], we[0])


def _samples(start, bin_size, pooled, grid):
    """Sample coordinates along one axis: ``grid`` per bin, at the centres of equal parts."""
    p = torch.arange(pooled, dtype=torch.float64)[:, None]
    i = torch.arange(grid, dtype=torch.float64)
    return (start + p * bin_size + (i + 0.5) * bin_size / grid).reshape(-1)


def _align_geometry(box, stride, output_size, sampling_ratio, aligned):
    """RoI Align's region read, bins and sample points, in pixels (see :func:`roi_state`)."""
    PH, PW = output_size
    offset = 0.5 if aligned else 0.0
    start = box[:2] / stride - offset  # feature coordinates (x, y), cell centres at integers
    length = box[2:] / stride - offset - start
    if not aligned:
        length = length.clamp(min=1.0)
    gx, gy = (sampling_ratio if sampling_ratio > 0 else max(math.ceil(length[i] / n), 0)
              for i, n in enumerate((PW, PH)))
    bin_w, bin_h = length[0] / PW, length[1] / PH
    xs = start[0] + torch.arange(PW + 1, dtype=torch.float64) * bin_w  # bin edges
    ys = start[1] + torch.arange(PH + 1, dtype=torch.float64) * bin_h
    bins = torch.stack(torch.broadcast_tensors(xs[None, :-1], ys[:-1, None], xs[None, 1:], ys[1:, None]),
                       dim=-1).reshape(-1, 4)
    points = torch.stack(torch.meshgrid(_samples(start[0], bin_w, PW, gx), _samples(start[1], bin_h, PH, gy),
                                        indexing="xy"), dim=-1).reshape(-1, 2)
    to_pixels = lambda u: (u + 0.5) * stride  # noqa: E731
    return to_pixels(torch.cat((start, start + length))), to_pixels(bins), to_pixels(points), (gx, gy)


def roi_state(features, box, op="pool", output_size=7, channel=0, stride=16, sampling_ratio=2,
              aligned=False):
    """Everything the RoI picture shows, for one RoI on one image's feature map.

    Args:
        features (Tensor): ``(C, H, W)``, the feature map of one image.
        box (sequence of 4 floats): the RoI, xyxy in image pixels.
        op (str): "pool" (``roi_pool``) or "align" (``roi_align``).
        output_size (int or (int, int)): ``(PH, PW)``.
        channel (int): the channel whose pooled values and argmax cells are shown.
        stride (int): image pixels per feature cell (``spatial_scale = 1 / stride``).
        sampling_ratio (int): RoI Align's samples per bin and axis; ``<= 0``: adaptive.
        aligned (bool): RoI Align's half-cell correction.

    Returns:
        dict with

        * ``box`` ``(4,)`` and ``region`` ``(4,)`` (float64, px): the RoI, and the image
          region the op actually reads (pooling: the RoI rounded to whole cells, end cell
          included; Align: the RoI, shifted by half a cell unless ``aligned``);
        * ``edge_error`` ``(4,)`` (px): ``region - box``; ``misalignment`` (float, px): the
          mean of its absolute values; ``region_iou`` (float): IoU of region and box;
        * ``bins`` ``(PH * PW, 4)`` (px): each bin as the op sees it, row-major;
        * ``points`` ``(P, 2)`` (px, ``(x, y)``): pooling: the argmax cell centre of each
          non-empty bin for ``channel``; Align: every sample point;
        * ``grid`` (tuple): Align's samples per bin ``(gx, gy)`` (``(1, 1)`` for pooling);
        * ``output`` ``(C, PH, PW)`` and ``pooled`` ``(PH, PW)`` (``output[channel]``), from
          :func:`minifrcnn.roi_ops.roi_pool` / ``roi_align``;
        * ``op``, ``aligned``, ``channel``, ``stride``, ``output_size``, ``feature_size``.
    """
    C, H, W = features.shape
    PH, PW = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    box = torch.as_tensor(box, dtype=torch.float64).reshape(4)
    rois = torch.cat((torch.zeros(1), box)).to(features.dtype)[None]
    if op == "pool":
        region, bins, (hs, he, ws, we) = _pool_geometry(box, stride, (H, W), (PH, PW))
        output = roi_pool(features[None], rois, (PH, PW), 1 / stride)[0]
        points = []
        for i in range(PH):  # the argmax cell of each bin, for the shown channel
            for j in range(PW):
                if he[i] > hs[i] and we[j] > ws[j]:
                    patch = features[channel, hs[i]:he[i], ws[j]:we[j]]
                    r, c = divmod(int(patch.reshape(-1).argmax()), patch.shape[1])
                    points.append(((ws[j] + c + 0.5) * stride, (hs[i] + r + 0.5) * stride))
        points = torch.tensor(points, dtype=torch.float64).reshape(-1, 2)
        grid = (1, 1)
    elif op == "align":
        region, bins, points, grid = _align_geometry(box, stride, (PH, PW), sampling_ratio, aligned)
        output = roi_align(features[None], rois, (PH, PW), 1 / stride, sampling_ratio, aligned)[0]
    else:
        raise ValueError(f"op must be 'pool' or 'align', got {op!r}")
    edge_error = region - box
    return {
        "box": box, "region": region, "edge_error": edge_error,
        "misalignment": float(edge_error.abs().mean()),
        "region_iou": float(B.box_iou(region[None], box[None])[0, 0]),
        "bins": bins, "points": points, "grid": grid,
        "output": output.detach(), "pooled": output[channel].detach(),
        "op": op, "aligned": aligned, "channel": channel, "stride": stride,
        "output_size": (PH, PW), "feature_size": (H, W),
    }


def _rectangle(box, **style):
    x1, y1, x2, y2 = (float(v) for v in box)
    return Rectangle((x1, y1), x2 - x1, y2 - y1, **style)


def draw_roi(figure, state, image, features, channel_names=None):
    """Draw a :func:`roi_state`: the image (left), the feature channel with the bins and
    the points read (middle), the pooled output (right).

    Args:
        figure (matplotlib.figure.Figure): an empty figure.
        state (dict): from :func:`roi_state`.
        image: the ``(3, H_img, W_img)`` image.
        features (Tensor): ``(C, H, W)``, the map the state was computed on.
        channel_names (sequence of str, optional): shown in the titles.
    """
    ax_img, ax_map, ax_out = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
    s, (H, W) = state["stride"], state["feature_size"]
    name = channel_names[state["channel"]] if channel_names else f"channel {state['channel']}"
    what = "RoI pooling" if state["op"] == "pool" else "RoI Align" + (", aligned" if state["aligned"] else "")

    show_image(image, ax_img)
    ax_img.set_title("image: the RoI (green), the region read (orange)", fontsize=9)
    ax_img.add_patch(_rectangle(state["box"], fill=False, edgecolor=BOX_COLOR, linewidth=2))
    ax_img.add_patch(_rectangle(state["region"], fill=False, edgecolor=READ_COLOR, linewidth=2, linestyle="--"))

    channel = features[state["channel"]].detach().cpu().numpy()
    ax_map.imshow(channel, cmap="magma", extent=(0, W * s, H * s, 0), interpolation="nearest")
    ax_map.set_xticks(np.arange(0, W * s + 1, s), minor=True)
    ax_map.set_yticks(np.arange(0, H * s + 1, s), minor=True)
    ax_map.grid(which="minor", color="white", alpha=0.25, linewidth=0.5)
    ax_map.tick_params(which="both", length=0, labelsize=7)
    draw_box_outlines(ax_map, state["bins"], color=BIN_COLOR, linewidth=1)
    ax_map.add_patch(_rectangle(state["box"], fill=False, edgecolor=BOX_COLOR, linewidth=2))
    if len(state["points"]):
        marker = "x" if state["op"] == "pool" else "."
        ax_map.scatter(state["points"][:, 0], state["points"][:, 1], s=18 if marker == "x" else 6,
                       c=POINT_COLOR, marker=marker, linewidths=1, zorder=3)
    x1, y1, x2, y2 = torch.cat((state["box"], state["region"])).reshape(2, 4).T.tolist()
    ax_map.set_xlim(max(min(x1) - 2 * s, 0), min(max(x2) + 2 * s, W * s))
    ax_map.set_ylim(min(max(y2) + 2 * s, H * s), max(min(y1) - 2 * s, 0))
    reads = "x: argmax cell" if state["op"] == "pool" else f"dots: {state['grid'][0]}x{state['grid'][1]} samples/bin"
    ax_map.set_title(f"{name}, {s}-px cells: bins, {reads}", fontsize=9)

    PH, PW = state["output_size"]
    im = ax_out.imshow(state["pooled"].cpu().numpy(), cmap="magma", interpolation="nearest")
    figure.colorbar(im, ax=ax_out, fraction=0.046, pad=0.04)
    ax_out.set_xticks([]), ax_out.set_yticks([])
    ax_out.set_title(f"{what}: {PH}x{PW} output\nmisaligned by {state['misalignment']:.1f} px, "
                     f"region IoU {state['region_iou']:.2f}", fontsize=9)
    figure.tight_layout()


def make_roi_explorer(image, features, box=(130, 80, 210, 150), stride=16, channel_names=None,
                      op="RoI pooling", output_size=7, channel=0):
    """Sliders for the RoI's ``x, y, w, h`` (px), the output size, the op, the channel and
    RoI Align's sampling ratio (0: adaptive).

    Args:
        image: ``(3, H_img, W_img)`` image.
        features (Tensor): ``(C, H, W)`` or ``(1, C, H, W)``, its feature map at ``stride``.
        box (4 floats): the starting RoI, xyxy px.
        channel_names (sequence of str, optional): names for the channel dropdown.
        op (str): a key of :data:`OPS`.

    Returns:
        Explorer: ``explorer.state`` is the current :func:`roi_state`.
    """
    features = features[0] if features.dim() == 4 else features
    height, width = image.shape[-2:]
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    names = list(channel_names) if channel_names else [f"channel {c}" for c in range(features.shape[0])]
    style = dict(continuous_update=False, layout=widgets.Layout(width="240px"))
    controls = {
        "x": widgets.IntSlider(value=x1, min=-4 * stride, max=width, description="x", **style),
        "y": widgets.IntSlider(value=y1, min=-4 * stride, max=height, description="y", **style),
        "w": widgets.IntSlider(value=x2 - x1, min=1, max=width, description="width", **style),
        "h": widgets.IntSlider(value=y2 - y1, min=1, max=height, description="height", **style),
        "size": widgets.IntSlider(value=output_size, min=1, max=14, description="output", **style),
        "op": widgets.Dropdown(options=list(OPS), value=op, description="op",
                               layout=widgets.Layout(width="240px")),
        "channel": widgets.Dropdown(options=[(n, i) for i, n in enumerate(names)], value=channel,
                                    description="channel", layout=widgets.Layout(width="240px")),
        "ratio": widgets.IntSlider(value=2, min=0, max=4, description="samples", **style),
    }

    def compute(x, y, w, h, size, op, channel, ratio):
        kind, aligned = OPS[op]
        return roi_state(features, (x, y, x + w, y + h), kind, size, channel, stride, ratio, aligned)

    return Explorer(controls, compute,
                    lambda figure, state: draw_roi(figure, state, image, features, names),
                    figsize=(13, 4.6), columns=4)
