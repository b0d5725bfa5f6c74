"""How the video model covers a clip longer (or shorter) than its window of T frames.

The rule, shared by the `video-amodal-segmentation` pipeline and the evaluation runner:

- A clip of F >= T frames is covered by windows of exactly T frames starting at 0, s, 2s, ... with stride
  s = max(1, T // 2), plus a last window starting at F - T when the stride does not land there, so every frame is in
  at least one window and consecutive windows overlap by T - s frames.
- Each frame's result is taken from the window where it is most central: the one whose centre (start + (T - 1) / 2)
  is nearest to the frame; on a tie, the earlier window.
- A clip of F < T frames is padded to one window by repeating its last frame; the padded frames' results are
  dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


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


__all__ = ["FrameWindow", "frame_windows", "window_starts"]
