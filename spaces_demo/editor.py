"""The image tab's editor (`gr.ImageMask`): reading an uploaded image, decoding the painted layers into numbered
visible masks (one brush colour of `c2f_hf.visualization.OBJECT_COLOURS` is one object), and writing masks back.

Editor values are dicts as gradio hands them to the handlers: `background` (the image), `layers` (RGBA strokes),
`composite` (the strokes drawn over the image). The values this app writes have no `composite`: gradio's editor
shows a given composite as its background image, which would bake the masks into the photo the model receives;
without it the masks stay a layer of their own, which the brush and the eraser edit.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from c2f_hf.models.c2f_seg.image_loading import load_rgb_image
from c2f_hf.visualization import OBJECT_COLOURS
from page import DemoInputError, hex_colour

MAX_IMAGE_SIDE = 1024
MIN_OBJECT_PIXELS = 16
COLOURS = np.array([colour for _, colour in OBJECT_COLOURS], dtype=np.float32)


def prepare_image(picture: np.ndarray | str) -> tuple[np.ndarray, list[str]]:
    """An image array or file path -> (`(H, W, 3)` uint8 RGB at most `MAX_IMAGE_SIDE` per side, notes for the
    user)."""
    notes: list[str] = []
    try:
        rgb = load_rgb_image(picture)
    except ValueError as error:
        raise DemoInputError(f"Unsupported image: {str(error).split(': ', 1)[-1]}.") from error
    if min(rgb.shape[:2]) < 8:
        raise DemoInputError(f"Image too small: {rgb.shape[1]}x{rgb.shape[0]} pixels; use at least 8x8.")
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        notes.append("Grayscale image: used as RGB with three equal channels; the model was trained on colour images.")
    height, width = rgb.shape[:2]
    scale = MAX_IMAGE_SIDE / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        notes.append(
            f"Large image: {width}x{height} pixels scaled down to {size[0]}x{size[1]} (limit {MAX_IMAGE_SIDE} px per "
            "side); results are shown at the smaller size."
        )
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return rgb, notes


def resized_layer(layer: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An RGBA layer `(h, w, 4)` resized (nearest) to `shape` `(H, W)`."""
    if layer.shape[:2] == shape:
        return layer
    return np.asarray(Image.fromarray(layer, "RGBA").resize(shape[::-1], Image.NEAREST))


def painted_layer(editor_value: dict | None, shape: tuple[int, int]) -> np.ndarray:
    """The editor's strokes as one `(H, W, 4)` RGBA layer of the image's size (later layers drawn over earlier
    ones; transparent when nothing is painted)."""
    merged = np.zeros((*shape, 4), dtype=np.uint8)
    for layer in (editor_value or {}).get("layers") or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise DemoInputError("The painted mask has no transparency channel; paint with the brush of the editor.")
        layer = resized_layer(layer, shape)
        merged[layer[..., 3] > 0] = layer[layer[..., 3] > 0]
    return merged


def read_editor(editor_value: dict | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`gr.ImageMask` value -> (image `(H, W, 3)` uint8, painted RGBA layer `(h, w, 4)` of the upload's size, notes).
    The image is scaled down to `MAX_IMAGE_SIDE`; the layer keeps the size of the upload (`resized_layer` matches
    it to the image)."""
    background = (editor_value or {}).get("background")
    if background is None:
        raise DemoInputError("No image: press Upload a photo or click one of the examples first.")
    image, notes = prepare_image(background)
    return image, painted_layer(editor_value, np.asarray(background).shape[:2]), notes


def nearest_colour_labels(rgb: np.ndarray) -> np.ndarray:
    """`(H, W)` int: for every pixel of `(H, W, 3)` the number (1, 2, ...) of the nearest palette colour."""
    distances = ((rgb.astype(np.float32)[..., None, :] - COLOURS) ** 2).sum(axis=-1)
    return distances.argmin(axis=-1) + 1


def masks_from_layer(layer: np.ndarray) -> dict[int, np.ndarray]:
    """Object number -> `(H, W)` bool visible mask, for every palette colour painted on the RGBA `layer`."""
    painted = layer[..., 3] > 0
    labels = np.where(painted, nearest_colour_labels(layer[..., :3]), 0)
    return {int(number): labels == number for number in np.unique(labels) if number > 0}


def objects_from_layer(layer: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """One `(object number, (H, W) bool visible mask)` per colour painted with at least `MIN_OBJECT_PIXELS`
    pixels, in number order. Raises DemoInputError when there is none."""
    masks = masks_from_layer(layer)
    if not masks:
        raise DemoInputError(
            "No visible mask: paint over the visible part of at least one object (or click it, with SAM), then "
            "press Segment."
        )
    objects = [(number, mask) for number, mask in sorted(masks.items()) if mask.sum() >= MIN_OBJECT_PIXELS]
    if not objects:
        raise DemoInputError(
            f"The painted strokes are too small (under {MIN_OBJECT_PIXELS} pixels per colour); paint a larger area."
        )
    return objects


def layer_from_masks(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """`(H, W, 4)` RGBA layer with object k's `(H, W)` bool mask opaque in its palette colour."""
    layer = np.zeros((*shape, 4), dtype=np.uint8)
    for number, mask in sorted(masks.items()):
        layer[mask] = (*OBJECT_COLOURS[number - 1][1], 255)
    return layer


def composite(image: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8: the RGBA `layer` drawn at 60% over `image` (what the editor shows)."""
    alpha = (layer[..., 3:] > 0) * 0.6
    return (image * (1 - alpha) + layer[..., :3] * alpha).round().astype(np.uint8)


def editor_value_of(image: np.ndarray, layer: np.ndarray) -> dict:
    """The editor value of `image` `(H, W, 3)` with the strokes of the RGBA `layer` `(H, W, 4)` as its one layer
    (no composite: see the module's docstring)."""
    return {"background": image, "layers": [layer], "composite": None}


def brush_size(shape: tuple[int, int]) -> int:
    """Brush radius in pixels for an image of `shape` `(H, W)`: about 1/60 of its shorter side."""
    return max(2, round(min(shape) / 60))


def brush_for(shape: tuple[int, int] | None) -> gr.Brush:
    """The editor's brush: the object colours only, sized for an image of `shape` (gradio's auto size without)."""
    return gr.Brush(
        colors=[hex_colour(colour) for _, colour in OBJECT_COLOURS],
        default_color=hex_colour(OBJECT_COLOURS[0][1]),
        color_mode="fixed",
        default_size=brush_size(shape) if shape else "auto",
    )


def editor_update(image: np.ndarray, layer: np.ndarray) -> dict:
    """Update of the editor: `image` with the visible masks of `layer` (its `value`, as the handlers receive it),
    the brush sized for it (`brush`)."""
    return gr.update(value=editor_value_of(image, layer), brush=brush_for(image.shape[:2]))
