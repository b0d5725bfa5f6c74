"""The editor's decoding (spaces_demo/editor.py): painted strokes to numbered visible masks and back, merged and
resized layers, the size and grayscale checks of an upload, and the brush. No model is needed."""

import numpy as np
import pytest

from c2f_hf.visualization import OBJECT_COLOURS
from editor import (
    MIN_OBJECT_PIXELS,
    brush_for,
    composite,
    layer_from_masks,
    masks_from_layer,
    objects_from_layer,
    painted_layer,
    prepare_image,
)
from page import DemoInputError


def square(shape: tuple[int, int], top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_masks_written_into_a_layer_read_back_by_their_colours_even_when_blurred():
    masks = {1: square((40, 40), 2, 2, 10), 3: square((40, 40), 20, 20, 12)}
    layer = layer_from_masks(masks, (40, 40))
    assert tuple(layer[5, 5]) == (*OBJECT_COLOURS[0][1], 255) and tuple(layer[0, 0]) == (0, 0, 0, 0)
    decoded = masks_from_layer(layer)
    assert list(decoded) == [1, 3] and all(np.array_equal(decoded[number], masks[number]) for number in masks)
    softened = layer.copy()
    softened[masks[3], :3] = np.clip(softened[masks[3], :3].astype(int) - 20, 0, 255)
    assert list(masks_from_layer(softened)) == [1, 3], "a brush's antialiased edge still counts as its colour"


def test_layers_merge_later_over_earlier_at_the_images_size():
    first = layer_from_masks({1: square((20, 20), 0, 0, 10)}, (20, 20))
    second = layer_from_masks({2: square((10, 10), 0, 0, 3)}, (10, 10))
    merged = painted_layer({"layers": [first, None, second]}, (20, 20))
    masks = masks_from_layer(merged)
    assert np.array_equal(masks[2], square((20, 20), 0, 0, 6)), "the smaller layer is scaled up (nearest)"
    assert np.array_equal(masks[1], square((20, 20), 0, 0, 10) & ~masks[2])
    assert not painted_layer(None, (20, 20)).any()
    with pytest.raises(DemoInputError, match="no transparency channel"):
        painted_layer({"layers": [np.zeros((20, 20, 3), dtype=np.uint8)]}, (20, 20))


def test_objects_need_enough_painted_pixels_and_come_in_number_order():
    side = int(np.ceil(np.sqrt(MIN_OBJECT_PIXELS)))
    masks = {2: square((30, 30), 0, 0, side), 1: square((30, 30), 15, 15, side), 4: square((30, 30), 0, 25, 1)}
    objects = objects_from_layer(layer_from_masks(masks, (30, 30)))
    assert [number for number, _ in objects] == [1, 2]
    with pytest.raises(DemoInputError, match="No visible mask"):
        objects_from_layer(np.zeros((30, 30, 4), dtype=np.uint8))
    with pytest.raises(DemoInputError, match="too small"):
        objects_from_layer(layer_from_masks({4: masks[4]}, (30, 30)))


def test_composite_tints_painted_pixels_only():
    image = np.full((8, 8, 3), 100, dtype=np.uint8)
    layer = layer_from_masks({1: square((8, 8), 0, 0, 4)}, (8, 8))
    shown = composite(image, layer)
    assert np.array_equal(shown[4:, 4:], image[4:, 4:])
    expected = np.round(np.array(OBJECT_COLOURS[0][1]) * 0.6 + 100 * 0.4).astype(np.uint8)
    assert (shown[:4, :4] == expected).all()


def test_an_upload_is_checked_scaled_and_noted():
    wide = np.zeros((600, 2048, 3), dtype=np.uint8)
    wide[..., 0] = 255
    image, notes = prepare_image(wide)
    assert image.shape == (300, 1024, 3) and notes == [
        "Large image: 2048x600 pixels scaled down to 1024x300 (limit 1024 px per side); results are shown at the "
        "smaller size."
    ]
    _, notes = prepare_image(np.full((20, 20), 128, dtype=np.uint8))
    assert [note.split(":")[0] for note in notes] == ["Grayscale image"]
    with pytest.raises(DemoInputError, match="Image too small: 20x4 pixels"):
        prepare_image(np.zeros((4, 20, 3), dtype=np.uint8))
    with pytest.raises(DemoInputError, match="^Unsupported image: "):
        prepare_image(np.zeros((20, 20, 2), dtype=np.uint8))


def test_the_brush_offers_the_object_colours_sized_for_the_image():
    brush = brush_for((600, 900))
    assert brush.colors == ["#{:02x}{:02x}{:02x}".format(*colour) for _, colour in OBJECT_COLOURS]
    assert brush.default_color == brush.colors[0] and brush.default_size == 10
    assert brush_for(None).default_size == "auto"
