"""One image, one reading: paths, `data:` URIs, PIL images and video frames share the EXIF, transparency and
PIL mode I rules of `image_loading.load_rgb_image`."""

import base64

import numpy as np
import PIL.Image
import pytest

from c2f_hf.models.c2f_seg.image_loading import load_rgb_image
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import load_frames

EXIF_ORIENTATION = 0x0112
ROTATED_90 = 6  # EXIF orientation: the stored pixels must be turned 90 degrees clockwise to display


def data_uri(payload: bytes, kind: str) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(payload).decode()}"


@pytest.fixture
def rotated_jpeg(tmp_path):
    """A 20x40 (height x width) JPEG whose EXIF says it displays as 40x20."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255
    exif = PIL.Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90
    path = tmp_path / "rotated.jpg"
    PIL.Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    return path


def test_exif_orientation_is_applied_for_paths_uris_pil_images_and_frames(rotated_jpeg):
    by_path = load_rgb_image(rotated_jpeg)
    assert by_path.shape == (40, 20, 3)
    by_uri = load_rgb_image(data_uri(rotated_jpeg.read_bytes(), "jpeg"))
    with PIL.Image.open(rotated_jpeg) as opened:
        by_pil = load_rgb_image(opened)
    (by_frame,) = load_frames([str(rotated_jpeg)])
    for other in (by_uri, by_pil, by_frame):
        assert np.array_equal(by_path, other)


def test_pil_mode_i_with_8_bit_values_reads_as_8_bit():
    values = np.arange(0, 250, 10, dtype=np.int32).reshape(5, 5)
    image = load_rgb_image(PIL.Image.fromarray(values, mode="I"))
    assert np.array_equal(image[..., 0], values.astype(np.uint8))


def test_pil_mode_i_with_16_bit_values_reads_as_16_bit():
    values = np.array([[0, 65535], [256, 32768]], dtype=np.int32)
    image = load_rgb_image(PIL.Image.fromarray(values, mode="I"))
    assert np.array_equal(image[..., 0], np.round(values / 65535 * 255).astype(np.uint8))


@pytest.fixture
def transparent_gif(tmp_path):
    """A two-frame 8x8 GIF whose left half is transparent (palette index 0) and right half red (index 1), with
    the second frame's top right pixel blue (index 2)."""
    frames = []
    for blue in (False, True):
        indices = np.zeros((8, 8), dtype=np.uint8)
        indices[:, 4:] = 1
        indices[0, 7] = 2 if blue else 1
        frame = PIL.Image.fromarray(indices, mode="P")
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
        frames.append(frame)
    path = tmp_path / "transparent.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], transparency=0, disposal=2)
    return path


def test_gif_transparency_is_white_in_images_and_video_frames(transparent_gif):
    image = load_rgb_image(transparent_gif)
    frames = load_frames(str(transparent_gif))
    assert len(frames) == 2
    expected = np.zeros((8, 8, 3), dtype=np.uint8)
    expected[:, :4] = 255
    expected[:, 4:] = [255, 0, 0]
    for frame in (image, frames[0], load_rgb_image(data_uri(transparent_gif.read_bytes(), "gif"))):
        assert np.array_equal(frame, expected)
    expected[0, 7] = [0, 0, 255]
    assert np.array_equal(frames[1], expected)
