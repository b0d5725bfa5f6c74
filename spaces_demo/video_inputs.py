"""The video tab's inputs: a clip as a film strip (frames side by side) or an animated GIF / APNG / WebP, and a
mask strip of the same layout (each object's visible part in its palette colour on black, or a grayscale label
strip, value k = object k), read into frames and one visible-mask track per object."""

from __future__ import annotations

import numpy as np

from c2f_hf.models.c2f_seg.image_loading import load_rgb_image
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import frames_from_file
from c2f_hf.visualization import OBJECT_COLOURS
from editor import MAX_IMAGE_SIDE, nearest_colour_labels
from page import DemoInputError

MAX_VIDEO_FRAMES = 32


def split_strip(strip: np.ndarray, num_frames: int, name: str) -> list[np.ndarray]:
    """A strip of `num_frames` equal frames side by side -> the frames (views into `strip`)."""
    height, width = strip.shape[:2]
    if width % num_frames:
        raise DemoInputError(
            f"The {name} is {width} pixels wide, which does not split into {num_frames} frames of equal width."
        )
    frame_width = width // num_frames
    if min(height, frame_width) < 8 or max(height, frame_width) > MAX_IMAGE_SIDE:
        raise DemoInputError(
            f"Frames of {frame_width}x{height} pixels: use between 8 and {MAX_IMAGE_SIDE} pixels per side."
        )
    return [strip[:, index * frame_width : (index + 1) * frame_width] for index in range(num_frames)]


def labels_from_mask_strip(mask_strip: np.ndarray) -> np.ndarray:
    """`(H, W)` int labels from a mask strip: a grayscale label strip (value k = object k) as it is, a colour
    strip (objects in their palette colours on black) by nearest palette colour for every non-black pixel."""
    strip = np.asarray(mask_strip)
    if strip.ndim == 3 and strip.shape[2] == 4:
        strip = strip[..., :3]
    gray = strip.ndim == 2 or (
        np.array_equal(strip[..., 0], strip[..., 1]) and np.array_equal(strip[..., 1], strip[..., 2])
    )
    if gray:
        labels = (strip if strip.ndim == 2 else strip[..., 0]).astype(np.int64)
        if labels.max() <= len(OBJECT_COLOURS):
            return labels
    coloured = np.atleast_3d(strip)[..., :3] if strip.ndim == 3 else np.repeat(strip[..., None], 3, axis=2)
    return np.where(coloured.max(axis=-1) > 60, nearest_colour_labels(coloured), 0)


def prepare_video_strip(strip: np.ndarray) -> np.ndarray:
    """A frames strip as `(H, W, 3)` uint8 RGB (no downscaling: frames must keep the mask strip's layout)."""
    try:
        return load_rgb_image(np.asarray(strip))
    except ValueError as error:
        raise DemoInputError(f"Unsupported frames strip: {str(error).split(': ', 1)[-1]}.") from error


def clip_frames(clip_file: str | None, frames_strip: np.ndarray | None, num_frames: int) -> list[np.ndarray]:
    """The clip's `(H, W, 3)` uint8 frames from an animated file (GIF, APNG, WebP) or else the film strip."""
    if clip_file:
        try:
            frames = [load_rgb_image(frame) for frame in frames_from_file(clip_file)]
        except ValueError as error:
            raise DemoInputError(f"Unreadable clip: {str(error).split(': ', 1)[-1]}.") from error
        if not 1 <= len(frames) <= MAX_VIDEO_FRAMES:
            raise DemoInputError(f"The clip has {len(frames)} frames; use 1 to {MAX_VIDEO_FRAMES}.")
        return frames
    if frames_strip is None:
        raise DemoInputError("No clip: upload a frames strip or an animated GIF, or click one of the example clips.")
    if not 1 <= num_frames <= MAX_VIDEO_FRAMES:
        raise DemoInputError(f"Number of frames: expected 1 to {MAX_VIDEO_FRAMES}, got {num_frames}.")
    return split_strip(prepare_video_strip(frames_strip), num_frames, "frames strip")


def read_video_inputs(
    clip_file: str | None, frames_strip: np.ndarray | None, mask_strip: np.ndarray | None, num_frames: int
) -> tuple[list[np.ndarray], list[tuple[int, np.ndarray]]]:
    """(animated clip or film strip, mask strip, frame count of a strip) -> (frames `(H, W, 3)` uint8, one
    `(object number, (F, H, W) bool visible masks)` per object present, in number order)."""
    frames = clip_frames(clip_file, frames_strip, int(num_frames))
    if mask_strip is None:
        raise DemoInputError("No mask strip: upload the visible masks of every frame side by side (see above).")
    labels = labels_from_mask_strip(mask_strip)
    height, width = frames[0].shape[:2]
    if labels.shape != (height, width * len(frames)):
        raise DemoInputError(
            f"The mask strip is {labels.shape[1]}x{labels.shape[0]} pixels but {len(frames)} frames of "
            f"{width}x{height} need a {width * len(frames)}x{height} strip (frames side by side)."
        )
    label_frames = np.stack(split_strip(labels, len(frames), "mask strip"))
    numbers = [int(value) for value in np.unique(label_frames) if value != 0]
    if not numbers:
        raise DemoInputError("The mask strip is empty: paint each object's visible part in its colour.")
    if max(numbers) > len(OBJECT_COLOURS):
        raise DemoInputError(f"The mask strip uses label {max(numbers)}; labels go from 1 to {len(OBJECT_COLOURS)}.")
    return frames, [(number, label_frames == number) for number in numbers]
