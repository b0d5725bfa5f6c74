"""Helpers of the evaluation tests."""

import numpy as np

from c2f_hf.evaluation import CONVEX_HULL_BASELINE, VISIBLE_BASELINE


def box_mask(top: int, left: int, bottom: int, right: int, size: int = 10) -> np.ndarray:
    """A bool (size, size) mask with rows [top, bottom) and columns [left, right) set."""
    mask = np.zeros((size, size), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


VARIANTS = ["model", "model_union_visible", "model_restricted_to_occluders", VISIBLE_BASELINE, CONVEX_HULL_BASELINE]
