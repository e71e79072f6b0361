"""Matching anchors (or proposals) to ground-truth boxes, and sampling a balanced batch.

Paper, section 3.1.2 ("Loss function"): an anchor is *positive* if its IoU with some
ground-truth box is > 0.7, or if it is the anchor with the highest IoU for some
ground-truth box; *negative* if its IoU is < 0.3 with every ground-truth box; every
other anchor is *ignored*: it does not contribute to the loss. Then 256 anchors are
sampled per image, up to half of them positive.

The same two parts serve the Fast R-CNN head with other settings (foreground IoU >= 0.5,
background below 0.5, no best-match rule, 128 RoIs with 25 % foreground): see
``RPN_MATCHER`` and ``HEAD_MATCHER`` below. Reference: torchvision's ``Matcher`` and
``BalancedPositiveNegativeSampler`` (``models/detection/_utils.py``).
"""
import torch

# Match values for boxes that have no ground truth.
BELOW_LOW_THRESHOLD = -1  # negative (background)
BETWEEN_THRESHOLDS = -2  # ignored: in the band between the two thresholds


class Matcher:
    """Assign each anchor the index of its best ground-truth box, or a negative code.

    Args:
        high_threshold (float): IoU at or above which an anchor is matched (positive).
        low_threshold (float): IoU below which an anchor is negative. Anchors with
            ``low_threshold <= IoU < high_threshold`` are ignored (``BETWEEN_THRESHOLDS``).
        allow_low_quality_matches (bool): the paper's second rule: for each ground-truth
            box, the anchor(s) with the highest IoU are matched to it even below
            ``high_threshold``. Ties are all kept. Without it, a small or oddly shaped
            object that overlaps no anchor by ``high_threshold`` gets no positive anchor
            at all, and the RPN never learns to propose it.
    """

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches=False):
        if not 0 <= low_threshold <= high_threshold <= 1:
            raise ValueError(f"need 0 <= low_threshold <= high_threshold <= 1, got "
                             f"low={low_threshold}, high={high_threshold}")
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou):
        """Match anchors to ground-truth boxes.

        Args:
            iou (Tensor): ``(G, A)``: IoU of each of ``G`` ground-truth boxes with each of
                ``A`` anchors (``box_iou(gt_boxes, anchors)``).

        Returns:
            Tensor: ``(A,)`` int64: the index in ``[0, G)`` of the ground-truth box each
            anchor is matched to, or ``BELOW_LOW_THRESHOLD`` (-1, negative) or
            ``BETWEEN_THRESHOLDS`` (-2, ignored).

        With no ground-truth boxes (``G = 0``) every anchor is negative: the image is all
        background; with no anchors the result is empty. (torchvision's ``Matcher`` raises
        here and its RPN handles empty images before calling it; the result is the same.)
        """
        if iou.dim() != 2:
            raise ValueError(f"iou must have shape (G, A), got {tuple(iou.shape)}")
        if iou.shape[0] == 0 or iou.shape[1] == 0:
            return torch.full((iou.shape[1],), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)
        best_iou, matches = iou.max(dim=0)  # best ground truth of each anchor
        best_matches = matches.clone()
        matches[best_iou < self.low_threshold] = BELOW_LOW_THRESHOLD
        matches[(best_iou >= self.low_threshold) & (best_iou < self.high_threshold)] = BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            # Anchors that are the best (or tied best) for some ground-truth box keep
            # their best match, whatever their IoU.
            best_iou_per_gt = iou.max(dim=1).values  # (G,)
            _, anchor_idx = torch.where(iou == best_iou_per_gt[:, None])
            matches[anchor_idx] = best_matches[anchor_idx]
        return matches


def match_labels(matches):
    """Training labels from match codes: 1 positive, 0 negative, -1 ignored. ``(A,)`` float32."""
    labels = (matches >= 0).to(torch.float32)
    labels[matches == BETWEEN_THRESHOLDS] = -1.0
    return labels


class BalancedSampler:
    """Sample a fixed-size batch with at most a given fraction of positives.

    Positives are sampled first, up to ``batch_size * positive_fraction``; negatives fill
    the rest. If there are too few of either, the batch is smaller. The paper (section
    3.1.3): 256 anchors per image, ratio up to 1:1, "padded with negatives" when there
    are fewer than 128 positives; the Fast R-CNN head uses 128 RoIs with 25 % foreground.

    Args:
        batch_size (int): number of examples to sample per image.
        positive_fraction (float): largest fraction of positives in the batch.
    """

    def __init__(self, batch_size, positive_fraction):
        if batch_size < 1 or not 0 <= positive_fraction <= 1:
            raise ValueError(f"need batch_size >= 1 and 0 <= positive_fraction <= 1, got "
                             f"{batch_size}, {positive_fraction}")
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction

    def __call__(self, labels, generator=None):
        """Choose examples to train on.

        Args:
            labels (Tensor): ``(A,)``: >= 1 positive (for the head: the class), 0 negative,
                -1 ignored.
            generator (torch.Generator, optional): source of randomness (default: torch's
                global one, as torchvision does, so a seeded run is repeatable).

        Returns:
            (Tensor, Tensor): ``(A,)`` bool masks of the sampled positives and negatives.
        """
        positive = torch.where(labels >= 1)[0]
        negative = torch.where(labels == 0)[0]
        num_pos = min(positive.numel(), int(self.batch_size * self.positive_fraction))
        num_neg = min(negative.numel(), self.batch_size - num_pos)
        # A random permutation then a prefix: a uniform sample without replacement.
        pos = positive[torch.randperm(positive.numel(), device=labels.device, generator=generator)[:num_pos]]
        neg = negative[torch.randperm(negative.numel(), device=labels.device, generator=generator)[:num_neg]]
        pos_mask = torch.zeros_like(labels, dtype=torch.bool)
        neg_mask = torch.zeros_like(labels, dtype=torch.bool)
        pos_mask[pos] = True
        neg_mask[neg] = True
        return pos_mask, neg_mask


# The paper's settings, used twice with different values (section 3.1.2 and 3.3 / Fast R-CNN).
def rpn_matcher(fg_iou=0.7, bg_iou=0.3):
    """Anchor matcher of the RPN: positive >= 0.7 or best anchor of a box, negative < 0.3."""
    return Matcher(fg_iou, bg_iou, allow_low_quality_matches=True)


def head_matcher(fg_iou=0.5, bg_iou=0.5):
    """Proposal matcher of the Fast R-CNN head: foreground >= 0.5, background below."""
    return Matcher(fg_iou, bg_iou, allow_low_quality_matches=False)
