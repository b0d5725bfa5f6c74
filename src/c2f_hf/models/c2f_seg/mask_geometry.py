"""Object-crop geometry, the one home of the authors' crop rule and its inverse.

Take the bounding box of the visible mask, keep its centre, scale its height and width by `enlarge_ratio`, clip to
the image, crop with inclusive bounds and resize the crop to `size` pixels square. (The authors then pad the
bottom/right up to the crop size; with resize factors of exactly size/h and size/w that pad is always empty, so it
is omitted.) Paste-back resizes a prediction to the crop box and places it into a zero canvas of the image size.

The image processor, the video processor, the training datasets and the evaluation runner all crop and paste
through these functions.

A **second crop** (`second_crop.py`) is the geometry of a hidden part that reaches past the first crop: a
prediction that touches a side of its crop box the image does not end at (`reaches_crop_border`) may go on beyond
it, and the object is cropped again from `grown_crop_box`, the first box grown to hold the prediction's own crop.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropBox:
    """A crop in slice bounds: rows `[top, bottom)` and columns `[left, right)` of the original image."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def to_list(self) -> list[int]:
        return [self.top, self.left, self.bottom, self.right]

    @classmethod
    def from_list(cls, values) -> "CropBox":
        top, left, bottom, right = (int(value) for value in values)
        return cls(top, left, bottom, right)


def mask_bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """`(top, left, height, width)` of the non-zero pixels of a `(H, W)` mask, counted in pixels (like
    `pycocotools.mask.toBbox`). Raises ValueError on an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise ValueError("the mask is empty: it has no non-zero pixel, so it has no bounding box")
    columns = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(columns[0]), int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def mask_xywh(mask: np.ndarray) -> list[int] | None:
    """COCO-style `[x, y, width, height]` of the non-zero pixels of an `(H, W)` mask; None when it is empty."""
    if not mask.any():
        return None
    top, left, height, width = mask_bounding_box(mask)
    return [left, top, width, height]


def is_tiny_crop(box: CropBox, min_crop_size: int) -> bool:
    """Whether a crop box spans fewer than `min_crop_size` pixels along both axes (a tiny object)."""
    return max(box.height, box.width) < min_crop_size


def _enlarged_span(start: int, length: int, enlarge_ratio: float, limit: int) -> tuple[int, int]:
    """The authors' rule along one axis, returned as slice bounds clipped to `[0, limit)`."""
    end = start + length
    centre = (start + end) // 2
    half = int(length * enlarge_ratio) // 2
    low = max(0, centre - half)
    high = min(limit, centre + half)
    return low, min(limit, high + 1)


def object_crop_box(visible_mask: np.ndarray, enlarge_ratio: float = 2.0) -> CropBox:
    """The crop box of one object from its `(H, W)` visible mask (the authors' crop rule)."""
    height, width = visible_mask.shape
    top, left, box_height, box_width = mask_bounding_box(visible_mask)
    row_low, row_high = _enlarged_span(top, box_height, enlarge_ratio, height)
    column_low, column_high = _enlarged_span(left, box_width, enlarge_ratio, width)
    return CropBox(row_low, column_low, row_high, column_high)


def clip_crop_box(visible_masks, enlarge_ratio: float = 2.0) -> CropBox:
    """The crop box of one object over a window of frames (video variant): the authors' crop rule applied to the
    union of its `(H, W)` visible masks, so every frame of the window is cropped with the same box. Frames where
    the object is fully hidden (empty mask) add nothing; raises ValueError when all of them are empty."""
    union = np.logical_or.reduce([np.asarray(mask, dtype=bool) for mask in visible_masks])
    if not union.any():
        raise ValueError("the object's visible masks are empty in every frame of the window: it has no crop box")
    return object_crop_box(union, enlarge_ratio)


def reaches_crop_border(mask: np.ndarray, box: CropBox) -> bool:
    """Whether a full-size `(H, W)` bool `mask` has a pixel on a side of `box` (its first or last row or column
    inside the image) where the image goes on: such a mask may be cut off by the crop. Sides on the image border
    do not count, nor do pixels outside the box."""
    height, width = mask.shape
    window = mask[box.top : box.bottom, box.left : box.right]
    if window.size == 0:
        return False
    sides = (
        (box.top > 0, window[0]),
        (box.bottom < height, window[-1]),
        (box.left > 0, window[:, 0]),
        (box.right < width, window[:, -1]),
    )
    return any(inside and bool(pixels.any()) for inside, pixels in sides)


def grown_crop_box(box: CropBox, mask: np.ndarray, enlarge_ratio: float) -> CropBox:
    """The smallest box holding `box` and the crop box of the `(H, W)` bool `mask` at `enlarge_ratio` (the authors'
    rule, clipped to the image): a crop that keeps all the first crop saw and reaches as far past `mask` as the
    first crop reaches past a visible mask."""
    reach = object_crop_box(mask, enlarge_ratio)
    return CropBox(
        min(box.top, reach.top), min(box.left, reach.left), max(box.bottom, reach.bottom), max(box.right, reach.right)
    )


def crop_and_resize(array: torch.Tensor, box: CropBox, size: int, mode: str) -> torch.Tensor:
    """Crop `(C, H, W)` to `box` and resize to `(C, size, size)`; `mode` is "bilinear" (antialiased, for images
    and probabilities) or "nearest" (for masks; pixel-centre sampling like the authors' order-0 rescale)."""
    crop = array[:, box.top : box.bottom, box.left : box.right].unsqueeze(0).float()
    if mode == "nearest":
        return F.interpolate(crop, size=(size, size), mode="nearest-exact")[0]
    return F.interpolate(crop, size=(size, size), mode=mode, align_corners=False, antialias=True)[0]


def crop_image(image: np.ndarray, box: CropBox, size: int) -> torch.Tensor:
    """`(H, W, 3)` uint8 RGB -> `(3, size, size)` float RGB in [0, 1]."""
    window = image[box.top : box.bottom, box.left : box.right]
    # A copy: the image may be a read-only view (np.asarray of a PIL image), which torch.from_numpy warns about.
    pixels = torch.tensor(window, dtype=torch.float32).permute(2, 0, 1).div_(255.0)
    whole = CropBox(0, 0, box.height, box.width)
    return crop_and_resize(pixels, whole, size, "bilinear").clamp_(0.0, 1.0)


def crop_mask(mask: np.ndarray, box: CropBox, size: int) -> torch.Tensor:
    """`(H, W)` binary -> `(1, size, size)` float in {0, 1} (nearest resize)."""
    window = np.asarray(mask[box.top : box.bottom, box.left : box.right], dtype=np.float32)
    whole = CropBox(0, 0, box.height, box.width)
    return crop_and_resize(torch.from_numpy(window)[None], whole, size, "nearest")


def paste_crop(
    crop: torch.Tensor, box: CropBox, image_height: int, image_width: int, mode: str = "bilinear"
) -> torch.Tensor:
    """Inverse of the crop: resize `(C, S, S)` to the box and place it into a zero `(C, image_height,
    image_width)` canvas. With `mode="nearest"`, pasting a nearest-resized crop of a mask whose box is no larger
    than S restores that mask exactly inside the box."""
    resized = crop.unsqueeze(0).float()
    size = (box.height, box.width)
    if mode == "nearest":
        resized = F.interpolate(resized, size=size, mode="nearest-exact")
    else:
        resized = F.interpolate(resized, size=size, mode=mode, align_corners=False, antialias=True)
    canvas = torch.zeros((crop.shape[0], image_height, image_width), dtype=resized.dtype)
    canvas[:, box.top : box.bottom, box.left : box.right] = resized[0]
    return canvas


__all__ = [
    "CropBox",
    "clip_crop_box",
    "crop_and_resize",
    "crop_image",
    "crop_mask",
    "grown_crop_box",
    "is_tiny_crop",
    "mask_bounding_box",
    "mask_xywh",
    "object_crop_box",
    "paste_crop",
    "reaches_crop_border",
]
