"""The `video-amodal-segmentation` pipeline: a clip + per-object per-frame visible masks in, per-object per-frame
amodal masks out, with a video C2F-Seg model (`transformer_config.num_frames` = T set).

Each tracked object is processed in windows of T frames (`video_windows.frame_windows`): windows start every
T // 2 frames plus one ending at the last frame, each frame's result comes from the window where it is most
central, and a clip shorter than T is padded by repeating its last frame. All frames of a window are cropped with
one box, the authors' crop rule on the union of the object's visible masks over the window (`clip_crop_box`).
A visible mask may be empty on frames where the object is fully hidden, but the object must be visible in at
least one frame of every window. Each (object, window) is a chunk, so windows are batched up to `batch_size`.
"""

from dataclasses import dataclass

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .image_processing_c2f_seg import clip_crop_box, crop_image, crop_mask, load_binary_mask, load_rgb_image
from .pipeline_amodal_segmentation import generate_batch, mask_to_image
from .video_windows import frame_windows


@dataclass(frozen=True)
class WindowInfo:
    """What postprocessing needs of one (object, window) chunk besides the model outputs."""

    object_index: int
    crop_box: tuple[int, int, int, int]
    kept: tuple[tuple[int, int], ...]
    original_size: tuple[int, int]
    num_frames: int


def load_frames(frames) -> list[np.ndarray]:
    """A non-empty list of images of one size -> `(H, W, 3)` uint8 arrays. Raises ValueError naming the frame."""
    if not isinstance(frames, (list, tuple)) or len(frames) == 0:
        raise ValueError(f"frames: expected a non-empty list of images, got {type(frames).__name__}")
    arrays = [load_rgb_image(frame) for frame in frames]
    for index, array in enumerate(arrays):
        if array.shape != arrays[0].shape:
            raise ValueError(f"frames[{index}]: has size {array.shape[:2]}, frames[0] has {arrays[0].shape[:2]}")
    return arrays


def load_tracks(visible_masks, num_frames: int, image_size: tuple[int, int], threshold: float) -> list[np.ndarray]:
    """Per object a list of `num_frames` masks (empty ones allowed) -> `(num_frames, H, W)` bool per object."""
    if not isinstance(visible_masks, (list, tuple)) or len(visible_masks) == 0:
        raise ValueError("visible_masks: expected a non-empty list with, per object, a list of per-frame masks")
    tracks = []
    for index, track in enumerate(visible_masks):
        if not isinstance(track, (list, tuple)) or len(track) != num_frames:
            found = len(track) if isinstance(track, (list, tuple)) else type(track).__name__
            raise ValueError(
                f"visible_masks[{index}]: expected a list of {num_frames} masks (one per frame), got {found}"
            )
        name = f"visible_masks[{index}]"
        tracks.append(
            np.stack(
                [
                    load_binary_mask(mask, f"{name}[{frame}]", image_size, threshold, allow_empty=True)
                    for frame, mask in enumerate(track)
                ]
            )
        )
    return tracks


class VideoAmodalSegmentationPipeline(ChunkPipeline):
    """Predict the full (amodal) mask of each tracked object in every frame of a clip.

    Call: `pipe(frames, visible_masks=[[mask_t0, mask_t1, ...], ...])` (or `pipe({"frames": ..., "visible_masks":
    ...})`), frames as PIL images, paths or numpy arrays, one list of per-frame masks per object (an empty mask
    where the object is fully hidden). Parameters: `num_steps`, `seed`, `greedy`, `threshold` as in the image
    pipeline.

    Returns one dict per object: `amodal_masks` (one PIL "L" image per frame, original size), `scores` (per frame,
    the mean token confidence of the window the frame came from) and `score` (their mean).
    """

    def _sanitize_parameters(self, visible_masks=None, num_steps=None, seed=None, greedy=None, threshold=None):
        if num_steps is not None and (not isinstance(num_steps, int) or num_steps < 1):
            raise ValueError(f"num_steps: expected a positive integer, got {num_steps!r}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold: expected a probability in [0, 1], got {threshold!r}")
        preprocess = {} if visible_masks is None else {"visible_masks": visible_masks}
        return preprocess, {"num_steps": num_steps, "seed": seed, "greedy": bool(greedy)}, {"threshold": threshold}

    def __call__(self, inputs, **kwargs):
        """See the class docstring. A list of frames is one clip; a list of dicts is several clips."""
        if isinstance(inputs, (list, tuple)) and inputs and not isinstance(inputs[0], dict):
            inputs = {"frames": list(inputs)}
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, visible_masks=None):
        if isinstance(inputs, dict):
            visible_masks = inputs.get("visible_masks", visible_masks)
            inputs = inputs.get("frames")
        frames = load_frames(inputs)
        image_size = frames[0].shape[:2]
        tracks = load_tracks(visible_masks, len(frames), image_size, self.image_processor.mask_threshold)
        window_length = self.model.config.transformer_config.num_frames
        if window_length is None:
            raise ValueError(
                "this model is an image model (transformer_config.num_frames is None): use the "
                "'amodal-segmentation' pipeline"
            )
        chunks = [
            (object_index, window)
            for object_index in range(len(tracks))
            for window in frame_windows(len(frames), window_length)
        ]
        for number, (object_index, window) in enumerate(chunks):
            yield self._window_inputs(frames, tracks[object_index], object_index, window, number == len(chunks) - 1)

    def _window_inputs(self, frames, track: np.ndarray, object_index: int, window, is_last: bool) -> dict:
        """Crops `(1, T, 3, S, S)` and `(1, T, 1, S, S)` of one object over one window."""
        indices = list(window.frame_indices)
        if not track[indices].any():
            raise ValueError(
                f"visible_masks[{object_index}]: the object is not visible in any of frames {indices[0]}-"
                f"{indices[-1]} (one window of the model); every window needs at least one non-empty visible mask"
            )
        box = clip_crop_box(track[indices], self.image_processor.enlarge_ratio)
        size = self.image_processor.crop_resolution
        kept = tuple((position, indices[position]) for position in window.kept)
        info = WindowInfo(object_index, tuple(box.to_list()), kept, frames[0].shape[:2], len(frames))
        return {
            "pixel_values": torch.stack([crop_image(frames[index], box, size) for index in indices])[None],
            "visible_masks": torch.stack([crop_mask(track[index], box, size) for index in indices])[None],
            "window_info": info,
            "is_last": is_last,
        }

    def _forward(self, model_inputs, num_steps=None, seed=None, greedy=False):
        output = generate_batch(self.model, model_inputs, num_steps, seed, greedy)
        return {
            "amodal_masks": output.amodal_masks,
            "scores": output.scores,
            "window_info": model_inputs["window_info"],
            "is_last": model_inputs["is_last"],
        }

    def postprocess(self, model_outputs, threshold=None):
        results: dict[int, dict] = {}
        for output in model_outputs:
            info = output["window_info"]
            info = info[0] if isinstance(info, list) else info
            result = results.setdefault(
                info.object_index, {"amodal_masks": [None] * info.num_frames, "scores": [0.0] * info.num_frames}
            )
            amodal_masks, scores = (
                output["amodal_masks"].reshape(-1, 1, *output["amodal_masks"].shape[-2:]),
                output["scores"].reshape(-1),
            )
            for position, frame in info.kept:
                pasted = self.image_processor.post_process_amodal_masks(
                    amodal_masks[position : position + 1], torch.tensor([info.crop_box]), info.original_size, threshold
                )[0]
                result["amodal_masks"][frame] = mask_to_image(pasted.numpy())
                result["scores"][frame] = float(scores[position])
        for result in results.values():
            result["score"] = float(np.mean(result["scores"]))
        return [results[index] for index in sorted(results)]


__all__ = ["VideoAmodalSegmentationPipeline", "load_frames", "load_tracks"]
