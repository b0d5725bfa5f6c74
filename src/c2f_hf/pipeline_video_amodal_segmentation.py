"""The `video-amodal-segmentation` pipeline: a clip + per-object per-frame visible masks in, per-object per-frame
amodal masks out, with a video C2F-Seg model (`transformer_config.num_frames` = T set).

Windows, crops and paste-back are the video processor's (`video_processing_c2f_seg`, built from the saved image
processor's settings): each tracked object is processed in windows of T frames, each frame's result comes from the
window where it is most central, and all frames of a window are cropped with one box. A visible mask may be empty
on frames where the object is fully hidden, but the object must be visible in at least one frame of every window.
Each (object, window) is a chunk, so windows are batched up to `batch_size`.
"""

from dataclasses import dataclass

import numpy as np
from transformers.pipelines.base import ChunkPipeline

from .image_processing_c2f_seg import CropBox
from .pipeline_amodal_segmentation import check_num_steps, generate_batch, mask_to_image, renamed_mask_threshold
from .video_processing_c2f_seg import C2FSegVideoProcessor, FrameWindow, load_frames


@dataclass(frozen=True)
class WindowInfo:
    """What postprocessing needs of one (object, window) chunk besides the model outputs."""

    object_index: int
    crop_box: CropBox
    window: FrameWindow
    track: np.ndarray


def track_result(frames: dict[int, dict]) -> dict:
    """Per-frame results of one object (`{frame: result}`, every frame once) -> one dict of per-frame lists."""
    ordered = [frames[frame] for frame in sorted(frames)]
    scores = [result["score"] for result in ordered]
    return {
        "amodal_masks": [mask_to_image(result["amodal_mask"]) for result in ordered],
        "pred_visible_masks": [mask_to_image(result["pred_visible_mask"]) for result in ordered],
        "occluded_masks": [mask_to_image(result["occluded_mask"]) for result in ordered],
        "bboxes": [result["bbox"] for result in ordered],
        "occlusion_rates": [result["occlusion_rate"] for result in ordered],
        "scores": scores,
        "score": float(np.mean(scores)),
    }


class VideoAmodalSegmentationPipeline(ChunkPipeline):
    """Predict the full (amodal) mask of each tracked object in every frame of a clip.

    Call: `pipe(frames, visible_masks=[[mask_t0, mask_t1, ...], ...])` (or `pipe({"frames": ..., "visible_masks":
    ...})`), frames as PIL images, paths or numpy arrays, one list of per-frame masks per object (an empty mask
    where the object is fully hidden). Parameters: `num_steps`, `seed`, `greedy`, `mask_threshold` and
    `union_with_visible` as in the image pipeline.

    Returns one dict per object with one entry per frame in `amodal_masks`, `pred_visible_masks` and
    `occluded_masks` (PIL "L" images at the original size), `bboxes` (`[x, y, w, h]` or None), `occlusion_rates`
    and `scores` (the mean token confidence of the window the frame came from), and `score` (the mean of
    `scores`). The mask policy is the image processor's, applied per frame.
    """

    def _sanitize_parameters(
        self,
        visible_masks=None,
        num_steps=None,
        seed=None,
        greedy=None,
        mask_threshold=None,
        union_with_visible=None,
        threshold=None,
    ):
        check_num_steps(num_steps)
        postprocess = {
            "mask_threshold": renamed_mask_threshold(mask_threshold, threshold),
            "union_with_visible": bool(union_with_visible),
        }
        preprocess = {} if visible_masks is None else {"visible_masks": visible_masks}
        return preprocess, {"num_steps": num_steps, "seed": seed, "greedy": bool(greedy)}, postprocess

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.video_processor, C2FSegVideoProcessor):
            self.video_processor = C2FSegVideoProcessor.from_image_processor(self.image_processor)

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
        tracks = self.video_processor.load_tracks(visible_masks, len(frames), frames[0].shape[:2])
        window_length = self.model.config.transformer_config.num_frames
        if window_length is None:
            raise ValueError(
                "this model is an image model (transformer_config.num_frames is None): use the "
                "'amodal-segmentation' pipeline"
            )
        chunks = [
            (object_index, window)
            for object_index in range(len(tracks))
            for window in self.video_processor.clip_windows(len(frames), window_length)
        ]
        for number, (object_index, window) in enumerate(chunks):
            yield self._window_inputs(frames, tracks[object_index], object_index, window, number == len(chunks) - 1)

    def _window_inputs(self, frames, track: np.ndarray, object_index: int, window: FrameWindow, is_last: bool) -> dict:
        """Crops `(1, T, 3, S, S)` and `(1, T, 1, S, S)` of one object over one window."""
        indices = window.frame_indices
        if not track[list(indices)].any():
            raise ValueError(
                f"visible_masks[{object_index}]: the object is not visible in any of frames {indices[0]}-"
                f"{indices[-1]} (one window of the model); every window needs at least one non-empty visible mask"
            )
        crops = self.video_processor.preprocess_window(frames, track, window)
        info = WindowInfo(object_index, crops["crop_box"], window, track)
        return {
            "pixel_values": crops["pixel_values"][None],
            "visible_masks": crops["visible_masks"][None],
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

    def postprocess(self, model_outputs, mask_threshold=None, union_with_visible=False):
        frames_per_object: dict[int, dict[int, dict]] = {}
        for output in model_outputs:
            info = output["window_info"]
            info = info[0] if isinstance(info, list) else info
            window_outputs = {
                name: output[name].reshape(-1, *output[name].shape[2:])
                for name in ("amodal_masks", "pred_visible_masks", "scores")
            }
            frames_per_object.setdefault(info.object_index, {}).update(
                self.video_processor.post_process_window(
                    window_outputs, info.crop_box, info.track, info.window, mask_threshold, union_with_visible
                )
            )
        return [track_result(frames_per_object[index]) for index in sorted(frames_per_object)]


__all__ = ["VideoAmodalSegmentationPipeline"]
