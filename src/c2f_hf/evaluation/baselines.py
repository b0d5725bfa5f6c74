"""The baselines of the paper (the visible mask and its convex hull) and the prediction variants it reports.

Conventions (convex hull of pixel centres, union with the input visible mask, restriction to the occluders): see
`c2f_hf.evaluation`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from ..models.c2f_seg.mask_policy import MaskLike, restrict_to_occluders, to_bool_mask, union_with_visible

VISIBLE_BASELINE = "visible_baseline"
CONVEX_HULL_BASELINE = "convex_hull_baseline"
UNION_WITH_VISIBLE_SUFFIX = "_union_visible"
RESTRICTED_TO_OCCLUDERS_SUFFIX = "_restricted_to_occluders"

_HULL_TOLERANCE = 1e-6


def _row_extreme_pixel_centres(mask: np.ndarray) -> np.ndarray:
    """`(N, 2)` (row, column) centres of the first and last foreground pixel of every non-empty row.

    Every other foreground centre lies between two of these on its row, so they have the same convex hull.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    points = np.concatenate([np.stack([rows, first], axis=1), np.stack([rows, last], axis=1)])
    return np.unique(points, axis=0).astype(np.float64)


def _rasterise_hull(hull: ConvexHull, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre `(row, column)` lies inside or on `hull`, numpy bool `shape`.

    A convex polygon covers one interval of columns per row: each facet `a·row + b·column + c <= 0` bounds the
    column from above (b > 0) or below (b < 0), or bounds only the row (b == 0).
    """
    top, bottom = int(hull.min_bound[0]), int(hull.max_bound[0])
    rows = np.arange(top, bottom + 1, dtype=np.float64)[:, None]
    row_normal, column_normal, offset = hull.equations.T
    bound = -(offset + row_normal * rows)  # (rows, facets): column_normal * column <= bound
    upper_facets = column_normal > _HULL_TOLERANCE
    lower_facets = column_normal < -_HULL_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = bound / column_normal
    last = np.where(upper_facets, limit, np.inf).min(axis=1)
    first = np.where(lower_facets, limit, -np.inf).max(axis=1)
    row_inside = np.all(upper_facets | lower_facets | (bound >= -_HULL_TOLERANCE), axis=1)
    columns = np.arange(shape[1])[None, :]
    inside = (columns >= (first - _HULL_TOLERANCE)[:, None]) & (columns <= (last + _HULL_TOLERANCE)[:, None])
    hull_mask = np.zeros(shape, dtype=bool)
    hull_mask[top : bottom + 1] = inside & row_inside[:, None]
    return hull_mask


def convex_hull_mask(mask: MaskLike) -> np.ndarray:
    """The convex-hull baseline: the convex hull of the foreground pixel centres, rasterised, numpy bool `(H, W)`.

    A pixel is in the result when its centre lies inside or on the hull, so the result contains `mask`. When the
    centres span no area (empty mask, one pixel, a straight line of pixels) Qhull raises QhullError and the
    mask itself is returned.
    """
    foreground = to_bool_mask(mask, "mask")
    points = _row_extreme_pixel_centres(foreground)
    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):  # ValueError: no point at all (empty mask)
        return foreground.copy()
    # The union only guards against round-off: every foreground centre is a hull point or inside the hull.
    return _rasterise_hull(hull, foreground.shape) | foreground


def baseline_predictions(visible_mask: MaskLike) -> dict[str, np.ndarray]:
    """The two baselines from the input visible mask `(H, W)`: `{VISIBLE_BASELINE, CONVEX_HULL_BASELINE}`."""
    visible = to_bool_mask(visible_mask, "visible_mask")
    return {VISIBLE_BASELINE: visible.copy(), CONVEX_HULL_BASELINE: convex_hull_mask(visible)}


def prediction_variants(
    pred_amodal_mask: MaskLike, visible_mask: MaskLike, name: str = "model", occluder_mask: MaskLike | None = None
) -> dict[str, np.ndarray]:
    """Every variant the paper reports for one object, numpy bool `(H, W)` each.

    Keys: `name` (the raw prediction), `name + "_union_visible"` (the authors' image post-processing), with an
    `occluder_mask` `name + "_restricted_to_occluders"` (their MOViD-A post-processing, `restrict_to_occluders`:
    the visible mask plus the prediction on the occluder region), then `"visible_baseline"` and
    `"convex_hull_baseline"`. `visible_mask` is the visible mask the model received as input; `occluder_mask` the
    union of the other objects' input visible masks of the same image or frame (`occluder_masks_from_visible`).
    """
    prediction = to_bool_mask(pred_amodal_mask, "pred_amodal_mask")
    variants = {name: prediction, name + UNION_WITH_VISIBLE_SUFFIX: union_with_visible(prediction, visible_mask)}
    if occluder_mask is not None:
        variants[name + RESTRICTED_TO_OCCLUDERS_SUFFIX] = restrict_to_occluders(
            prediction, to_bool_mask(visible_mask, "visible_mask"), to_bool_mask(occluder_mask, "occluder_mask")
        )
    return {**variants, **baseline_predictions(visible_mask)}


__all__ = [
    "CONVEX_HULL_BASELINE",
    "RESTRICTED_TO_OCCLUDERS_SUFFIX",
    "UNION_WITH_VISIBLE_SUFFIX",
    "VISIBLE_BASELINE",
    "baseline_predictions",
    "convex_hull_mask",
    "prediction_variants",
]
