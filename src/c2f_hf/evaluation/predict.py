"""Run a C2F-Seg model over a whole image dataset split and write every object's amodal mask (`predict_dataset`,
behind `c2f-hf predict`), for example to turn a detector's visible masks into amodal pseudo-labels.

The output is the input split with two more fields on every entry the model completed (`PREDICTED_FIELDS`): each
`objects` entry with `visible_source="gt"`, each `predicted_visible_masks` entry (every detection, matched or not)
with `"predicted"`. `predicted_amodal_mask` is the full-size amodal mask (an `Image()`, uint8 0/255 "L" PNG, like
the schema's other masks), cropped, pasted back and thresholded by the model folder's image processor exactly as
`evaluate_model` does; `predicted_amodal_score` is the model's confidence (its mean token confidence). Every other
column and field is kept as it came.

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
from ..data.transforms import AmodalObjectDataset
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from .distributed import Processes
from .runner import Sampling, evaluation_objects, object_batches, predict_object_batch

logger = logging.getLogger(__name__)

SETTINGS_FILE = "predict_settings.json"
PREDICTED_FIELDS = {"predicted_amodal_mask": Image(), "predicted_amodal_score": Value("float32")}
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class PredictionRun:
    """What a prediction run writes and how: into `out_dir`, split `split` completed from `visible_source` with
    `sampling`, `batch_size` objects per forward pass, `rows_per_shard` rows per shard; `settings` (everything that
    changes the output, these included, compared on resume; JSON-ready, no local path) and `command` (the
    `c2f-hf predict` line the card shows)."""

    out_dir: Path
    split: str
    visible_source: str
    sampling: Sampling
    batch_size: int
    rows_per_shard: int
    settings: dict
    command: str


def predicted_column(visible_source: str) -> str:
    """The list column whose entries the model completes: `objects`, or with "predicted" the detections."""
    return "objects" if visible_source == "gt" else "predicted_visible_masks"


def predicted_features(features: Features, visible_source: str) -> Features:
    """`features` with `PREDICTED_FIELDS` added to the entries of `predicted_column(visible_source)`."""
    column = predicted_column(visible_source)
    extended = features.copy()
    extended[column] = List({**features[column].feature, **PREDICTED_FIELDS})
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


def predict_dataset(
    model: C2FSegForAmodalSegmentation,
    dataset: datasets.Dataset,
    run: PredictionRun,
    *,
    image_processor: C2FSegImageProcessor,
    processes: Processes | None = None,
    progress: bool = True,
) -> list[Path]:
    """Predict the amodal mask of every object (or detection) of an image dataset split and write the split with
    them into `run.out_dir`, shard by shard, skipping the shards a previous run of the same settings finished (see
    the module docstring). Every process of `processes` must call this. Returns the shard paths."""
    if "frames" in dataset.column_names:
        raise ValueError(
            "c2f-hf predict writes image datasets only; this split is a video dataset (a 'frames' column): "
            "predict its frames with `c2f-hf evaluate --save-predictions`, or with the video pipeline"
        )
    if model.config.transformer_config.num_frames is not None:
        raise ValueError("c2f-hf predict runs image models only; this model is a video model (num_frames is set)")
    processes = processes or Processes()
    problem = processes.broadcast(_main_check(run) if processes.is_main else None)
    if problem is not None:
        raise ValueError(problem)
    paths = shard_paths(run.out_dir, run.split, dataset.num_rows, run.rows_per_shard)
    remaining = processes.broadcast(_remaining_shards(paths) if processes.is_main else None)
    objects = evaluation_objects(dataset, image_processor, run.visible_source, run.sampling.seed)
    features = predicted_features(dataset.features, run.visible_source)
    was_training = model.training
    model.eval()
    try:
        show = progress and processes.is_main
        for index in tqdm(remaining, desc="predict", unit="shard", disable=None if show else True):
            rows = range(index * run.rows_per_shard, min((index + 1) * run.rows_per_shard, dataset.num_rows))
            samples = range(*(int(bound) for bound in np.searchsorted(objects.pairs[:, 0], [rows.start, rows.stop])))
            shares = processes.gather(_predict_samples(model, image_processor, objects, samples, run, processes))
            if shares is not None:
                _write_shard(dataset, rows, objects.pairs, shares, run.visible_source, features, paths[index])
    finally:
        model.train(was_training)
    if processes.is_main:
        write_card(run, features, dataset.num_rows)
    processes.wait()
    return paths


def _remaining_shards(paths: list[Path]) -> list[int]:
    """The indices of the shards not yet written (a previous run of the same settings wrote the others)."""
    remaining = [index for index, path in enumerate(paths) if not path.is_file()]
    if len(remaining) < len(paths):
        logger.warning("%d of %d shards already written: skipped", len(paths) - len(remaining), len(paths))
    return remaining


def _predict_samples(
    model: C2FSegForAmodalSegmentation,
    processor: C2FSegImageProcessor,
    objects: AmodalObjectDataset,
    samples: range,
    run: PredictionRun,
    processes: Processes,
) -> dict[int, tuple[dict, float]]:
    """`{sample: (predicted amodal mask as an Image() value, model score)}` of this process's share of the samples
    `samples` of `objects` (`object_batches`)."""
    predicted = {}
    for keys, batch in object_batches(objects, samples, run.batch_size, processes):
        masks, scores = predict_object_batch(model, processor, batch, keys, run.sampling)
        predicted.update((key, (mask_to_png(mask), score)) for key, mask, score in zip(keys, masks, scores))
    return predicted


def _main_check(run: PredictionRun) -> str | None:
    """The main process's check of the output folder: why it cannot take this run, or None once prepared."""
    problem = _settings_problem(run)
    if problem is None:
        _prepare_folder(run)
    return problem


def _write_shard(
    dataset: datasets.Dataset,
    rows: range,
    pairs: np.ndarray,
    shares: Sequence[dict],
    visible_source: str,
    features: Features,
    path: Path,
) -> None:
    """Write rows `rows` of `dataset` with the predictions of every process (`{sample: (mask, score)}` each,
    samples indexing `pairs`, the `(row, position)` of each sample) into `path`, atomically."""
    records = dataset.with_format("arrow")[rows.start : rows.stop].to_pylist()
    column = predicted_column(visible_source)
    for share in shares:
        for sample, (mask, score) in share.items():
            row, position = (int(value) for value in pairs[sample])
            entry = records[row - rows.start][column][position]
            entry.update(predicted_amodal_mask=mask, predicted_amodal_score=score)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    write_split(records, features, partial)
    os.replace(partial, path)


def write_card(run: PredictionRun, features: Features, num_rows: int) -> Path:
    """Write `README.md` into `run.out_dir`: the front matter (`configs` naming the shards, so `datasets` and the Hub
    find the split) and how the masks were made. Returns its path."""
    data_files = data_files_config({run.split: f"data/{run.split}-*.parquet"})
    front_matter = DatasetCardData(
        configs=data_files,
        task_categories=["image-segmentation"],
        tags=["amodal-segmentation", "c2f-seg", "pseudo-labels"],
        size_categories=[size_category(num_rows)],
    )
    settings = "\n".join(f"| `{name}` | `{json.dumps(value)}` |" for name, value in run.settings.items())
    column = predicted_column(run.visible_source)
    body = f"""
# Amodal masks predicted by `{run.settings["model"]}`

Split `{run.split}` of `{run.settings["dataset"]}` ({num_rows} rows), each `{column}` entry completed with the
amodal mask that C2F-Seg model `{run.settings["model"]}` predicts for it from its visible mask: two fields were
added, `predicted_amodal_mask` (an `Image()`, uint8 0/255 "L" PNG of the image size, pasted back and thresholded
by the model folder's image processor) and `predicted_amodal_score` (the model's mean token confidence); every
other column is the input's. These are model predictions, not ground truth; the input dataset's terms apply.

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
    "SETTINGS_FILE",
    "PredictionRun",
    "predict_dataset",
    "predicted_column",
    "predicted_features",
    "shard_paths",
    "write_card",
]
