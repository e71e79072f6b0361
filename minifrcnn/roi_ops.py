"""RoI pooling, RoI Align and a box-differentiable RoI warp, from scratch (lesson 06).

Each op turns ``K`` regions of interest (RoIs) on a feature map ``(N, C, H, W)`` into a
fixed-size grid ``(K, C, PH, PW)`` that the detection head can take (e.g. 7 x 7).

RoIs come in torchvision's format: a ``(K, 5)`` tensor of ``(batch_index, x1, y1, x2, y2)``
in *image* pixels, or a list with one ``(K_i, 4)`` xyxy tensor per image.
``spatial_scale = 1 / stride`` maps image pixels to feature-map cells.

* :func:`roi_pool`: RoI max pooling (Fast R-CNN, Girshick 2015, section 2.1). The RoI is
  rounded to whole cells, cut into ``PH x PW`` bins of whole cells, and each bin keeps its
  maximum. The rounding (and the end cell it includes) moves the region read by up to half
  a cell on the left and top, and up to a cell and a half on the right and bottom.
* :func:`roi_align`: RoI Align (Mask R-CNN, He et al. 2017, section 3). No rounding: each
  bin averages a few bilinearly interpolated samples at real-valued positions.
* :func:`roi_warp`: RoI Align's sampling kept differentiable in the box coordinates, so
  that ``d(loss) / d(box)`` exists (Faster R-CNN, section 3.2, "non-approximate joint
  training"; the RoI warping layer of Dai et al. 2016).

All three equal torchvision's ops (``torchvision.ops.roi_pool`` / ``roi_align``) in output
and feature gradient; the tests check it. :func:`roi_pool_one` and :func:`roi_align_one`
are the same ops for one RoI written as plain loops, to read; the batched versions, the
ones to use, have no Python loop over RoIs or bins (a gather for pooling, two matrix
products per RoI for Align).

Which op the detector uses: see :class:`RoIOp`.
"""
import math

import torch
import torchvision

__all__ = ["as_roi_tensor", "roi_pool_one", "roi_align_one", "roi_pool", "roi_align", "roi_warp",
           "RoIOp"]

# Work in pieces of at most this many gathered values (~64 MB in float32), so that 512
# RoIs x 256 channels never need gigabytes.
_CHUNK = 2 ** 24


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def as_roi_tensor(rois, dtype=None):
    """torchvision's two RoI formats -> one ``(K, 5)`` tensor ``(batch_index, x1, y1, x2, y2)``.

    Args:
        rois: a ``(K, 5)`` tensor, or a list of ``(K_i, 4)`` xyxy tensors, one per image.
        dtype: the dtype of the result (the features' dtype); default: unchanged.
    """
    if isinstance(rois, (list, tuple)):
        rois = [torch.cat((torch.full_like(b[:, :1], i), b), dim=1) for i, b in enumerate(rois)]
        rois = torch.cat(rois) if rois else torch.zeros(0, 5)
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be (K, 5) (batch_index, x1, y1, x2, y2) or a list of (K_i, 4), "
                         f"got {tuple(rois.shape)}")
    return rois if dtype is None else rois.to(dtype)


def round_half_away(x):
    """C's ``round``: halves away from zero (``torch.round`` rounds halves to even)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def _divide(x, n):
    """``x / n``, correctly rounded on every device. PyTorch's GPU kernels divide by a
    Python number by multiplying with its reciprocal, which can miss by the last bit:
    in float32, ``21 * (1 / 7)`` is 3.0000002, and a bin edge ``ceil``-ed from it moves
    by a whole cell. Dividing by a tensor divides."""
    return x / torch.full_like(x, n)


def _fma(a, b, c):
    """``a * b + c`` as torchvision's GPU kernels compute it: the CUDA compiler fuses a
    multiply and an add into one instruction (FMA) that rounds once, where two tensor
    operations round twice, and a sample point one bit apart can fall on the other side of
    the map's edge. On a GPU, float32 is fused the same way: computed in float64 (which holds
    the exact product) and rounded once. On the CPU, whose kernels do not fuse (and for
    float64 on a GPU, which has no wider type), it is ``a * b + c``."""
    if c.device.type == "cpu" or c.dtype != torch.float32:
        return a * b + c
    return (a.double() * b.double() + c.double()).float()


# ----------------------------------------------------------------------------- one RoI, read me

def roi_pool_one(feature, box, output_size, spatial_scale=1.0):
    """RoI max pooling of one RoI, as plain loops (Fast R-CNN, section 2.1).

    Args:
        feature (Tensor): ``(C, H, W)``, one image's feature map.
        box (Tensor): ``(4,)`` xyxy in image pixels.
        output_size (int or (int, int)): ``(PH, PW)``, e.g. 7.
        spatial_scale (float): feature cells per image pixel (1 / stride).

    Returns:
        Tensor: ``(C, PH, PW)``. A bin that lies outside the map is 0.
    """
    C, H, W = feature.shape
    PH, PW = _pair(output_size)
    # 1. Quantise the RoI to whole cells; the end cell is included (hence the +1 below).
    scale = torch.tensor(spatial_scale, dtype=feature.dtype)
    x1, y1, x2, y2 = (int(round_half_away(v * scale)) for v in box.to(feature.dtype))
    roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    # 2. Bin size in cells, a real number. It is kept in the feature's dtype, as torchvision
    #    does, so that floor and ceil below agree with it to the last bit.
    bin_h = torch.tensor(roi_h, dtype=feature.dtype) / PH
    bin_w = torch.tensor(roi_w, dtype=feature.dtype) / PW
    out = feature.new_zeros(C, PH, PW)
    for ph in range(PH):
        for pw in range(PW):
            # 3. Bin edges, rounded outwards to whole cells, clipped to the map.
            h0 = min(max(int(torch.floor(ph * bin_h)) + y1, 0), H)
            h1 = min(max(int(torch.ceil((ph + 1) * bin_h)) + y1, 0), H)
            w0 = min(max(int(torch.floor(pw * bin_w)) + x1, 0), W)
            w1 = min(max(int(torch.ceil((pw + 1) * bin_w)) + x1, 0), W)
            if h1 > h0 and w1 > w0:  # 4. max over the bin, per channel (an empty bin stays 0)
                out[:, ph, pw] = feature[:, h0:h1, w0:w1].reshape(C, -1).max(dim=1).values
    return out


def _bilinear(feature, y, x):
    """``feature (C, H, W)`` at the real-valued point ``(y, x)``, with torchvision's rules:
    0 more than one cell outside the map, border value within one cell of it."""
    C, H, W = feature.shape
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return feature.new_zeros(C)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = min(int(y), H - 1), min(int(x), W - 1)
    y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
    ly, lx = (y - y0 if y0 < H - 1 else 0.0), (x - x0 if x0 < W - 1 else 0.0)
    return ((1 - ly) * (1 - lx) * feature[:, y0, x0] + (1 - ly) * lx * feature[:, y0, x1]
            + ly * (1 - lx) * feature[:, y1, x0] + ly * lx * feature[:, y1, x1])


def roi_align_one(feature, box, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align of one RoI, as plain loops (Mask R-CNN, section 3).

    Args:
        feature (Tensor): ``(C, H, W)``.
        box (Tensor): ``(4,)`` xyxy in image pixels.
        output_size (int or (int, int)): ``(PH, PW)``.
        spatial_scale (float): 1 / stride.
        sampling_ratio (int): samples per bin along each axis; ``<= 0``: adaptive,
            ``ceil(roi size / output size)``.
        aligned (bool): shift by half a cell so that a pixel's centre falls on a cell's
            centre (Detectron2's correction; torchvision's default is False).

    Returns:
        Tensor: ``(C, PH, PW)``, the mean of the ``gh x gw`` bilinear samples of each bin.
    """
    PH, PW = _pair(output_size)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * spatial_scale - offset for v in box)  # no rounding!
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the legacy behaviour: tiny or inverted RoIs become 1 x 1 cell
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / PH, roi_w / PW
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / PH)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / PW)
    out = feature.new_zeros(feature.shape[0], PH, PW)
    for ph in range(PH):
        for pw in range(PW):
            samples = [_bilinear(feature, y1 + ph * bin_h + (iy + 0.5) * bin_h / gh,
                                 x1 + pw * bin_w + (ix + 0.5) * bin_w / gw)
                       for iy in range(gh) for ix in range(gw)]
            if samples:
                out[:, ph, pw] = torch.stack(samples).sum(0) / (gh * gw)
    return out


# ----------------------------------------------------------------------------- RoI pooling, batched

def pool_edges(start, end, pooled, limit):
    """Integer bin edges of RoI pooling along one axis.

    ``start``, ``end`` ``(K,)``: the quantised RoI, in cells. Returns ``lo``, ``hi``
    ``(K, pooled)`` (long): bin ``p`` covers cells ``lo[:, p] <= i < hi[:, p]``.
    """
    bin_size = _divide((end - start + 1).clamp(min=1), pooled)
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)
    lo = torch.floor(p * bin_size[:, None]) + start[:, None]
    hi = torch.ceil((p + 1) * bin_size[:, None]) + start[:, None]
    return lo.clamp(0, limit).long(), hi.clamp(0, limit).long()


def _bin_cells(batch, hs, he, ws, we, bh, bw, height, width, padding):
    """Every cell of every bin, as row numbers in the ``(N * H * W, C)`` table of cells.

    ``batch`` ``(k,)``; bin edges ``hs, he`` ``(k, PH)`` and ``ws, we`` ``(k, PW)``. Bins are
    padded to ``bh x bw`` cells, the padding pointing to row ``padding``. Returns
    ``(k, PH, PW, bh * bw)`` (long), each bin's cells in row-major order.
    """
    rows = hs[:, :, None] + torch.arange(bh, device=hs.device)  # (k, PH, bh)
    cols = ws[:, :, None] + torch.arange(bw, device=ws.device)  # (k, PW, bw)
    inside = (rows < he[..., None])[:, :, None, :, None] & (cols < we[..., None])[:, None, :, None, :]
    cell = (batch[:, None, None, None, None] * height + rows.clamp(max=height - 1)[:, :, None, :, None]) \
        * width + cols.clamp(max=width - 1)[:, None, :, None, :]  # (k, PH, PW, bh, bw)
    return cell.masked_fill(~inside, padding).flatten(3)


def roi_pool(features, rois, output_size, spatial_scale=1.0):
    """RoI max pooling for many RoIs at once; equals ``torchvision.ops.roi_pool``.

    The cells of every bin are gathered at once (bins padded to the RoI's largest one),
    the argmax of each bin is found without gradient, and the maxima are picked again
    with ``gather``: autograd then sends each output's gradient to its argmax cell only,
    as torchvision's backward does. No gradient reaches the RoIs (rounding has none).

    Args:
        features (Tensor): ``(N, C, H, W)``.
        rois: ``(K, 5)`` tensor or list of ``(K_i, 4)``, image pixels.
        output_size (int or (int, int)): ``(PH, PW)``.
        spatial_scale (float): 1 / stride.

    Returns:
        Tensor: ``(K, C, PH, PW)``.
    """
    N, C, H, W = features.shape
    PH, PW = _pair(output_size)
    rois = as_roi_tensor(rois, features.dtype).detach()
    xyxy = round_half_away(rois[:, 1:] * torch.tensor(spatial_scale, dtype=rois.dtype, device=rois.device))
    hs, he = pool_edges(xyxy[:, 1], xyxy[:, 3], PH, H)  # (K, PH)
    ws, we = pool_edges(xyxy[:, 0], xyxy[:, 2], PW, W)  # (K, PW)
    batch = rois[:, 0].long()
    # The (N * H * W, C) table of all cells of all images, channels last, so that a gather
    # copies whole rows; plus one row of -inf that bin padding points to.
    table = features.permute(0, 2, 3, 1).reshape(N * H * W, C)
    argmax = torch.zeros(len(rois), PH, PW, C, dtype=torch.long, device=features.device)
    with torch.no_grad():
        padded = torch.cat((table, table.new_full((1, C), -math.inf)))
        # RoIs whose largest bins have the same size go together, a chunk at a time.
        largest = torch.stack(((he - hs).amax(1), (we - ws).amax(1)), dim=1).clamp(min=1)
        for bh, bw in torch.unique(largest, dim=0).tolist():
            group = (largest == torch.tensor([bh, bw], device=largest.device)).all(1).nonzero()[:, 0]
            for k in group.split(max(1, _CHUNK // (PH * PW * bh * bw * C))):
                cell = _bin_cells(batch[k], hs[k], he[k], ws[k], we[k], bh, bw, H, W, padding=N * H * W)
                best = padded[cell].max(dim=3).indices  # (k, PH, PW, C): the first maximum on ties
                argmax[k] = cell.gather(3, best).clamp(max=N * H * W - 1)
    out = table.gather(0, argmax.reshape(-1, C)).reshape(-1, PH, PW, C)
    empty = (he <= hs)[:, :, None] | (we <= ws)[:, None, :]  # bins wholly outside the map
    out = out.masked_fill(empty[..., None], 0.0)  # (their argmax was the padding row)
    return out.permute(0, 3, 1, 2).contiguous()


# ----------------------------------------------------------------------------- RoI Align and warp

def _bilinear_1d(coord, size):
    """torchvision's bilinear rules along one axis, for a tensor of sample coordinates.

    Returns the two neighbouring cells ``low``, ``high`` (long) and their weights (0 for a
    sample more than one cell outside the map). The weights are differentiable in
    ``coord`` (that is what :func:`roi_warp` uses); the cell indices are not.
    """
    valid = (coord >= -1) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.detach().clamp(max=size).floor().long()  # coord >= 0, so floor == C's (int) cast
    at_edge = low >= size - 1  # past the last cell centre: take the last cell's value
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low.to(coord.dtype))
    return low, high, (1 - frac) * valid, frac * valid


def _interpolation_matrix(start, length, pooled, grid, size):
    """RoI Align along one axis, as a matrix.

    Args:
        start, length (Tensor): ``(K,)``, the RoI along this axis, in cells.
        pooled (int): bins along this axis.
        grid (Tensor): ``(K,)`` (long), samples per bin of each RoI.
        size (int): cells along this axis.

    Returns:
        Tensor: ``A`` ``(K, pooled, size)``: ``A[k, p, i]`` is the weight of cell ``i`` in bin
        ``p``, the mean over the bin's samples of their bilinear weights. Differentiable in
        ``start`` and ``length``.
    """
    bin_size = _divide(length, pooled)[:, None, None]
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)[:, None]
    i = torch.arange(max(int(grid.max()), 1), dtype=start.dtype, device=start.device)
    g = grid.clamp(min=1).to(start.dtype)[:, None, None]
    coord = _fma(p, bin_size, start[:, None, None]) + (i + 0.5) * bin_size / g  # (K, pooled, G)
    low, high, w_low, w_high = _bilinear_1d(coord, size)
    weight = torch.where(i < grid[:, None, None], 1 / g, 0.0)  # fewer samples than G: pad with 0
    cells = torch.cat((low, high), dim=2)
    weights = torch.cat((w_low * weight, w_high * weight), dim=2)
    return torch.zeros(len(start), pooled, size, dtype=start.dtype, device=start.device) \
        .scatter_add(2, cells, weights)


def _sample_rois(features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """Bilinear sampling over the RoI grid: RoI Align's computation, differentiable in
    the features and (where ``rois`` needs it) in the box coordinates.

    Bilinear interpolation and the average over a bin's samples are both linear in the
    features and separable in y and x, so each RoI's output is two matrix products:
    ``out[k, c] = A_y[k] @ features[b_k, c] @ A_x[k].T`` with ``A_y`` ``(PH, H)`` and ``A_x``
    ``(PW, W)`` from :func:`_interpolation_matrix`.
    """
    N, C, H, W = features.shape
    PH, PW = _pair(output_size)
    if len(rois) == 0:
        return features.new_zeros(0, C, PH, PW)
    scale = torch.tensor(spatial_scale, dtype=rois.dtype, device=rois.device)
    offset = torch.tensor(-0.5 if aligned else 0.0, dtype=rois.dtype, device=rois.device)
    start = _fma(rois[:, 1:3], scale, offset)  # (K, 2) x, y: no rounding
    length = _fma(rois[:, 3:5], scale, offset) - start
    if not aligned:
        length = length.clamp(min=1.0)
    if sampling_ratio > 0:
        grid = torch.full_like(length, sampling_ratio, dtype=torch.long)
    else:  # adaptive: about one sample per cell, ceil(RoI size / output size) per bin
        grid = torch.ceil(length.detach() / torch.tensor([PW, PH], device=rois.device)).clamp(min=0).long()
    a_x = _interpolation_matrix(start[:, 0], length[:, 0], PW, grid[:, 0], W)  # (K, PW, W)
    a_y = _interpolation_matrix(start[:, 1], length[:, 1], PH, grid[:, 1], H)  # (K, PH, H)
    if not (torch.is_grad_enabled() and (features.requires_grad or a_x.requires_grad or a_y.requires_grad)):
        return _sample_rois_no_grad(features, rois, a_x, a_y)
    pieces, where = [], []
    for b in range(N):  # one image at a time, a chunk of its RoIs at a time
        rows = features[b].transpose(0, 1).reshape(H, C * W)  # (H, C * W)
        for k in (rois[:, 0] == b).nonzero()[:, 0].split(max(1, _CHUNK // (PH * C * W))):
            mixed = (a_y[k].reshape(-1, H) @ rows).reshape(len(k), PH * C, W)  # A_y @ f: (k, PH * C, W)
            piece = torch.bmm(mixed, a_x[k].transpose(1, 2)).reshape(len(k), PH, C, PW)
            pieces.append(piece.transpose(1, 2))  # (k, C, PH, PW), a view: the cat below copies once
            where.append(k)
    out = torch.cat(pieces) if pieces else features.new_zeros(0, C, PH, PW)  # (K, C, PH, PW), contiguous
    where = torch.cat(where) if where else rois.new_zeros(0, dtype=torch.long)
    if len(where) != len(rois) or not torch.equal(where, torch.arange(len(rois), device=where.device)):
        # RoIs not in image order (or with a batch index outside the batch: zeros). One
        # out-of-place copy: writing each piece into a shared tensor in place would make
        # autograd copy that whole tensor's gradient once per piece (slow for training).
        out = features.new_zeros(len(rois), C, PH, PW).index_copy(0, where, out)
    return out


def _sample_rois_no_grad(features, rois, a_x, a_y, channels_per_block=16):
    """:func:`_sample_rois`' two matrix products when no gradient is needed (inference), in
    blocks of channels written straight into the output: each block's intermediate
    ``A_y @ f`` stays small enough for the CPU's cache instead of a copy of every RoI's
    ``(PH, C, W)`` going through memory (about 1.5 times faster; the same numbers up to the
    last bit or two, as BLAS may round products of other shapes differently)."""
    N, C, H, W = features.shape
    PH, PW = a_y.shape[1], a_x.shape[1]
    batch_index = rois[:, 0]
    covered = (batch_index >= 0) & (batch_index < N) & (batch_index == batch_index.round())
    out = features.new_empty(len(rois), C, PH, PW) if bool(covered.all()) else \
        features.new_zeros(len(rois), C, PH, PW)  # a batch index outside the batch: zeros
    a_xt = a_x.transpose(1, 2)
    for b in range(N):
        k = (batch_index == b).nonzero()[:, 0]
        if len(k) == 0:
            continue
        contiguous = int(k[-1]) - int(k[0]) + 1 == len(k)  # the usual case: RoIs in image order
        where = slice(int(k[0]), int(k[-1]) + 1) if contiguous else k
        ay, axt = a_y[where].reshape(-1, H), a_xt[where]
        for c0 in range(0, C, channels_per_block):
            c1 = min(C, c0 + channels_per_block)
            rows = features[b, c0:c1].transpose(0, 1).reshape(H, (c1 - c0) * W)  # (H, c * W)
            mixed = (ay @ rows).reshape(len(k), PH * (c1 - c0), W)  # A_y @ f: (k, PH * c, W)
            block = torch.bmm(mixed, axt).reshape(len(k), PH, c1 - c0, PW).transpose(1, 2)
            if contiguous:
                out[where, c0:c1] = block
            else:
                out[k, c0:c1] = block
    return out


def roi_align(features, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align for many RoIs at once; equals ``torchvision.ops.roi_align``.

    Args:
        features (Tensor): ``(N, C, H, W)``.
        rois: ``(K, 5)`` tensor or list of ``(K_i, 4)``, image pixels.
        output_size (int or (int, int)): ``(PH, PW)``.
        spatial_scale (float): 1 / stride.
        sampling_ratio (int): samples per bin along each axis; ``<= 0``: adaptive.
        aligned (bool): the half-cell correction (see :func:`roi_align_one`).

    Returns:
        Tensor: ``(K, C, PH, PW)``. Like torchvision's, no gradient reaches the RoIs,
        although the sampling is differentiable in them: see :func:`roi_warp`.
    """
    rois = as_roi_tensor(rois, features.dtype).detach()
    return _sample_rois(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


def roi_warp(features, rois, output_size, spatial_scale=1.0, sampling_ratio=2, aligned=True):
    """RoI warping: bilinear sampling over the RoI grid, differentiable in the box too.

    The forward pass equals :func:`roi_align` (and torchvision's) with the same arguments;
    the difference is that the box coordinates stay in the autograd graph. A sample sits at
    ``y = y1 + t * (y2 - y1)`` with ``t = (p + (i + 0.5) / g) / PH`` its relative position,
    a linear function of the box; bilinear interpolation is differentiable in ``y`` between
    cell centres, with slope ``f[y_high] - f[y_low]``. So each sample adds
    ``(1 - t) * slope`` to ``d out / d y1`` and ``t * slope`` to ``d out / d y2`` (times the
    spatial scale and the weights): the box is pulled towards where the features change.
    The gradient is 0 where a sample is clamped to the border, and one-sided exactly on a
    cell centre, where interpolation has a kink.

    Dai, He, Sun (2016), "Instance-aware semantic segmentation via multi-task network
    cascades", section 4 ("Differentiable RoI warping layers"), built the same idea: crop
    and warp the RoI to a fixed size by bilinear interpolation, then max-pool it to
    ``PH x PW``, with gradients for the box coordinates. Here the samples of a bin are
    averaged instead (RoI Align's choice), which keeps the gradient flowing to every
    sample. Faster R-CNN (section 3.2) names such a layer as what "non-approximate joint
    training" needs.

    Args:
        features (Tensor): ``(N, C, H, W)``.
        rois: ``(K, 5)`` tensor or list of ``(K_i, 4)``, image pixels; may require grad.
        output_size (int or (int, int)): ``(PH, PW)``.
        spatial_scale (float): 1 / stride.
        sampling_ratio (int): samples per bin along each axis (2: a 2 x 2 grid per bin).
        aligned (bool): the half-cell correction (default True here: there is no legacy
            to match).

    Returns:
        Tensor: ``(K, C, PH, PW)``, differentiable in ``features`` and ``rois[:, 1:]``.
    """
    rois = as_roi_tensor(rois, features.dtype)
    return _sample_rois(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


# ----------------------------------------------------------------------------- the detector's choice

class RoIOp(torch.nn.Module):
    """The detector's RoI layer: one switch for which op, and whose implementation.

    The course's detector uses ``RoIOp("align")``: RoI Align, 2 x 2 samples per bin,
    ``aligned=False``, computed by this module's :func:`roi_align`.

    * Align rather than pooling: the course's detector has a stride-8 backbone (16 x 16 maps
      for its 128 x 128 images) and its digits are 12-64 px, 1.5-8 cells. Pooling's rounding
      moves the region it reads by up to 4 px left and top and 12 px right and bottom: for
      12-24 px digits that region overlaps the digit with a median IoU of 0.41 (measured as
      in lesson 06). Align does not round. Sampling ratio 2 and ``aligned=False`` are
      torchvision's Faster R-CNN settings, so our detector can be compared with
      torchvision's number for number.
    * Ours rather than torchvision's: the results are the same (tested), and in training,
      which needs the backward pass, ours is faster on the CPU: torchvision's CPU backward
      is a scalar loop over every output, ours two matrix products per RoI (measured in
      ``benchmarks/README.md``; on large maps the forward alone is slower than theirs). For
      inference on large maps or on a GPU, ``implementation="torchvision"`` uses its C++ /
      CUDA kernels with the same semantics.
    * ``RoIOp("pool")``, the paper's RoI pooling, defaults to torchvision's kernel: ours
      is slower (the argmax over padded bins costs more than torchvision's loop;
      ``benchmarks/README.md``).
    * ``RoIOp("warp")`` (only ours: torchvision has no such op) is for non-approximate
      joint training, where the gradient must reach the proposal boxes.

    Args:
        kind (str): "align", "pool" or "warp".
        output_size (int or (int, int)): ``(PH, PW)``; 7 in the paper.
        spatial_scale (float): 1 / stride.
        sampling_ratio (int): for "align" and "warp".
        aligned (bool): for "align" and "warp".
        implementation (str): "torchvision" or "minifrcnn"; default: torchvision's for
            pool, ours for align and warp.
    """

    def __init__(self, kind="align", output_size=7, spatial_scale=1 / 16, sampling_ratio=2,
                 aligned=False, implementation=None):
        super().__init__()
        if kind not in ("align", "pool", "warp"):
            raise ValueError(f"kind must be 'align', 'pool' or 'warp', got {kind!r}")
        implementation = implementation or ("torchvision" if kind == "pool" else "minifrcnn")
        if implementation not in ("torchvision", "minifrcnn") or (kind, implementation) == ("warp", "torchvision"):
            raise ValueError(f"no {implementation!r} implementation of {kind!r}")
        self.kind, self.implementation = kind, implementation
        self.output_size, self.spatial_scale = _pair(output_size), spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, features, rois):
        """``features (N, C, H, W)``, ``rois (K, 5)`` or list of ``(K_i, 4)`` -> ``(K, C, PH, PW)``."""
        theirs = self.implementation == "torchvision"
        if self.kind == "pool":
            op = torchvision.ops.roi_pool if theirs else roi_pool
            return op(features, rois, self.output_size, self.spatial_scale)
        op = roi_warp if self.kind == "warp" else torchvision.ops.roi_align if theirs else roi_align
        return op(features, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self):
        return (f"{self.kind!r}, output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, "
                f"implementation={self.implementation!r}")
