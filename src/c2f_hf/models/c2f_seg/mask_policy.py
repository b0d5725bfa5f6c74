"""The mask policy, in one place: what a predicted object is, given its full-size masks.

The union with the input visible mask (the authors' post-processed variant), the occluded mask (amodal minus the
input visible mask), the occlusion rate and the user-facing box (COCO `[x, y, width, height]`, `mask_xywh`) are
computed here and nowhere else. The thresholds that turn input masks and predicted probabilities into these bool
masks are the image processor's settings (`visible_mask_threshold`, `mask_threshold`).
"""

import numpy as np
import PIL.Image
import torch

from .mask_geometry import mask_xywh

MaskLike = np.ndarray | torch.Tensor | PIL.Image.Image


def to_bool_mask(mask: MaskLike, name: str = "mask") -> np.ndarray:
    """A numpy bool `(H, W)` copy-or-view of `mask` (foreground: True, or > 0.5 for other dtypes).

    Raises ValueError naming `name` when the mask is not two-dimensional.
    """
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu()
        array = (mask if mask.dtype == torch.bool else mask > 0.5).numpy()
    else:
        array = np.asarray(mask)
        array = array if array.dtype == bool else array > 0.5
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (H, W) mask, got an array of shape {tuple(array.shape)}")
    return array


def check_same_shape(**masks: np.ndarray) -> None:
    shapes = {name: mask.shape for name, mask in masks.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"masks must all have the same (H, W) shape, got {shapes}")


def occluded_mask(amodal_mask: MaskLike, visible_mask: MaskLike) -> np.ndarray:
    """The occluded region `amodal_mask − visible_mask` (set difference), numpy bool `(H, W)`."""
    amodal, visible = to_bool_mask(amodal_mask, "amodal_mask"), to_bool_mask(visible_mask, "visible_mask")
    check_same_shape(amodal_mask=amodal, visible_mask=visible)
    return amodal & ~visible


def occlusion_rate_from_areas(amodal_area: int, visible_area: int) -> float:
    """`1 - visible_area / amodal_area` for a visible mask inside the amodal one; 0 for an empty amodal mask."""
    return 0.0 if amodal_area == 0 else 1.0 - visible_area / amodal_area


def occlusion_rate(amodal_mask: MaskLike, visible_mask: MaskLike) -> float:
    """Fraction of the amodal mask that is not visible, `1 − |visible ∩ amodal| / |amodal|`, in [0, 1].

    Returns 0.0 for an empty amodal mask. Masks are `(H, W)`.
    """
    amodal, visible = to_bool_mask(amodal_mask, "amodal_mask"), to_bool_mask(visible_mask, "visible_mask")
    check_same_shape(amodal_mask=amodal, visible_mask=visible)
    return float(occlusion_rate_from_areas(np.count_nonzero(amodal), np.count_nonzero(amodal & visible)))


def union_with_visible(amodal_mask: MaskLike, visible_mask: MaskLike) -> np.ndarray:
    """`amodal_mask ∪ visible_mask`, numpy bool `(H, W)`: the authors' post-processed prediction.

    `visible_mask` is the visible mask the model received as input.
    """
    amodal, visible = to_bool_mask(amodal_mask, "amodal_mask"), to_bool_mask(visible_mask, "visible_mask")
    check_same_shape(amodal_mask=amodal, visible_mask=visible)
    return amodal | visible


def object_result(
    amodal_mask: np.ndarray, pred_visible_mask: np.ndarray, visible_mask: np.ndarray, score: float, add_visible: bool
) -> dict:
    """One object's result from full-size bool `(H, W)` masks: the predicted amodal mask (united with the input
    `visible_mask` when `add_visible`), the predicted visible mask, the occluded mask, the COCO box and the
    occlusion rate (see `C2FSegImageProcessor.post_process_objects`)."""
    if add_visible:
        amodal_mask = union_with_visible(amodal_mask, visible_mask)
    return {
        "score": float(score),
        "amodal_mask": amodal_mask,
        "pred_visible_mask": pred_visible_mask,
        "occluded_mask": occluded_mask(amodal_mask, visible_mask),
        "bbox": mask_xywh(amodal_mask),
        "occlusion_rate": occlusion_rate(amodal_mask, visible_mask),
    }


__all__ = [
    "MaskLike",
    "check_same_shape",
    "object_result",
    "occluded_mask",
    "occlusion_rate",
    "occlusion_rate_from_areas",
    "to_bool_mask",
    "union_with_visible",
]
