"""Per-object metrics (paper §4): IoU_full, IoU_occ and occlusion-rate bins.

Conventions (masks, empty unions, IoU_occ, occlusion rates and bins): see `c2f_hf.evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..models.c2f_seg.mask_policy import MaskLike, check_same_shape, to_bool_mask

DEFAULT_BIN_EDGES: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)
FISHBOWL_OCCLUSION_RANGE: tuple[float, float] = (0.1, 0.7)


def bool_iou(first: np.ndarray, second: np.ndarray) -> float:
    """`iou` of two numpy bool `(H, W)` masks already checked (the accumulator's inner loop)."""
    union = np.count_nonzero(first | second)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(first & second) / union)


def bool_occluded_iou(
    pred_amodal_mask: np.ndarray, gt_amodal_mask: np.ndarray, gt_visible_mask: np.ndarray
) -> float | None:
    """`occluded_iou` of numpy bool `(H, W)` masks already checked (the accumulator's inner loop)."""
    gt_occluded_mask = gt_amodal_mask & ~gt_visible_mask
    if not gt_occluded_mask.any():
        return None
    return bool_iou(pred_amodal_mask & ~gt_visible_mask, gt_occluded_mask)


def bool_invented_area(pred_amodal_mask: np.ndarray, gt_amodal_mask: np.ndarray) -> float | None:
    """Predicted pixels outside the true amodal mask over its area, for numpy bool `(H, W)` masks already checked:
    a fraction >= 0 (it can exceed 1); None when the true amodal mask is empty. For an object nothing hides this is
    the hidden area the prediction invents."""
    amodal_area = np.count_nonzero(gt_amodal_mask)
    if amodal_area == 0:
        return None
    return float(np.count_nonzero(pred_amodal_mask & ~gt_amodal_mask) / amodal_area)


def iou(pred_mask: MaskLike, gt_mask: MaskLike) -> float:
    """Intersection over union of two `(H, W)` masks, in [0, 1]; 1.0 when both are empty.

    With the amodal prediction and the ground-truth amodal mask this is the paper's IoU_full.
    """
    prediction, target = to_bool_mask(pred_mask, "pred_mask"), to_bool_mask(gt_mask, "gt_mask")
    check_same_shape(pred_mask=prediction, gt_mask=target)
    return bool_iou(prediction, target)


def occluded_iou(pred_amodal_mask: MaskLike, gt_amodal_mask: MaskLike, gt_visible_mask: MaskLike) -> float | None:
    """The paper's IoU_occ: IoU(pred_amodal − gt_visible, gt_amodal − gt_visible), all masks `(H, W)`.

    Returns None when the ground-truth occluded region is empty (the object is fully visible), because such
    objects are left out of mIoU_occ.
    """
    prediction = to_bool_mask(pred_amodal_mask, "pred_amodal_mask")
    amodal = to_bool_mask(gt_amodal_mask, "gt_amodal_mask")
    visible = to_bool_mask(gt_visible_mask, "gt_visible_mask")
    check_same_shape(pred_amodal_mask=prediction, gt_amodal_mask=amodal, gt_visible_mask=visible)
    return bool_occluded_iou(prediction, amodal, visible)


def occlusion_bin(rate: float, bin_edges: Sequence[float] = DEFAULT_BIN_EDGES) -> int:
    """Index of the occlusion-rate bin holding `rate`: bins are `[lower, upper)`, the last one `[lower, upper]`.

    `bin_edges` must be increasing from 0.0 to 1.0; `rate` must lie in [0, 1].
    """
    index = int(np.searchsorted(np.asarray(bin_edges), rate, side="right")) - 1
    return min(index, len(bin_edges) - 2)


def bin_label(lower: float, upper: float) -> str:
    """The label of the occlusion-rate bin from `lower` to `upper` (fractions), e.g. "10-30%"."""
    return f"{round(lower * 100):d}-{round(upper * 100):d}%"


__all__ = ["DEFAULT_BIN_EDGES", "FISHBOWL_OCCLUSION_RANGE", "iou", "occluded_iou", "occlusion_bin"]
