"""Where a clip's visible masks come from when the user has none: SAM 2 tracks prompted objects through the clip.

The video-amodal-segmentation pipeline takes a `visible_mask_model` (transformers' `Sam2VideoModel`, model_type
"sam2_video", e.g. facebook/sam2.1-hiera-tiny, with its `Sam2VideoProcessor`) and asks it for one track per object:
prompts on one frame (`prompt_frame`), named as for the image pipeline (`input_boxes=[[x0, y0, x1, y1], ...]`
and/or `input_points=[[[x, y], ...], ...]` with `input_labels=[[1, ...], ...]`, one object per prompt), are
propagated forward to the last frame and, when `prompt_frame` > 0, backward to the first, so every frame gets a
mask. A frame where SAM 2 loses the object gets an empty mask. Each frame's score is SAM 2's object presence
probability, `sigmoid(object_score_logits)`. SAM 2's processors need torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, Sam2VideoModel

from .visible_mask_sources import (
    SAM2_MODEL_TYPES,
    check_torchvision,
    checked_prompts,
    prompt_name,
    source_model_type,
    source_name,
    source_processor,
)

VIDEO_MODEL_TYPE = "sam2_video"


@dataclass(frozen=True)
class TrackedObject:
    """One object's `masks (F, H, W)` bool visible masks through a clip (empty where SAM 2 lost it) and
    `detection_scores (F,)` float, SAM 2's object presence probability per frame (None for given masks)."""

    masks: np.ndarray
    detection_scores: np.ndarray | None = None


def check_prompt_frame(prompt_frame, num_frames: int) -> int:
    """`prompt_frame` as an int in `[0, num_frames)`; raises ValueError naming it otherwise."""
    if not isinstance(prompt_frame, (int, np.integer)) or isinstance(prompt_frame, (bool, np.bool_)):
        raise ValueError(f"prompt_frame: expected the index of a frame (an integer), got {prompt_frame!r}")
    if not 0 <= prompt_frame < num_frames:
        raise ValueError(
            f"prompt_frame: {prompt_frame} is not a frame of the {num_frames}-frame clip (0..{num_frames - 1})"
        )
    return int(prompt_frame)


class VideoTrackerSource:
    """A `Sam2VideoModel` and its `Sam2VideoProcessor`: a clip and prompts on one frame in, one `TrackedObject` per
    prompt out (see the module docstring)."""

    def __init__(self, model: Sam2VideoModel, processor):
        self.model = model.eval()
        self.processor = processor

    @torch.no_grad()
    def __call__(
        self, frames: list[np.ndarray], prompt_frame: int = 0, input_boxes=None, input_points=None, input_labels=None
    ) -> list[TrackedObject]:
        """Track the prompted objects through `frames` (`(H, W, 3)` uint8 arrays of one size)."""
        prompt_frame = check_prompt_frame(prompt_frame, len(frames))
        image_size = frames[0].shape[:2]
        prompts = checked_prompts(input_boxes, input_points, input_labels, image_size, picture="frame")
        num_objects = len(next(iter(prompts.values()))[0])
        session = self.processor.init_video_session(video=frames, inference_device=self.model.device)
        self.processor.add_inputs_to_inference_session(
            inference_session=session, frame_idx=prompt_frame, obj_ids=list(range(1, num_objects + 1)), **prompts
        )
        masks = np.zeros((num_objects, len(frames), *image_size), dtype=bool)
        scores = np.zeros((num_objects, len(frames)), dtype=np.float32)
        self._store(self.model(inference_session=session, frame_idx=prompt_frame), masks, scores)
        for index, track in enumerate(masks):
            if not track[prompt_frame].any():
                raise ValueError(
                    f"{prompt_name(prompts)}[{index}]: the visible_mask_model found no pixel of an object there on "
                    f"frame {prompt_frame} (prompt_frame)"
                )
        directions = [False, True] if prompt_frame > 0 else [False]
        for reverse in directions:
            for output in self.model.propagate_in_video_iterator(
                session, start_frame_idx=prompt_frame, reverse=reverse
            ):
                self._store(output, masks, scores)
        return [TrackedObject(track, track_scores) for track, track_scores in zip(masks, scores)]

    def _store(self, output, masks: np.ndarray, scores: np.ndarray) -> None:
        """Write one frame's output (`pred_masks (objects, 1, h, w)` logits, `object_score_logits (objects,)`) into
        `masks (objects, F, H, W)` and `scores (objects, F)`."""
        height, width = masks.shape[2:]
        frame_masks = self.processor.post_process_masks([output.pred_masks], original_sizes=[[height, width]])[0]
        masks[:, output.frame_idx] = frame_masks[:, 0].cpu().numpy().astype(bool)
        scores[:, output.frame_idx] = torch.sigmoid(output.object_score_logits.float()).reshape(-1).cpu().numpy()


def load_video_mask_source(source, processor=None, device=None) -> VideoTrackerSource:
    """A SAM 2 tracker from a "sam2_video" Hub id or folder, or a loaded `Sam2VideoModel` (with its `processor`
    when the model does not know the folder it came from). Raises ValueError naming the model type of anything
    else, and ImportError without torchvision."""
    if isinstance(source, VideoTrackerSource):
        return source
    model_type = source_model_type(source)
    name = source_name(source)
    if model_type != VIDEO_MODEL_TYPE:
        reason = (
            "an image-only SAM 2 checkpoint has no memory modules to track with"
            if model_type in SAM2_MODEL_TYPES
            else "the video pipeline tracks objects with SAM 2"
        )
        raise ValueError(
            f"visible_mask_model: {name} has model_type {model_type!r}; the video pipeline needs a SAM 2 video model "
            f"(model_type {VIDEO_MODEL_TYPE!r}, Sam2VideoModel, e.g. 'facebook/sam2.1-hiera-tiny'): {reason}"
        )
    check_torchvision(name)
    model = source if isinstance(source, PreTrainedModel) else Sam2VideoModel.from_pretrained(source)
    processor = source_processor(model, processor)
    if not hasattr(processor, "init_video_session"):
        raise ValueError(
            f"visible_mask_processor: {type(processor).__name__} cannot track a video; SAM 2 video models need a "
            "Sam2VideoProcessor"
        )
    return VideoTrackerSource(model.to(device) if device is not None else model, processor)


__all__ = ["TrackedObject", "VideoTrackerSource", "check_prompt_frame", "load_video_mask_source"]
