"""Run a C2F-Seg model over an amodal dataset and score it (`evaluate_model`, behind `c2f-hf evaluate`).

Metric conventions: see `c2f_hf.evaluation`. Crops, paste-back and thresholds are the image processor's (the model
folder's saved `preprocessor_config.json` in `c2f-hf evaluate`), so the runner and the pipelines score one folder
alike: every object of the dataset (`data.schema.image_features()`) is cropped by `AmodalObjectDataset` with the
processor's `crop_resolution` and `enlarge_ratio` (`ObjectCropTransform.from_image_processor`, no augmentation),
the model predicts its amodal mask with K-step MaskGIT decoding, and `processor.post_process_amodal_masks` pastes
the probabilities back to the full image and thresholds them at the processor's `mask_threshold`. `AmodalMetrics`
then scores four variants per object (`prediction_variants`): the model, the model united with the input visible
mask, and the visible and convex-hull baselines, so the baselines go through exactly the same code as the model.

Visible source. With `visible_source="gt"` the model receives the ground-truth visible mask; with `"predicted"`
it receives the pre-detected visible masks (`predicted_visible_masks`): every detection is predicted, those
matched to a ground-truth object (`object_index` >= 0) are the objects scored by mIoU. Either way the
ground-truth visible mask defines the occluded region of IoU_occ.

AP / AR. With `visible_source="predicted"` each object's score is its detector's score (the `score` of its
`predicted_visible_masks` entry); a detection matched to no object (`object_index` -1) is predicted like the
others and enters AP / AR as a false positive, and after the run every ground-truth object of the evaluated
images that no detection matched enters as a false negative (`targets`). The evaluated images are every row, or,
with `max_objects`, the rows up to that of the last evaluated detection (a row cut in the middle keeps the
objects of its unevaluated detections out of AP). With ground-truth visible masks there is no detector: every
object is evaluated, and the score is the model's own confidence (`generate(...).scores`, the mean token
confidence), so AP measures how well that confidence ranks good amodal masks above bad ones. Every variant of an
object shares its score.

Video datasets (`data.schema.video_features()`) are evaluated per frame with the same metrics: each frame becomes
an image whose objects are the tracks visible in it (image id `"<video_id>/<frame index>"`). Frames where a track
is fully hidden (empty visible mask) or outside the frame are skipped for that track, because the crop is taken
from the visible mask: such frames count in no metric. An image model sees each frame alone
(`data.video_frames.frame_dataset`). A video model (`transformer_config.num_frames` = T set) sees each track
through the windows of `C2FSegVideoProcessor` (`clip_windows`, `preprocess_window`, `post_process_window`: one
crop box per window, each frame's result from the window where it is most central); it is scored on the same
(frame, track) pairs as an image model, so the two compare directly. Windows in which the track is never visible
on a frame they keep are skipped.

Sampling is reproducible: one `torch.Generator` seeded with `seed` serves the whole run, so results depend on
`seed` and `batch_size`; `greedy=True` is deterministic and independent of batching.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.transforms import (
    VISIBLE_SOURCES,
    AmodalObjectDataset,
    ObjectCropTransform,
    collate_object_crops,
    decode_mask,
    decode_rgb,
)
from ..data.video_frames import frame_dataset
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from ..models.c2f_seg.video_processing_c2f_seg import C2FSegVideoProcessor
from .accumulator import AmodalMetrics, EvaluationResults
from .targets import ObjectTargets, add_missed_objects, add_objects, add_unmatched_detections, read_object_targets

logger = logging.getLogger(__name__)


def evaluate_model(
    model: C2FSegForAmodalSegmentation,
    dataset: datasets.Dataset,
    *,
    image_processor: C2FSegImageProcessor | None = None,
    batch_size: int = 8,
    num_steps: int | None = None,
    seed: int = 0,
    greedy: bool = False,
    visible_source: str = "gt",
    occlusion_range: Sequence[float] | None = None,
    max_objects: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    predictions: list[dict] | None = None,
) -> EvaluationResults:
    """Predict every object of `dataset` and compute mIoU_full, mIoU_occ, per-bin mIoU and AP for the model, its
    union with the input visible mask and both baselines (see the module docstring).

    Args:
        model: the (unwrapped) model; it is put in eval mode for the run and its training mode restored after.
        dataset: one split of an image or video dataset in the common schema (`load_amodal_dataset`).
        image_processor: crops (`crop_resolution`, `enlarge_ratio`), paste-back and `mask_threshold`; load the
            model folder's with `C2FSegImageProcessor.from_pretrained`. Default: the processor's defaults with
            `crop_resolution = model.config.image_size`.
        batch_size: objects (video: windows of one track) per forward pass.
        num_steps: MaskGIT steps K (default `model.config.num_sampling_steps`).
        seed: seed of the one generator used for the whole run.
        greedy: argmax decoding without confidence noise (deterministic).
        visible_source: "gt" or "predicted" (the dataset's `predicted_visible_masks`, matched or not).
        occlusion_range: `(low, high)` fractions, inclusive; objects outside it are predicted but not counted.
        max_objects: evaluate only the first N samples: objects, or with "predicted" detections (matched or not),
            in dataset order, before the occlusion-range filter.
        device: where to run; None keeps the model where it is, otherwise the model is moved there.
        progress: show a tqdm bar (only on a terminal).
        predictions: when a list, every model prediction is appended to it (`targets.prediction_record`: image
            id, object and detection index, category, score and the full-size amodal mask as COCO RLE).
    """
    _check_arguments(batch_size, num_steps, max_objects, visible_source)
    processor = _checked_processor(image_processor, model)
    metrics = AmodalMetrics(occlusion_range=occlusion_range)
    if device is not None:
        model.to(device)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    settings = {
        "model": model.name_or_path,
        "dataset_rows": dataset.num_rows,
        "dataset_split": None if dataset.split is None else str(dataset.split),
        "crop_size": processor.crop_resolution,
        "enlarge_ratio": processor.enlarge_ratio,
        "mask_threshold": processor.mask_threshold,
        "num_steps": num_steps or model.config.num_sampling_steps,
        "seed": seed,
        "greedy": greedy,
        "visible_source": visible_source,
        "batch_size": batch_size,
        "max_objects": max_objects,
        "device": str(generator.device),
        "c2f_hf_version": importlib.metadata.version("c2f_hf"),
    }
    sampling = (visible_source, num_steps, generator, greedy, predictions)
    was_training = model.training
    model.eval()
    try:
        if model.config.transformer_config.num_frames is not None:
            _check_video_arguments(dataset, visible_source)
            run = _Run(model, processor, dataset.with_format("arrow"), *sampling)
            run.add_clips(metrics, batch_size, max_objects, progress)
        else:
            with tempfile.TemporaryDirectory(prefix="c2f_hf_frames_") as frames_dir:
                if "frames" in dataset.column_names:
                    dataset = frame_dataset(dataset, frames_dir, max_objects)
                objects = AmodalObjectDataset(
                    dataset,
                    seed=seed,
                    visible_source=visible_source,
                    transform=ObjectCropTransform.from_image_processor(processor),
                    include_unmatched=visible_source == "predicted",
                )
                run = _Run(model, processor, dataset.with_format("arrow"), *sampling)
                run.add_images(metrics, objects, batch_size, max_objects, progress)
    finally:
        model.train(was_training)
    logger.info("evaluated %d objects", len(metrics))
    return dataclasses.replace(metrics.compute(), run_settings=settings)


def _check_arguments(batch_size: int, num_steps: int | None, max_objects: int | None, visible_source: str) -> None:
    for name, value in (("batch_size", batch_size), ("num_steps", num_steps), ("max_objects", max_objects)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if visible_source not in VISIBLE_SOURCES:
        raise ValueError(f"`visible_source` must be one of {VISIBLE_SOURCES}, got {visible_source!r}")


def _checked_processor(
    image_processor: C2FSegImageProcessor | None, model: C2FSegForAmodalSegmentation
) -> C2FSegImageProcessor:
    """The run's processor (video models: its `C2FSegVideoProcessor`); its crops must be the model's input size."""
    if image_processor is None:
        image_processor = C2FSegImageProcessor(crop_resolution=model.config.image_size)
    image_processor = C2FSegImageProcessor.for_model(image_processor, model.config, model.name_or_path or "the model")
    if model.config.transformer_config.num_frames is not None:
        return C2FSegVideoProcessor.from_image_processor(image_processor)
    return image_processor


def _check_video_arguments(dataset: datasets.Dataset, visible_source: str) -> None:
    if "frames" not in dataset.column_names:
        raise ValueError(f"a video model needs a video dataset (a 'frames' column), got columns {dataset.column_names}")
    if visible_source != "gt":
        raise ValueError("video datasets have no pre-detected visible masks: use visible_source='gt'")


def _object_loader(
    objects: AmodalObjectDataset, batch_size: int, max_objects: int | None
) -> torch.utils.data.DataLoader:
    """Batches of evaluation crops in dataset order, at most `max_objects` samples."""
    if max_objects is not None and max_objects < len(objects):
        objects = torch.utils.data.Subset(objects, range(max_objects))
    return torch.utils.data.DataLoader(objects, batch_size=batch_size, shuffle=False, collate_fn=collate_object_crops)


def _evaluated_images(objects: AmodalObjectDataset, num_rows: int, max_objects: int | None) -> range:
    """Indices of the rows whose ground truth is evaluated: every row (`num_rows`), or, when `max_objects` cuts
    the samples, the rows up to that of the last evaluated sample."""
    if max_objects is None or max_objects >= len(objects):
        return range(num_rows)
    return range(int(objects.pairs[max_objects - 1][0]) + 1)


def _select(batch: dict[str, torch.Tensor], indices: list[int]) -> dict[str, torch.Tensor]:
    """The samples at `indices` of a collated batch, still collated."""
    positions = torch.tensor(indices, dtype=torch.long)
    return {key: value[positions] for key, value in batch.items()}


def paste_amodal_masks(
    amodal_masks: torch.Tensor, batch: dict[str, torch.Tensor], image_processor: C2FSegImageProcessor | None = None
) -> list[np.ndarray]:
    """Crop probabilities `(N, 1, S, S)` -> N full-size numpy bool `(H_i, W_i)` masks, pasted back and thresholded
    by `image_processor.post_process_amodal_masks` (default processor: `mask_threshold` 0.5).

    `batch` is the collated batch the crops came from: its `crop_box` `(N, 4)` (top, left, bottom, right),
    `image_height` and `image_width` `(N,)` place each crop back into its image.
    """
    processor = image_processor or C2FSegImageProcessor()
    sizes = torch.stack([batch["image_height"], batch["image_width"]], dim=1)
    per_object = processor.post_process_amodal_masks(amodal_masks, batch["crop_box"], sizes, range(len(sizes)))
    return [masks[0].numpy() for masks in per_object]


def track_windows(
    processor: C2FSegVideoProcessor, track: dict, frames: list[np.ndarray], num_frames: int
) -> list[dict]:
    """The windows of one track (`processor.clip_windows`) that keep at least one frame where it is visible:
    `window` (a `FrameWindow` whose `kept` holds only those frames), `track` (the `(F, H, W)` bool visible masks of
    the whole track) and the window's crops (`processor.preprocess_window`: `pixel_values (T, 3, S, S)`,
    `visible_masks (T, 1, S, S)`, `crop_box`)."""
    visible_masks = np.stack([decode_mask(mask) for mask in track["visible_masks"]])
    windows = []
    for window in processor.clip_windows(len(frames), num_frames):
        kept = tuple(position for position in window.kept if visible_masks[window.frame_indices[position]].any())
        if not kept:
            continue
        window = dataclasses.replace(window, kept=kept)
        windows.append(
            {"window": window, "track": visible_masks, **processor.preprocess_window(frames, visible_masks, window)}
        )
    return windows


@dataclass
class _Run:
    """What every batch of one evaluation shares: the model, its processor, the Arrow view of the rows, the
    sampling setup and, when a list, where model predictions are saved."""

    model: C2FSegForAmodalSegmentation
    processor: C2FSegImageProcessor
    rows: datasets.Dataset
    visible_source: str
    num_steps: int | None
    generator: torch.Generator
    greedy: bool
    predictions: list[dict] | None = None

    def add_images(
        self,
        metrics: AmodalMetrics,
        objects: AmodalObjectDataset,
        batch_size: int,
        max_objects: int | None,
        progress: bool,
    ) -> None:
        """Image model: predict the first `max_objects` samples of `objects` and add them to `metrics`; with
        detections, then add the missed ground-truth objects of the evaluated images."""
        loader = _object_loader(objects, batch_size, max_objects)
        with tqdm(total=len(loader.dataset), desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for batch in loader:
                self.add_batch(metrics, batch)
                bar.update(len(batch["crop_box"]))
        if self.visible_source == "predicted":
            for image_index in _evaluated_images(objects, self.rows.num_rows, max_objects):
                add_missed_objects(metrics, self.rows[image_index])

    def add_clips(self, metrics: AmodalMetrics, batch_size: int, max_objects: int | None, progress: bool) -> None:
        """Video model: predict every track of every clip window by window and add its visible frames."""
        num_frames = self.model.config.transformer_config.num_frames
        with tqdm(desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for clip in self.rows.iter(batch_size=1):
                clip = clip.to_pylist()[0]
                frames = [decode_rgb(frame) for frame in clip["frames"]]
                for track_index, track in enumerate(clip["objects"]):
                    windows = track_windows(self.processor, track, frames, num_frames)
                    for start in range(0, len(windows), batch_size):
                        batch = windows[start : start + batch_size]
                        bar.update(self.add_windows(metrics, batch, track, track_index, clip["video_id"]))
                    if max_objects is not None and len(metrics) >= max_objects:
                        return

    def _generate(self, pixel_values: torch.Tensor, visible_masks: torch.Tensor):
        """`model.generate` on a batch of crops (or clips), with the run's sampling settings."""
        device = self.generator.device
        return self.model.generate(
            pixel_values.to(device),
            visible_masks.to(device),
            num_steps=self.num_steps,
            generator=self.generator,
            greedy=self.greedy,
        )

    def add_windows(
        self, metrics: AmodalMetrics, windows: list[dict], track: dict, track_index: int, video_id: str
    ) -> int:
        """Predict a batch of one track's windows (`track_windows`), paste back the frames each window keeps with
        `processor.post_process_window` and add them to `metrics`; returns how many frames were added."""
        output = self._generate(
            torch.stack([window["pixel_values"] for window in windows]),
            torch.stack([window["visible_masks"] for window in windows]),
        )
        added = 0
        for index, window in enumerate(windows):
            window_outputs = {name: output[name][index].cpu() for name in ("amodal_masks", "pred_visible_masks")}
            window_outputs["scores"] = output.scores[index].float().cpu()
            results = self.processor.post_process_window(
                window_outputs, window["crop_box"], window["track"], window["window"]
            )
            for frame, result in results.items():
                target = ObjectTargets(
                    amodal_mask=decode_mask(track["amodal_masks"][frame]),
                    visible_mask=window["track"][frame],
                    input_visible_mask=window["track"][frame],
                    image_id=f"{video_id}/{frame}",
                    category=track["category"],
                    occlusion_rate=track["occlusion_rates"][frame],
                    object_index=track_index,
                )
                add_objects(metrics, [result["amodal_mask"]], [target], [result["score"]], self.predictions)
                added += 1
        return added

    def add_batch(self, metrics: AmodalMetrics, batch: dict[str, torch.Tensor]) -> None:
        """Predict one collated batch of `AmodalObjectDataset` and add its objects and its unmatched detections
        (`object_index` -1) to `metrics`."""
        output = self._generate(self.processor.normalize_crops(batch["pixel_values"]), batch["visible_masks"])
        pred_amodal_masks = paste_amodal_masks(output.amodal_masks, batch, self.processor)
        model_scores = output.scores.float().cpu().tolist()
        object_indices = batch["object_index"].tolist()
        matched = [index for index, object_index in enumerate(object_indices) if object_index >= 0]
        unmatched = [index for index, object_index in enumerate(object_indices) if object_index < 0]
        targets = read_object_targets(self.rows, _select(batch, matched), self.visible_source)
        scores = [
            model_scores[index] if target.detector_score is None else target.detector_score
            for index, target in zip(matched, targets, strict=True)
        ]
        add_objects(metrics, [pred_amodal_masks[index] for index in matched], targets, scores, self.predictions)
        add_unmatched_detections(
            metrics,
            self.rows,
            _select(batch, unmatched),
            [pred_amodal_masks[index] for index in unmatched],
            self.predictions,
        )


__all__ = ["evaluate_model", "paste_amodal_masks", "track_windows"]
