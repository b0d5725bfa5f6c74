"""Seeded, procedurally generated amodal scenes (images and video clips).

Each scene is a textured background with 3-8 textured shapes from 11 classes (8 non-convex: ring, cross, star,
L, U, crescent, heart, arrow; 3 convex: disc, rectangle, triangle) at random scale, rotation, aspect ratio,
colour and texture (solid, stripes, gradient, noise). Objects are depth-ordered: object `k` is drawn over every
object `j < k`. Every object carries its true amodal mask, its visible mask and its occlusion rate
`1 - visible_area / amodal_area`.

Objects are placed front to back: each new candidate goes *behind* the ones already placed, so accepting it never
changes the visible masks of the others. With probability `overlap_probability` a candidate is centred near an
already placed object, which produces occlusion; a candidate is rejected when fewer than `min_visible_pixels` of
it would be visible or its occlusion rate would exceed `max_occlusion_rate`. Every kept object is therefore
visible, and every pixel of the image shows either the background or exactly one annotated object.

Scene `i` of a stream depends only on `(seed, stream, i)`, never on the order of generation.

Measured occlusion-rate distribution (default config, 256x256, seed 0, 2000 scenes, 11 029 objects, 5.51 per
image, 28.0% exactly 0 i.e. fully visible; all 11 classes between 940 and 1065 objects)::

    taskset -c 0 python benchmarks/experiments/synthetic_generation.py --num-images 2000 --occlusion-histogram

    occlusion rate   [0,.1) [.1,.2) [.2,.3) [.3,.4) [.4,.5) [.5,.6) [.6,.7) [.7,.8) [.8,.9]
    share of objects  39.9%  10.1%    9.5%    8.4%    8.2%    7.7%    6.3%    5.4%    4.4%

The same script prints the generation speed: 100-170 images/s on one core at 256x256 (measured 100.8 and
127.6 images/s while other jobs loaded the 2-core machine, 172 images/s when it was quiet).

Video mode (`generate_clip`) draws the same kinds of objects, moving linearly and rotating over `num_frames`
frames with a fixed depth order; the frontmost object is a large disc that sweeps over a smaller object at the
middle frame and hides it completely there, so a clip always holds frames where an object is fully hidden
(unless other objects hide it in every frame, in which case it is dropped like any never-visible object).
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..models.c2f_seg.mask_geometry import mask_xywh
from ..models.c2f_seg.mask_policy import occlusion_rate_from_areas

logger = logging.getLogger(__name__)

SHAPE_CATEGORIES = (
    "disc",
    "rectangle",
    "triangle",
    "ring",
    "cross",
    "star",
    "l_shape",
    "u_shape",
    "crescent",
    "heart",
    "arrow",
)
TEXTURE_KINDS = ("solid", "stripes", "gradient", "noise")
_SPLIT_STREAMS = {"train": 0, "test": 1, "validation": 2}


@dataclass(frozen=True)
class SyntheticConfig:
    """Generation parameters; sizes in pixels unless named a fraction (of `image_size`)."""

    image_size: int = 256
    min_objects: int = 3
    max_objects: int = 8
    min_radius_fraction: float = 0.08
    max_radius_fraction: float = 0.22
    max_aspect_ratio: float = 1.4
    min_visible_pixels: int = 16
    max_occlusion_rate: float = 0.9
    overlap_probability: float = 0.9
    attempts_per_object: int = 40
    num_frames: int = 8

    def __post_init__(self) -> None:
        if not 3 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 3 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32, got {self.image_size}")
        if self.num_frames < 3:
            raise ValueError(f"num_frames must be at least 3, got {self.num_frames}")


@dataclass(frozen=True)
class Texture:
    """A texture in an object's local coordinates (so it moves with the object)."""

    kind: str
    colours: np.ndarray  # (2, 3) float32 RGB in [0, 255]
    frequency: float
    direction: float
    noise_scale: float


@dataclass(frozen=True)
class Pose:
    """Placement of a shape: centre in pixels, radius in pixels, rotation in radians, aspect ratio."""

    centre_x: float
    centre_y: float
    radius: float
    angle: float
    aspect: float


@dataclass
class SyntheticObject:
    """One object of a scene: `amodal_mask` and `visible_mask` are `(H, W)` bool arrays."""

    category: str
    amodal_mask: np.ndarray
    visible_mask: np.ndarray
    occlusion_rate: float

    @property
    def bbox(self) -> list[float]:
        """`[x, y, width, height]` of the amodal mask (COCO convention, pixels counted)."""
        return mask_bbox(self.amodal_mask)


@dataclass
class SyntheticScene:
    """`image` `(H, W, 3)` uint8 RGB and its `objects`, back to front."""

    image: np.ndarray
    objects: list[SyntheticObject]


@dataclass
class SyntheticTrack:
    """One object of a clip: `amodal_masks`, `visible_masks` `(T, H, W)` bool, `occlusion_rates` `(T,)`."""

    category: str
    amodal_masks: np.ndarray
    visible_masks: np.ndarray
    occlusion_rates: np.ndarray

    @property
    def bboxes(self) -> list[list[float]]:
        """Per frame `[x, y, width, height]` of the amodal mask; zeros where the object is out of the frame."""
        return [mask_bbox(mask) for mask in self.amodal_masks]


@dataclass
class SyntheticClip:
    """`frames` `(T, H, W, 3)` uint8 RGB and its `objects` (tracks), back to front."""

    frames: np.ndarray
    objects: list[SyntheticTrack]


def mask_bbox(mask: np.ndarray) -> list[float]:
    """`[x, y, width, height]` of a `(H, W)` mask's non-zero pixels; `[0, 0, 0, 0]` when it is empty."""
    box = mask_xywh(mask)
    return [0.0, 0.0, 0.0, 0.0] if box is None else [float(value) for value in box]


def scene_rng(seed: int, index: int, split: str = "train") -> np.random.Generator:
    """The generator of scene `index` of `split`: independent of every other scene."""
    if split not in _SPLIT_STREAMS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_STREAMS)}, got {split!r}")
    return np.random.default_rng([seed, _SPLIT_STREAMS[split], index])


def _inside_shape(category: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether local coordinates `u, v` (any shape, the shape spans about [-1, 1]^2) fall inside `category`."""
    au, av = np.abs(u), np.abs(v)
    radius_squared = u * u + v * v
    if category == "disc":
        return radius_squared <= 1.0
    if category == "rectangle":
        return (au <= 1.0) & (av <= 0.6)
    if category == "triangle":
        return (v <= 0.5) & (v >= 1.732 * au - 1.0)
    if category == "ring":
        return (radius_squared <= 1.0) & (radius_squared >= 0.3)
    if category == "cross":
        return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))
    if category == "star":
        phase = (np.arctan2(v, u) * (5.0 / (2.0 * np.pi))) % 1.0
        return np.sqrt(radius_squared) <= 0.4 + 1.2 * np.abs(phase - 0.5)
    if category == "l_shape":
        return ((u <= -0.35) & (au <= 1.0) & (av <= 1.0)) | ((v >= 0.35) & (au <= 1.0) & (av <= 1.0))
    if category == "u_shape":
        return (au <= 1.0) & (av <= 1.0) & ((au >= 0.4) | (v >= 0.4))
    if category == "crescent":
        return (radius_squared <= 1.0) & ((u - 0.45) ** 2 + v * v >= 0.6)
    if category == "heart":
        x, y = 1.25 * u, 0.2 - 1.25 * v
        return (x * x + y * y - 1.0) ** 3 <= x * x * y**3
    if category == "arrow":
        return ((u <= 0.15) & (u >= -1.0) & (av <= 0.25)) | ((u >= 0.15) & (u <= 1.0) & (av <= (1.0 - u) / 0.85))
    raise ValueError(f"unknown shape category {category!r}; expected one of {SHAPE_CATEGORIES}")


def _shape_patch(
    category: str, pose: Pose, size: int
) -> tuple[slice, slice, np.ndarray, np.ndarray, np.ndarray] | None:
    """Rasterise a shape into its bounding patch: `(rows, columns, inside (h, w) bool, u (h, w), v (h, w))`,
    or None when the patch lies outside the image."""
    extent = pose.radius * max(pose.aspect, 1.0 / pose.aspect) * 1.3 + 1.0
    top, bottom = max(0, int(pose.centre_y - extent)), min(size, int(pose.centre_y + extent) + 1)
    left, right = max(0, int(pose.centre_x - extent)), min(size, int(pose.centre_x + extent) + 1)
    if top >= bottom or left >= right:
        return None
    dy = (np.arange(top, bottom, dtype=np.float32) + 0.5 - pose.centre_y)[:, None]
    dx = (np.arange(left, right, dtype=np.float32) + 0.5 - pose.centre_x)[None, :]
    cosine, sine = np.float32(np.cos(pose.angle)), np.float32(np.sin(pose.angle))
    u = (cosine * dx + sine * dy) / np.float32(pose.radius * pose.aspect)
    v = (cosine * dy - sine * dx) / np.float32(pose.radius / pose.aspect)
    return slice(top, bottom), slice(left, right), _inside_shape(category, u, v), u, v


def _full_mask(patch: tuple | None, size: int) -> np.ndarray:
    """The `(size, size)` bool mask of a rasterised patch (all False for None)."""
    mask = np.zeros((size, size), dtype=bool)
    if patch is not None:
        rows, columns, inside, _, _ = patch
        mask[rows, columns] = inside
    return mask


def _sample_texture(rng: np.random.Generator) -> Texture:
    return Texture(
        kind=TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))],
        colours=rng.uniform(0.0, 255.0, size=(2, 3)).astype(np.float32),
        frequency=float(rng.uniform(4.0, 14.0)),
        direction=float(rng.uniform(0.0, np.pi)),
        noise_scale=float(rng.uniform(10.0, 40.0)),
    )


def _texture_colours(texture: Texture, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colours `(n, 3)` float32 of a texture at `n` local coordinates `u, v` `(n,)`."""
    first, second = texture.colours
    if texture.kind == "solid":
        return np.broadcast_to(first, (u.size, 3))
    along = u * np.float32(np.cos(texture.direction)) + v * np.float32(np.sin(texture.direction))
    if texture.kind == "stripes":
        return np.where((np.sin(texture.frequency * along) > 0.0)[:, None], first, second)
    if texture.kind == "gradient":
        weight = np.clip(0.5 * (along + 1.0), 0.0, 1.0)[:, None]
        return first * (1.0 - weight) + second * weight
    noise = rng.standard_normal(u.size, dtype=np.float32)[:, None] * np.float32(texture.noise_scale)
    return first + noise


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A textured `(size, size, 3)` float32 background (low-contrast texture over the whole image)."""
    texture = _sample_texture(rng)
    texture = Texture(texture.kind, texture.colours * 0.5 + 64.0, 0.5 * texture.frequency, texture.direction, 8.0)
    coordinates = (np.arange(size, dtype=np.float32) + 0.5) * np.float32(2.0 / size) - 1.0
    u = np.broadcast_to(coordinates[None, :], (size, size)).ravel()
    v = np.broadcast_to(coordinates[:, None], (size, size)).ravel()
    return np.ascontiguousarray(_texture_colours(texture, u, v, rng).reshape(size, size, 3))


def _paint(canvas: np.ndarray, patch: tuple | None, texture: Texture, rng: np.random.Generator) -> None:
    """Draw a rasterised shape with its texture onto a `(H, W, 3)` float32 canvas in place."""
    if patch is None:
        return
    rows, columns, inside, u, v = patch
    region = canvas[rows, columns]
    region[inside] = _texture_colours(texture, u[inside], v[inside], rng)


def _sample_pose(config: SyntheticConfig, rng: np.random.Generator, anchors: Sequence[Pose]) -> Pose:
    """A random pose, centred near one of `anchors` with probability `overlap_probability`."""
    size = config.image_size
    radius = float(rng.uniform(config.min_radius_fraction, config.max_radius_fraction)) * size
    if anchors and rng.random() < config.overlap_probability:
        anchor = anchors[int(rng.integers(len(anchors)))]
        reach = 0.8 * (anchor.radius + radius)
        centre_x = float(np.clip(anchor.centre_x + rng.uniform(-reach, reach), 0, size))
        centre_y = float(np.clip(anchor.centre_y + rng.uniform(-reach, reach), 0, size))
    else:
        centre_x, centre_y = (float(value) for value in rng.uniform(0.1 * size, 0.9 * size, size=2))
    aspect = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(config.max_aspect_ratio)))
    return Pose(centre_x, centre_y, radius, float(rng.uniform(0.0, 2.0 * np.pi)), aspect)


def _place_objects(config: SyntheticConfig, rng: np.random.Generator) -> list[tuple]:
    """Front-to-back placement; returns `(category, pose, patch, amodal, visible)` tuples, back to front."""
    size = config.image_size
    target = int(rng.integers(config.min_objects, config.max_objects + 1))
    covered = np.zeros((size, size), dtype=bool)
    placed: list[tuple] = []
    for _ in range(target * config.attempts_per_object):
        if len(placed) == target:
            break
        category = SHAPE_CATEGORIES[int(rng.integers(len(SHAPE_CATEGORIES)))]
        pose = _sample_pose(config, rng, [entry[1] for entry in placed])
        patch = _shape_patch(category, pose, size)
        if patch is None:
            continue
        rows, columns, inside, _, _ = patch
        # Judge visibility on the patch; only accepted objects get full-size masks.
        visible_inside = inside & ~covered[rows, columns]
        amodal_area, visible_area = int(inside.sum()), int(visible_inside.sum())
        if visible_area < config.min_visible_pixels:
            continue
        if occlusion_rate_from_areas(amodal_area, visible_area) > config.max_occlusion_rate:
            continue
        amodal = _full_mask(patch, size)
        visible = amodal & ~covered
        covered |= amodal
        placed.append((category, pose, patch, amodal, visible))
    if len(placed) < config.min_objects:
        logger.warning("placed only %d of %d objects after all attempts", len(placed), target)
    return placed[::-1]


def generate_scene(config: SyntheticConfig, rng: np.random.Generator) -> SyntheticScene:
    """One amodal scene: image `(S, S, 3)` uint8 and its objects back to front."""
    placed = _place_objects(config, rng)
    canvas = _background(config.image_size, rng)
    objects = []
    for category, _, patch, amodal, visible in placed:
        _paint(canvas, patch, _sample_texture(rng), rng)
        rate = occlusion_rate_from_areas(int(amodal.sum()), int(visible.sum()))
        objects.append(SyntheticObject(category, amodal, visible, rate))
    image = np.clip(canvas, 0.0, 255.0).astype(np.uint8)
    return SyntheticScene(image, objects)


def generate_scenes(config: SyntheticConfig, seed: int, count: int, split: str = "train") -> Iterator[SyntheticScene]:
    """Scenes `0 .. count-1` of `split`, each from its own generator `scene_rng(seed, index, split)`."""
    for index in range(count):
        yield generate_scene(config, scene_rng(seed, index, split))


def _linear_poses(start: Pose, velocity: tuple[float, float, float], config: SyntheticConfig) -> list[Pose]:
    """Poses over the clip for a start pose and `(dx, dy, dangle)` per frame; centres stay inside the frame."""
    size = config.image_size
    poses = []
    for frame in range(config.num_frames):
        centre_x = float(np.clip(start.centre_x + frame * velocity[0], 0, size - 1))
        centre_y = float(np.clip(start.centre_y + frame * velocity[1], 0, size - 1))
        poses.append(Pose(centre_x, centre_y, start.radius, start.angle + frame * velocity[2], start.aspect))
    return poses


def _sample_tracks(config: SyntheticConfig, rng: np.random.Generator) -> list[tuple[str, list[Pose]]]:
    """Back-to-front `(category, poses)`: moving objects, then a large disc that hides object 0 mid-clip."""
    size, frames = config.image_size, config.num_frames
    tracks = []
    for index in range(int(rng.integers(config.min_objects, config.max_objects + 1)) - 1):
        category = SHAPE_CATEGORIES[int(rng.integers(len(SHAPE_CATEGORIES)))]
        start = _sample_pose(config, rng, [])
        if index == 0:
            # Small enough to fit inside the occluder's disc wherever the two meet.
            start = Pose(start.centre_x, start.centre_y, 0.06 * size, start.angle, 1.0)
        drift = rng.uniform(-0.3 * size, 0.3 * size, size=2) / (frames - 1)
        velocity = (float(drift[0]), float(drift[1]), float(rng.uniform(-0.3, 0.3)))
        tracks.append((category, _linear_poses(start, velocity, config)))
    meeting = tracks[0][1][frames // 2]
    occluder_radius = float(rng.uniform(0.2, 0.26)) * size
    direction = float(rng.uniform(0.0, 2.0 * np.pi))
    step_x, step_y = (0.6 * size / (frames - 1)) * np.array([np.cos(direction), np.sin(direction)])
    occluder = [
        Pose(
            meeting.centre_x + (frame - frames // 2) * step_x,
            meeting.centre_y + (frame - frames // 2) * step_y,
            occluder_radius,
            0.0,
            1.0,
        )
        for frame in range(frames)
    ]
    return tracks + [("disc", occluder)]


def _clip_masks(patches: list[list], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Amodal and visible masks `(objects, T, S, S)` bool of back-to-front per-frame patches."""
    amodal = np.stack([[_full_mask(patch, size) for patch in track] for track in patches])
    labels = np.full((amodal.shape[1], size, size), -1, dtype=np.int16)
    for index in range(amodal.shape[0]):
        labels[amodal[index]] = index
    visible = labels[None] == np.arange(amodal.shape[0], dtype=np.int16)[:, None, None, None]
    return amodal, visible


def generate_clip(config: SyntheticConfig, rng: np.random.Generator) -> SyntheticClip:
    """One clip of `num_frames` frames `(T, S, S, 3)` uint8 with per-object per-frame masks."""
    size = config.image_size
    tracks = _sample_tracks(config, rng)
    patches = [[_shape_patch(category, pose, size) for pose in poses] for category, poses in tracks]
    amodal, visible = _clip_masks(patches, size)
    keep = visible.sum(axis=(2, 3)).max(axis=1) >= config.min_visible_pixels
    tracks = [track for track, kept in zip(tracks, keep) if kept]
    patches = [track for track, kept in zip(patches, keep) if kept]
    amodal, visible = _clip_masks(patches, size)
    textures = [_sample_texture(rng) for _ in tracks]
    background = _background(size, rng)
    frames = np.empty((config.num_frames, size, size, 3), dtype=np.uint8)
    for frame in range(config.num_frames):
        canvas = background.copy()
        for track_patches, texture in zip(patches, textures):
            _paint(canvas, track_patches[frame], texture, rng)
        frames[frame] = np.clip(canvas, 0.0, 255.0).astype(np.uint8)
    objects = []
    for index, (category, _) in enumerate(tracks):
        areas = amodal[index].sum(axis=(1, 2)), visible[index].sum(axis=(1, 2))
        rates = np.array([occlusion_rate_from_areas(int(a), int(b)) for a, b in zip(*areas)], dtype=np.float32)
        objects.append(SyntheticTrack(category, amodal[index], visible[index], rates))
    return SyntheticClip(frames, objects)


def generate_clips(config: SyntheticConfig, seed: int, count: int, split: str = "train") -> Iterator[SyntheticClip]:
    """Clips `0 .. count-1` of `split`, each from its own generator `scene_rng(seed, index, split)`."""
    for index in range(count):
        yield generate_clip(config, scene_rng(seed, index, split))
