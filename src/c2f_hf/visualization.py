"""Pictures of amodal results, the one drawing code that `c2f-hf demo` and the Space share.

`draw_amodal_overlay` shows each object's visible part in green and its predicted hidden part (amodal minus
visible, `image_processing_c2f_seg.occluded_mask`) in red, optionally outlining its whole amodal mask in a colour
of its own; `draw_filled_masks` fills masks over a dimmed image.
"""

import numpy as np
from PIL import Image, ImageFilter

from .image_processing_c2f_seg import occluded_mask

VISIBLE_COLOUR = (40, 200, 80)
OCCLUDED_COLOUR = (235, 40, 40)
VISIBLE_ALPHA = 0.45
OCCLUDED_ALPHA = 0.6


def mask_outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The `(H, W)` bool band of about `width` pixels just inside the border of a bool mask."""
    eroded = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * width + 1)))
    return mask & ~(eroded > 0)


def _blend(canvas: np.ndarray, mask: np.ndarray, colour, alpha: float) -> None:
    canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * np.asarray(colour, dtype=np.float32)


def draw_amodal_overlay(
    image: np.ndarray,
    visible_masks: list[np.ndarray],
    amodal_masks: list[np.ndarray],
    outline_colours: list[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """`(H, W, 3)` uint8 image with, per object, its hidden part (amodal minus visible) tinted red, its visible part
    tinted green and, when `outline_colours` are given, the border of amodal ∪ visible drawn in its colour.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        visible_masks: per object the `(H, W)` bool visible mask the model was given.
        amodal_masks: per object the `(H, W)` bool predicted amodal mask.
        outline_colours: per object an RGB colour, or None for no outlines.
    """
    canvas = image.astype(np.float32)
    for visible, amodal in zip(visible_masks, amodal_masks):
        _blend(canvas, occluded_mask(amodal, visible), OCCLUDED_COLOUR, OCCLUDED_ALPHA)
    for visible in visible_masks:
        _blend(canvas, np.asarray(visible, dtype=bool), VISIBLE_COLOUR, VISIBLE_ALPHA)
    for visible, amodal, colour in zip(visible_masks, amodal_masks, outline_colours or []):
        canvas[mask_outline(np.asarray(amodal, dtype=bool) | np.asarray(visible, dtype=bool))] = colour
    return canvas.round().astype(np.uint8)


def draw_filled_masks(
    image: np.ndarray, masks: list[np.ndarray], colours: list[tuple[int, int, int]], dim: float = 0.45
) -> np.ndarray:
    """`(H, W, 3)` uint8: the image darkened to `dim` of its brightness with each `(H, W)` bool mask filled (75%)
    in its RGB colour."""
    canvas = image.astype(np.float32) * dim
    for mask, colour in zip(masks, colours):
        _blend(canvas, np.asarray(mask, dtype=bool), colour, 0.75)
    return canvas.round().astype(np.uint8)


__all__ = ["draw_amodal_overlay", "draw_filled_masks", "mask_outline"]
