"""Anchors: reference boxes of several sizes and aspect ratios at every feature-map cell.

Paper, section 3.1.1: at each sliding-window position the RPN predicts ``k`` proposals
relative to ``k`` anchors, ``k = len(sizes) * len(aspect_ratios)`` (3 x 3 = 9 in the paper:
sizes 128, 256, 512 px, ratios 1:2, 1:1, 2:1, stride 16).

Centre convention (torchvision's, which we copy): the anchors of feature-map cell
``(row i, column j)`` are centred on the image pixel ``(x, y) = (j * stride, i * stride)``,
the top-left corner of the cell's receptive field tile, *not* on its centre
``((j + 0.5) * stride, ...)``. The original Caffe code did the same (centre
``(stride - 1) / 2`` with its "+1" pixel convention). Either works, because the RPN
learns the offset; what matters is to train and test with the same convention.

Order: anchors are listed cell by cell in row-major order (row ``i``, then column
``j``), and within a cell ratio-major then size (``ratios[0]`` with every size, then
``ratios[1]``...). This is torchvision's ``AnchorGenerator`` order; it must match the
channel order of the RPN head's outputs (see lesson 04).
"""
import torch


def base_anchors(sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0), dtype=torch.float32):
    """The ``k`` anchors of one cell, centred on ``(0, 0)``.

    An anchor of size ``s`` and ratio ``r = h / w`` has area ``s**2``: ``w = s / sqrt(r)``,
    ``h = s * sqrt(r)``. Coordinates are rounded to whole pixels, as torchvision does.

    Args:
        sizes (sequence of float): square roots of the anchor areas, in pixels.
        aspect_ratios (sequence of float): height / width ratios.

    Returns:
        Tensor: ``(k, 4)`` xyxy, ``k = len(aspect_ratios) * len(sizes)``, ratio-major.
    """
    if len(sizes) == 0 or len(aspect_ratios) == 0:
        raise ValueError("need at least one anchor size and one aspect ratio")
    if min(sizes) <= 0 or min(aspect_ratios) <= 0:
        raise ValueError(f"anchor sizes and aspect ratios must be positive, got {sizes}, {aspect_ratios}")
    sizes = torch.as_tensor(sizes, dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    widths = (w_ratios[:, None] * sizes[None, :]).reshape(-1)  # (ratios, sizes) -> ratio-major
    heights = (h_ratios[:, None] * sizes[None, :]).reshape(-1)
    return (torch.stack((-widths, -heights, widths, heights), dim=1) / 2).round()


def grid_anchors(cell_anchors, feature_size, stride):
    """Tile the anchors of one cell over every cell of a feature map.

    Args:
        cell_anchors (Tensor): ``(k, 4)`` from :func:`base_anchors`.
        feature_size (tuple of int): ``(H, W)`` of the feature map.
        stride (int or tuple of int): image pixels per feature-map cell, ``(sy, sx)`` or one
            int for both.

    Returns:
        Tensor: ``(H * W * k, 4)`` xyxy, cell by cell (row-major), ``k`` anchors per cell.
    """
    height, width = feature_size
    stride_y, stride_x = (stride, stride) if isinstance(stride, int) else stride
    device = cell_anchors.device
    shifts_x = torch.arange(width, dtype=torch.int32, device=device) * stride_x
    shifts_y = torch.arange(height, dtype=torch.int32, device=device) * stride_y
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)  # (H * W, 4)
    # (H*W, 1, 4) + (1, k, 4): every cell's offset added to every anchor of a cell.
    return (shifts[:, None, :] + cell_anchors[None, :, :]).reshape(-1, 4)


def feature_stride(image_size, feature_size):
    """Stride ``(sy, sx)`` of a feature map over an image, as torchvision computes it.

    Integer division of the image size by the feature size: an image of 128 px and a
    map of 8 cells give a stride of 16.
    """
    return image_size[0] // feature_size[0], image_size[1] // feature_size[1]


class AnchorGenerator:
    """Anchors for one feature map of an image batch (torchvision's ``AnchorGenerator``
    with a single feature map).

    Args:
        sizes (sequence of float): anchor sizes in pixels (see :func:`base_anchors`).
        aspect_ratios (sequence of float): height / width ratios.
    """

    def __init__(self, sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0)):
        self.sizes = tuple(sizes)
        self.aspect_ratios = tuple(aspect_ratios)
        self.cell_anchors = base_anchors(self.sizes, self.aspect_ratios)

    @property
    def num_anchors_per_location(self):
        """``k``: the number of anchors per feature-map cell."""
        return self.cell_anchors.shape[0]

    def __call__(self, image_size, feature_size, dtype=torch.float32, device="cpu"):
        """Anchors ``(H * W * k, 4)`` for an image of ``image_size = (h, w)`` (after any
        padding) whose feature map is ``feature_size = (H, W)``."""
        cell = self.cell_anchors.to(dtype=dtype, device=device)
        return grid_anchors(cell, feature_size, feature_stride(image_size, feature_size))

    def __repr__(self):
        return f"AnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios})"
