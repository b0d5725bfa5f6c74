"""The common Hugging Face `datasets` schema of every amodal dataset, and its Parquet layout on disk.

Image datasets, one row per image:

- `image_id` string: the source file name (real datasets) or `"<split>-<index>"` (synthetic).
- `image` Image: RGB.
- `objects` list of {
    `amodal_mask` Image (uint8 0/255, mode "L", lossless PNG, image size),
    `visible_mask` Image (same); as released, so it may poke out of the amodal mask where the source's does,
    `bbox` `[x, y, width, height]` float32 of the **amodal** mask (COCO convention, pixels counted),
    `category` string: the class name (the json's category name for KINS, the region `name` for COCOA,
    the shape class for synthetic data, `"object"` where the source has no classes),
    `occlusion_rate` float32 = 1 - |visible ∩ amodal| / |amodal|, in [0, 1] }, objects back to front where known.
- `predicted_visible_masks` (only when pre-detected masks are given) list of {
    `visible_mask` Image, `score` float32, `category` string,
    `object_index` int32: the index into `objects` of the matched ground-truth object, or -1 }.

Video datasets, one row per clip: `video_id` string, `frames` list of Image, `objects` list of {
`amodal_masks` list of Image (one per frame), `visible_masks` list of Image, `bboxes` list of
`[x, y, width, height]` (zeros where the amodal mask is empty), `category` string, `occlusion_rates` list of
float32 (0 where the amodal mask is empty) }.

`c2f-hf predict` (`c2f_hf.evaluation.predict`) writes the same rows with two optional fields on each completed
entry (each `objects` entry, or each `predicted_visible_masks` entry): `predicted_amodal_mask` Image and
`predicted_amodal_score` float32; on video tracks `predicted_amodal_masks` list of Image and
`predicted_amodal_scores` list of float32 (null where the track is hidden). Extra fields pass `check_features`.

On disk a dataset is one folder holding `<split>.parquet` files (e.g. `train.parquet`, `test.parquet`) and a
`README.md` card; on the Hub (and in a clone of a Hub repo) the splits are shards `data/<split>-00000-of-00001.parquet`
(`c2f_hf.data.push`). `load_amodal_dataset(folder_or_hub_id, split, revision=...)` reads one split back from
either layout or from a Hub dataset id.
"""

import io
import re
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pyarrow
import pyarrow.parquet
from datasets import Features, Image, List, Value
from datasets.arrow_writer import ParquetWriter

from ..models.c2f_seg.mask_policy import occlusion_rate_from_areas
from .synthetic import SyntheticClip, SyntheticScene, mask_bbox

# `push_to_hub` and `c2f-hf data push` name shards `data/<split>-00000-of-00001.parquet`; `datasets` finds them so.
HUB_SHARD_NAME = re.compile(r"(?P<split>[\w.-]+?)-\d{5}-of-\d{5}\.parquet")
HUB_DATASET_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
DATASET_SOURCE_HELP = (
    "dataset: a local folder (<split>.parquet files, or the Hub layout data/<split>-NNNNN-of-NNNNN.parquet) "
    "or a Hub dataset id namespace/name"
)
REVISION_HELP = "branch, tag or commit of a Hub dataset id given as the dataset (default: its main branch)"

OBJECT_FEATURES = {
    "amodal_mask": Image(),
    "visible_mask": Image(),
    "bbox": List(Value("float32"), length=4),
    "category": Value("string"),
    "occlusion_rate": Value("float32"),
}
PREDICTION_FEATURES = {
    "visible_mask": Image(),
    "score": Value("float32"),
    "category": Value("string"),
    "object_index": Value("int32"),
}
VIDEO_OBJECT_FEATURES = {
    "amodal_masks": List(Image()),
    "visible_masks": List(Image()),
    "bboxes": List(List(Value("float32"), length=4)),
    "category": Value("string"),
    "occlusion_rates": List(Value("float32")),
}


def image_features(with_predictions: bool = False) -> Features:
    """Features of an image dataset; `with_predictions` adds the `predicted_visible_masks` column."""
    features = {"image_id": Value("string"), "image": Image(), "objects": List(OBJECT_FEATURES)}
    if with_predictions:
        features["predicted_visible_masks"] = List(PREDICTION_FEATURES)
    return Features(features)


def video_features() -> Features:
    """Features of a video dataset (frames stored as a list of images; `Video()` needs torchcodec)."""
    return Features({"video_id": Value("string"), "frames": List(Image()), "objects": List(VIDEO_OBJECT_FEATURES)})


def png_image(array: np.ndarray) -> dict:
    """`(H, W)` uint8 or `(H, W, 3)` uint8 RGB -> an encoded `Image()` value (lossless PNG bytes).

    Encoding here rather than handing arrays to `datasets` keeps masks single-channel uint8 ("L") inside lists,
    where `datasets` would otherwise widen them to int32 TIFF."""
    buffer = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def mask_to_png(mask: np.ndarray) -> dict:
    """`(H, W)` bool or {0, 1} mask -> an `Image()` value holding a uint8 0/255 "L" PNG."""
    return png_image(np.where(np.asarray(mask) > 0, np.uint8(255), np.uint8(0)))


def object_record(category: str, amodal_mask: np.ndarray, visible_mask: np.ndarray) -> dict:
    """One `objects` entry from `(H, W)` bool masks; bbox and occlusion rate are computed from the masks."""
    amodal_mask = np.asarray(amodal_mask, dtype=bool)
    visible_mask = np.asarray(visible_mask, dtype=bool)
    return {
        "amodal_mask": mask_to_png(amodal_mask),
        "visible_mask": mask_to_png(visible_mask),
        "bbox": mask_bbox(amodal_mask),
        "category": category,
        "occlusion_rate": occlusion_rate_from_areas(int(amodal_mask.sum()), int((amodal_mask & visible_mask).sum())),
    }


def track_record(category: str, amodal_masks: np.ndarray, visible_masks: np.ndarray) -> dict:
    """One video `objects` entry from `(T, H, W)` bool masks."""
    amodal_masks = np.asarray(amodal_masks, dtype=bool)
    visible_masks = np.asarray(visible_masks, dtype=bool)
    return {
        "amodal_masks": [mask_to_png(mask) for mask in amodal_masks],
        "visible_masks": [mask_to_png(mask) for mask in visible_masks],
        "bboxes": [mask_bbox(mask) for mask in amodal_masks],
        "category": category,
        "occlusion_rates": [
            occlusion_rate_from_areas(int(amodal.sum()), int((amodal & visible).sum()))
            for amodal, visible in zip(amodal_masks, visible_masks)
        ],
    }


def scene_to_row(scene: SyntheticScene, image_id: str) -> dict:
    """A synthetic scene as a row of `image_features()`."""
    objects = [object_record(item.category, item.amodal_mask, item.visible_mask) for item in scene.objects]
    return {"image_id": image_id, "image": png_image(scene.image), "objects": objects}


def clip_to_row(clip: SyntheticClip, video_id: str) -> dict:
    """A synthetic clip as a row of `video_features()`."""
    objects = [track_record(track.category, track.amodal_masks, track.visible_masks) for track in clip.objects]
    return {"video_id": video_id, "frames": [png_image(frame) for frame in clip.frames], "objects": objects}


def write_split(rows: Iterable[dict], features: Features, path: Path) -> int:
    """Encode `rows` with `features` into one Parquet file (streamed, nothing cached); returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = ParquetWriter(features=features, path=str(path), writer_batch_size=64, embed_local_files=True)
    try:
        for row in rows:
            writer.write(features.encode_example(row))
        count, _ = writer.finalize()
    finally:
        writer.close()
    return count


def split_path(folder: str | Path, split: str) -> Path:
    """Where our layout keeps split `split`: `<folder>/<split>.parquet`."""
    return Path(folder) / f"{split}.parquet"


def _hub_shard_split(path: Path) -> str | None:
    """The split of a Hub-layout shard name `<split>-00000-of-00002.parquet`, or None for another name."""
    match = HUB_SHARD_NAME.fullmatch(path.name)
    return match.group("split") if match else None


def hub_shard_paths(folder: str | Path, split: str) -> list[Path]:
    """The shards `<folder>/data/<split>-NNNNN-of-NNNNN.parquet` of split `split` in the Hub layout, in order."""
    return sorted(path for path in (Path(folder) / "data").glob("*.parquet") if _hub_shard_split(path) == split)


def split_files(folder: str | Path, split: str) -> list[Path]:
    """The Parquet files holding split `split` of a local folder: `<split>.parquet` (our layout), else the
    Hub-layout shards; empty when the folder has neither."""
    path = split_path(folder, split)
    return [path] if path.is_file() else hub_shard_paths(folder, split)


def available_splits(folder: str | Path) -> list[str]:
    """The split names of a dataset folder, sorted: its `<split>.parquet` files and its Hub-layout shards
    `data/<split>-NNNNN-of-NNNNN.parquet`."""
    ours = {path.stem for path in Path(folder).glob("*.parquet")}
    hub = {_hub_shard_split(path) for path in (Path(folder) / "data").glob("*.parquet")}
    return sorted(ours | (hub - {None}))


def is_hub_dataset_id(text: str) -> bool:
    """Whether `text` has the form of a Hub dataset id `namespace/name` (and so is not taken for a path)."""
    return HUB_DATASET_ID.fullmatch(text) is not None


def missing_fields(features, expected, prefix: str = "") -> list[str]:
    """Dotted names of the fields of `expected` (a `Features` tree) that `features` lacks, lists looked into."""
    while isinstance(expected, List) and isinstance(features, List):
        expected, features = expected.feature, features.feature
    if not isinstance(expected, dict):
        return []
    if not isinstance(features, dict):
        return [prefix.rstrip(".") or "(root)"]
    missing = []
    for name, child in expected.items():
        if name not in features:
            missing.append(prefix + name)
        else:
            missing.extend(missing_fields(features[name], child, f"{prefix}{name}."))
    return missing


def check_features(features: Features, source: str | Path) -> None:
    """Raise ValueError naming `source` (a file or Hub id) and the fields when `features` lacks a field of the image
    schema (or, with a `frames` column, the video schema). `predicted_visible_masks` is optional."""
    columns = list(features)
    kind = "video" if "frames" in columns else "image"
    missing = missing_fields(features, video_features() if kind == "video" else image_features())
    if "predicted_visible_masks" in columns:
        missing += missing_fields(
            features["predicted_visible_masks"], List(PREDICTION_FEATURES), "predicted_visible_masks."
        )
    if missing:
        raise ValueError(
            f"{source}: missing field(s) {', '.join(missing)} of the {kind} dataset schema (c2f_hf.data.schema); "
            f"found columns {columns}"
        )


def check_dataset_schema(dataset: datasets.Dataset, source: str | Path) -> None:
    """`check_features` of a loaded dataset."""
    check_features(dataset.features, source)


def parquet_row_count(path: Path) -> int:
    """Rows of Parquet file `path` (read from its footer); ValueError naming `path` when it is not Parquet."""
    try:
        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    except pyarrow.ArrowException as error:
        raise ValueError(f"{path}: is not a readable Parquet file ({error})") from None


def check_split_files(paths: list[Path]) -> int:
    """Check the Parquet files of one split without loading them (readable, schema fields present); return their
    row count. ValueError naming the file at fault, or the first file when the split has no rows."""
    num_rows = 0
    for path in paths:
        num_rows += parquet_row_count(path)
        check_features(Features.from_arrow_schema(pyarrow.parquet.read_schema(path)), path)
    if num_rows == 0:
        raise ValueError(f"{paths[0]}: the split has no rows")
    return num_rows


def local_split_files(folder: Path, split: str) -> list[Path]:
    """The files of split `split` of local folder `folder`; FileNotFoundError naming the split, the file our layout
    expects and the splits found when there is none."""
    paths = split_files(folder, split)
    if not paths:
        raise FileNotFoundError(
            f"no split {split!r} in {folder}: {split_path(folder, split)} is missing (nor Hub-layout shards "
            f"data/{split}-NNNNN-of-NNNNN.parquet); found {available_splits(folder)}"
        )
    return paths


def _load_local_split(folder: Path, split: str, cache_dir: str | None) -> datasets.Dataset:
    """Split `split` of a local folder in our layout or the Hub layout, checked file by file."""
    paths = local_split_files(folder, split)
    check_split_files(paths)
    data_files = {split: [str(path.resolve()) for path in paths]}
    return datasets.load_dataset("parquet", data_files=data_files, split=split, cache_dir=cache_dir)


def _hub_load_error(repo_id: str, error: Exception) -> Exception:
    """The error to raise when `datasets.load_dataset(repo_id)` failed with `error`, naming the id."""
    where = f"{repo_id}: no such local dataset folder, and as a Hub dataset id"
    if isinstance(error, ConnectionError) and datasets.config.HF_HUB_OFFLINE:
        return FileNotFoundError(
            f"{where} it is not in the local datasets cache and HF_HUB_OFFLINE is set (offline): load it once "
            f"online, or give a local folder"
        )
    if isinstance(error, ConnectionError):
        return FileNotFoundError(f"{where} the Hub could not be reached ({error})")
    if isinstance(error, FileNotFoundError):
        return FileNotFoundError(f"{where} it was not found ({error})")
    return ValueError(f"{repo_id}: {error}")


def _load_hub_split(repo_id: str, split: str, revision: str | None, cache_dir: str | None) -> datasets.Dataset:
    """Split `split` of Hub dataset `repo_id` at `revision` through `datasets.load_dataset` (the local cache when
    offline), schema-checked."""
    try:
        dataset = datasets.load_dataset(repo_id, split=split, revision=revision, cache_dir=cache_dir)
    except (OSError, ValueError) as error:
        raise _hub_load_error(repo_id, error) from None
    if len(dataset) == 0:
        raise ValueError(f"{repo_id}: split {split!r} has no rows")
    check_dataset_schema(dataset, repo_id)
    return dataset


def load_amodal_dataset(
    folder: str | Path, split: str, cache_dir: str | None = None, revision: str | None = None
) -> datasets.Dataset:
    """Read split `split` of a dataset in the common schema from one of:

    - a local folder in our layout, `<folder>/<split>.parquet` (written by the converters or the generator);
    - a local folder in the Hub layout, `<folder>/data/<split>-00000-of-0000N.parquet` (one or more shards);
    - a Hub dataset id `namespace/name` (a string that is no existing path), through `datasets.load_dataset` at
      `revision` (a branch, tag or commit; the default branch when None), from the local cache with
      `HF_HUB_OFFLINE=1`.

    Raises FileNotFoundError for a missing folder or split, or a Hub id that cannot be found (or is not cached while
    offline); ValueError naming the file (or id) for a file that is not Parquet, a split with no rows, a column or
    nested field of the schema that is missing, or a `revision` given with a local folder."""
    if Path(folder).is_dir():
        if revision is not None:
            raise ValueError(f"revision {revision!r} applies to a Hub dataset id, but {folder} is a local folder")
        return _load_local_split(Path(folder), split, cache_dir)
    if isinstance(folder, str) and is_hub_dataset_id(folder):
        return _load_hub_split(folder, split, revision, cache_dir)
    raise FileNotFoundError(f"no dataset folder at {folder}")
