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

On disk a dataset is one folder holding `<split>.parquet` files (e.g. `train.parquet`, `test.parquet`) and a
`README.md` card; `load_amodal_dataset(folder, split)` reads one split back.
"""

import io
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pyarrow
import pyarrow.parquet
from datasets import Features, Image, List, Value
from datasets.arrow_writer import ParquetWriter

from ..image_processing_c2f_seg import occlusion_rate_from_areas
from .synthetic import SyntheticClip, SyntheticScene, mask_bbox

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
    return Path(folder) / f"{split}.parquet"


def available_splits(folder: str | Path) -> list[str]:
    """The split names of a dataset folder (its `<split>.parquet` files), sorted."""
    return sorted(path.stem for path in Path(folder).glob("*.parquet"))


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


def check_dataset_schema(dataset: datasets.Dataset, path: Path) -> None:
    """Raise ValueError naming `path` and the fields when `dataset` lacks a field of the image schema (or, with a
    `frames` column, the video schema). `predicted_visible_masks` is optional."""
    expected = video_features() if "frames" in dataset.column_names else image_features()
    missing = missing_fields(dataset.features, expected)
    if "predicted_visible_masks" in dataset.column_names:
        missing += missing_fields(
            dataset.features["predicted_visible_masks"], List(PREDICTION_FEATURES), "predicted_visible_masks."
        )
    if missing:
        kind = "video" if "frames" in dataset.column_names else "image"
        raise ValueError(
            f"{path}: missing field(s) {', '.join(missing)} of the {kind} dataset schema (c2f_hf.data.schema); "
            f"found columns {dataset.column_names}"
        )


def load_amodal_dataset(folder: str | Path, split: str, cache_dir: str | None = None) -> datasets.Dataset:
    """Read split `split` of a dataset folder written by the converters or the synthetic generator.

    Raises FileNotFoundError for a missing folder or split, ValueError naming the file for a file that is not
    Parquet, a split with no rows, or a column or nested field of the schema that is missing."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no dataset folder at {folder}")
    path = split_path(folder, split)
    if not path.is_file():
        raise FileNotFoundError(f"no split {split!r} in {folder}: {path} is missing; found {available_splits(folder)}")
    try:
        num_rows = pyarrow.parquet.ParquetFile(path).metadata.num_rows
    except pyarrow.ArrowException as error:
        raise ValueError(f"{path}: is not a readable Parquet file ({error})") from None
    if num_rows == 0:
        raise ValueError(f"{path}: the split has no rows")
    dataset = datasets.load_dataset(
        "parquet", data_files={split: str(path.resolve())}, split=split, cache_dir=cache_dir
    )
    check_dataset_schema(dataset, path)
    return dataset
