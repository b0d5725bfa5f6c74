"""Run a C2F-Seg model over an amodal dataset and score it (`evaluate_model`, behind `c2f-hf evaluate`).

Metric conventions: see `c2f_hf.evaluation`. Crops, paste-back and thresholds are the image processor's (the model
folder's saved `preprocessor_config.json` in `c2f-hf evaluate`), so the runner and the pipelines score one folder
alike: every object of the dataset (`data.schema.image_features()`) is cropped by `AmodalObjectDataset` with the
processor's `crop_resolution` and `enlarge_ratio` (`ObjectCropTransform.from_image_processor`, no augmentation),
the model predicts its amodal mask with K-step MaskGIT decoding, and `processor.post_process_amodal_masks` pastes
the probabilities back to the full image and thresholds them at the processor's `mask_threshold`. `AmodalMetrics`
then scores five variants per object (`prediction_variants`): the model, the model united with the input visible
mask, the model restricted to its occluders (the authors' MOViD-A post-processing: the input visible mask plus the
predicted pixels on the other objects' input visible masks of the same image or frame), and the visible and
convex-hull baselines, so the baselines go through exactly the same code as the model.

Visible source. With `visible_source="gt"` the model receives the ground-truth visible mask; with `"predicted"`
it receives the pre-detected visible masks (`predicted_visible_masks`): every detection is predicted, those
matched to a ground-truth object (`object_index` >= 0) are the objects scored by mIoU. Either way the
ground-truth visible mask defines the occluded region of IoU_occ and so which objects are unoccluded, the objects
of the invented area.

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

Sampling is reproducible: every object draws from its own `torch.Generator` (`maskgit.object_generators`), keyed
by its position in the dataset (an image model's sample index; a video track's index, then each window's first
frame), so its random draws depend on `seed` but neither on `batch_size` nor on the number of processes;
`greedy=True` draws nothing. (The model's floating-point rounding may still differ with the batch size, which can
move a probability or score that lies on a threshold or a tie.)

Several processes (`processes`, see `evaluation.distributed`): each takes one contiguous share of the batches of
samples (`object_batches`, so every batch holds the same samples as in one process; video: of the tracks) and of
the images whose missed objects it adds, the main process merges the shares in process order
(`AmodalMetrics.merge`), and every process returns the same results, equal to a one-process run's with the same
`batch_size`. Saved predictions are in dataset order: sample by sample (video: track by track, window by window).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.transforms import (
    VISIBLE_SOURCES,
    AmodalObjectDataset,
    ObjectCropTransform,
    check_crop_source,
    collate_object_crops,
    decode_mask,
    decode_rgb,
    object_pair_index,
)
from ..data.video_frames import frame_dataset
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.maskgit import object_generators, object_seed
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from ..models.c2f_seg.second_crop import with_second_crops
from ..models.c2f_seg.video_processing_c2f_seg import C2FSegVideoProcessor, check_clip_mode
from .accumulator import AmodalMetrics, EvaluationResults
from .distributed import Processes
from .targets import (
    ObjectTargets,
    add_missed_objects,
    add_objects,
    add_unmatched_detections,
    clip_occluder_masks,
    read_object_targets,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceOptions:
    """How objects are cropped and decoded: `num_steps` MaskGIT steps (None: the model config's), `greedy` argmax
    decoding, or sampling with one generator per object seeded from `seed` and the object's key
    (`maskgit.object_generators`); `crop_from` the mask an image object's crop box comes from ("visible", ours and
    the pipelines'; "amodal", the authors' rule for COCOA's ground-truth objects: `ObjectCropTransform`);
    `clip_mode` how a video model covers a clip longer than its window ("windows" or "sequence":
    `C2FSegVideoProcessor.clip_windows`)."""

    num_steps: int | None = None
    seed: int = 0
    greedy: bool = False
    crop_from: str = "visible"
    clip_mode: str = "windows"


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
    processes: Processes | None = None,
    crop_from: str = "visible",
    clip_mode: str = "windows",
) -> EvaluationResults:
    """Predict every object of `dataset` and compute mIoU_full, mIoU_occ, the invented area, per-bin mIoU and AP
    for the model, its union with the input visible mask and both baselines (see the module docstring).

    Args:
        model: the (unwrapped) model; it is put in eval mode for the run and its training mode restored after.
        dataset: one split of an image or video dataset in the common schema (`load_amodal_dataset`).
        image_processor: crops (`crop_resolution`, `enlarge_ratio`), paste-back and `mask_threshold`; load the
            model folder's with `C2FSegImageProcessor.from_pretrained`. Default: the processor's defaults with
            `crop_resolution = model.config.image_size`.
        batch_size: objects (video: windows of one track) per forward pass; the random draws do not depend on it.
        num_steps: MaskGIT steps K (default `model.config.num_sampling_steps`).
        seed: seed of the per-object generators.
        greedy: argmax decoding without confidence noise (deterministic).
        visible_source: "gt" or "predicted" (the dataset's `predicted_visible_masks`, matched or not).
        occlusion_range: `(low, high)` fractions, inclusive; objects outside it are predicted but not counted.
        max_objects: evaluate only the first N samples: objects, or with "predicted" detections (matched or not),
            in dataset order, before the occlusion-range filter.
        device: where to run; None keeps the model where it is, otherwise the model is moved there.
        progress: show a tqdm bar (only on a terminal).
        predictions: when a list, every model prediction is appended to it in dataset order
            (`targets.prediction_record`: image id, object and detection index, category, score and the full-size
            amodal mask as COCO RLE); with several processes, on the main process only.
        processes: the processes sharing the run (`distributed.launched_processes`); every one of them must call
            this and gets the same results. Default: this process alone.
        crop_from: image objects' crop boxes from their "visible" mask (default, as the pipelines crop) or from
            their ground-truth "amodal" mask (the authors' rule for COCOA's ground-truth objects; it tells the model
            the object's extent, so only with `visible_source="gt"`).
        clip_mode: video models: "windows" (overlapping windows of T frames) or "sequence" (the whole clip as one
            rolled sequence, the authors' FISHBOWL test mode); see `C2FSegVideoProcessor.clip_windows`.
    """
    _check_arguments(batch_size, num_steps, max_objects, visible_source)
    check_input_options(crop_from, clip_mode, visible_source)
    processor = _checked_processor(image_processor, model)
    processes = processes or Processes()
    if device is not None:
        model.to(device)
    settings = {
        "model": model.name_or_path,
        "dataset_rows": dataset.num_rows,
        "dataset_split": None if dataset.split is None else str(dataset.split),
        "crop_size": processor.crop_resolution,
        "enlarge_ratio": processor.enlarge_ratio,
        "second_crop_ratio": processor.second_crop_ratio,
        "mask_threshold": processor.mask_threshold,
        "num_steps": num_steps or model.config.num_sampling_steps,
        "seed": seed,
        "greedy": greedy,
        "visible_source": visible_source,
        "crop_from": crop_from,
        "clip_mode": clip_mode,
        "dtype": str(model.dtype).removeprefix("torch."),
        "batch_size": batch_size,
        "max_objects": max_objects,
        "device": str(next(model.parameters()).device),
        "num_processes": processes.count,
        "c2f_hf_version": importlib.metadata.version("c2f_hf"),
    }
    metrics = AmodalMetrics(occlusion_range=occlusion_range)
    shard_predictions = None if predictions is None else []
    options = InferenceOptions(num_steps, seed, greedy, crop_from, clip_mode)
    run = _Run(model, processor, visible_source, options, shard_predictions)
    was_training = model.training
    model.eval()
    try:
        run.add_dataset(metrics, dataset, batch_size, max_objects, processes, progress)
    finally:
        model.train(was_training)
    merged = _merged(processes, metrics, shard_predictions)
    results = processes.broadcast(None if merged is None else merged[0].compute())
    if merged is not None and predictions is not None:
        predictions.extend(merged[1])
    logger.info("evaluated %d objects", results.num_objects_added)
    return dataclasses.replace(results, run_settings=settings)


def _merged(
    processes: Processes, metrics: AmodalMetrics, predictions: list[dict] | None
) -> tuple[AmodalMetrics, list[dict]] | None:
    """On the main process, every process's metrics and predictions merged in process order; None elsewhere."""
    shares = processes.gather((metrics, predictions or []))
    if shares is None:
        return None
    merged, merged_predictions = shares[0]
    for share_metrics, share_predictions in shares[1:]:
        merged.merge(share_metrics)
        merged_predictions.extend(share_predictions)
    return merged, merged_predictions


def _check_arguments(batch_size: int, num_steps: int | None, max_objects: int | None, visible_source: str) -> None:
    for name, value in (("batch_size", batch_size), ("num_steps", num_steps), ("max_objects", max_objects)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if visible_source not in VISIBLE_SOURCES:
        raise ValueError(f"`visible_source` must be one of {VISIBLE_SOURCES}, got {visible_source!r}")


def check_input_options(crop_from: str, clip_mode: str, visible_source: str) -> None:
    """ValueError unless `crop_from` and `clip_mode` are known and an amodal crop comes with ground-truth input."""
    check_crop_source(crop_from)
    if crop_from == "amodal" and visible_source != "gt":
        raise ValueError(
            "`crop_from='amodal'` crops ground-truth objects from their amodal mask: use visible_source='gt'"
        )
    check_clip_mode(clip_mode)


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


def evaluation_objects(
    dataset: datasets.Dataset,
    processor: C2FSegImageProcessor,
    visible_source: str,
    options: InferenceOptions = InferenceOptions(),
) -> AmodalObjectDataset:
    """The evaluation samples of an image dataset: every object's crop (with "predicted": every detection's, matched
    or not), in dataset order, cropped by `processor` without augmentation, from `options.crop_from`."""
    return AmodalObjectDataset(
        dataset,
        seed=options.seed,
        visible_source=visible_source,
        transform=ObjectCropTransform.from_image_processor(processor, crop_from=options.crop_from),
        include_unmatched=visible_source == "predicted",
    )


def object_batches(
    objects: AmodalObjectDataset, samples: range, batch_size: int, processes: Processes
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """This process's batches of the samples `samples` of `objects`: the samples are cut into batches of
    `batch_size` in order and each process takes a contiguous share of the batches, so every batch holds the same
    samples whatever the number of processes (and the model computes them alike). Yields the batch's sample
    indices (the keys of their generators) and its collated crops."""
    batches = [list(samples[start : start + batch_size]) for start in range(0, len(samples), batch_size)]
    keys = [batches[index] for index in processes.shard(range(len(batches)))]
    loader = torch.utils.data.DataLoader(objects, batch_sampler=keys, collate_fn=collate_object_crops)
    return zip(keys, loader)


def _evaluated_images(objects: AmodalObjectDataset, num_rows: int, num_samples: int) -> range:
    """Indices of the rows whose ground truth is evaluated: every row (`num_rows`), or, when the run evaluates only
    the first `num_samples` samples, the rows up to that of the last one."""
    if num_samples >= len(objects):
        return range(num_rows)
    return range(int(objects.pairs[num_samples - 1][0]) + 1)


def _evaluated_tracks(rows: datasets.Dataset, tracks: np.ndarray, max_objects: int | None) -> int:
    """How many of the `(N, 2)` `(clip, track)` pairs a video model evaluates, in order: all of them, or the fewest
    whose frames with a visible object (each evaluated once) reach `max_objects`."""
    if max_objects is None:
        return len(tracks)
    num_frames = 0
    for count, (clip_index, track_index) in enumerate(tracks.tolist(), start=1):
        track = rows[clip_index].column("objects")[0].values[track_index].as_py()
        num_frames += sum(bool(decode_mask(mask).any()) for mask in track["visible_masks"])
        if num_frames >= max_objects:
            return count
    return len(tracks)


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


def predict_object_batch(
    model: C2FSegForAmodalSegmentation,
    processor: C2FSegImageProcessor,
    batch: dict[str, torch.Tensor],
    keys: Sequence[int],
    options: InferenceOptions,
    objects: AmodalObjectDataset,
) -> tuple[list[np.ndarray], list[float]]:
    """The full-size amodal masks (numpy bool `(H_i, W_i)`, `paste_amodal_masks`) and the model's scores (mean token
    confidence) of a collated batch of `evaluation_objects` (`objects`, which gives the image and visible mask of an
    object the processor's `second_crop_ratio` crops again: `second_crop.with_second_crops`); sample i draws from
    the generator of key `keys[i]`, in its second crop too."""
    device = next(model.parameters()).device

    def generate(indices: list[int], pixel_values: torch.Tensor, visible_masks: torch.Tensor):
        return model.generate(
            pixel_values.to(device),
            visible_masks.to(device),
            num_steps=options.num_steps,
            generator=object_generators(options.seed, [keys[index] for index in indices], device),
            greedy=options.greedy,
        )

    indices = list(range(len(keys)))
    output = generate(indices, processor.normalize_crops(batch["pixel_values"]), batch["visible_masks"])
    sizes = list(zip(batch["image_height"].tolist(), batch["image_width"].tolist()))
    output, boxes = with_second_crops(
        output, batch["crop_box"], sizes, lambda index: objects.input_arrays(keys[index]), generate, processor
    )
    pasted = paste_amodal_masks(output.amodal_masks, {**batch, "crop_box": boxes}, processor)
    return pasted, output.scores.float().cpu().tolist()


def track_windows(
    processor: C2FSegVideoProcessor, track: dict, frames: list[np.ndarray], num_frames: int, clip_mode: str = "windows"
) -> list[dict]:
    """The windows of one track (`processor.clip_windows` in `clip_mode`) that keep at least one frame where it is
    visible: `window` (a `FrameWindow` whose `kept` holds only those frames), `track` (the `(F, H, W)` bool visible
    masks of the whole track) and the window's crops (`processor.preprocess_window`: `pixel_values (L, 3, S, S)`,
    `visible_masks (L, 1, S, S)`, `crop_box`; L = T, or a multiple of T in the "sequence" mode)."""
    visible_masks = np.stack([decode_mask(mask) for mask in track["visible_masks"]])
    windows = []
    for window in processor.clip_windows(len(frames), num_frames, clip_mode):
        kept = tuple(position for position in window.kept if visible_masks[window.frame_indices[position]].any())
        if not kept:
            continue
        window = dataclasses.replace(window, kept=kept)
        windows.append(
            {"window": window, "track": visible_masks, **processor.preprocess_window(frames, visible_masks, window)}
        )
    return windows


def clips_of_tracks(
    rows: datasets.Dataset, tracks: np.ndarray, keys: range
) -> Iterator[tuple[int, dict, list[np.ndarray]]]:
    """For each track `key` of `keys` (indices into the `(N, 2)` `(clip, track)` pairs `tracks`): the key, its clip
    (a row of `rows`, the dataset in Arrow format, as Python) and the clip's decoded frames, each clip decoded
    once for its consecutive tracks."""
    clip_index, clip, frames = None, None, None
    for key in keys:
        if tracks[key][0] != clip_index:
            clip_index = tracks[key][0]
            clip = rows[int(clip_index)].to_pylist()[0]
            frames = [decode_rgb(frame) for frame in clip["frames"]]
        yield key, clip, frames


def predict_track_frames(
    model: C2FSegForAmodalSegmentation,
    processor: C2FSegVideoProcessor,
    frames: list[np.ndarray],
    track: dict,
    key: int,
    options: InferenceOptions,
    batch_size: int,
) -> dict[int, dict]:
    """A video model's results on one track (a video row's `objects` entry, as Python) of a clip (`frames`, `(H, W,
    3)` uint8 each): `{frame index: processor.post_process_window result}` (`amodal_mask`, `score`, ...) for every
    frame where the track is visible, in frame order. Its windows (`track_windows`) run `batch_size` at a time;
    each window draws from the generator keyed by the window's first frame under the track's `key`."""
    windows = track_windows(processor, track, frames, model.config.transformer_config.num_frames, options.clip_mode)
    device = next(model.parameters()).device
    results = {}
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        output = model.generate(
            torch.stack([window["pixel_values"] for window in batch]).to(device),
            torch.stack([window["visible_masks"] for window in batch]).to(device),
            num_steps=options.num_steps,
            generator=object_generators(
                object_seed(options.seed, key), [window["window"].start for window in batch], device
            ),
            greedy=options.greedy,
        )
        for index, window in enumerate(batch):
            window_outputs = {name: output[name][index].cpu() for name in ("amodal_masks", "pred_visible_masks")}
            window_outputs["scores"] = output.scores[index].float().cpu()
            results.update(
                processor.post_process_window(window_outputs, window["crop_box"], window["track"], window["window"])
            )
    return dict(sorted(results.items()))


@dataclass
class _Run:
    """What every batch of one evaluation shares: the model, its processor, the visible source, the options and,
    when a list, where this process's model predictions are saved."""

    model: C2FSegForAmodalSegmentation
    processor: C2FSegImageProcessor
    visible_source: str
    options: InferenceOptions
    predictions: list[dict] | None = None

    def add_dataset(
        self,
        metrics: AmodalMetrics,
        dataset: datasets.Dataset,
        batch_size: int,
        max_objects: int | None,
        processes: Processes,
        progress: bool,
    ) -> None:
        """Add this process's share of the objects of `dataset` to `metrics` (a video model: of its tracks; an image
        model: of its objects, or of its frames' objects for a video dataset)."""
        if self.model.config.transformer_config.num_frames is not None:
            _check_video_arguments(dataset, self.visible_source)
            self.add_clips(metrics, dataset.with_format("arrow"), batch_size, max_objects, processes, progress)
            return
        with tempfile.TemporaryDirectory(prefix="c2f_hf_frames_") as frames_dir:
            if "frames" in dataset.column_names:
                dataset = frame_dataset(dataset, frames_dir, max_objects)
            objects = evaluation_objects(dataset, self.processor, self.visible_source, self.options)
            rows = dataset.with_format("arrow")
            self.add_images(metrics, rows, objects, batch_size, max_objects, processes, progress)

    def add_images(
        self,
        metrics: AmodalMetrics,
        rows: datasets.Dataset,
        objects: AmodalObjectDataset,
        batch_size: int,
        max_objects: int | None,
        processes: Processes,
        progress: bool,
    ) -> None:
        """Image model: predict this process's share of the first `max_objects` samples of `objects` and add them to
        `metrics`; with detections, then add the missed ground-truth objects of its share of the evaluated images
        (`rows`: the dataset in Arrow format)."""
        num_samples = len(objects) if max_objects is None else min(max_objects, len(objects))
        with tqdm(desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for keys, batch in object_batches(objects, range(num_samples), batch_size, processes):
                self.add_batch(metrics, rows, batch, keys, objects)
                bar.update(len(keys))
        if self.visible_source == "predicted":
            for image_index in processes.shard(_evaluated_images(objects, rows.num_rows, num_samples)):
                add_missed_objects(metrics, rows[image_index])

    def add_clips(
        self,
        metrics: AmodalMetrics,
        rows: datasets.Dataset,
        batch_size: int,
        max_objects: int | None,
        processes: Processes,
        progress: bool,
    ) -> None:
        """Video model: predict this process's share of the tracks (`rows`: the clips in Arrow format) window by
        window and add their visible frames."""
        tracks = object_pair_index(rows)
        keys = processes.shard(range(_evaluated_tracks(rows, tracks, max_objects)))
        occluders_clip, occluders = None, None
        with tqdm(desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for key, clip, frames in clips_of_tracks(rows, tracks, keys):
                if occluders_clip != tracks[key][0]:
                    occluders_clip = tracks[key][0]
                    occluders = clip_occluder_masks(clip["objects"])  # (N, F, H, W): the other tracks per frame
                track_index = int(tracks[key][1])
                results = predict_track_frames(
                    self.model, self.processor, frames, clip["objects"][track_index], key, self.options, batch_size
                )
                self.add_track(metrics, results, clip, track_index, occluders[track_index])
                bar.update(len(results))

    def add_track(
        self, metrics: AmodalMetrics, results: dict[int, dict], clip: dict, track_index: int, occluder_masks
    ) -> None:
        """Add the frames of track `track_index` of `clip` (a video row as Python) that `predict_track_frames`
        completed (`results`) to `metrics`. `occluder_masks` `(F, H, W)` bool: the other tracks' visible masks on
        each frame (`targets.clip_occluder_masks`), for the occluder-restricted variant."""
        track = clip["objects"][track_index]
        for frame, result in results.items():
            visible_mask = decode_mask(track["visible_masks"][frame])
            target = ObjectTargets(
                amodal_mask=decode_mask(track["amodal_masks"][frame]),
                visible_mask=visible_mask,
                input_visible_mask=visible_mask,
                image_id=f"{clip['video_id']}/{frame}",
                category=track["category"],
                occlusion_rate=track["occlusion_rates"][frame],
                object_index=track_index,
                occluder_mask=occluder_masks[frame],
            )
            add_objects(metrics, [result["amodal_mask"]], [target], [result["score"]], self.predictions)

    def add_batch(
        self,
        metrics: AmodalMetrics,
        rows: datasets.Dataset,
        batch: dict[str, torch.Tensor],
        keys: list[int],
        objects: AmodalObjectDataset,
    ) -> None:
        """Predict one collated batch of `objects` (`evaluation_objects`; sample indices `keys`) and add its objects
        and its unmatched detections (`object_index` -1) to `metrics`; saved predictions keep the samples' order."""
        pred_amodal_masks, model_scores = predict_object_batch(
            self.model, self.processor, batch, keys, self.options, objects
        )
        object_indices = batch["object_index"].tolist()
        matched = [index for index, object_index in enumerate(object_indices) if object_index >= 0]
        unmatched = [index for index, object_index in enumerate(object_indices) if object_index < 0]
        targets = read_object_targets(rows, _select(batch, matched), self.visible_source)
        scores = [
            model_scores[index] if target.detector_score is None else target.detector_score
            for index, target in zip(matched, targets, strict=True)
        ]
        records = ([], []) if self.predictions is not None else (None, None)
        add_objects(metrics, [pred_amodal_masks[index] for index in matched], targets, scores, records[0])
        add_unmatched_detections(
            metrics, rows, _select(batch, unmatched), [pred_amodal_masks[index] for index in unmatched], records[1]
        )
        if self.predictions is not None:
            by_sample = dict(zip(matched, records[0])) | dict(zip(unmatched, records[1]))
            self.predictions.extend(by_sample[index] for index in range(len(keys)))


__all__ = [
    "InferenceOptions",
    "check_input_options",
    "clips_of_tracks",
    "evaluate_model",
    "evaluation_objects",
    "object_batches",
    "paste_amodal_masks",
    "predict_track_frames",
    "track_windows",
]
