"""A held-out set of simple occlusions: one shape of a training class, partly hidden by one rectangle.

What a new user tries first: a disc, square, triangle, ellipse, ring, cross or L shape (the synthetic generator's
classes, a square being its rectangle at equal sides and an ellipse its disc stretched) in the middle of the image,
and one axis-aligned rectangle that comes in from one side (left, right, top or bottom) and hides a drawn fraction
of it, uniform in [`min_hidden`, `max_hidden`] (default 25-60%). Half of the images have a plain background and a
solid-coloured shape, the other half the generator's textured (striped, graded or noisy) background and textures.
Only the shape is annotated (the occluder is in front and fully visible).

The held-out set (`split="test"`, what this module's command writes by default) is a test set only: never train on
it or choose a model or a decoding setting with it; `split="validation"` is a set of the same kind for those
choices. Image `i` depends only on `(seed, split, i)` through its own generator, in a stream no other generator
uses. Training images come from a third stream (`split="train"`, `c2f-hf data synthetic --simple-occlusions N`
appends N of them to the synthetic train split), so no training image is ever a held-out or validation image.
Training images vary the occluder to teach what completion is and is not (`TRAINING_OCCLUDERS`): a rectangle from
one side hiding 5-70%, a thin bar across the shape, a rectangle with a window through which the shape shows, and,
with no hidden part at all, a rectangle beside the shape or none.

    python -m c2f_hf.data.simple_occlusions --out simple-occlusions --num-images 280 --seed 0
    python -m c2f_hf.data.simple_occlusions --out simple-occlusions-val --num-images 280 --seed 0 --split validation
"""

import argparse
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.c2f_seg.mask_policy import occlusion_rate_from_areas
from .cards import build_dataset_card
from .schema import image_features, scene_to_row, write_split
from .synthetic import (
    Pose,
    SyntheticObject,
    SyntheticScene,
    Texture,
    _background,
    _full_mask,
    _paint,
    _sample_texture,
    _shape_patch,
)

logger = logging.getLogger(__name__)

SIMPLE_CATEGORIES = ("disc", "square", "triangle", "ellipse", "ring", "cross", "l_shape")
SIDES = ("left", "right", "top", "bottom")
_STREAMS = {"test": 10, "train": 11, "validation": 12}
# Training occluders and how often each is drawn: every kind teaches a part of "what is hidden here?".
TRAINING_OCCLUDERS = {"side": 0.45, "bar": 0.15, "window": 0.15, "beside": 0.15, "none": 0.1}
TRAINING_HIDDEN = (0.05, 0.7)
# The generator's rectangle is 2 x 1.2 in local units: this aspect makes its sides equal.
_SQUARE_ASPECT = float(np.sqrt(0.6))
_ELLIPSE_ASPECTS = (1.3, 1.7)


@dataclass(frozen=True)
class SimpleOcclusionConfig:
    """Image side in pixels, the shape's radius as a fraction of it, and the hidden fraction's range."""

    image_size: int = 256
    min_radius_fraction: float = 0.22
    max_radius_fraction: float = 0.32
    min_hidden: float = 0.25
    max_hidden: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 < self.min_hidden <= self.max_hidden < 1.0:
            raise ValueError(f"need 0 < min_hidden <= max_hidden < 1, got {self.min_hidden}, {self.max_hidden}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")


def _drawn_shape(category: str, rng: np.random.Generator) -> tuple[str, float]:
    """The synthetic generator's shape and aspect that draw `category`."""
    if category == "square":
        return "rectangle", _SQUARE_ASPECT
    if category == "ellipse":
        return "disc", float(rng.uniform(*_ELLIPSE_ASPECTS))
    return category, 1.0


def _shape_mask(category: str, config: SimpleOcclusionConfig, rng: np.random.Generator) -> tuple[tuple, np.ndarray]:
    """The shape's rasterised patch and its `(S, S)` bool mask, near the image centre."""
    size = config.image_size
    radius = float(rng.uniform(config.min_radius_fraction, config.max_radius_fraction)) * size
    centre_x, centre_y = (float(value) for value in rng.uniform(0.4 * size, 0.6 * size, size=2))
    shape, aspect = _drawn_shape(category, rng)
    pose = Pose(centre_x, centre_y, radius, float(rng.uniform(0.0, 2.0 * np.pi)), aspect)
    patch = _shape_patch(shape, pose, size)
    return patch, _full_mask(patch, size)


def occluder_mask(amodal_mask: np.ndarray, side: str, hidden: float, margin: int = 8) -> np.ndarray:
    """The `(S, S)` bool rectangle that comes in from `side` and hides about `hidden` of `amodal_mask`'s pixels:
    across it covers the shape's extent plus `margin` pixels each way; along it runs from `margin` pixels beyond
    the shape's edge on `side` to the first row or column where the hidden share is reached."""
    along_axis = 0 if side in ("top", "bottom") else 1
    profile = amodal_mask.sum(axis=1 - along_axis).astype(np.float64)
    across = np.flatnonzero(amodal_mask.any(axis=along_axis))
    occupied = np.flatnonzero(profile)
    if side in ("top", "left"):
        start = occupied[0]
        stop = start + int(np.searchsorted(np.cumsum(profile[start:]) / profile.sum(), hidden)) + 1
        start = max(0, start - margin)
    else:
        stop = occupied[-1] + 1
        reversed_share = np.cumsum(profile[:stop][::-1]) / profile.sum()
        start = stop - int(np.searchsorted(reversed_share, hidden)) - 1
        stop = stop + margin
    cross = slice(max(0, across[0] - margin), across[-1] + 1 + margin)
    mask = np.zeros_like(amodal_mask)
    if along_axis == 0:
        mask[start:stop, cross] = True
    else:
        mask[cross, start:stop] = True
    return mask


def _plain_texture(rng: np.random.Generator) -> Texture:
    colour = rng.uniform(0.0, 255.0, size=(1, 3)).astype(np.float32)
    return Texture("solid", np.repeat(colour, 2, axis=0), 1.0, 0.0, 0.0)


def _bar_occluder(amodal_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thin bar, 8-25% of the shape's extent wide, across the whole shape (plus a margin), horizontal or
    vertical, at a random place along the shape: `(S, S)` bool."""
    along_axis = int(rng.integers(2))
    occupied = np.flatnonzero(amodal_mask.any(axis=1 - along_axis))
    across = np.flatnonzero(amodal_mask.any(axis=along_axis))
    extent = occupied[-1] + 1 - occupied[0]
    width = max(2, int(round(float(rng.uniform(0.08, 0.25)) * extent)))
    start = int(rng.integers(occupied[0], max(occupied[0] + 1, occupied[-1] + 2 - width)))
    cross = slice(max(0, across[0] - 8), across[-1] + 9)
    mask = np.zeros_like(amodal_mask)
    if along_axis == 0:
        mask[start : start + width, cross] = True
    else:
        mask[cross, start : start + width] = True
    return mask


def _window_occluder(amodal_mask: np.ndarray, side: str, rng: np.random.Generator) -> np.ndarray:
    """A rectangle from `side` hiding 30-70% of the shape, with a rectangular window (the middle of its box, 30-50%
    of each side) through which the shape shows: an occluder with a hole."""
    occluder = occluder_mask(amodal_mask, side, float(rng.uniform(0.3, 0.7)))
    rows, columns = np.flatnonzero(occluder.any(axis=1)), np.flatnonzero(occluder.any(axis=0))
    window = np.zeros_like(occluder)
    height, width = rows[-1] + 1 - rows[0], columns[-1] + 1 - columns[0]
    share = float(rng.uniform(0.3, 0.5))
    top, left = rows[0] + int(height * (1 - share) / 2), columns[0] + int(width * (1 - share) / 2)
    window[top : top + max(2, int(height * share)), left : left + max(2, int(width * share))] = True
    return occluder & ~window


def _beside_occluder(amodal_mask: np.ndarray, side: str, rng: np.random.Generator) -> np.ndarray:
    """A rectangle next to the shape on `side`, 2-10 px beyond its box, hiding nothing of it."""
    size = amodal_mask.shape[0]
    rows, columns = np.flatnonzero(amodal_mask.any(axis=1)), np.flatnonzero(amodal_mask.any(axis=0))
    gap, depth = int(rng.integers(2, 11)), int(rng.integers(size // 12, size // 5))
    mask = np.zeros_like(amodal_mask)
    cross_rows = slice(max(0, rows[0] - 8), rows[-1] + 9)
    cross_columns = slice(max(0, columns[0] - 8), columns[-1] + 9)
    if side == "left":
        mask[cross_rows, max(0, columns[0] - gap - depth) : max(0, columns[0] - gap)] = True
    elif side == "right":
        mask[cross_rows, columns[-1] + 1 + gap : columns[-1] + 1 + gap + depth] = True
    elif side == "top":
        mask[max(0, rows[0] - gap - depth) : max(0, rows[0] - gap), cross_columns] = True
    else:
        mask[rows[-1] + 1 + gap : rows[-1] + 1 + gap + depth, cross_columns] = True
    return mask


def training_occluder(amodal_mask: np.ndarray, side: str, rng: np.random.Generator) -> np.ndarray:
    """The `(S, S)` bool occluder of a training image, of a kind drawn from `TRAINING_OCCLUDERS`."""
    kind = str(rng.choice(list(TRAINING_OCCLUDERS), p=list(TRAINING_OCCLUDERS.values())))
    if kind == "side":
        return occluder_mask(amodal_mask, side, float(rng.uniform(*TRAINING_HIDDEN)))
    if kind == "bar":
        return _bar_occluder(amodal_mask, rng)
    if kind == "window":
        return _window_occluder(amodal_mask, side, rng)
    if kind == "beside":
        return _beside_occluder(amodal_mask, side, rng)
    return np.zeros_like(amodal_mask)


def generate_simple_scene(
    index: int, config: SimpleOcclusionConfig, rng: np.random.Generator, split: str = "test"
) -> SyntheticScene:
    """Image `index`: class `index mod 7`, plain background for even `index // 7`, textured otherwise; the occluder
    is a rectangle from one side (held-out and validation images) or a `training_occluder` (`split="train"`)."""
    category = SIMPLE_CATEGORIES[index % len(SIMPLE_CATEGORIES)]
    textured = (index // len(SIMPLE_CATEGORIES)) % 2 == 1
    patch, amodal = _shape_mask(category, config, rng)
    side = SIDES[int(rng.integers(len(SIDES)))]
    if split == "train":
        occluder = training_occluder(amodal, side, rng)
    else:
        occluder = occluder_mask(amodal, side, float(rng.uniform(config.min_hidden, config.max_hidden)))
    size = config.image_size
    if textured:
        canvas = _background(size, rng)
    else:
        canvas = np.broadcast_to(_plain_texture(rng).colours[0], (size, size, 3)).copy()
    _paint(canvas, patch, _sample_texture(rng) if textured else _plain_texture(rng), rng)
    canvas[occluder] = _plain_texture(rng).colours[0]
    visible = amodal & ~occluder
    rate = occlusion_rate_from_areas(int(amodal.sum()), int(visible.sum()))
    image = np.clip(canvas, 0.0, 255.0).astype(np.uint8)
    return SyntheticScene(image, [SyntheticObject(category, amodal, visible, rate)])


def generate_simple_scenes(
    config: SimpleOcclusionConfig, seed: int, count: int, split: str = "test"
) -> Iterator[SyntheticScene]:
    """Images `0 .. count-1` of `split` ("test": the held-out set; "validation": a set of the same kind for choosing
    models and settings; "train": training images), each from its own generator."""
    if split not in _STREAMS:
        raise ValueError(f"split must be one of {sorted(_STREAMS)}, got {split!r}")
    for index in range(count):
        yield generate_simple_scene(index, config, np.random.default_rng([seed, _STREAMS[split], index]), split)


WRITTEN_SPLITS = {"test": "held out", "validation": "validation"}


def write_simple_occlusions(
    out: Path, num_images: int, seed: int, config: SimpleOcclusionConfig, split: str = "test"
) -> int:
    """Write `out/<split>.parquet` (the common image schema; `split` "test", the held-out set, or "validation") and
    `out/README.md`; returns the row count."""
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if split not in WRITTEN_SPLITS:
        raise ValueError(f"split must be one of {sorted(WRITTEN_SPLITS)}, got {split!r}")
    rates: list[float] = []

    def rows() -> Iterator[dict]:
        for index, scene in enumerate(generate_simple_scenes(config, seed, num_images, split)):
            rates.extend(item.occlusion_rate for item in scene.objects)
            yield scene_to_row(scene, f"simple-{index}")

    features = image_features()
    count = write_split(rows(), features, Path(out) / f"{split}.parquet")
    command = f"python -m c2f_hf.data.simple_occlusions --num-images {num_images} --seed {seed} --split {split}"
    generation = {"seed": seed, "set": f"simple occlusions ({WRITTEN_SPLITS[split]})", **dataclasses.asdict(config)}
    card = build_dataset_card("synthetic", features, {split: count}, command, generation, rates)
    card.save(Path(out) / "README.md")
    logger.info("wrote %d simple-occlusion images to %s", count, out)
    return count


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.data.simple_occlusions --out FOLDER [--num-images N] [--seed S] [--split test|validation]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (test.parquet, README.md)")
    parser.add_argument("--num-images", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split", choices=sorted(WRITTEN_SPLITS), default="test", help="the held-out set (test) or the validation set"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    write_simple_occlusions(args.out, args.num_images, args.seed, SimpleOcclusionConfig(), args.split)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
