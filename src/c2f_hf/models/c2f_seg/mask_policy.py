"""The mask policy, in one place: what a predicted object is, given its full-size masks.

The union with the input visible mask (the authors' post-processed variant), the restriction of the hidden part to
the other objects' pixels (`restrict_to_occluders`, the authors' MOViD-A post-processing), the occluded mask
(amodal minus the input visible mask), the occlusion rate and the user-facing box (COCO `[x, y, width, height]`,
`mask_xywh`) are computed here and nowhere else, and so is whether a batch of crops shows an object at all
(`crops_with_pixels`: what the model's "refined_where_visible" output and the training's fully hidden frames
test). The thresholds that turn input masks and predicted probabilities
into these bool masks are the image processor's settings (`visible_mask_threshold`, `mask_threshold`).
"""

import numpy as np
import PIL.Image
import torch

from .mask_geometry import mask_xywh

MaskLike = np.ndarray | torch.Tensor | PIL.Image.Image


def to_bool_array(mask: MaskLike) -> np.ndarray:
    """A numpy bool copy-or-view of `mask`, any shape (foreground: True, or > 0.5 for other dtypes)."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu()
        return (mask if mask.dtype == torch.bool else mask > 0.5).numpy()
    array = np.asarray(mask)
    return array if array.dtype == bool else array > 0.5


def to_bool_mask(mask: MaskLike, name: str = "mask") -> np.ndarray:
    """A numpy bool `(H, W)` copy-or-view of `mask` (foreground: True, or > 0.5 for other dtypes).

    Raises ValueError naming `name` when the mask is not two-dimensional.
    """
    array = to_bool_array(mask)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (H, W) mask, got an array of shape {tuple(array.shape)}")
    return array


def crops_with_pixels(masks: torch.Tensor) -> torch.Tensor:
    """`(N,)` bool: True for each crop of `masks` `(N, ...)` (e.g. `(N, 1, S, S)` in [0, 1]) with a pixel above 0.5."""
    return (masks > 0.5).flatten(1).any(dim=1)


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


def occluder_masks_from_visible(visible_masks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Each object's occluder region: the union of the visible masks of the *other* objects of its image.

    Args:
        visible_masks: `(N, H, W)` masks (bool, or float foreground > 0.5) of all N objects of one image, or
            `(N, F, H, W)` of all N tracks of a clip (an empty mask on a frame where a track is hidden); masks may
            overlap.

    Returns:
        numpy bool of the same shape: entry `i` is `∪_{j != i} visible_masks[j]` (empty when N is 1). Objects of a
        label map are its positive labels (`image_loading.masks_from_label_map`), so for them this is the authors'
        rule on a scene segmentation: the pixels of any other label, neither background (0) nor the object's own.
    """
    masks = to_bool_array(visible_masks)
    if masks.ndim < 3:
        raise ValueError(
            f"visible_masks: expected all objects' masks as (N, H, W) or (N, F, H, W), got shape {masks.shape}"
        )
    # A pixel is another object's when more objects than this one cover it.
    coverage = masks.sum(axis=0, dtype=np.int32)
    return coverage[None] > masks


def restrict_to_occluders(amodal_masks: MaskLike, visible_masks: MaskLike, occluder_masks: MaskLike) -> np.ndarray:
    """The authors' MOViD-A post-processing: an object's hidden part may only lie behind another object.

    `visible ∪ (amodal ∩ occluder)`: the prediction is replaced by the input visible mask wherever the scene shows
    background or the object itself, so the visible mask is always kept, a hidden part on another object's pixels
    is kept and one on background is removed.

    Args:
        amodal_masks: predicted amodal masks, `(H, W)` or a batch `(..., H, W)` (bool, or > 0.5 for other dtypes:
            threshold probabilities first).
        visible_masks: the input visible masks the model received, the same shape.
        occluder_masks: each object's occluder region (`occluder_masks_from_visible` of all objects' visible
            masks), the same shape.

    Returns:
        numpy bool, the same shape. Raises ValueError naming the argument when the shapes differ.
    """
    amodal, visible, occluders = (to_bool_array(mask) for mask in (amodal_masks, visible_masks, occluder_masks))
    check_same_shape(amodal_masks=amodal, visible_masks=visible, occluder_masks=occluders)
    return visible | (amodal & occluders)


def object_result(
    amodal_mask: np.ndarray,
    pred_visible_mask: np.ndarray,
    visible_mask: np.ndarray,
    score: float,
    add_visible: bool,
    occluder_mask: np.ndarray | None = None,
) -> dict:
    """One object's result from full-size bool `(H, W)` masks: the predicted amodal mask (united with the input
    `visible_mask` when `add_visible`; restricted to `visible_mask ∪ occluder_mask` by `restrict_to_occluders` when
    an `occluder_mask` is given), the predicted visible mask, the occluded mask, the COCO box and the occlusion rate
    (see `C2FSegImageProcessor.post_process_objects`)."""
    if add_visible:
        amodal_mask = union_with_visible(amodal_mask, visible_mask)
    if occluder_mask is not None:
        amodal_mask = restrict_to_occluders(amodal_mask, visible_mask, occluder_mask)
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
    "occluder_masks_from_visible",
    "restrict_to_occluders",
    "to_bool_array",
    "to_bool_mask",
    "union_with_visible",
]
