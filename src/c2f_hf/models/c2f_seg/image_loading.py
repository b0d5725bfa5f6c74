"""Reading what users hand the processors: images (PIL, paths, URLs, numpy, 8/16-bit, float, with alpha) and
object masks (PIL, numpy, torch; bool, {0, 1}, {0, 255} or float probabilities; label maps), each checked with a
ValueError that names the argument and what is wrong.

One image reads the same whatever way it comes (a path, an http(s) URL, a `data:` URI, a PIL image, a video
frame): every PIL image is turned upright by its EXIF orientation (`PIL.ImageOps.exif_transpose`, as transformers'
`load_image` does), transparent pixels are composited over white, and PIL mode "I" is read as 8-bit when all its
values are in 0-255 and as 16-bit (0-65535) otherwise.
"""

import base64
import io
import os
import urllib.request

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch


def is_remote_image(image) -> bool:
    """Whether `image` is an http(s) URL or a `data:` URI."""
    return isinstance(image, str) and image.startswith(("http://", "https://", "data:image/"))


def load_rgb_image(image, timeout: float | None = None) -> np.ndarray:
    """A PIL image, a file path, an http(s) URL (fetched with `timeout` seconds) or `data:image/...;base64,` URI,
    or a numpy array (H, W), (H, W, 3) or (H, W, 4) -> `(H, W, 3)` uint8 RGB.

    Values are scaled by their type's range: uint8 as is, uint16 (numpy, or PIL mode I;16, e.g. a 16-bit PNG) over
    0-65535, PIL mode I over 0-255 when its values fit in 8 bits and over 0-65535 otherwise, float (numpy, or PIL
    mode F) in [0, 1]. PIL images are turned upright by their EXIF orientation. Transparent pixels (an alpha
    channel, PIL modes RGBA / LA / PA or a transparency palette) are composited over white. Raises ValueError
    naming what is wrong (type, shape, dtype, PIL mode, NaN, values out of range, zero size, a URL or file that
    cannot be read).
    """
    if is_remote_image(image):
        image = _read_remote_image(image, timeout)
    elif isinstance(image, (str, os.PathLike)):
        image = _read_image_file(image)
    if isinstance(image, PIL.Image.Image):
        array = _numpy_image_to_rgb(_pil_image_to_array(PIL.ImageOps.exif_transpose(image)))
    elif isinstance(image, np.ndarray):
        array = _numpy_image_to_rgb(image)
    else:
        raise ValueError(f"image: expected a PIL image, a path or a numpy array, got {type(image).__name__}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image: has zero height or width (shape {array.shape})")
    return np.ascontiguousarray(array)


def _read_remote_image(uri: str, timeout: float | None) -> PIL.Image.Image:
    """The decoded image of an http(s) URL or a base64 `data:` URI; raises ValueError naming the URI."""
    try:
        if uri.startswith("data:"):
            payload = base64.b64decode(uri.split(",", 1)[1], validate=True)
        else:
            with urllib.request.urlopen(uri, timeout=timeout) as response:
                payload = response.read()
        return _opened_copy(io.BytesIO(payload))
    except Exception as error:  # noqa: BLE001 - URL, base64 and PIL errors all mean "cannot read this image"
        shown = uri if len(uri) < 120 else uri[:100] + "..."
        raise ValueError(f"image: could not read {shown!r}: {type(error).__name__}: {error}") from None


def _read_image_file(path: str | os.PathLike) -> PIL.Image.Image:
    """The decoded image of a file; raises ValueError naming the path."""
    if not os.path.isfile(path):
        raise ValueError(f"image: no file at {os.fspath(path)!r}")
    try:
        return _opened_copy(path)
    except PIL.UnidentifiedImageError as error:
        raise ValueError(f"image: {os.fspath(path)!r} is not an image file PIL can read") from error


def _opened_copy(source) -> PIL.Image.Image:
    """An image file (path or binary stream) decoded into memory, its file closed."""
    with PIL.Image.open(source) as opened:
        opened.load()
        return opened.copy()


def _pil_image_to_array(image: PIL.Image.Image) -> np.ndarray:
    """A PIL image as a numpy array `_numpy_image_to_rgb` reads: high-bit-depth modes keep their values (uint16 or
    float32; mode I as uint8 when its values fit in 0-255), images with transparency become RGBA, everything else
    RGB."""
    if image.mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if image.mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"image: PIL mode I holds values in [{values.min()}, {values.max()}]; only 16-bit values "
                "(0-65535) are supported: convert the image to 8-bit RGB first"
            )
        return values.astype(np.uint8 if values.size == 0 or values.max() <= 255 else np.uint16)
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


__all__ = ["is_remote_image", "load_binary_mask", "load_rgb_image", "masks_from_label_map"]
