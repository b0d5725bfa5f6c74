"""Run a C2F-Seg model over an amodal dataset and score it with `c2f_hf.evaluation` (`c2f-hf evaluate`).

Every object of the dataset (`data.schema.image_features()`) is cropped by `AmodalObjectDataset` (evaluation
crops: enlarge ratio 2.0, no augmentation), the model predicts its amodal mask with K-step MaskGIT decoding, and
the predicted probabilities are pasted back to the full image with `paste_crop` and thresholded at the image
processor's `mask_threshold` (0.5). `AmodalMetrics` then scores four variants per object (`prediction_variants`):
the model, the model united with the input visible mask, and the visible and convex-hull baselines, so the
baselines go through exactly the same code as the model.

Visible source. With `visible_source="gt"` the model receives the ground-truth visible mask; with `"predicted"`
it receives the pre-detected visible masks (`predicted_visible_masks`): every detection is predicted, those
matched to a ground-truth object (`object_index` >= 0) are the objects scored by mIoU. Either way the
ground-truth visible mask defines the occluded region of IoU_occ, and the union variant and the baselines are
built from the mask the model received.

AP / AR. With `visible_source="predicted"` each object's score is its detector's score (the `score` of its
`predicted_visible_masks` entry), and, as in the paper and COCO, AP / AR take every detection against every
ground-truth object of each evaluated image: a detection matched to no object (`object_index` -1) is predicted
like the others (variants from its detected visible mask, its own category and score) and enters AP / AR as a
false positive (`AmodalMetrics.add_unmatched_detection`); after the run, every ground-truth object of the
evaluated images that no detection matched (in the dataset's `object_index` fields) enters as a false negative
(`AmodalMetrics.add_missed_object`, filtered by `occlusion_range` like any object). Neither enters mIoU or the
object counts; `EvaluationResults` reports how many there were. The evaluated images are every row, or, with
`max_objects`, the rows up to that of the last evaluated detection (a row cut in the middle keeps the objects
of its unevaluated detections out of AP). With ground-truth visible masks there is no detector: every object is
evaluated, and the score is the model's own confidence (`generate(...).scores`, the mean token confidence), so
AP measures how well that confidence ranks good amodal masks above bad ones. Every variant of an object shares
its score.

Video datasets (`data.schema.video_features()`) are evaluated per frame with the same metrics: each frame becomes
an image whose objects are the tracks visible in it (image id `"<video_id>/<frame index>"`). Frames where a track
is fully hidden (empty visible mask) or outside the frame are skipped for that track, because the crop is taken
from the visible mask: such frames count in no metric. An image model sees each frame alone. A video model
(`transformer_config.num_frames` = T set) sees each track through windows of T frames
(`video_windows.frame_windows`: stride T // 2, each frame's result from the window where it is most central),
cropped with one box per window (`clip_crop_box`, enlarge ratio 2.0); it is scored on the same (frame, track)
pairs as an image model, so the two compare directly. Windows in which the track is never visible are skipped.

Sampling is reproducible: one `torch.Generator` seeded with `seed` serves the whole run, so results depend on
`seed` and `batch_size`; `greedy=True` is deterministic and independent of batching.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from .checkpoints import default_model_path
from .data.schema import image_features, load_amodal_dataset, split_path, write_split
from .data.transforms import (
    VISIBLE_SOURCES,
    AmodalObjectDataset,
    collate_object_crops,
    crop_boxes,
    decode_mask,
    decode_rgb,
)
from .data.video_transforms import ClipCropTransform
from .evaluation import AmodalMetrics, EvaluationResults, format_markdown, prediction_variants, write_report
from .image_processing_c2f_seg import C2FSegImageProcessor, CropBox, paste_crop
from .modeling_c2f_seg import C2FSegForAmodalSegmentation
from .video_windows import frame_windows

logger = logging.getLogger(__name__)

MODEL_VARIANT = "model"


@dataclass(frozen=True)
class ObjectTargets:
    """Full-size ground truth of one evaluated object, all masks numpy bool `(H, W)` at the image size.

    `visible_mask` is the ground-truth visible mask (defines the occluded region); `input_visible_mask` is the
    mask the model received (the same one with `visible_source="gt"`, the detected one with `"predicted"`);
    `detector_score` is the detection's score with `"predicted"`, else None.
    """

    amodal_mask: np.ndarray
    visible_mask: np.ndarray
    input_visible_mask: np.ndarray
    image_id: str
    category: str
    occlusion_rate: float
    detector_score: float | None = None


def evaluate_model(
    model: C2FSegForAmodalSegmentation,
    dataset: datasets.Dataset,
    *,
    crop_size: int | None = None,
    batch_size: int = 8,
    num_steps: int | None = None,
    seed: int = 0,
    greedy: bool = False,
    visible_source: str = "gt",
    occlusion_range: Sequence[float] | None = None,
    max_objects: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> EvaluationResults:
    """Predict every object of `dataset` and compute mIoU_full, mIoU_occ, per-bin mIoU and AP for the model, its
    union with the input visible mask and both baselines (see the module docstring).

    Args:
        model: the (unwrapped) model; it is put in eval mode for the run and its training mode restored after.
        dataset: one split of an image or video dataset in the common schema (`load_amodal_dataset`).
        crop_size: side S of the object crops (default `model.config.image_size`).
        batch_size: objects per forward pass.
        num_steps: MaskGIT steps K (default `model.config.num_sampling_steps`).
        seed: seed of the one generator used for the whole run.
        greedy: argmax decoding without confidence noise (deterministic).
        visible_source: "gt" or "predicted" (the dataset's `predicted_visible_masks`, matched or not).
        occlusion_range: `(low, high)` fractions, inclusive; objects outside it are predicted but not counted.
        max_objects: evaluate only the first N samples: objects, or with "predicted" detections (matched or not),
            in dataset order, before the occlusion-range filter.
        device: where to run; None keeps the model where it is, otherwise the model is moved there.
        progress: show a tqdm bar (only on a terminal).
    """
    _check_arguments(batch_size, num_steps, max_objects, visible_source)
    metrics = AmodalMetrics(occlusion_range=occlusion_range)
    if device is not None:
        model.to(device)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    settings = {
        "model": model.name_or_path,
        "dataset_rows": dataset.num_rows,
        "dataset_split": None if dataset.split is None else str(dataset.split),
        "crop_size": crop_size or model.config.image_size,
        "num_steps": num_steps or model.config.num_sampling_steps,
        "seed": seed,
        "greedy": greedy,
        "visible_source": visible_source,
        "batch_size": batch_size,
        "max_objects": max_objects,
        "device": str(generator.device),
        "c2f_hf_version": importlib.metadata.version("c2f_hf"),
    }
    was_training = model.training
    model.eval()
    try:
        if model.config.transformer_config.num_frames is not None:
            _check_video_arguments(dataset, visible_source)
            run = _Run(model, dataset.with_format("arrow"), visible_source, num_steps, generator, greedy)
            run.add_clips(metrics, batch_size, max_objects, progress)
        else:
            with tempfile.TemporaryDirectory(prefix="c2f_hf_frames_") as frames_dir:
                if "frames" in dataset.column_names:
                    dataset = frame_dataset(dataset, frames_dir, max_objects)
                objects = AmodalObjectDataset(
                    dataset,
                    settings["crop_size"],
                    training=False,
                    seed=seed,
                    visible_source=visible_source,
                    include_unmatched=visible_source == "predicted",
                )
                run = _Run(model, dataset.with_format("arrow"), visible_source, num_steps, generator, greedy)
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


@dataclass
class _Run:
    """What every batch of one evaluation shares: the model, the Arrow view of the rows and the sampling setup."""

    model: C2FSegForAmodalSegmentation
    rows: datasets.Dataset
    visible_source: str
    num_steps: int | None
    generator: torch.Generator
    greedy: bool

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
        self.add_all(metrics, _object_loader(objects, batch_size, max_objects), progress)
        if self.visible_source == "predicted":
            for image_index in _evaluated_images(objects, self.rows.num_rows, max_objects):
                _add_missed_objects(metrics, self.rows[image_index])

    def add_all(self, metrics: AmodalMetrics, loader: torch.utils.data.DataLoader, progress: bool) -> None:
        """Predict every batch of `loader` and add its objects to `metrics`, with a tqdm bar when `progress`."""
        with tqdm(total=len(loader.dataset), desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for batch in loader:
                self.add_batch(metrics, batch)
                bar.update(len(batch["crop_box"]))

    def add_clips(self, metrics: AmodalMetrics, batch_size: int, max_objects: int | None, progress: bool) -> None:
        """Video model: predict every track of every clip window by window and add its visible frames."""
        transform = ClipCropTransform(crop_size=self.model.config.image_size)
        num_frames = self.model.config.transformer_config.num_frames
        with tqdm(desc="evaluate", unit="object", disable=None if progress else True) as bar:
            for clip in self.rows.iter(batch_size=1):
                clip = clip.to_pylist()[0]
                frames = [decode_rgb(frame) for frame in clip["frames"]]
                for track in clip["objects"]:
                    windows = track_windows(track, frames, num_frames, transform)
                    for start in range(0, len(windows), batch_size):
                        added = self.add_windows(metrics, windows[start : start + batch_size], track, clip["video_id"])
                        bar.update(added)
                    if max_objects is not None and len(metrics) >= max_objects:
                        return

    def _generate(self, batch: dict[str, torch.Tensor]):
        """`model.generate` on a collated batch of crops (or clips), with the run's sampling settings."""
        device = self.generator.device
        return self.model.generate(
            batch["pixel_values"].to(device),
            batch["visible_masks"].to(device),
            num_steps=self.num_steps,
            generator=self.generator,
            greedy=self.greedy,
        )

    def add_windows(self, metrics: AmodalMetrics, windows: list[dict], track: dict, video_id: str) -> int:
        """Predict a batch of one track's windows (`track_windows`) and add the frames each window keeps."""
        output = self._generate(collate_object_crops([window["crops"] for window in windows]))
        added = 0
        for window, amodal_masks, scores in zip(windows, output.amodal_masks, output.scores.float().cpu()):
            box, (height, width) = CropBox.from_list(window["crops"]["crop_box"].tolist()), window["image_size"]
            for position, frame in window["frames"]:
                pasted = paste_crop(amodal_masks[position].float().cpu(), box, height, width)[0]
                prediction = (pasted >= C2FSegImageProcessor.mask_threshold).numpy()
                visible_mask = decode_mask(track["visible_masks"][frame])
                target = ObjectTargets(
                    amodal_mask=decode_mask(track["amodal_masks"][frame]),
                    visible_mask=visible_mask,
                    input_visible_mask=visible_mask,
                    image_id=f"{video_id}/{frame}",
                    category=track["category"],
                    occlusion_rate=track["occlusion_rates"][frame],
                )
                add_objects(metrics, [prediction], [target], [float(scores[position])])
                added += 1
        return added

    def add_batch(self, metrics: AmodalMetrics, batch: dict[str, torch.Tensor]) -> None:
        """Predict one collated batch of `AmodalObjectDataset` and add its objects and its unmatched detections
        (`object_index` -1) to `metrics`."""
        output = self._generate(batch)
        pred_amodal_masks = paste_amodal_masks(output.amodal_masks, batch)
        model_scores = output.scores.float().cpu().tolist()
        object_indices = batch["object_index"].tolist()
        matched = [index for index, object_index in enumerate(object_indices) if object_index >= 0]
        unmatched = [index for index, object_index in enumerate(object_indices) if object_index < 0]
        targets = read_object_targets(self.rows, _select(batch, matched), self.visible_source)
        scores = [
            model_scores[index] if target.detector_score is None else target.detector_score
            for index, target in zip(matched, targets, strict=True)
        ]
        add_objects(metrics, [pred_amodal_masks[index] for index in matched], targets, scores)
        _add_unmatched_detections(
            metrics, self.rows, _select(batch, unmatched), [pred_amodal_masks[index] for index in unmatched]
        )


def paste_amodal_masks(
    amodal_masks: torch.Tensor, batch: dict[str, torch.Tensor], threshold: float = C2FSegImageProcessor.mask_threshold
) -> list[np.ndarray]:
    """Crop probabilities `(N, 1, S, S)` -> N full-size numpy bool `(H_i, W_i)` masks (probability >= threshold).

    `batch` is the collated batch the crops came from: its `crop_box` `(N, 4)`, `image_height` and `image_width`
    `(N,)` place each crop back into its image.
    """
    heights, widths = batch["image_height"].tolist(), batch["image_width"].tolist()
    return [
        (paste_crop(mask.float().cpu(), box, height, width)[0] >= threshold).numpy()
        for mask, box, height, width in zip(amodal_masks, crop_boxes(batch), heights, widths)
    ]


def read_object_targets(
    rows: datasets.Dataset, batch: dict[str, torch.Tensor], visible_source: str
) -> list[ObjectTargets]:
    """The full-size ground truth of each object of a collated batch, decoded from `rows` (the dataset in Arrow
    format) by the batch's `image_index`, `object_index` and `prediction_index` `(N,)`; the image is not decoded."""
    targets = []
    indices = zip(batch["image_index"].tolist(), batch["object_index"].tolist(), batch["prediction_index"].tolist())
    for (image_index, object_index, prediction_index), rate in zip(indices, batch["occlusion_rate"].tolist()):
        row = rows[image_index]
        target = _list_entry(row, "objects", object_index)
        visible_mask = decode_mask(target["visible_mask"])
        input_visible_mask, detector_score = visible_mask, None
        if visible_source == "predicted":
            detection = _list_entry(row, "predicted_visible_masks", prediction_index)
            input_visible_mask, detector_score = decode_mask(detection["visible_mask"]), detection["score"]
        targets.append(
            ObjectTargets(
                amodal_mask=decode_mask(target["amodal_mask"]),
                visible_mask=visible_mask,
                input_visible_mask=input_visible_mask,
                image_id=_image_id(row),
                category=target["category"],
                occlusion_rate=rate,
                detector_score=detector_score,
            )
        )
    return targets


def _list_entry(row: pa.Table, column: str, position: int) -> dict:
    """Entry `position` of list column `column` of a one-row Arrow table (image bytes left encoded)."""
    return row.column(column)[0].values[position].as_py()


def _image_id(row: pa.Table) -> str:
    return row.column("image_id")[0].as_py()


def _add_unmatched_detections(
    metrics: AmodalMetrics,
    rows: datasets.Dataset,
    batch: dict[str, torch.Tensor],
    pred_amodal_masks: Sequence[np.ndarray],
) -> None:
    """Add the N detections of a collated batch that matched no object (`object_index` -1) to `metrics` as false
    positives of AP / AR: the pasted model predictions `(H, W)` bool, with every variant of `prediction_variants`
    built from the detected visible mask, and the detection's category and score, read from `rows` (the dataset
    in Arrow format) by the batch's `image_index` and `prediction_index` `(N,)`."""
    indices = zip(batch["image_index"].tolist(), batch["prediction_index"].tolist(), strict=True)
    for prediction, (image_index, prediction_index) in zip(pred_amodal_masks, indices, strict=True):
        row = rows[image_index]
        detection = _list_entry(row, "predicted_visible_masks", prediction_index)
        metrics.add_unmatched_detection(
            prediction_variants(prediction, decode_mask(detection["visible_mask"]), name=MODEL_VARIANT),
            image_id=_image_id(row),
            category=detection["category"],
            score=detection["score"],
        )


def _matched_object_indices(row: pa.Table) -> set[int]:
    """The `object_index` of every detection of a one-row Arrow table (-1 included), masks left encoded."""
    detections = row.column("predicted_visible_masks")[0].values
    return set() if detections is None else set(detections.field("object_index").to_pylist())


def _add_missed_objects(metrics: AmodalMetrics, row: pa.Table) -> None:
    """Add the ground-truth objects of a one-row Arrow table (an image with `predicted_visible_masks`) that no
    detection matched to `metrics`, as false negatives of AP / AR; only their amodal masks are decoded."""
    matched = _matched_object_indices(row)
    for object_index, target in enumerate(row.column("objects")[0].as_py() or []):
        if object_index not in matched:
            metrics.add_missed_object(
                decode_mask(target["amodal_mask"]),
                image_id=_image_id(row),
                category=target["category"],
                occlusion_rate=target["occlusion_rate"],
            )


def add_objects(
    metrics: AmodalMetrics,
    pred_amodal_masks: Sequence[np.ndarray],
    targets: Sequence[ObjectTargets],
    scores: Sequence[float],
) -> None:
    """Add N objects to `metrics`: the pasted model predictions `(H, W)` bool, their targets and the model's scores,
    with every variant of `prediction_variants` (named `MODEL_VARIANT`, its union with the input visible mask and
    the two baselines)."""
    for prediction, target, score in zip(pred_amodal_masks, targets, scores, strict=True):
        metrics.add(
            prediction_variants(prediction, target.input_visible_mask, name=MODEL_VARIANT),
            target.amodal_mask,
            target.visible_mask,
            image_id=target.image_id,
            category=target.category,
            occlusion_rate=target.occlusion_rate,
            score=score,
        )


def frame_dataset(clips: datasets.Dataset, folder: str | Path, max_objects: int | None = None) -> datasets.Dataset:
    """A video dataset (`video_features()`) as an image dataset (`image_features()`), one row per frame that shows
    at least one object, written to `<folder>/test.parquet` and read back. Objects whose visible mask is empty in
    a frame are left out of that frame. With `max_objects`, frames stop once that many objects are written."""
    path = split_path(folder, "test")
    write_split(_frame_rows(clips, max_objects), image_features(), path)
    return load_amodal_dataset(folder, "test", cache_dir=str(Path(folder) / "cache"))


def _frame_rows(clips: datasets.Dataset, max_objects: int | None) -> Iterator[dict]:
    """Image-schema rows of the frames of `clips`; only the visible masks are decoded (to find empty ones)."""
    num_objects = 0
    for table in clips.with_format("arrow").iter(batch_size=1):
        clip = table.to_pylist()[0]
        for frame_index, frame in enumerate(clip["frames"]):
            objects = [_frame_object(track, frame_index) for track in clip["objects"]]
            objects = [item for item in objects if item is not None]
            if not objects:
                continue
            yield {"image_id": f"{clip['video_id']}/{frame_index}", "image": frame, "objects": objects}
            num_objects += len(objects)
            if max_objects is not None and num_objects >= max_objects:
                return


def _frame_object(track: dict, frame_index: int) -> dict | None:
    """One track of a clip at one frame as an `objects` entry, None when it is not visible there."""
    visible_mask = track["visible_masks"][frame_index]
    if not decode_mask(visible_mask).any():
        return None
    return {
        "amodal_mask": track["amodal_masks"][frame_index],
        "visible_mask": visible_mask,
        "bbox": track["bboxes"][frame_index],
        "category": track["category"],
        "occlusion_rate": track["occlusion_rates"][frame_index],
    }


def track_windows(track: dict, frames: list[np.ndarray], num_frames: int, transform: ClipCropTransform) -> list[dict]:
    """The windows of one track (`frame_windows`) in which it is visible at least once: `crops` (the
    `ClipCropTransform` sample of the window), `frames` (`(position in window, frame index)` of the kept frames
    where the track is visible) and `image_size` `(H, W)`."""
    visible_masks = [decode_mask(mask) for mask in track["visible_masks"]]
    amodal_masks = [decode_mask(mask) for mask in track["amodal_masks"]]
    windows = []
    for window in frame_windows(len(frames), num_frames):
        indices = list(window.frame_indices)
        kept = [(position, indices[position]) for position in window.kept if visible_masks[indices[position]].any()]
        if not kept:
            continue
        crops = transform(
            [frames[index] for index in indices],
            [visible_masks[index] for index in indices],
            [amodal_masks[index] for index in indices],
            np.random.default_rng(0),
        )
        windows.append({"crops": crops, "frames": kept, "image_size": frames[0].shape[:2]})
    return windows


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate`."""
    evaluate = subparsers.add_parser("evaluate", help="score a model against the visible and convex-hull baselines")
    evaluate.add_argument("--model", help="save_pretrained folder or Hub id (default: the shipped default model)")
    evaluate.add_argument("--dataset", type=Path, required=True, help="dataset folder (<split>.parquet files)")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--visible-source", choices=VISIBLE_SOURCES, default="gt", help="model input masks")
    evaluate.add_argument("--num-steps", type=_positive_int, help="MaskGIT steps K (default: the model config's)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--greedy", action="store_true", help="argmax decoding, no sampling noise")
    evaluate.add_argument("--batch-size", type=_positive_int, default=8)
    evaluate.add_argument(
        "--occlusion-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="count only these occlusion rates"
    )
    evaluate.add_argument("--max-objects", type=_positive_int, help="evaluate only the first N objects")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json, metrics.md, the chart")
    evaluate.set_defaults(handler=run_evaluate)


def _model_path(model: str | None) -> str:
    if model is not None:
        return model
    try:
        return str(default_model_path())
    except FileNotFoundError as error:
        raise SystemExit(f"--model not given and {error}") from error


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate, write the report into `args.out` and print its Markdown."""
    model = C2FSegForAmodalSegmentation.from_pretrained(_model_path(args.model))
    dataset = load_amodal_dataset(args.dataset, args.split)
    try:
        results = evaluate_model(
            model,
            dataset,
            batch_size=args.batch_size,
            num_steps=args.num_steps,
            seed=args.seed,
            greedy=args.greedy,
            visible_source=args.visible_source,
            occlusion_range=args.occlusion_range,
            max_objects=args.max_objects,
            device="cuda" if torch.cuda.is_available() else "cpu",
        )
    except ValueError as error:
        raise SystemExit(f"evaluate: {error}") from error
    results.run_settings["dataset"] = str(args.dataset)
    paths = write_report(results, args.out)
    logger.info("wrote %s", {kind: str(path) for kind, path in paths.items()})
    print(format_markdown(results))
    return 0


__all__ = [
    "ObjectTargets",
    "add_objects",
    "evaluate_model",
    "frame_dataset",
    "paste_amodal_masks",
    "read_object_targets",
]
