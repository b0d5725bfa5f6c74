"""Run a C2F-Seg model over a whole dataset split and write every object's amodal mask (`predict_dataset`, behind
`c2f-hf predict`), for example to turn a detector's visible masks into amodal pseudo-labels.

The output is the input split with two more fields on every entry the model completed. An image model on an image
split (`PREDICTED_FIELDS`): each `objects` entry with `visible_source="gt"`, each `predicted_visible_masks` entry
(every detection, matched or not) with `"predicted"`, gets `predicted_amodal_mask`, the full-size amodal mask (an
`Image()`, uint8 0/255 "L" PNG, like the schema's other masks), cropped, pasted back and thresholded by the model
folder's image processor exactly as `evaluate_model` does, and `predicted_amodal_score`, the model's confidence (its
mean token confidence). A video model on a video split (`PREDICTED_TRACK_FIELDS`): each track gets
`predicted_amodal_masks` and `predicted_amodal_scores`, one per frame, from `evaluate_model`'s windows
(`runner.predict_track_frames`); on frames where the track is hidden the model completes nothing: an empty mask and
a null score. Every other column and field is kept as it came.

Layout: the Hub layout of `data.schema`, `<out>/data/<split>-NNNNN-of-NNNNN.parquet`, one shard per block of
`rows_per_shard` rows, plus `README.md` (a dataset card: model, data, settings, command) and `SETTINGS_FILE`.
`load_amodal_dataset(out, split)` reads it back, and so does `datasets.load_dataset(out)` or
`datasets.load_dataset("parquet", data_files=...)`. Shards are written atomically (a `.partial` file renamed once
complete), so a killed run leaves only finished shards; run the same command again and it predicts only the
missing ones, ending with the same files. `SETTINGS_FILE` holds every setting that changes the output, and a folder
that holds another run's output (other settings, or no settings file) is refused.

Several processes (`processes`): each predicts its contiguous share of the batches of every block's objects (as
`evaluate_model` shares them, `object_batches`), the main process gathers them and writes the shard. Sampling
draws from one generator per object keyed by its sample index, and every batch holds the same objects whatever
the number of processes, so the output does not depend on it.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from datasets import Features, Image, List, Value
from huggingface_hub import DatasetCard, DatasetCardData
from tqdm.auto import tqdm

from ..data.cards import DATASET_ID_PLACEHOLDER, data_files_config, size_category
from ..data.schema import mask_to_png, write_split
from ..data.transforms import object_pair_index
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from ..models.c2f_seg.video_processing_c2f_seg import C2FSegVideoProcessor
from .distributed import Processes
from .runner import (
    InferenceOptions,
    clips_of_tracks,
    evaluation_objects,
    object_batches,
    predict_object_batch,
    predict_track_frames,
)

logger = logging.getLogger(__name__)

SETTINGS_FILE = "predict_settings.json"
PREDICTED_FIELDS = {"predicted_amodal_mask": Image(), "predicted_amodal_score": Value("float32")}
PREDICTED_TRACK_FIELDS = {"predicted_amodal_masks": List(Image()), "predicted_amodal_scores": List(Value("float32"))}
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class PredictionRun:
    """What a prediction run writes and how: into `out_dir`, split `split` completed from `visible_source` with
    `options` (`InferenceOptions`), `batch_size` objects per forward pass, `rows_per_shard` rows per shard;
    `settings` (everything that changes the output, these included, compared on resume; JSON-ready, no local
    path) and `command` (the `c2f-hf predict` line the card shows)."""

    out_dir: Path
    split: str
    visible_source: str
    options: InferenceOptions
    batch_size: int
    rows_per_shard: int
    settings: dict
    command: str


def predicted_column(visible_source: str) -> str:
    """The list column whose entries the model completes: `objects`, or with "predicted" the detections."""
    return "objects" if visible_source == "gt" else "predicted_visible_masks"


def predicted_features(features: Features, column: str, fields: dict) -> Features:
    """`features` with `fields` (`PREDICTED_FIELDS` or `PREDICTED_TRACK_FIELDS`) added to the entries of list
    column `column`."""
    extended = features.copy()
    extended[column] = List({**features[column].feature, **fields})
    return extended


def shard_paths(out_dir: Path, split: str, num_rows: int, rows_per_shard: int) -> list[Path]:
    """The shard files of a split of `num_rows` rows, one per block of `rows_per_shard` rows (Hub layout)."""
    count = -(-num_rows // rows_per_shard)
    return [out_dir / "data" / f"{split}-{index:05d}-of-{count:05d}.parquet" for index in range(count)]


def _settings_problem(run: PredictionRun) -> str | None:
    """Why `run.out_dir` cannot take this run (another run's settings, or files that are no run's), else None."""
    path = run.out_dir / SETTINGS_FILE
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        differences = [
            f"{name}: {recorded.get(name)!r} there, {value!r} here"
            for name, value in run.settings.items()
            if recorded.get(name) != value
        ]
        if differences:
            return (
                f"{run.out_dir}: holds the output of a different prediction run ({SETTINGS_FILE} differs in "
                f"{'; '.join(differences)}); give another --out, or remove that folder to start over"
            )
        return None
    if run.out_dir.is_dir() and any(run.out_dir.iterdir()):
        return (
            f"{run.out_dir}: is not empty and has no {SETTINGS_FILE}, so it holds no `c2f-hf predict` output; "
            "give another --out"
        )
    return None


def _prepare_folder(run: PredictionRun) -> None:
    """Record the settings of a new run and remove the `.partial` files of a killed one (main process)."""
    (run.out_dir / "data").mkdir(parents=True, exist_ok=True)
    settings_path = run.out_dir / SETTINGS_FILE
    if not settings_path.is_file():
        record = {"settings": run.settings, "command": run.command}
        settings_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for leftover in (run.out_dir / "data").glob(f"*{PARTIAL_SUFFIX}"):
        logger.warning("removed %s, a shard a killed run left unfinished", leftover)
        leftover.unlink()


class _ObjectPredictor:
    """An image model over the objects (or detections) of an image split: `pairs` `(N, 2)` `(row, position)` of its
    samples in `column`, and `predict` of a share of them."""

    fields = PREDICTED_FIELDS

    def __init__(self, model, processor, dataset: datasets.Dataset, run: PredictionRun) -> None:
        self.model, self.processor, self.run = model, processor, run
        self.column = predicted_column(run.visible_source)
        self.objects = evaluation_objects(dataset, processor, run.visible_source, run.options)
        self.pairs = self.objects.pairs

    def predict(self, samples: range, processes: Processes) -> dict[int, dict]:
        """`{sample: PREDICTED_FIELDS values}` of this process's share of the batches of `samples`."""
        predicted = {}
        for keys, batch in object_batches(self.objects, samples, self.run.batch_size, processes):
            masks, scores = predict_object_batch(
                self.model, self.processor, batch, keys, self.run.options, self.objects
            )
            for key, mask, score in zip(keys, masks, scores):
                predicted[key] = {"predicted_amodal_mask": mask_to_png(mask), "predicted_amodal_score": score}
        return predicted


class _TrackPredictor:
    """A video model over the tracks of a video split: `pairs` `(N, 2)` `(clip, track)`, and `predict` of a share
    of them (every frame of a track: the predicted mask where it is visible, an empty mask and no score where the
    model does not complete it)."""

    fields = PREDICTED_TRACK_FIELDS
    column = "objects"

    def __init__(self, model, processor, dataset: datasets.Dataset, run: PredictionRun) -> None:
        self.model, self.run = model, run
        self.processor = C2FSegVideoProcessor.from_image_processor(processor)
        self.rows = dataset.with_format("arrow")
        self.pairs = object_pair_index(dataset)

    def predict(self, samples: range, processes: Processes) -> dict[int, dict]:
        """`{track: PREDICTED_TRACK_FIELDS values}` of this process's share of the tracks `samples`."""
        predicted = {}
        for key, clip, frames in clips_of_tracks(self.rows, self.pairs, processes.shard(samples)):
            track = clip["objects"][int(self.pairs[key][1])]
            results = predict_track_frames(
                self.model, self.processor, frames, track, key, self.run.options, self.run.batch_size
            )
            empty = mask_to_png(np.zeros(frames[0].shape[:2], dtype=bool))
            predicted[key] = {
                "predicted_amodal_masks": [
                    mask_to_png(results[frame]["amodal_mask"]) if frame in results else empty
                    for frame in range(len(frames))
                ],
                "predicted_amodal_scores": [
                    results[frame]["score"] if frame in results else None for frame in range(len(frames))
                ],
            }
        return predicted


def _predictor(model, processor, dataset: datasets.Dataset, run: PredictionRun) -> _ObjectPredictor | _TrackPredictor:
    """The predictor of `model` on `dataset`: image model and image split, or video model and video split."""
    video_model = model.config.transformer_config.num_frames is not None
    video_data = "frames" in dataset.column_names
    if video_model != video_data:
        raise ValueError(
            f"c2f-hf predict runs an image model on an image dataset or a video model on a video dataset; got "
            f"{'a video' if video_model else 'an image'} model and {'a video' if video_data else 'an image'} dataset"
        )
    if video_data and run.visible_source != "gt":
        raise ValueError("video datasets have no pre-detected visible masks: use --visible-source gt")
    return (_TrackPredictor if video_model else _ObjectPredictor)(model, processor, dataset, run)


def predict_dataset(
    model: C2FSegForAmodalSegmentation,
    dataset: datasets.Dataset,
    run: PredictionRun,
    *,
    image_processor: C2FSegImageProcessor,
    processes: Processes | None = None,
    progress: bool = True,
) -> list[Path]:
    """Predict the amodal mask of every object (or detection; a video model: of every track on every frame) of a
    dataset split and write the split with them into `run.out_dir`, shard by shard, skipping the shards a previous
    run of the same settings finished (see the module docstring). Every process of `processes` must call this.
    Returns the shard paths."""
    predictor = _predictor(model, image_processor, dataset, run)
    processes = processes or Processes()
    problem = processes.broadcast(_main_check(run) if processes.is_main else None)
    if problem is not None:
        raise ValueError(problem)
    paths = shard_paths(run.out_dir, run.split, dataset.num_rows, run.rows_per_shard)
    remaining = processes.broadcast(_remaining_shards(paths) if processes.is_main else None)
    features = predicted_features(dataset.features, predictor.column, predictor.fields)
    was_training = model.training
    model.eval()
    try:
        show = progress and processes.is_main
        for index in tqdm(remaining, desc="predict", unit="shard", disable=None if show else True):
            rows = range(index * run.rows_per_shard, min((index + 1) * run.rows_per_shard, dataset.num_rows))
            samples = range(*(int(bound) for bound in np.searchsorted(predictor.pairs[:, 0], [rows.start, rows.stop])))
            shares = processes.gather(predictor.predict(samples, processes))
            if shares is not None:
                _write_shard(dataset, rows, predictor, shares, features, paths[index])
    finally:
        model.train(was_training)
    if processes.is_main:
        write_card(run, features, dataset.num_rows, predictor.column, predictor.fields)
    processes.wait()
    return paths


def _remaining_shards(paths: list[Path]) -> list[int]:
    """The indices of the shards not yet written (a previous run of the same settings wrote the others)."""
    remaining = [index for index, path in enumerate(paths) if not path.is_file()]
    if len(remaining) < len(paths):
        logger.warning("%d of %d shards already written: skipped", len(paths) - len(remaining), len(paths))
    return remaining


def _main_check(run: PredictionRun) -> str | None:
    """The main process's check of the output folder: why it cannot take this run, or None once prepared."""
    problem = _settings_problem(run)
    if problem is None:
        _prepare_folder(run)
    return problem


def _write_shard(
    dataset: datasets.Dataset,
    rows: range,
    predictor: _ObjectPredictor | _TrackPredictor,
    shares: Sequence[dict],
    features: Features,
    path: Path,
) -> None:
    """Write rows `rows` of `dataset` with the predicted fields of every process (`{sample: fields}` each, samples
    indexing `predictor.pairs`, the `(row, position)` of each sample) into `path`, atomically."""
    records = dataset.with_format("arrow")[rows.start : rows.stop].to_pylist()
    for share in shares:
        for sample, fields in share.items():
            row, position = (int(value) for value in predictor.pairs[sample])
            records[row - rows.start][predictor.column][position].update(fields)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    write_split(records, features, partial)
    os.replace(partial, path)


def _added_fields_text(column: str, fields: dict) -> str:
    """The card's sentence on the fields `c2f-hf predict` added to the entries of `column`."""
    if fields is PREDICTED_TRACK_FIELDS:
        return (
            f"each `{column}` entry (a track) completed on every frame with the amodal mask the video model predicts "
            'from its visible masks: `predicted_amodal_masks` (one `Image()` per frame, uint8 0/255 "L" PNG of the '
            "frame size; empty on frames where the track is hidden, which the model does not complete) and "
            "`predicted_amodal_scores` (the model's mean token confidence per frame, null where not completed)"
        )
    return (
        f"each `{column}` entry completed with the amodal mask the model predicts from its visible mask: "
        '`predicted_amodal_mask` (an `Image()`, uint8 0/255 "L" PNG of the image size) and '
        "`predicted_amodal_score` (the model's mean token confidence)"
    )


def write_card(run: PredictionRun, features: Features, num_rows: int, column: str, fields: dict) -> Path:
    """Write `README.md` into `run.out_dir`: the front matter (`configs` naming the shards, so `datasets` and the Hub
    find the split) and how the masks were made (`fields` added to the entries of `column`). Returns its path."""
    data_files = data_files_config({run.split: f"data/{run.split}-*.parquet"})
    front_matter = DatasetCardData(
        configs=data_files,
        task_categories=["image-segmentation"],
        tags=["amodal-segmentation", "c2f-seg", "pseudo-labels"],
        size_categories=[size_category(num_rows)],
    )
    settings = "\n".join(f"| `{name}` | `{json.dumps(value)}` |" for name, value in run.settings.items())
    body = f"""
# Amodal masks predicted by `{run.settings["model"]}`

Split `{run.split}` of `{run.settings["dataset"]}` ({num_rows} rows) with C2F-Seg model `{run.settings["model"]}`'s
predictions: {_added_fields_text(column, fields)}. Masks are cropped, pasted back and thresholded by the model
folder's image processor, as `c2f-hf evaluate` does; every other column is the input's. These are model
predictions, not ground truth; the input dataset's terms apply.

## How it was made

```
{run.command}
```

c2f_hf {importlib.metadata.version("c2f_hf")}. Settings (also in `{SETTINGS_FILE}`):

| Setting | Value |
| --- | --- |
{settings}

## Loading

```python
from c2f_hf.data.schema import load_amodal_dataset

dataset = load_amodal_dataset("{DATASET_ID_PLACEHOLDER}", "{run.split}")
```

Columns: {", ".join(f"`{name}`" for name in features)}.
"""
    card = DatasetCard(f"---\n{front_matter.to_yaml()}\n---\n{body}")
    path = run.out_dir / "README.md"
    card.save(path)
    return path


__all__ = [
    "PREDICTED_FIELDS",
    "PREDICTED_TRACK_FIELDS",
    "SETTINGS_FILE",
    "PredictionRun",
    "predict_dataset",
    "predicted_column",
    "predicted_features",
    "shard_paths",
    "write_card",
]
