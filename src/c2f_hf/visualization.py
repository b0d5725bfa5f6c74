"""Pictures of amodal results, the one drawing code that `c2f-hf demo` and the Space share.

`draw_amodal_overlay` draws each object in a colour of its own: its visible part (the input) as a light tint, its
predicted hidden part (amodal minus visible, `mask_policy.occluded_mask`) hatched with stripes of the
object's colour and black, the border of its whole predicted shape as an outline, and its number. A reader tells
input from prediction by the pattern (tint or stripes), and objects apart by colour and number; `draw_legend`
explains both under a picture. `draw_filled_masks` fills masks over a dimmed image (coarse and refined masks);
`draw_label_strip` colours a label map (value k = object k) so that a person can see it; `upscale` enlarges small
pictures for viewing without blurring mask edges.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .models.c2f_seg.mask_policy import occluded_mask

# Bright colours that stay apart from each other and from the black of the hatching; object k gets colour k - 1.
OBJECT_COLOURS = [
    ("magenta", (255, 0, 255)),
    ("sky blue", (0, 191, 255)),
    ("gold", (255, 215, 0)),
    ("orange", (255, 120, 0)),
    ("spring green", (0, 230, 118)),
    ("white", (255, 255, 255)),
]
VISIBLE_ALPHA = 0.4
HATCH_ALPHA = 0.9
HATCH_PERIOD = 8
BACKGROUND_DIM = 0.8


def object_colour(index: int) -> tuple[int, int, int]:
    """The RGB colour of the object with 0-based `index` (the palette repeats after its last colour)."""
    return OBJECT_COLOURS[index % len(OBJECT_COLOURS)][1]


def mask_outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The `(H, W)` bool band of about `width` pixels just inside the border of a bool mask."""
    eroded = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * width + 1)))
    return mask & ~(eroded > 0)


def hatch_pattern(shape: tuple[int, int], period: int = HATCH_PERIOD) -> np.ndarray:
    """`(H, W)` bool diagonal stripes, half of every `period` pixels on."""
    rows, columns = np.indices(shape)
    return (rows + columns) % period < period // 2


def _blend(canvas: np.ndarray, mask: np.ndarray, colour, alpha: float) -> None:
    canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * np.asarray(colour, dtype=np.float32)


def _font(size: int) -> ImageFont.ImageFont:
    """PIL's default font at `size` pixels (scalable where Pillow has FreeType)."""
    return ImageFont.load_default(size=size)


def label_position(mask: np.ndarray) -> tuple[int, int] | None:
    """`(x, y)` of the pixel of an `(H, W)` bool mask nearest to its centroid (inside the mask even for a ring or
    a crescent), or None for an empty mask."""
    rows, columns = np.nonzero(mask)
    if rows.size == 0:
        return None
    nearest = ((rows - rows.mean()) ** 2 + (columns - columns.mean()) ** 2).argmin()
    return int(columns[nearest]), int(rows[nearest])


def _draw_number(canvas: Image.Image, mask: np.ndarray, number: int, colour) -> None:
    """`number` in a small black box with a border of `colour`, on the mask near its centroid."""
    centre = label_position(mask)
    if centre is None:
        return
    size = max(10, min(canvas.size) // 20)
    font = _font(size)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox(centre, str(number), font=font, anchor="mm")
    margin = max(2, size // 5)
    draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=(0, 0, 0), outline=colour)
    draw.text(centre, str(number), font=font, fill=(255, 255, 255), anchor="mm")


def draw_amodal_overlay(
    image: np.ndarray,
    visible_masks: list[np.ndarray],
    amodal_masks: list[np.ndarray],
    colours: list[tuple[int, int, int]] | None = None,
    numbers: bool = True,
) -> np.ndarray:
    """`(H, W, 3)` uint8: the slightly dimmed image with, per object, its visible part tinted, its hidden part
    (amodal minus visible) hatched, the border of amodal ∪ visible outlined, all in the object's colour, and its
    number (1, 2, ...) on its visible part when `numbers`.

    Args:
        image: `(H, W, 3)` uint8 RGB.
        visible_masks: per object the `(H, W)` bool visible mask the model was given.
        amodal_masks: per object the `(H, W)` bool predicted amodal mask.
        colours: per object an RGB colour; default `object_colour(index)`.
        numbers: whether to write each object's number on it.
    """
    colours = colours or [object_colour(index) for index in range(len(visible_masks))]
    canvas = image.astype(np.float32) * BACKGROUND_DIM
    stripes = hatch_pattern(image.shape[:2])
    outline_width = max(1, min(image.shape[:2]) // 160)
    for visible, amodal, colour in zip(visible_masks, amodal_masks, colours):
        visible, amodal = np.asarray(visible, dtype=bool), np.asarray(amodal, dtype=bool)
        hidden = occluded_mask(amodal, visible)
        _blend(canvas, visible, colour, VISIBLE_ALPHA)
        _blend(canvas, hidden & stripes, colour, HATCH_ALPHA)
        _blend(canvas, hidden & ~stripes, (0, 0, 0), 0.6)
        canvas[mask_outline(amodal | visible, outline_width)] = colour
    picture = Image.fromarray(canvas.round().astype(np.uint8))
    if numbers:
        for number, (visible, colour) in enumerate(zip(visible_masks, colours), start=1):
            _draw_number(picture, np.asarray(visible, dtype=bool), number, colour)
    return np.asarray(picture)


def draw_filled_masks(
    image: np.ndarray, masks: list[np.ndarray], colours: list[tuple[int, int, int]] | None = None, dim: float = 0.45
) -> np.ndarray:
    """`(H, W, 3)` uint8: the image darkened to `dim` of its brightness with each `(H, W)` bool mask filled (75%)
    in its RGB colour (default `object_colour(index)`)."""
    colours = colours or [object_colour(index) for index in range(len(masks))]
    canvas = image.astype(np.float32) * dim
    for mask, colour in zip(masks, colours):
        _blend(canvas, np.asarray(mask, dtype=bool), colour, 0.75)
    return canvas.round().astype(np.uint8)


def draw_label_strip(labels: np.ndarray) -> np.ndarray:
    """`(H, W)` integer label map (0 = background, k = object k) -> `(H, W, 3)` uint8, object k in
    `object_colour(k - 1)` on black."""
    canvas = np.zeros((*labels.shape, 3), dtype=np.uint8)
    for value in np.unique(labels):
        if value > 0:
            canvas[labels == value] = object_colour(int(value) - 1)
    return canvas


def upscale(image: np.ndarray, min_side: int) -> np.ndarray:
    """`image` `(H, W, 3)` enlarged by a whole factor (nearest neighbour) until its shorter side is at least
    `min_side`; unchanged when already that large."""
    factor = max(1, -(-min_side // min(image.shape[:2])))
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def _legend_swatch(size: int, colour, kind: str) -> Image.Image:
    """A `size` x `size` sample of how a part is drawn: "visible" (tint), "hidden" (hatching), "object" (solid)."""
    grey = np.full((size, size, 3), 128 * BACKGROUND_DIM, dtype=np.float32)
    everywhere = np.ones((size, size), dtype=bool)
    if kind == "visible":
        _blend(grey, everywhere, colour, VISIBLE_ALPHA)
    elif kind == "hidden":
        stripes = hatch_pattern((size, size))
        _blend(grey, stripes, colour, HATCH_ALPHA)
        _blend(grey, ~stripes, (0, 0, 0), 0.6)
    else:
        grey[:] = colour
    grey[mask_outline(everywhere, 1)] = (60, 60, 60)
    return Image.fromarray(grey.round().astype(np.uint8))


def draw_legend(width: int, entries: list[tuple[str, tuple[int, int, int], str]], font_size: int = 16) -> np.ndarray:
    """`(h, width, 3)` uint8 white strip listing `entries` left to right, wrapping to new lines as needed: each
    `(text, colour, kind)` is a swatch of `kind` ("visible", "hidden" or "object", see `_legend_swatch`) and its
    text in PIL's default font."""
    font = _font(font_size)
    swatch, gap, line_height = font_size + 4, font_size // 2, font_size + 14
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    placed, x, line = [], gap, 0
    for text, colour, kind in entries:
        item_width = swatch + gap // 2 + int(measure.textlength(text, font=font)) + 2 * gap
        if x + item_width > width and x > gap:
            x, line = gap, line + 1
        placed.append((x, line, text, colour, kind))
        x += item_width
    legend = Image.new("RGB", (width, (line + 1) * line_height + gap), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    for x, line, text, colour, kind in placed:
        top = gap + line * line_height
        legend.paste(_legend_swatch(swatch, colour, kind), (x, top))
        draw.text((x + swatch + gap // 2, top + swatch // 2), text, font=font, fill=(0, 0, 0), anchor="lm")
    return np.asarray(legend)


def amodal_legend_entries(num_objects: int) -> list[tuple[str, tuple[int, int, int], str]]:
    """The `draw_legend` entries for `draw_amodal_overlay`: what tint and hatching mean, then one per object."""
    first = object_colour(0)
    return [
        ("visible part: light tint", first, "visible"),
        ("hidden part: hatched", first, "hidden"),
        *[(f"object {index + 1}", object_colour(index), "object") for index in range(num_objects)],
    ]


__all__ = [
    "OBJECT_COLOURS",
    "amodal_legend_entries",
    "draw_amodal_overlay",
    "draw_filled_masks",
    "draw_label_strip",
    "draw_legend",
    "hatch_pattern",
    "mask_outline",
    "object_colour",
    "upscale",
]
