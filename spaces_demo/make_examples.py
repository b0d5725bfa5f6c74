"""Write the demo's example images and their painted visible masks into `spaces_demo/examples/`.

Each example is `NAME.png` (the RGB image) plus `NAME_mask.png`, an RGBA layer holding the visible mask of each
object in one brush colour of the app's palette (transparent elsewhere): exactly what a user paints. Three come
from the synthetic generator the tiny model was trained on; two are "photo-like" scenes drawn procedurally with
PIL gradients (a mug behind a box, a ball behind a stack of books). Nothing is downloaded.

The video tab's examples go to `examples/video/`: per clip `NAME_frames.png`, the frames side by side (a film
strip), and `NAME_masks.png`, a grayscale strip of the same layout whose pixel value k marks the visible part of
object k (0 elsewhere): the upload format of the video tab. They are synthetic test clips of 8 frames at 128x128
in which object 1 passes fully behind a large disc for a few frames.

    python spaces_demo/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from c2f_hf.data.synthetic import SyntheticConfig, generate_clip, generate_scene, scene_rng
from c2f_hf.visualization import OBJECT_COLOURS, draw_label_strip

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
VIDEO_EXAMPLES_DIR = EXAMPLES_DIR / "video"
BRUSH_COLOURS = [colour for _, colour in OBJECT_COLOURS]
SYNTHETIC_SEEDS = (3, 11, 27)
PHOTO_SIZE = (320, 240)
# Clips whose object 0 is fully hidden in frames 3-5 but visible in frames 2 and 6, so every 4-frame window of the
# shipped video model sees it at least once.
VIDEO_CLIP_INDICES = (3, 6, 9)
VIDEO_OBJECTS_PER_CLIP = 3
MIN_VISIBLE_PIXELS = 16


def mask_layer(masks: list[np.ndarray]) -> Image.Image:
    """RGBA layer with `masks[i]` `(H, W)` bool painted opaque in `BRUSH_COLOURS[i]`, transparent elsewhere."""
    height, width = masks[0].shape
    layer = np.zeros((height, width, 4), dtype=np.uint8)
    for colour, mask in zip(BRUSH_COLOURS, masks):
        layer[mask] = (*colour, 255)
    return Image.fromarray(layer, mode="RGBA")


def synthetic_example(seed: int) -> tuple[Image.Image, list[np.ndarray]]:
    """A synthetic test scene and the visible masks of its two most occluded objects (occlusion 10-80%)."""
    scene = generate_scene(SyntheticConfig(image_size=256, max_objects=6), scene_rng(seed, 0, "test"))
    candidates = [obj for obj in scene.objects if 0.1 <= obj.occlusion_rate <= 0.8]
    chosen = sorted(candidates, key=lambda obj: -obj.occlusion_rate)[:2]
    return Image.fromarray(scene.image), [obj.visible_mask for obj in chosen]


def vertical_gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    """`(H, W, 3)` float image fading from colour `top` to colour `bottom`."""
    width, height = size
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    return np.broadcast_to((1 - ramp) * np.array(top) + ramp * np.array(bottom), (height, width, 3)).copy()


def shaded(mask: np.ndarray, base: tuple[int, int, int], light: float, axis: int = 1) -> np.ndarray:
    """Colour `base` shaded across the mask's extent along `axis` (a cylinder-like light falloff)."""
    coordinates = np.nonzero(mask)[axis]
    low, high = coordinates.min(), coordinates.max() + 1
    position = np.clip((np.arange(mask.shape[axis]) - low) / max(high - low, 1), 0, 1)
    profile = 0.55 + light * np.sin(np.pi * np.clip(position * 1.1, 0, 1))
    profile = profile[None, :] if axis == 1 else profile[:, None]
    colours = np.clip(np.array(base)[None, None, :] * profile[..., None], 0, 255)
    return np.broadcast_to(colours, (*mask.shape, 3))


def polygon_mask(size: tuple[int, int], draw_shape) -> np.ndarray:
    """`(H, W)` bool mask of whatever `draw_shape(ImageDraw)` fills with 255."""
    canvas = Image.new("L", size, 0)
    draw_shape(ImageDraw.Draw(canvas))
    return np.asarray(canvas) > 0


def paint(image: np.ndarray, mask: np.ndarray, colours: np.ndarray) -> None:
    image[mask] = colours[mask] if colours.ndim == 3 else colours


def room(rng: np.random.Generator) -> np.ndarray:
    """A wall and a wooden table top with grain and sensor noise."""
    width, height = PHOTO_SIZE
    image = vertical_gradient(PHOTO_SIZE, (214, 203, 186), (184, 170, 150))
    table = vertical_gradient(PHOTO_SIZE, (120, 78, 46), (150, 100, 62))
    grain = 10 * np.sin(np.linspace(0, 60, width))[None, :, None] + 6 * rng.standard_normal((height, 1, 1))
    image[150:] = table[150:] + grain[150:]
    return image + 4 * rng.standard_normal(image.shape)


def mug_behind_box() -> tuple[Image.Image, list[np.ndarray]]:
    """A blue mug partly hidden behind a cardboard box; objects: mug, then box (fully visible)."""
    rng = np.random.default_rng(0)
    image = room(rng)
    mug = polygon_mask(
        PHOTO_SIZE, lambda d: (d.rectangle([150, 70, 230, 190], fill=255), d.ellipse([150, 182, 230, 198], fill=255))
    )
    handle = polygon_mask(PHOTO_SIZE, lambda d: d.ellipse([212, 95, 262, 160], outline=255, width=11))
    mug |= handle & ~polygon_mask(PHOTO_SIZE, lambda d: d.rectangle([150, 70, 222, 198], fill=255))
    rim = polygon_mask(PHOTO_SIZE, lambda d: d.ellipse([150, 62, 230, 80], fill=255))
    box_front = polygon_mask(PHOTO_SIZE, lambda d: d.rectangle([60, 120, 190, 215], fill=255))
    box_top = polygon_mask(PHOTO_SIZE, lambda d: d.polygon([(60, 120), (90, 100), (215, 100), (190, 120)], fill=255))
    box_side = polygon_mask(PHOTO_SIZE, lambda d: d.polygon([(190, 120), (215, 100), (215, 192), (190, 215)], fill=255))
    paint(image, mug | rim, shaded(mug | rim, (60, 110, 200), 0.45))
    paint(image, rim, np.array([40, 70, 130]))
    box = box_front | box_top | box_side
    paint(image, box_front, shaded(box_front, (196, 150, 98), 0.35))
    paint(image, box_top, np.array([214, 172, 120]))
    paint(image, box_side, np.array([160, 118, 74]))
    paint(
        image,
        box_front & polygon_mask(PHOTO_SIZE, lambda d: d.rectangle([118, 120, 132, 215], fill=255)),
        np.array([176, 140, 90]),
    )
    visible_mug = (mug | rim) & ~box
    return _finish(image), [visible_mug, box]


def ball_behind_books() -> tuple[Image.Image, list[np.ndarray]]:
    """An orange ball partly hidden behind a stack of books; objects: ball, then the stack."""
    rng = np.random.default_rng(1)
    image = room(rng)
    ball = polygon_mask(PHOTO_SIZE, lambda d: d.ellipse([140, 60, 250, 170], fill=255))
    rows, columns = np.mgrid[: PHOTO_SIZE[1], : PHOTO_SIZE[0]]
    light = np.exp(-(((columns - 175) ** 2 + (rows - 90) ** 2) / 2500.0))[..., None]
    paint(image, ball, np.clip((0.6 + 0.5 * light) * np.array([235, 120, 30]), 0, 255))
    books = np.zeros(ball.shape, dtype=bool)
    for index, (colour, top, left, right) in enumerate(
        [((150, 30, 40), 185, 70, 225), ((40, 90, 60), 160, 80, 215), ((30, 60, 120), 135, 75, 205)]
    ):
        book = polygon_mask(PHOTO_SIZE, lambda d, t=top, x=left, r=right: d.rectangle([x, t, r, t + 24], fill=255))
        pages = polygon_mask(PHOTO_SIZE, lambda d, t=top, r=right: d.rectangle([r - 6, t + 3, r, t + 21], fill=255))
        paint(image, book, shaded(book, colour, 0.3, axis=0))
        paint(image, pages, np.array([236, 230, 214]) - 8 * index)
        books |= book
    return _finish(image), [ball & ~books, books]


def _finish(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))


def video_example(index: int) -> tuple[Image.Image, Image.Image]:
    """(film strip, colour mask strip) of synthetic test clip `index`: object 0 of the clip (hidden mid-clip), then the
    most occluded other objects that stay visible in every frame, labelled 1, 2, ... in that order."""
    clip = generate_clip(SyntheticConfig(image_size=128, num_frames=8), scene_rng(0, index, "test"))
    others = [track for track in clip.objects[1:] if track.visible_masks.sum(axis=(1, 2)).min() >= MIN_VISIBLE_PIXELS]
    others.sort(key=lambda track: -float(track.occlusion_rates.mean()))
    chosen = [clip.objects[0], *others][:VIDEO_OBJECTS_PER_CLIP]
    labels = np.zeros(clip.frames.shape[:3], dtype=np.uint8)
    for label, track in enumerate(chosen, start=1):
        labels[track.visible_masks] = label
    strip = draw_label_strip(np.concatenate(labels, axis=1))
    return Image.fromarray(np.concatenate(list(clip.frames), axis=1)), Image.fromarray(strip)


def write_video_examples(directory: Path = VIDEO_EXAMPLES_DIR) -> list[Path]:
    """Write every video example into `directory`; return the film strip paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in VIDEO_CLIP_INDICES:
        frames, labels = video_example(index)
        frames.save(directory / f"clip_{index}_frames.png", optimize=True)
        labels.save(directory / f"clip_{index}_masks.png", optimize=True)
        paths.append(directory / f"clip_{index}_frames.png")
    return paths


def write_examples(directory: Path = EXAMPLES_DIR) -> list[Path]:
    """Write every example pair into `directory`; return the image paths."""
    directory.mkdir(parents=True, exist_ok=True)
    examples = {f"synthetic_{seed}": synthetic_example(seed) for seed in SYNTHETIC_SEEDS}
    examples["photo_mug_behind_box"] = mug_behind_box()
    examples["photo_ball_behind_books"] = ball_behind_books()
    paths = []
    for name, (image, masks) in examples.items():
        image.save(directory / f"{name}.png", optimize=True)
        mask_layer(masks).save(directory / f"{name}_mask.png", optimize=True)
        paths.append(directory / f"{name}.png")
    return paths


if __name__ == "__main__":
    for path in [*write_examples(), *write_video_examples()]:
        print(path)
