"""Object-crop geometry, mask policy and the C2F-Seg image processor.

This module is the one home of two concepts that the pipelines, the evaluation runner, the training datasets and
the Space all call:

* **Crop / paste-back geometry** (the authors' crop rule): take the bounding box of the visible mask, keep its
  centre, scale its height and width by `enlarge_ratio`, clip to the image, crop with inclusive bounds and resize
  the crop to `crop_resolution` pixels square. (The authors then pad the bottom/right up to the crop size; with
  resize factors of exactly crop_resolution/h and crop_resolution/w that pad is always empty, so it is omitted.)
  Paste-back resizes a prediction to the crop box and places it into a zero canvas of the image size.
* **Mask policy**: input visible masks are binarised at `visible_mask_threshold`, predicted probabilities at
  `mask_threshold` (two separate settings of the processor); the union with the input visible mask, the occluded
  mask (amodal minus input visible), the occlusion rate and the user-facing box (COCO `[x, y, width, height]`,
  `mask_xywh`) are computed here and nowhere else.
* **Tiny objects**: an object whose crop box spans fewer than `min_crop_size` pixels (default 8, an object of
  about 4 px at `enlarge_ratio` 2) along both axes is upsampled so much that the prediction says little and, pasted
  back, may not even cover the given pixels. `preprocess` warns about each such object, and its amodal mask is
  always united with its visible mask, so no given visible pixel is ever lost (video: per window, by its box).
"""

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, load_image
from transformers.processing_utils import ImagesKwargs, Unpack

logger = logging.getLogger(__name__)


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


def crop_and_resize(array: torch.Tensor, box: CropBox, size: int, mode: str) -> torch.Tensor:
    """Crop `(C, H, W)` to `box` and resize to `(C, size, size)`; `mode` is "bilinear" (antialiased, for images
    and probabilities) or "nearest" (for masks; pixel-centre sampling like the authors' order-0 rescale)."""
    crop = array[:, box.top : box.bottom, box.left : box.right].unsqueeze(0).float()
    if mode == "nearest":
        return F.interpolate(crop, size=(size, size), mode="nearest-exact")[0]
    return F.interpolate(crop, size=(size, size), mode=mode, align_corners=False, antialias=True)[0]


def crop_image(image: np.ndarray, box: CropBox, size: int) -> torch.Tensor:
    """`(H, W, 3)` uint8 RGB -> `(3, size, size)` float RGB in [0, 1]."""
    window = np.ascontiguousarray(image[box.top : box.bottom, box.left : box.right])
    pixels = torch.from_numpy(window).permute(2, 0, 1).float().div_(255.0)
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


class C2FSegImageProcessorKwargs(ImagesKwargs, total=False):
    """Options of `C2FSegImageProcessor` beyond the standard image-processor ones.

    crop_resolution: side of the square object crops (the model's `image_size`).
    enlarge_ratio: scale of the visible-mask box that gives the crop (the authors use 2.0 at test time).
    visible_mask_threshold: value at or above which a float *input* visible mask counts as foreground.
    mask_threshold: probability at or above which a pasted-back *prediction* counts as foreground.
    min_crop_size: objects whose crop box spans fewer pixels along both axes are tiny (see the module docstring):
        warned about, and their amodal mask always includes their visible mask.
    """

    crop_resolution: int
    enlarge_ratio: float
    visible_mask_threshold: float
    mask_threshold: float
    min_crop_size: int


def is_remote_image(image) -> bool:
    """Whether `image` is an http(s) URL or a `data:` URI, which transformers' `load_image` fetches or decodes."""
    return isinstance(image, str) and image.startswith(("http://", "https://", "data:image/"))


def load_rgb_image(image, timeout: float | None = None) -> np.ndarray:
    """A PIL image, a file path, an http(s) URL or `data:image/...;base64,` URI (fetched by transformers'
    `load_image` with `timeout` seconds), or a numpy array (H, W), (H, W, 3) or (H, W, 4) -> `(H, W, 3)` uint8 RGB.

    Values are scaled by their type's range: uint8 as is, uint16 (numpy, or PIL modes I;16 and I, e.g. a 16-bit
    PNG) over 0-65535, float (numpy, or PIL mode F) in [0, 1]. Transparent pixels (an alpha channel, PIL modes
    RGBA / LA / PA or a transparency palette) are composited over white. Raises ValueError naming what is wrong
    (type, shape, dtype, PIL mode, NaN, values out of range, zero size, a URL that cannot be fetched).
    """
    if is_remote_image(image):
        try:
            image = load_image(image, timeout=timeout)
        except Exception as error:  # noqa: BLE001 - httpx, PIL and base64 errors all mean "cannot read this image"
            shown = image if len(image) < 120 else image[:100] + "..."
            raise ValueError(f"image: could not read {shown!r}: {type(error).__name__}: {error}") from None
    if isinstance(image, (str, os.PathLike)):
        if not os.path.isfile(image):
            raise ValueError(f"image: no file at {os.fspath(image)!r}")
        try:
            with PIL.Image.open(image) as opened:
                opened.load()
                image = opened.copy()
        except PIL.UnidentifiedImageError as error:
            raise ValueError(f"image: {os.fspath(image)!r} is not an image file PIL can read") from error
    if isinstance(image, PIL.Image.Image):
        array = _numpy_image_to_rgb(_pil_image_to_array(image))
    elif isinstance(image, np.ndarray):
        array = _numpy_image_to_rgb(image)
    else:
        raise ValueError(f"image: expected a PIL image, a path or a numpy array, got {type(image).__name__}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image: has zero height or width (shape {array.shape})")
    return np.ascontiguousarray(array)


def _pil_image_to_array(image: PIL.Image.Image) -> np.ndarray:
    """A PIL image as a numpy array `_numpy_image_to_rgb` reads: high-bit-depth modes keep their values (uint16 or
    float32), images with transparency become RGBA, everything else RGB."""
    if image.mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if image.mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"image: PIL mode I holds values in [{values.min()}, {values.max()}]; only 16-bit values "
                "(0-65535) are supported: convert the image to 8-bit RGB first"
            )
        return values.astype(np.uint16)
    if image.mode == "F":
        return np.asarray(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return np.array(image.convert("RGBA" if has_alpha else "RGB"))


def _numpy_image_to_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None].repeat(3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image: expected a numpy array of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.dtype == np.uint8:
        return _over_white(image.astype(np.float32) / 255.0) if image.shape[2] == 4 else image
    if image.dtype == np.uint16:
        image = image.astype(np.float32) / 65535.0
    elif not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"image: numpy images must be uint8, uint16 or float in [0, 1], got dtype {image.dtype}")
    if np.isnan(image).any():
        raise ValueError("image: contains NaN values")
    if image.size and (image.min() < 0 or image.max() > 1):
        raise ValueError(f"image: float images must lie in [0, 1], got [{image.min():.3g}, {image.max():.3g}]")
    if image.shape[2] == 4:
        return _over_white(image)
    return np.round(image * 255).astype(np.uint8)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """`(H, W, 4)` float RGBA in [0, 1] -> `(H, W, 3)` uint8 RGB composited over a white background."""
    alpha = rgba[..., 3:4]
    return np.round((rgba[..., :3] * alpha + (1.0 - alpha)) * 255).astype(np.uint8)


def load_binary_mask(
    mask, name: str, image_size: tuple[int, int], threshold: float = 0.5, allow_empty: bool = False
) -> np.ndarray:
    """A mask as PIL "L"/"1"/"P", numpy or torch (bool, {0,1} or {0,255} integers, or float in [0, 1] thresholded
    at `threshold`), shaped (H, W), (1, H, W) or (H, W, 1) -> `(H, W)` bool. `name` is used in error messages.
    An empty mask is an error unless `allow_empty` (video frames where the object is fully hidden)."""
    if isinstance(mask, PIL.Image.Image):
        if mask.mode not in ("1", "L", "P", "I", "F"):
            raise ValueError(f"{name}: expected a single-channel PIL mask (mode 1, L or P), got mode {mask.mode}")
        mask = np.asarray(mask)
    elif isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    elif not isinstance(mask, np.ndarray):
        raise ValueError(f"{name}: expected a PIL image, numpy array or torch tensor, got {type(mask).__name__}")
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[2]):
        mask = mask.reshape(mask.shape[1:] if mask.shape[0] == 1 else mask.shape[:2])
    if mask.shape != tuple(image_size):
        raise ValueError(f"{name}: has shape {mask.shape}, but the image is {tuple(image_size)} (height, width)")
    binary = _binarize(mask, name, threshold)
    if not allow_empty and not binary.any():
        raise ValueError(f"{name}: is empty (no foreground pixel); every object needs a visible mask")
    return binary


def _binarize(mask: np.ndarray, name: str, threshold: float) -> np.ndarray:
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.floating):
        if np.isnan(mask).any():
            raise ValueError(f"{name}: contains NaN values")
        if mask.min() < 0 or mask.max() > 1:
            raise ValueError(
                f"{name}: float masks must lie in [0, 1], got values in [{mask.min():.3g}, {mask.max():.3g}]"
            )
        return mask >= threshold
    if np.issubdtype(mask.dtype, np.integer):
        values = np.unique(mask)
        if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
            shown = values[:8].tolist()
            raise ValueError(f"{name}: integer masks must hold {{0, 1}} or {{0, 255}}, got values {shown}")
        return mask > 0
    raise ValueError(f"{name}: unsupported mask dtype {mask.dtype}")


def masks_from_label_map(label_map, image_size: tuple[int, int]) -> tuple[list[np.ndarray], list[int]]:
    """An `(H, W)` integer label map (0 = background) -> one bool mask per positive label, in ascending order,
    and those labels. Raises ValueError on a wrong shape, non-integer values or negative labels."""
    if isinstance(label_map, PIL.Image.Image):
        label_map = np.asarray(label_map)
    labels = np.asarray(label_map.detach().cpu() if isinstance(label_map, torch.Tensor) else label_map)
    if labels.shape != tuple(image_size):
        raise ValueError(f"label_map: has shape {labels.shape}, but the image is {tuple(image_size)}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label_map: expected integer labels, got dtype {labels.dtype}")
    values = np.unique(labels)
    if values[0] < 0:
        raise ValueError(
            f"label_map: has negative labels {values[values < 0][:8].tolist()}; use 0 for background and positive "
            "integers for objects"
        )
    positive = [int(value) for value in values if value > 0]
    return [labels == value for value in positive], positive


def _as_numpy(value):
    """A torch tensor (or a list of them) as numpy."""
    if isinstance(value, list):
        return [item.numpy() for item in value]
    return value.numpy()


class C2FSegImageProcessor(PilBackend):
    """Builds the per-object crops C2F-Seg reads and pastes its predictions back (PIL/numpy backend).

    `processor(image, visible_masks=[...])` (or `label_map=`) returns `pixel_values (N, 3, S, S)` RGB in [0, 1]
    (optionally normalised), `visible_masks (N, 1, S, S)` in {0, 1}, `crop_boxes (N, 4)` as
    (top, left, bottom, right) slice bounds, `original_size (2,)`, `original_visible_masks (N, H, W)` bool (the
    validated full-size input masks, so callers never load them twice) and, with a `label_map`, `labels (N,)` (the
    label of each object). The authors apply no mean/std normalisation, so `do_normalize` defaults to False.

    `post_process_objects` turns `model.generate` outputs into full-size per-object results with the mask policy
    of the module docstring; `post_process_amodal_masks` only pastes back and thresholds.
    """

    valid_kwargs = C2FSegImageProcessorKwargs
    model_input_names = ["pixel_values", "visible_masks"]
    crop_resolution = 256
    enlarge_ratio = 2.0
    visible_mask_threshold = 0.5
    mask_threshold = 0.5
    min_crop_size = 8
    do_normalize = False
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD

    def __init__(self, **kwargs: Unpack[C2FSegImageProcessorKwargs]):
        super().__init__(**kwargs)

    def __call__(self, images, visible_masks=None, label_map=None, **kwargs) -> BatchFeature:
        return self.preprocess(images, visible_masks=visible_masks, label_map=label_map, **kwargs)

    def preprocess(
        self, images, visible_masks=None, label_map=None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        """Crop every object of one image, or of a list of images.

        Args:
            images: one image (PIL, path, URL or numpy (H, W[, 3|4])), or a list of them.
            visible_masks: for one image, a list of N masks of its size (PIL, numpy or torch; see
                `load_binary_mask`); for a list of images, one such list per image.
            label_map: alternatively, an `(H, W)` integer map whose positive labels are the objects (for a list of
                images, one map per image).
            return_tensors: "pt" (torch tensors, the default) or "np" (numpy arrays).

        Returns:
            For one image the keys of the class docstring. For a list of B images the crops of all their objects
            in order, plus `image_indices (N,)` (which image each object is from) and `original_sizes (B, 2)`;
            `original_visible_masks` is then a list of B `(N_b, H_b, W_b)` arrays.
        """
        if return_tensors not in ("pt", "np"):
            raise ValueError(f"return_tensors: expected 'pt' or 'np', got {return_tensors!r}")
        if isinstance(images, (list, tuple)):
            data = self._crop_images(images, visible_masks, label_map, kwargs)
        else:
            data = self._crop_image(images, visible_masks, label_map, kwargs)
        if return_tensors == "np":
            data = {key: _as_numpy(value) for key, value in data.items()}
        return BatchFeature(data=data)

    def _crop_images(self, images: list, visible_masks, label_map, options: dict) -> dict:
        """`_crop_image` of each image of a batch, concatenated (see `preprocess`)."""
        if len(images) == 0:
            raise ValueError("images: the list is empty; pass at least one image")
        per_image = {"visible_masks": visible_masks, "label_map": label_map}
        for name, values in per_image.items():
            if values is not None and (not isinstance(values, (list, tuple)) or len(values) != len(images)):
                found = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
                raise ValueError(f"{name}: with {len(images)} images, expected one entry per image, got {found}")
        crops = [
            self._crop_image(
                image,
                None if visible_masks is None else visible_masks[index],
                None if label_map is None else label_map[index],
                options,
                name=f"images[{index}]",
            )
            for index, image in enumerate(images)
        ]
        data = {
            key: torch.cat([crop[key] for crop in crops]) for key in ("pixel_values", "visible_masks", "crop_boxes")
        }
        data["image_indices"] = torch.cat(
            [torch.full((len(crop["crop_boxes"]),), index, dtype=torch.long) for index, crop in enumerate(crops)]
        )
        data["original_sizes"] = torch.stack([crop["original_size"] for crop in crops])
        data["original_visible_masks"] = [crop["original_visible_masks"] for crop in crops]
        if label_map is not None:
            data["labels"] = torch.cat([crop["labels"] for crop in crops])
        return data

    def _crop_image(self, image, visible_masks, label_map, options: dict, name: str = "image") -> dict:
        """The crops of every object of one image (the keys of the class docstring), as torch tensors."""
        try:
            image = load_rgb_image(image)
            masks, labels = self.load_visible_masks(image.shape[:2], visible_masks, label_map)
        except ValueError as error:
            if name == "image":
                raise
            raise ValueError(f"{name}: {error}") from None
        boxes = [object_crop_box(mask, options.get("enlarge_ratio", self.enlarge_ratio)) for mask in masks]
        self.warn_about_tiny_objects(masks, boxes, labels)
        crop_resolution = options.get("crop_resolution", self.crop_resolution)
        pixel_values = torch.stack([crop_image(image, box, crop_resolution) for box in boxes])
        pixel_values = self.normalize_crops(pixel_values, options.get("do_normalize", self.do_normalize))
        return {
            "pixel_values": pixel_values,
            "visible_masks": torch.stack([crop_mask(mask, box, crop_resolution) for mask, box in zip(masks, boxes)]),
            "crop_boxes": torch.tensor([box.to_list() for box in boxes], dtype=torch.long),
            "original_size": torch.tensor(image.shape[:2], dtype=torch.long),
            "original_visible_masks": torch.from_numpy(np.stack(masks)),
            **({} if labels is None else {"labels": torch.tensor(labels, dtype=torch.long)}),
        }

    def warn_about_tiny_objects(
        self, masks: list[np.ndarray], boxes: list[CropBox], labels: list[int] | None = None
    ) -> None:
        """Warn once per object whose crop box is tiny (see the module docstring)."""
        for index, (mask, box) in enumerate(zip(masks, boxes)):
            if is_tiny_crop(box, self.min_crop_size):
                name = f"visible_masks[{index}]" if labels is None else f"label_map label {labels[index]}"
                _, _, height, width = mask_bounding_box(mask)
                warnings.warn(
                    f"{name}: the object is only {height}x{width} px, so its crop is {box.height}x{box.width} px "
                    f"(min_crop_size={self.min_crop_size}); its prediction is unreliable, and its amodal mask "
                    "includes its visible mask",
                    UserWarning,
                    stacklevel=3,
                )

    @classmethod
    def for_model(
        cls, image_processor: "C2FSegImageProcessor | None", model_config, source: str
    ) -> "C2FSegImageProcessor":
        """The processor to run a model with: `image_processor`, or (None) a default one with the model's crop size
        and a warning; its `crop_resolution` must equal `model_config.image_size`. `source` names the model (a
        folder or Hub id) in the messages. Raises ValueError on a processor of another kind or size. (Checked by
        class name: a processor loaded as remote code is a copy of this class from another module.)"""
        if image_processor is None:
            logger.warning(
                "%s has no preprocessor_config.json: using a default C2FSegImageProcessor(crop_resolution=%d); "
                "save one with processor.save_pretrained(folder) to make this explicit",
                source,
                model_config.image_size,
            )
            return cls(crop_resolution=model_config.image_size)
        if "C2FSegImageProcessor" not in {base.__name__ for base in type(image_processor).__mro__}:
            raise ValueError(
                f"{source}: the image processor is a {type(image_processor).__name__}, not a C2FSegImageProcessor"
            )
        if image_processor.crop_resolution != model_config.image_size:
            raise ValueError(
                f"{source}: the image processor crops at crop_resolution={image_processor.crop_resolution}, but the "
                f"model takes image_size={model_config.image_size}; set them equal in preprocessor_config.json"
            )
        return image_processor

    def normalize_crops(self, pixel_values: torch.Tensor, do_normalize: bool | None = None) -> torch.Tensor:
        """`(..., 3, S, S)` crops in [0, 1] -> the same, mean/std normalised when `do_normalize` (default: the
        processor's setting)."""
        if not (self.do_normalize if do_normalize is None else do_normalize):
            return pixel_values
        mean = torch.tensor(self.image_mean).view(3, 1, 1)
        return (pixel_values - mean) / torch.tensor(self.image_std).view(3, 1, 1)

    def load_visible_masks(
        self, image_size: tuple[int, int], visible_masks=None, label_map=None
    ) -> tuple[list[np.ndarray], list[int] | None]:
        """Validate the object masks of one image: `(H, W)` bool arrays and, from a `label_map`, their labels."""
        if (visible_masks is None) == (label_map is None):
            raise ValueError("give exactly one of visible_masks (a list of masks) or label_map")
        if label_map is not None:
            masks, labels = masks_from_label_map(label_map, image_size)
            if not masks:
                raise ValueError("label_map: has no positive label, so there is no object to segment")
            return masks, labels
        if not isinstance(visible_masks, (list, tuple)):
            visible_masks = [visible_masks]
        if len(visible_masks) == 0:
            raise ValueError("visible_masks: zero masks given; pass at least one visible mask per image")
        masks = [
            load_binary_mask(mask, f"visible_masks[{index}]", image_size, self.visible_mask_threshold)
            for index, mask in enumerate(visible_masks)
        ]
        return masks, None

    def paste_masks(self, masks: torch.Tensor, crop_boxes: torch.Tensor, original_size) -> torch.Tensor:
        """Paste `(N, 1, S, S)` crop probabilities back: `(N, H, W)` float probabilities at the image size."""
        height, width = (int(value) for value in original_size)
        return torch.stack(
            [
                paste_crop(mask.float().cpu(), CropBox.from_list(box), height, width)[0]
                for mask, box in zip(masks, crop_boxes.tolist())
            ]
        )

    def post_process_amodal_masks(
        self,
        masks: torch.Tensor,
        crop_boxes: torch.Tensor,
        original_size,
        threshold: float | None = None,
        visible_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Paste predicted crop probabilities `(N, 1, S, S)` back to the image and threshold them.

        Args:
            threshold: foreground threshold (default `mask_threshold`).
            visible_masks: `(N, H, W)` bool input visible masks; when given, the result is their union with the
                prediction (the authors report both the raw and the union variant).

        Returns:
            `(N, H, W)` bool masks at the original size.
        """
        threshold = self.mask_threshold if threshold is None else threshold
        binary = self.paste_masks(masks, crop_boxes, original_size) >= threshold
        if visible_masks is not None:
            binary |= torch.as_tensor(visible_masks, dtype=torch.bool)
        return binary

    def post_process_objects(
        self,
        outputs,
        crop_boxes: torch.Tensor,
        original_size,
        visible_masks: torch.Tensor | np.ndarray,
        mask_threshold: float | None = None,
        union_with_visible: bool = False,
        return_coarse: bool = False,
    ) -> list[dict]:
        """Full-size per-object results from `model.generate` outputs of N object crops.

        Args:
            outputs: a `C2FSegGenerationOutput` (or a dict with its keys) holding `amodal_masks`,
                `pred_visible_masks` and `coarse_amodal_masks` `(N, 1, S, S)` probabilities and `scores (N,)`.
            crop_boxes: `(N, 4)` crop boxes of `preprocess`.
            original_size: `(height, width)` of the image.
            visible_masks: `(N, H, W)` bool input visible masks (`preprocess`'s `original_visible_masks`).
            mask_threshold: foreground probability of the predictions (default: the processor's).
            union_with_visible: add the input visible mask to the amodal mask (the authors report both); tiny
                objects always get it (module docstring).
            return_coarse: also paste back the VQ-decoded coarse mask.

        Returns:
            One dict per object with numpy bool `(H, W)` masks `amodal_mask`, `pred_visible_mask`,
            `occluded_mask` (amodal minus the input visible mask) and, when asked, `coarse_amodal_mask`; `score`
            (mean token confidence), `bbox` (COCO `[x, y, width, height]` of the amodal mask, None when empty)
            and `occlusion_rate` (occluded area over amodal area).
        """
        paste = lambda name: self.post_process_amodal_masks(  # noqa: E731
            outputs[name], crop_boxes, original_size, mask_threshold
        ).numpy()
        amodal_masks, pred_visible_masks = paste("amodal_masks"), paste("pred_visible_masks")
        input_masks = np.asarray(visible_masks, dtype=bool)
        scores = outputs["scores"].reshape(-1).tolist()
        tiny = [is_tiny_crop(CropBox.from_list(box), self.min_crop_size) for box in crop_boxes.tolist()]
        results = [
            object_result(amodal, pred_visible, visible, score, add_visible=union_with_visible or is_tiny)
            for amodal, pred_visible, visible, score, is_tiny in zip(
                amodal_masks, pred_visible_masks, input_masks, scores, tiny
            )
        ]
        if return_coarse:
            for result, coarse in zip(results, paste("coarse_amodal_masks")):
                result["coarse_amodal_mask"] = coarse
        return results


__all__ = [
    "C2FSegImageProcessor",
    "CropBox",
    "clip_crop_box",
    "crop_image",
    "crop_mask",
    "object_crop_box",
    "paste_crop",
]
