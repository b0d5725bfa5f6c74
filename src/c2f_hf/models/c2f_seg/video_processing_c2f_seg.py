"""Clip windows, per-window crops and paste-back for the video C2F-Seg model: the video processor.

How the video model (window of T frames, `transformer_config.num_frames`) covers a clip, the rule shared by the
`video-amodal-segmentation` pipeline, the evaluation runner and the training clips:

- A clip of F >= T frames is covered by windows of exactly T frames starting at 0, s, 2s, ... with stride
  s = max(1, T // 2), plus a last window starting at F - T when the stride does not land there, so every frame is in
  at least one window and consecutive windows overlap by T - s frames.
- Each frame's result is taken from the window where it is most central: the one whose centre (start + (T - 1) / 2)
  is nearest to the frame; on a tie, the earlier window.
- A clip of F < T frames is padded to one window by repeating its last frame; the padded frames' results are
  dropped.
- All frames of a window are cropped with one box: the authors' crop rule on the union of the object's visible
  masks over the window (`clip_crop_box`), so an object may be fully hidden on some frames of a window, but not on
  all of them.
- Per object (`object_windows`), a window in which the object is hidden on every frame is not run: each frame it
  would keep goes instead to the window of T frames that starts at the earlier of that frame and the nearest frame
  where the object is visible (moved back to fit in the clip), so the frame is completed from a visible one. A
  frame T or more frames away from every visible frame cannot share a window with one: it is left uncompleted and
  the caller marks it.

That is the `"windows"` clip mode. In the `"sequence"` mode (`CLIP_MODES`, `sequence_window`) the whole clip is one
window of L frames, F rounded up to a multiple of T by repeating the last frame, cropped with one box over all
frames: the model runs it as one sequence rolled across its T-frame groups, the authors' test-time mode (FISHBOWL:
32 frames through a window of 16). Every frame is completed, however far from a visible one.

Crop geometry (`mask_geometry`), thresholds and mask policy (`mask_policy`) are the image processor's: the video
processor is a `C2FSegImageProcessor` with the same saved settings plus the clip methods.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageSequence
import torch

from .image_loading import load_binary_mask, load_rgb_image
from .image_processing_c2f_seg import C2FSegImageProcessor
from .mask_geometry import CropBox, clip_crop_box, crop_image, crop_mask


@dataclass(frozen=True)
class FrameWindow:
    """One window of a clip. `frame_indices` holds T indices into the clip (the last one repeated when the clip is
    shorter than T); `kept` holds the positions inside the window whose results the clip takes from it."""

    start: int
    frame_indices: tuple[int, ...]
    kept: tuple[int, ...]


def window_starts(num_frames: int, window_length: int) -> list[int]:
    """Start frames of the windows covering a clip of `num_frames` frames (see the module docstring)."""
    if num_frames < 1 or window_length < 1:
        raise ValueError(f"num_frames and window_length must be positive, got {num_frames} and {window_length}")
    if num_frames <= window_length:
        return [0]
    stride = max(1, window_length // 2)
    starts = list(range(0, num_frames - window_length + 1, stride))
    if starts[-1] != num_frames - window_length:
        starts.append(num_frames - window_length)
    return starts


def frame_windows(num_frames: int, window_length: int) -> list[FrameWindow]:
    """The windows of a clip and which frames each one provides; every frame is kept by exactly one window."""
    starts = window_starts(num_frames, window_length)
    owner = [
        min(starts, key=lambda start: (abs(frame - (start + (window_length - 1) / 2)), start))
        for frame in range(num_frames)
    ]
    windows = []
    for start in starts:
        indices = tuple(min(start + offset, num_frames - 1) for offset in range(window_length))
        kept = tuple(
            offset for offset in range(window_length) if start + offset < num_frames and owner[start + offset] == start
        )
        windows.append(FrameWindow(start, indices, kept))
    return windows


CLIP_MODES = ("windows", "sequence")


def check_clip_mode(clip_mode) -> None:
    """Raise ValueError unless `clip_mode` is one of `CLIP_MODES`."""
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"clip_mode: expected one of {CLIP_MODES}, got {clip_mode!r}")


def sequence_window(num_frames: int, window_length: int) -> FrameWindow:
    """The whole clip as one window of L frames, `num_frames` rounded up to a multiple of `window_length` by
    repeating the last frame; every real frame is kept."""
    if num_frames < 1 or window_length < 1:
        raise ValueError(f"num_frames and window_length must be positive, got {num_frames} and {window_length}")
    length = -(-num_frames // window_length) * window_length
    indices = tuple(min(offset, num_frames - 1) for offset in range(length))
    return FrameWindow(0, indices, tuple(range(num_frames)))


def frames_from_file(path) -> list[PIL.Image.Image]:
    """The frames of a multi-frame image file PIL reads (GIF, APNG, animated WebP, multi-page TIFF), with their
    transparency (`load_rgb_image` composites it over white). Other video formats must be decoded to frames first.
    Raises ValueError naming the file."""
    if not os.path.isfile(path):
        raise ValueError(f"frames: no file at {os.fspath(path)!r}")
    try:
        with PIL.Image.open(path) as opened:
            return [frame.copy() for frame in PIL.ImageSequence.Iterator(opened)]
    except PIL.UnidentifiedImageError:
        raise ValueError(
            f"frames: {os.fspath(path)!r} is not a multi-frame image PIL can read (GIF, APNG, animated WebP, TIFF); "
            "decode other video formats to a list of frames first"
        ) from None


def load_frames(frames) -> list[np.ndarray]:
    """A non-empty list of images of one size, or the path of a GIF (any multi-frame image PIL reads) -> `(H, W, 3)`
    uint8 arrays. Raises ValueError naming the frame."""
    if isinstance(frames, (str, os.PathLike)):
        frames = frames_from_file(frames)
    if not isinstance(frames, (list, tuple)) or len(frames) == 0:
        raise ValueError(f"frames: expected a non-empty list of images, got {type(frames).__name__}")
    arrays = [load_rgb_image(frame) for frame in frames]
    for index, array in enumerate(arrays):
        if array.shape != arrays[0].shape:
            raise ValueError(f"frames[{index}]: has size {array.shape[:2]}, frames[0] has {arrays[0].shape[:2]}")
    return arrays


def check_ever_visible(visible_frames: np.ndarray) -> None:
    """Raise ValueError unless the object is visible on some frame (`visible_frames (F,)` bool)."""
    if not visible_frames.any():
        raise ValueError("the object's visible mask is empty on every frame: there is nothing to complete")


def object_windows(visible_frames: np.ndarray, window_length: int) -> tuple[list[FrameWindow], list[int]]:
    """The windows one object is run through (see the module docstring) and the frames none can complete.

    Args:
        visible_frames: `(F,)` bool, whether the object's visible mask is non-empty on each frame.
        window_length: the model's window T.

    Returns:
        Windows (sorted by start) that together keep every frame at most T - 1 frames from a visible frame exactly
        once, and the sorted indices of the other frames. Raises ValueError when the object is never visible.
    """
    check_ever_visible(visible_frames)
    visible = np.flatnonzero(visible_frames)
    num_frames = len(visible_frames)
    kept_by_start: dict[int, list[int]] = {}
    unreachable = []
    for window in frame_windows(num_frames, window_length):
        frames = [window.frame_indices[position] for position in window.kept]
        if visible_frames[list(window.frame_indices)].any():
            kept_by_start.setdefault(window.start, []).extend(frames)
            continue
        for frame in frames:
            nearest = int(visible[np.argmin(np.abs(visible - frame))])
            if abs(nearest - frame) >= window_length:
                unreachable.append(frame)
                continue
            start = min(frame, nearest, max(num_frames - window_length, 0))
            kept_by_start.setdefault(start, []).append(frame)
    windows = []
    for start, frames in sorted(kept_by_start.items()):
        indices = tuple(min(start + offset, num_frames - 1) for offset in range(window_length))
        windows.append(FrameWindow(start, indices, tuple(sorted(frame - start for frame in frames))))
    return windows, sorted(unreachable)


class C2FSegVideoProcessor(C2FSegImageProcessor):
    """The image processor's crops and mask policy applied to clips, window by window.

    `clip_windows` gives the windows of a clip, `preprocess_window` the crops of one object over one window
    (`pixel_values (T, 3, S, S)`, `visible_masks (T, 1, S, S)` and its `crop_box`), `post_process_window` the
    full-size masks of the frames the window keeps.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.second_crop_ratio is not None:
            raise ValueError(
                f"second_crop_ratio: a video processor crops each window once (got {self.second_crop_ratio!r}); the "
                "second crop is for image objects only: leave it None"
            )

    @classmethod
    def from_image_processor(cls, image_processor: C2FSegImageProcessor) -> C2FSegVideoProcessor:
        """The video processor with the settings of a (saved) image processor, except its `second_crop_ratio` (image
        objects only)."""
        if isinstance(image_processor, cls):
            return image_processor
        settings = image_processor.to_dict()
        names = [key for key in cls.valid_kwargs.__annotations__ if key in settings and key != "second_crop_ratio"]
        return cls(**{key: settings[key] for key in names})

    def clip_windows(self, num_frames: int, window_length: int, clip_mode: str = "windows") -> list[FrameWindow]:
        """The windows covering a clip of `num_frames` frames for a model window of `window_length` frames: the
        overlapping windows of `frame_windows`, or with `clip_mode="sequence"` the one `sequence_window`."""
        check_clip_mode(clip_mode)
        if clip_mode == "sequence":
            return [sequence_window(num_frames, window_length)]
        return frame_windows(num_frames, window_length)

    def object_windows(
        self, track: np.ndarray, window_length: int, clip_mode: str = "windows"
    ) -> tuple[list[FrameWindow], list[int]]:
        """The windows one object's `(F, H, W)` bool track is run through and the frames none can complete:
        `object_windows` of this module, or with `clip_mode="sequence"` the one `sequence_window` (every frame
        completed). Raises ValueError when the object is never visible or the mode is unknown."""
        check_clip_mode(clip_mode)
        visible_frames = track.reshape(len(track), -1).any(axis=1)
        if clip_mode == "windows":
            return object_windows(visible_frames, window_length)
        check_ever_visible(visible_frames)
        return [sequence_window(len(track), window_length)], []

    def load_tracks(self, visible_masks, num_frames: int, image_size: tuple[int, int]) -> list[np.ndarray]:
        """Per object a list of `num_frames` masks (empty ones allowed) -> `(num_frames, H, W)` bool per object,
        binarised at `visible_mask_threshold`. Raises ValueError naming the object and frame."""
        if not isinstance(visible_masks, (list, tuple)) or len(visible_masks) == 0:
            raise ValueError("visible_masks: expected a non-empty list with, per object, a list of per-frame masks")
        tracks = []
        for index, track in enumerate(visible_masks):
            if not isinstance(track, (list, tuple)) or len(track) != num_frames:
                found = len(track) if isinstance(track, (list, tuple)) else type(track).__name__
                raise ValueError(
                    f"visible_masks[{index}]: expected a list of {num_frames} masks (one per frame), got {found}"
                )
            frames = [
                load_binary_mask(
                    mask, f"visible_masks[{index}][{frame}]", image_size, self.visible_mask_threshold, allow_empty=True
                )
                for frame, mask in enumerate(track)
            ]
            tracks.append(np.stack(frames))
        return tracks

    def preprocess_window(self, frames: list[np.ndarray], track: np.ndarray, window: FrameWindow) -> dict:
        """Crops of one object over one window.

        Args:
            frames: the clip's `(H, W, 3)` uint8 frames.
            track: `(num_frames, H, W)` bool visible masks of the object (empty where it is hidden).
            window: one of `clip_windows`.

        Returns:
            `pixel_values (L, 3, S, S)` (normalised when `do_normalize`), `visible_masks (L, 1, S, S)` in {0, 1}
            and `crop_box` (a `CropBox`), L the window's length (T, or a multiple of T for a `sequence_window`).
            Raises ValueError when the object is hidden on every frame of the window.
        """
        indices = list(window.frame_indices)
        box = clip_crop_box(track[indices], self.enlarge_ratio)
        size = self.crop_resolution
        pixel_values = torch.stack([crop_image(frames[index], box, size) for index in indices])
        return {
            "pixel_values": self.normalize_crops(pixel_values),
            "visible_masks": torch.stack([crop_mask(track[index], box, size) for index in indices]),
            "crop_box": box,
        }

    def post_process_window(
        self,
        outputs,
        crop_box: CropBox,
        track: np.ndarray,
        window: FrameWindow,
        mask_threshold: float | None = None,
        union_with_visible: bool = False,
        occluder_track: np.ndarray | None = None,
    ) -> dict[int, dict]:
        """Full-size results of the frames one window keeps.

        Args:
            outputs: `model.generate` outputs of the window: `amodal_masks` and `pred_visible_masks` `(L, 1, S, S)`
                probabilities and `scores (L,)`.
            crop_box: the window's `crop_box` from `preprocess_window`.
            track: `(num_frames, H, W)` bool input visible masks of the object.
            window: the window.
            mask_threshold: foreground probability of the predictions (default: the processor's).
            union_with_visible: add each frame's input visible mask to its amodal mask.
            occluder_track: `(num_frames, H, W)` bool occluder region of the object on each frame (the union of the
                other tracks' visible masks, `mask_policy.occluder_masks_from_visible`); when given, each frame's
                amodal mask is restricted to it (`restrict_to_occluders` of `post_process_objects`).

        Returns:
            `{frame index: result}` with the per-object result of `C2FSegImageProcessor.post_process_objects`
            (`amodal_mask`, `pred_visible_mask`, `occluded_mask`, `bbox`, `occlusion_rate`, `score`) for each kept
            frame.
        """
        positions = list(window.kept)
        frames = [window.frame_indices[position] for position in positions]
        kept_outputs = {name: outputs[name][positions] for name in ("amodal_masks", "pred_visible_masks", "scores")}
        (results,) = self.post_process_objects(
            kept_outputs,
            torch.tensor([crop_box.to_list()] * len(positions)),
            [track.shape[1:]],
            [track[frames]],
            mask_threshold=mask_threshold,
            union_with_visible=union_with_visible,
            restrict_to_occluders=occluder_track is not None,
            occluder_masks=None if occluder_track is None else [occluder_track[frames]],
        )
        return dict(zip(frames, results))


__all__ = [
    "CLIP_MODES",
    "C2FSegVideoProcessor",
    "FrameWindow",
    "check_clip_mode",
    "frame_windows",
    "frames_from_file",
    "load_frames",
    "object_windows",
    "sequence_window",
    "window_starts",
]
