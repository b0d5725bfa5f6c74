"""A held-out set of simple occlusions: one shape of a training class, half hidden by one rectangle.

What a new user tries first: a disc, square, triangle, ring, cross or L shape (the synthetic generator's classes,
a square being its rectangle at equal sides) in the middle of the image, and one axis-aligned rectangle that comes
in from one side (left, right, top or bottom) and hides a drawn fraction of it, uniform in
[`min_hidden`, `max_hidden`] (default 20-60%). Half of the images have a plain background and a solid-coloured
shape, the other half the generator's textured background and textures. Only the shape is annotated (the occluder
is in front and fully visible).

The held-out set (`split="test"`, what this module's command writes) is a test set only: never train on it or
choose a model or a decoding setting with it. Image `i` depends only on `(seed, i)` through its own generator, in a
stream no other generator uses. Training images of the same kind come from a separate stream (`split="train"`,
`c2f-hf data synthetic --simple-occlusions N` appends N of them to the synthetic train split), so no training image
is ever one of the held-out images.

    python -m c2f_hf.data.simple_occlusions --out simple-occlusions --num-images 240 --seed 0
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

SIMPLE_CATEGORIES = ("disc", "square", "triangle", "ring", "cross", "l_shape")
SIDES = ("left", "right", "top", "bottom")
_STREAMS = {"test": 10, "train": 11}
# The generator's rectangle is 2 x 1.2 in local units: this aspect makes its sides equal.
_SQUARE_ASPECT = float(np.sqrt(0.6))


@dataclass(frozen=True)
class SimpleOcclusionConfig:
    """Image side in pixels, the shape's radius as a fraction of it, and the hidden fraction's range."""

    image_size: int = 256
    min_radius_fraction: float = 0.22
    max_radius_fraction: float = 0.32
    min_hidden: float = 0.2
    max_hidden: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 < self.min_hidden <= self.max_hidden < 1.0:
            raise ValueError(f"need 0 < min_hidden <= max_hidden < 1, got {self.min_hidden}, {self.max_hidden}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")


def _shape_mask(category: str, config: SimpleOcclusionConfig, rng: np.random.Generator) -> tuple[tuple, np.ndarray]:
    """The shape's rasterised patch and its `(S, S)` bool mask, near the image centre."""
    size = config.image_size
    radius = float(rng.uniform(config.min_radius_fraction, config.max_radius_fraction)) * size
    centre_x, centre_y = (float(value) for value in rng.uniform(0.4 * size, 0.6 * size, size=2))
    shape, aspect = ("rectangle", _SQUARE_ASPECT) if category == "square" else (category, 1.0)
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


def generate_simple_scene(index: int, config: SimpleOcclusionConfig, rng: np.random.Generator) -> SyntheticScene:
    """Image `index`: class `index mod 6`, plain background for even `index // 6`, textured otherwise."""
    category = SIMPLE_CATEGORIES[index % len(SIMPLE_CATEGORIES)]
    textured = (index // len(SIMPLE_CATEGORIES)) % 2 == 1
    patch, amodal = _shape_mask(category, config, rng)
    side = SIDES[int(rng.integers(len(SIDES)))]
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
    """Images `0 .. count-1` of `split` ("test": the held-out set; "train": training images), each from its own
    generator."""
    if split not in _STREAMS:
        raise ValueError(f"split must be one of {sorted(_STREAMS)}, got {split!r}")
    for index in range(count):
        yield generate_simple_scene(index, config, np.random.default_rng([seed, _STREAMS[split], index]))


def write_simple_occlusions(out: Path, num_images: int, seed: int, config: SimpleOcclusionConfig) -> int:
    """Write `out/test.parquet` (the common image schema) and `out/README.md`; returns the row count."""
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    rates: list[float] = []

    def rows() -> Iterator[dict]:
        for index, scene in enumerate(generate_simple_scenes(config, seed, num_images)):
            rates.extend(item.occlusion_rate for item in scene.objects)
            yield scene_to_row(scene, f"simple-{index}")

    features = image_features()
    count = write_split(rows(), features, Path(out) / "test.parquet")
    command = f"python -m c2f_hf.data.simple_occlusions --num-images {num_images} --seed {seed}"
    generation = {"seed": seed, "set": "simple occlusions (held out)", **dataclasses.asdict(config)}
    build_dataset_card("synthetic", features, {"test": count}, command, generation, rates).save(Path(out) / "README.md")
    logger.info("wrote %d simple-occlusion images to %s", count, out)
    return count


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.data.simple_occlusions --out FOLDER [--num-images N] [--seed S]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (test.parquet, README.md)")
    parser.add_argument("--num-images", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    write_simple_occlusions(args.out, args.num_images, args.seed, SimpleOcclusionConfig())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
