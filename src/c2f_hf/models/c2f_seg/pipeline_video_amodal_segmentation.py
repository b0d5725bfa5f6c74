"""The `video-amodal-segmentation` pipeline: a clip + per-object per-frame visible masks in, per-object per-frame
amodal masks out, with a video C2F-Seg model (`transformer_config.num_frames` = T set).

Windows, crops and paste-back are the video processor's (`video_processing_c2f_seg`, built from the saved image
processor's settings): each tracked object is processed in windows of T frames, each frame's result comes from the
window where it is most central, and all frames of a window are cropped with one box. A visible mask may be empty
on frames where the object is fully hidden: a window in which the object is hidden throughout is replaced by one
that reaches its nearest visible frame (`C2FSegVideoProcessor.object_windows`); a frame T or more frames away from
every visible frame is marked `completed=False` with empty masks, and a warning names it. Each (object, window) is
a chunk, so windows are batched up to `batch_size`. With a `seed`, each chunk samples from its own generator
(seeded from `seed`, the object's visible masks and the window's first frame), so an object's results depend
neither on `batch_size` nor on the other objects of the call.

Without visible masks, a SAM 2 video model given at construction (`visible_mask_model`, see `video_mask_sources`)
tracks each prompted object through the clip, and its tracks are completed like given ones.
"""

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from transformers.pipelines.base import ChunkPipeline

from .mask_geometry import CropBox
from .mask_policy import object_result, occluder_masks_from_visible
from .maskgit import mask_key
from .pipeline_amodal_segmentation import (
    PROMPT_NAMES,
    check_flag,
    check_generation_parameters,
    check_inputs_not_empty,
    check_mask_threshold,
    checked_model_and_processor,
    generate_batch,
    mask_to_image,
    use_default_batch_size,
)
from .video_mask_sources import TrackedObject, load_video_mask_source
from .video_processing_c2f_seg import C2FSegVideoProcessor, FrameWindow, check_clip_mode, load_frames

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowInfo:
    """What postprocessing needs of one (object, window) chunk besides the model outputs: the object's `(F, H, W)`
    bool visible masks (`track`) and, for a tracked object, the tracker's `(F,)` per-frame scores."""

    object_index: int
    crop_box: CropBox
    window: FrameWindow
    track: np.ndarray
    detection_scores: np.ndarray | None = None


def uncompleted_frame_result(image_size: tuple[int, int]) -> dict:
    """The result of a frame no window could complete: empty masks, no box, score 0 (`completed` False)."""
    empty = np.zeros(image_size, dtype=bool)
    return {**object_result(empty, empty, empty, 0.0, add_visible=False), "completed": False}


def track_result(frames: dict[int, dict], track: np.ndarray, detection_scores: np.ndarray | None = None) -> dict:
    """Per-frame results of one object (`{frame: result}`), its `(F, H, W)` visible track and the tracker's `(F,)`
    scores (None for given masks) -> one dict of per-frame lists; frames without a result are marked uncompleted.
    `score` is the mean over completed frames."""
    ordered = [frames.get(frame) or uncompleted_frame_result(track.shape[1:]) for frame in range(len(track))]
    completed = [result.get("completed", True) for result in ordered]
    scores = [result["score"] for result in ordered]
    return {
        "amodal_masks": [mask_to_image(result["amodal_mask"]) for result in ordered],
        "pred_visible_masks": [mask_to_image(result["pred_visible_mask"]) for result in ordered],
        "occluded_masks": [mask_to_image(result["occluded_mask"]) for result in ordered],
        "bboxes": [result["bbox"] for result in ordered],
        "occlusion_rates": [result["occlusion_rate"] for result in ordered],
        "scores": scores,
        "completed": completed,
        "score": float(np.mean([score for score, done in zip(scores, completed) if done])),
        "visible_masks": [mask_to_image(mask) for mask in track],
        "detection_scores": [None] * len(track) if detection_scores is None else detection_scores.tolist(),
    }


class VideoAmodalSegmentationPipeline(ChunkPipeline):
    """Predict the full (amodal) mask of each tracked object in every frame of a clip.

    Call: `pipe(frames, visible_masks=[[mask_t0, mask_t1, ...], ...])` (or `pipe({"frames": ..., "visible_masks":
    ...})`), frames as a list of PIL images, paths or numpy arrays, or the path of a GIF (any multi-frame image PIL
    reads: GIF, APNG, animated WebP, TIFF), one list of per-frame masks per object (an empty mask
    where the object is fully hidden). `clip_mode="windows"` (default) runs each object through overlapping windows
    of T frames (see the module docstring); `clip_mode="sequence"` runs the whole clip as one sequence, its length
    rounded up to a multiple of T, rolled across its T-frame groups as the authors test FISHBOWL (one crop box for
    the whole clip; every frame is completed). Parameters: `num_steps`, `seed`, `greedy`, `mask_threshold`,
    `union_with_visible` and `restrict_to_occluders` as in the image pipeline; with `restrict_to_occluders=True`
    (the authors' MOViD-A post-processing) an object's hidden part on a frame may only lie on the other tracks'
    visible pixels of that frame, so pass every object of the clip.

    Returns one dict per object with one entry per frame in `amodal_masks`, `pred_visible_masks` and
    `occluded_masks` (PIL "L" images at the original size), `bboxes` (`[x, y, w, h]` or None), `occlusion_rates`,
    `scores` (the mean token confidence of the window the frame came from) and `completed` (False on a frame too
    far from every visible frame to share a window with one: its masks are empty and its score 0), and `score` (the
    mean of `scores` over completed frames). The mask policy is the image processor's, applied per frame.

    Without masks, a SAM 2 video model given at construction (`pipeline(..., visible_mask_model=ID_OR_MODEL)`, model
    type "sam2_video", e.g. facebook/sam2.1-hiera-tiny; needs torchvision) tracks the objects prompted on frame
    `prompt_frame` (default 0): `input_boxes=[[x0, y0, x1, y1], ...]` and / or `input_points=[[[x, y], ...], ...]`,
    `input_labels=[[1, ...], ...]`, one object per prompt, as in the image pipeline. Each object dict also holds
    `visible_masks` (the per-frame visible masks that were completed: the tracked ones, or the given ones) and
    `detection_scores` (per frame SAM 2's object presence probability; None for given masks).
    """

    def _sanitize_parameters(
        self,
        visible_masks=None,
        input_boxes=None,
        input_points=None,
        input_labels=None,
        prompt_frame=None,
        num_steps=None,
        seed=None,
        greedy=None,
        mask_threshold=None,
        union_with_visible=None,
        restrict_to_occluders=None,
        clip_mode=None,
    ):
        check_generation_parameters(num_steps, seed, greedy, self.model.config)
        if clip_mode is not None:
            check_clip_mode(clip_mode)
        check_flag("union_with_visible", union_with_visible)
        check_flag("restrict_to_occluders", restrict_to_occluders)
        postprocess = {
            "mask_threshold": check_mask_threshold(mask_threshold),
            "union_with_visible": bool(union_with_visible),
            "restrict_to_occluders": bool(restrict_to_occluders),
        }
        prompts = {"input_boxes": input_boxes, "input_points": input_points, "input_labels": input_labels}
        preprocess = {
            "visible_masks": visible_masks,
            "clip_mode": clip_mode,
            "prompts": {name: value for name, value in prompts.items() if value is not None} or None,
            "prompt_frame": prompt_frame,
        }
        preprocess = {name: value for name, value in preprocess.items() if value is not None}
        return preprocess, {"num_steps": num_steps, "seed": seed, "greedy": bool(greedy)}, postprocess

    def __init__(self, *args, visible_mask_model=None, visible_mask_processor=None, **kwargs):
        super().__init__(*args, **kwargs)
        use_default_batch_size(self)
        self.image_processor = checked_model_and_processor(self.model, self.image_processor)
        if self.model.config.transformer_config.num_frames is None:
            raise ValueError(
                f"{self.model.name_or_path or 'the model'}: is an image model (transformer_config.num_frames is "
                "None): use the 'amodal-segmentation' pipeline"
            )
        if not isinstance(self.video_processor, C2FSegVideoProcessor):
            self.video_processor = C2FSegVideoProcessor.from_image_processor(self.image_processor)
        self.visible_mask_source = None
        if visible_mask_model is not None:
            self.visible_mask_source = load_video_mask_source(
                visible_mask_model, visible_mask_processor, device=self.device
            )

    def __call__(self, inputs, **kwargs):
        """See the class docstring. A list of frames, or the path of a GIF, is one clip; a list of dicts is several
        clips."""
        check_inputs_not_empty(inputs)
        if isinstance(inputs, (str, os.PathLike)):
            inputs = {"frames": inputs}
        elif isinstance(inputs, (list, tuple)) and not isinstance(inputs[0], dict):
            inputs = {"frames": list(inputs)}
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, visible_masks=None, clip_mode="windows", prompts=None, prompt_frame=None):
        prompts = dict(prompts or {})
        if isinstance(inputs, dict):
            visible_masks = inputs.get("visible_masks", visible_masks)
            prompts.update({name: inputs[name] for name in PROMPT_NAMES if inputs.get(name) is not None})
            prompt_frame = inputs.get("prompt_frame", prompt_frame)
            inputs = inputs.get("frames")
        frames = load_frames(inputs)
        tracked = self._tracked_objects(frames, visible_masks, prompts, prompt_frame)
        if tracked is None:
            tracks = self.video_processor.load_tracks(visible_masks, len(frames), frames[0].shape[:2])
            tracked = [TrackedObject(track) for track in tracks]
        window_length = self.model.config.transformer_config.num_frames
        chunks = [
            (object_index, window)
            for object_index, item in enumerate(tracked)
            for window in self._object_windows(object_index, item.masks, window_length, clip_mode)
        ]
        for number, (object_index, window) in enumerate(chunks):
            yield self._window_inputs(frames, tracked[object_index], object_index, window, number == len(chunks) - 1)

    def _tracked_objects(
        self, frames: list[np.ndarray], visible_masks, prompts: dict, prompt_frame: int | None
    ) -> list[TrackedObject] | None:
        """The objects the SAM 2 `visible_mask_model` tracks from the prompts; None when `visible_masks` are given.
        Raises ValueError for prompts beside visible masks or without a SAM 2 model."""
        given = list(prompts) + (["prompt_frame"] if prompt_frame is not None else [])
        if visible_masks is not None:
            if given:
                raise ValueError(
                    f"{given[0]}: give either prompts (input_boxes / input_points) or visible_masks, not both"
                )
            return None
        if self.visible_mask_source is None:
            if given:
                raise ValueError(
                    f"{given[0]}: prompts need a SAM 2 visible_mask_model, e.g. pipeline('video-amodal-segmentation', "
                    "model=..., visible_mask_model='facebook/sam2.1-hiera-tiny')"
                )
            return None
        return self.visible_mask_source(frames, 0 if prompt_frame is None else prompt_frame, **prompts)

    def _object_windows(
        self, object_index: int, track: np.ndarray, window_length: int, clip_mode: str
    ) -> list[FrameWindow]:
        """The windows of one object; logs a warning naming the frames no window can complete."""
        try:
            windows, uncompleted = self.video_processor.object_windows(track, window_length, clip_mode)
        except ValueError as error:
            raise ValueError(f"visible_masks[{object_index}]: {error}") from None
        if uncompleted:
            logger.warning(
                "visible_masks[%d]: frames %s are %d or more frames from every frame where the object is visible, "
                "so no window of the model can complete them: they are returned empty with completed=False",
                object_index,
                uncompleted,
                window_length,
            )
        return windows

    def _window_inputs(
        self, frames, tracked: TrackedObject, object_index: int, window: FrameWindow, is_last: bool
    ) -> dict:
        """Crops `(1, T, 3, S, S)` and `(1, T, 1, S, S)` of one object over one window."""
        track = tracked.masks
        crops = self.video_processor.preprocess_window(frames, track, window)
        info = WindowInfo(object_index, crops["crop_box"], window, track, tracked.detection_scores)
        return {
            "pixel_values": crops["pixel_values"][None],
            "visible_masks": crops["visible_masks"][None],
            "sample_keys": torch.tensor([mask_key(track) << 24 | window.start]),
            "window_info": info,
            "is_last": is_last,
        }

    def _forward(self, model_inputs, num_steps=None, seed=None, greedy=False):
        output = generate_batch(self.model, model_inputs, num_steps, seed, greedy)
        return {
            "amodal_masks": output.amodal_masks,
            "pred_visible_masks": output.pred_visible_masks,
            "scores": output.scores,
            "window_info": model_inputs["window_info"],
            "is_last": model_inputs["is_last"],
        }

    def postprocess(self, model_outputs, mask_threshold=None, union_with_visible=False, restrict_to_occluders=False):
        windows = []
        for output in model_outputs:
            info = output["window_info"]
            window_outputs = {
                name: output[name].reshape(-1, *output[name].shape[2:])
                for name in ("amodal_masks", "pred_visible_masks", "scores")
            }
            windows.append((info[0] if isinstance(info, list) else info, window_outputs))
        tracks = {info.object_index: info.track for info, _ in windows}
        detection_scores = {info.object_index: info.detection_scores for info, _ in windows}
        occluders = dict.fromkeys(tracks)
        if restrict_to_occluders:
            # Every object of the clip has a window: the chunks of one clip reach postprocess together.
            occluders = dict(zip(tracks, occluder_masks_from_visible(np.stack(list(tracks.values())))))
        frames_per_object: dict[int, dict[int, dict]] = {}
        for info, window_outputs in windows:
            frames_per_object.setdefault(info.object_index, {}).update(
                self.video_processor.post_process_window(
                    window_outputs,
                    info.crop_box,
                    info.track,
                    info.window,
                    mask_threshold,
                    union_with_visible,
                    occluder_track=occluders[info.object_index],
                )
            )
        return [
            track_result(frames_per_object[index], tracks[index], detection_scores[index])
            for index in sorted(frames_per_object)
        ]


__all__ = ["VideoAmodalSegmentationPipeline"]
