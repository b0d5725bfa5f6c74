"""Converters from the public on-disk formats to the common schema (`schema.py`), written as Parquet.

Every converter reads `root` and writes `<out>/<split>.parquet`. Masks are rasterised at the annotated image
size; where a source's visible mask pokes out of its amodal mask (polygon rounding) the amodal mask is taken as
their union, so visible is always a subset of amodal; bbox and occlusion rate are recomputed from the masks.
Objects whose visible mask rasterises empty are dropped (they cannot be cropped); the count is logged.
Malformed files raise `AnnotationError` naming the file and the field.

Layouts read (split names as written: `train`, `test`):

KINS (KITTI images, COCO-style json with polygon lists `a_segm` amodal and `i_segm` visible, `category_id`):
    root/update_train_2020.json  root/update_test_2020.json  (or the same under root/annotations/)
    root/training/image_2/<file_name>  root/testing/image_2/<file_name>

COCOA (COCO amodal json: `annotations[*].regions[*]` with flat polygon `segmentation`, optional RLE `visible_mask`
/ `invisible_mask`, `name`, `order` (1 = front; objects are written back to front), `occlude_rate`):
    root/annotations/COCO_amodal_train2014.json -> train (images root/train2014/)
    root/annotations/COCO_amodal_val2014.json   -> test  (images root/val2014/)

FISHBOWL (our per-object layout; the public release's frames and masks unpacked per video, frames sorted by name):
    root/<split>/<video_id>/frames/<frame>.png|jpg
    root/<split>/<video_id>/amodal_masks/<object_id>/<frame>.png    (non-zero = object)
    root/<split>/<video_id>/visible_masks/<object_id>/<frame>.png

MOViD-A (Kubric file naming: visible masks as an instance-id map, amodal masks per instance):
    root/<split>/<video_id>/rgba_<frame>.png
    root/<split>/<video_id>/segmentation_<frame>.png                  (0 background, k = instance k)
    root/<split>/<video_id>/amodal/<k>/segmentation_<frame>.png       (non-zero = instance k)
    root/<split>/<video_id>/metadata.json  (optional; `instances[k-1].category` names instance k)

Pre-detected visible masks (`predictions`, the COCO results format: a json list of `{image_id, segmentation
(RLE), score, category_id}`) go to the `predicted_visible_masks` column of the `test` split. Each prediction is
matched, in descending score order, to the unmatched ground-truth object whose visible mask has the highest IoU
with it if that IoU is at least 0.5 (`object_index`, else -1).
"""

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from pycocotools import mask as mask_utils

from .schema import image_features, mask_to_png, object_record, track_record, video_features, write_split

logger = logging.getLogger(__name__)
MATCH_IOU = 0.5


class AnnotationError(ValueError):
    """A malformed annotation file; the message names the file and the field."""


def read_json(path: Path) -> Any:
    """Parse a json file, with errors that name it."""
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON ({error})") from error


def require(record: Any, name: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """`record[name]`, checked to exist and to be of type `kind`; else `AnnotationError` naming file and field."""
    if not isinstance(record, dict) or name not in record:
        raise AnnotationError(f"{path}: {where}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(item.__name__ for item in kind)
        raise AnnotationError(f"{path}: {where}: field {name!r} should be {expected}, got {type(value).__name__}")
    return value


def polygons_to_mask(polygons: Any, height: int, width: int, path: Path, where: str, field: str) -> np.ndarray:
    """COCO polygons (a list of flat `[x0, y0, x1, y1, ...]` lists, or one flat list) -> `(H, W)` bool."""
    if isinstance(polygons, list) and polygons and all(isinstance(value, (int, float)) for value in polygons):
        polygons = [polygons]
    valid = isinstance(polygons, list) and all(
        isinstance(polygon, list)
        and len(polygon) >= 6
        and len(polygon) % 2 == 0
        and all(isinstance(value, (int, float)) for value in polygon)
        for polygon in polygons
    )
    if not valid or not polygons:
        raise AnnotationError(f"{path}: {where}: field {field!r} should be a list of polygons [x0, y0, x1, y1, ...]")
    rles = mask_utils.frPyObjects([[float(value) for value in polygon] for polygon in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def rle_to_mask(rle: Any, height: int, width: int, path: Path, where: str, field: str) -> np.ndarray:
    """COCO RLE (`{"size": [H, W], "counts": str or list}`) -> `(H, W)` bool."""
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise AnnotationError(f"{path}: {where}: field {field!r} should be an RLE dict with 'size' and 'counts'")
    if list(rle["size"]) != [height, width]:
        raise AnnotationError(f"{path}: {where}: field {field!r} has size {rle['size']}, image is {[height, width]}")
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    elif isinstance(rle["counts"], str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def _image_entries(data: dict, path: Path) -> dict[int, dict]:
    """`images` of a COCO-style json by id, each checked for `id`, `file_name`, `height`, `width`."""
    entries = {}
    for position, entry in enumerate(require(data, "images", list, path, "top level")):
        where = f"images[{position}]"
        for name, kind in (("id", int), ("file_name", str), ("height", int), ("width", int)):
            require(entry, name, kind, path, where)
        entries[entry["id"]] = entry
    return entries


def _grouped_annotations(data: dict, images: dict[int, dict], path: Path) -> dict[int, list[tuple[int, dict]]]:
    """`annotations` grouped by `image_id` as `(position, annotation)` pairs."""
    grouped: dict[int, list[tuple[int, dict]]] = {image_id: [] for image_id in images}
    for position, annotation in enumerate(require(data, "annotations", list, path, "top level")):
        image_id = require(annotation, "image_id", int, path, f"annotations[{position}]")
        if image_id not in images:
            raise AnnotationError(f"{path}: annotations[{position}]: field 'image_id' {image_id} is not in 'images'")
        grouped[image_id].append((position, annotation))
    return grouped


def _find_file(root: Path, candidates: list[str]) -> Path:
    for candidate in candidates:
        if (root / candidate).exists():
            return root / candidate
    raise FileNotFoundError(f"none of {candidates} found under {root}")


def _kins_objects(annotations: list[tuple[int, dict]], image: dict, categories: dict, path: Path) -> list[tuple]:
    """`(category, amodal, visible)` of one KINS image."""
    height, width = image["height"], image["width"]
    objects = []
    for position, annotation in annotations:
        where = f"annotations[{position}]"
        amodal = polygons_to_mask(
            require(annotation, "a_segm", list, path, where), height, width, path, where, "a_segm"
        )
        visible = polygons_to_mask(
            require(annotation, "i_segm", list, path, where), height, width, path, where, "i_segm"
        )
        category_id = require(annotation, "category_id", int, path, where)
        objects.append((categories.get(category_id, str(category_id)), amodal | visible, visible))
    return objects


def _cocoa_objects(annotations: list[tuple[int, dict]], image: dict, _categories: dict, path: Path) -> list[tuple]:
    """`(category, amodal, visible)` of one COCOA image, back to front (descending `order`); COCOA names each
    region itself, so the json's category table is not used."""
    height, width = image["height"], image["width"]
    regions = []
    for position, annotation in annotations:
        for index, region in enumerate(require(annotation, "regions", list, path, f"annotations[{position}]")):
            where = f"annotations[{position}].regions[{index}]"
            segmentation = require(region, "segmentation", list, path, where)
            amodal = polygons_to_mask(segmentation, height, width, path, where, "segmentation")
            if "visible_mask" in region:
                visible = rle_to_mask(region["visible_mask"], height, width, path, where, "visible_mask")
            elif "invisible_mask" in region:
                visible = amodal & ~rle_to_mask(region["invisible_mask"], height, width, path, where, "invisible_mask")
            else:
                visible = amodal
            order = require(region, "order", (int, float), path, where) if "order" in region else 0
            regions.append((order, str(region.get("name", "object")), amodal | visible, visible))
    regions.sort(key=lambda region: -region[0])
    return [region[1:] for region in regions]


def _mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def match_predictions(predictions: list[dict], visible_masks: list[np.ndarray]) -> list[int]:
    """For predictions `{"visible_mask": (H, W) bool, "score"}`, the index of the matched ground-truth visible
    mask (greedy by descending score, IoU >= 0.5, each ground truth at most once) or -1."""
    matches = [-1] * len(predictions)
    taken: set[int] = set()
    for index in sorted(range(len(predictions)), key=lambda item: -predictions[item]["score"]):
        ious = [
            -1.0 if j in taken else _mask_iou(predictions[index]["visible_mask"], m)
            for j, m in enumerate(visible_masks)
        ]
        if ious and max(ious) >= MATCH_IOU:
            matches[index] = int(np.argmax(ious))
            taken.add(matches[index])
    return matches


def read_predictions(path: Path, images: dict[int, dict], categories: dict) -> dict[int, list[dict]]:
    """A COCO results json -> per image id, `{"visible_mask" (H, W) bool, "score", "category"}` (non-empty)."""
    results = read_json(path)
    if not isinstance(results, list):
        raise AnnotationError(f"{path}: top level should be a list of detections, got {type(results).__name__}")
    grouped: dict[int, list[dict]] = {}
    for position, result in enumerate(results):
        where = f"[{position}]"
        image_id = require(result, "image_id", int, path, where)
        if image_id not in images:
            raise AnnotationError(f"{path}: {where}: field 'image_id' {image_id} is not an image of the test split")
        height, width = images[image_id]["height"], images[image_id]["width"]
        mask = rle_to_mask(
            require(result, "segmentation", dict, path, where), height, width, path, where, "segmentation"
        )
        score = float(require(result, "score", (int, float), path, where))
        category_id = result.get("category_id", -1)
        if mask.any():
            grouped.setdefault(image_id, []).append(
                {"visible_mask": mask, "score": score, "category": categories.get(category_id, str(category_id))}
            )
    return grouped


def _image_row(image_path: Path, image_id: str, objects: list[tuple], predictions: list[dict] | None) -> dict:
    """A row of `image_features()`; objects with an empty visible mask are left out."""
    kept = [item for item in objects if item[2].any()]
    if len(kept) < len(objects):
        logger.info("%s: dropped %d objects with an empty visible mask", image_id, len(objects) - len(kept))
    row = {
        "image_id": image_id,
        "image": {"path": str(image_path), "bytes": None},
        "objects": [object_record(*item) for item in kept],
    }
    if predictions is not None:
        matches = match_predictions(predictions, [item[2] for item in kept])
        row["predicted_visible_masks"] = [
            {
                "visible_mask": mask_to_png(prediction["visible_mask"]),
                "score": prediction["score"],
                "category": prediction["category"],
                "object_index": match,
            }
            for prediction, match in zip(predictions, matches)
        ]
    return row


def _coco_style_rows(
    annotation_path: Path,
    image_dir: Path,
    objects_of: Callable[[list[tuple[int, dict]], dict, dict, Path], list[tuple]],
    predictions_path: Path | None,
) -> Iterator[dict]:
    """Rows of a COCO-style annotation file, with `objects_of(annotations, image, categories, path)`."""
    data = read_json(annotation_path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{annotation_path}: top level should be an object with 'images' and 'annotations'")
    images = _image_entries(data, annotation_path)
    categories = {
        require(entry, "id", int, annotation_path, f"categories[{position}]"): str(entry.get("name", entry["id"]))
        for position, entry in enumerate(data.get("categories", []))
    }
    grouped = _grouped_annotations(data, images, annotation_path)
    predictions = read_predictions(predictions_path, images, categories) if predictions_path else None
    for image_id, image in images.items():
        image_path = image_dir / image["file_name"]
        if not image_path.is_file():
            raise FileNotFoundError(f"{annotation_path}: image {image_id}: file {image_path} does not exist")
        objects = objects_of(grouped[image_id], image, categories, annotation_path)
        image_predictions = None if predictions is None else predictions.get(image_id, [])
        yield _image_row(image_path, image["file_name"], objects, image_predictions)


def _write_image_splits(
    root: Path, out: Path, splits: dict[str, tuple[Path, Path]], objects_of: Callable, predictions: Path | None
) -> dict[str, int]:
    counts = {}
    for split, (annotation_path, image_dir) in splits.items():
        split_predictions = predictions if split == "test" else None
        rows = _coco_style_rows(annotation_path, image_dir, objects_of, split_predictions)
        features = image_features(with_predictions=split_predictions is not None)
        counts[split] = write_split(rows, features, out / f"{split}.parquet")
        logger.info("%s: wrote %d rows of split %s", root, counts[split], split)
    return counts


def convert_kins(root: Path, out: Path, predictions: Path | None = None) -> dict[str, int]:
    """KINS -> `out/{train,test}.parquet`; returns the row count of each split."""
    root, out = Path(root), Path(out)
    splits = {
        split: (
            _find_file(root, [f"update_{split}_2020.json", f"annotations/update_{split}_2020.json"]),
            _find_file(root, [f"{folder}/image_2"]),
        )
        for split, folder in (("train", "training"), ("test", "testing"))
    }
    return _write_image_splits(root, out, splits, _kins_objects, predictions)


def convert_cocoa(root: Path, out: Path, predictions: Path | None = None) -> dict[str, int]:
    """COCOA -> `out/{train,test}.parquet` (test = COCO_amodal_val2014); returns the row count of each split."""
    root, out = Path(root), Path(out)
    splits = {
        split: (_find_file(root, [f"annotations/COCO_amodal_{source}.json"]), _find_file(root, [source]))
        for split, source in (("train", "train2014"), ("test", "val2014"))
    }
    return _write_image_splits(root, out, splits, _cocoa_objects, predictions)


def _read_mask_file(path: Path) -> np.ndarray:
    """A mask or instance-id PNG -> `(H, W)` integer array."""
    with PIL.Image.open(path) as image:
        return np.array(image.convert("I") if image.mode not in ("L", "P", "I", "I;16") else image).astype(np.int64)


def _sorted_images(folder: Path, pattern: str) -> list[Path]:
    return sorted(path for path in folder.glob(pattern) if path.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _object_masks(folder: Path, frame_names: list[str], video: Path) -> np.ndarray:
    """`(T, H, W)` bool from `folder/<frame>.png` for each frame stem in `frame_names`."""
    masks = []
    for name in frame_names:
        path = folder / f"{name}.png"
        if not path.is_file():
            raise AnnotationError(f"{video}: mask {path} is missing (every object needs one mask per frame)")
        masks.append(_read_mask_file(path) > 0)
    return np.stack(masks)


def _fishbowl_video(video: Path) -> tuple[list[Path], list[tuple]]:
    """Frames and `(category, amodal (T, H, W), visible (T, H, W))` of one FISHBOWL video folder."""
    frames = _sorted_images(video / "frames", "*")
    if not frames:
        raise AnnotationError(f"{video}: folder 'frames' is missing or holds no images")
    names = [frame.stem for frame in frames]
    tracks = []
    for object_folder in sorted(path for path in (video / "amodal_masks").glob("*") if path.is_dir()):
        amodal = _object_masks(object_folder, names, video)
        visible = _object_masks(video / "visible_masks" / object_folder.name, names, video)
        tracks.append(("object", amodal | visible, visible))
    return frames, tracks


def _movid_categories(video: Path) -> list[str]:
    path = video / "metadata.json"
    if not path.is_file():
        return []
    instances = require(read_json(path), "instances", list, path, "top level")
    return [
        str(instance.get("category", "object")) if isinstance(instance, dict) else "object" for instance in instances
    ]


def _movid_video(video: Path) -> tuple[list[Path], list[tuple]]:
    """Frames and `(category, amodal (T, H, W), visible (T, H, W))` of one MOViD-A (Kubric) video folder."""
    frames = _sorted_images(video, "rgba_*")
    if not frames:
        raise AnnotationError(f"{video}: no 'rgba_<frame>.png' frames")
    suffixes = [frame.stem.removeprefix("rgba_") for frame in frames]
    names = [f"segmentation_{suffix}" for suffix in suffixes]
    instance_ids = np.stack([_read_mask_file_checked(video / f"{name}.png", video) for name in names])
    categories = _movid_categories(video)
    tracks = []
    for folder in sorted((path for path in (video / "amodal").glob("*") if path.is_dir()), key=lambda p: p.name):
        if not folder.name.isdigit():
            raise AnnotationError(f"{video}: amodal folder {folder.name!r} should be an instance id (an integer)")
        instance = int(folder.name)
        category = categories[instance - 1] if 0 < instance <= len(categories) else "object"
        visible = instance_ids == instance
        tracks.append((category, _object_masks(folder, names, video) | visible, visible))
    return frames, tracks


def _read_mask_file_checked(path: Path, video: Path) -> np.ndarray:
    if not path.is_file():
        raise AnnotationError(f"{video}: visible instance map {path} is missing")
    return _read_mask_file(path)


def _video_rows(split_folder: Path, read_video: Callable[[Path], tuple[list[Path], list[tuple]]]) -> Iterator[dict]:
    for video in sorted(path for path in split_folder.iterdir() if path.is_dir()):
        frames, tracks = read_video(video)
        yield {
            "video_id": video.name,
            "frames": [{"path": str(frame), "bytes": None} for frame in frames],
            "objects": [track_record(*track) for track in tracks if track[2].any()],
        }


def _convert_videos(root: Path, out: Path, read_video: Callable) -> dict[str, int]:
    root, out = Path(root), Path(out)
    splits = sorted(path for path in root.iterdir() if path.is_dir()) if root.is_dir() else []
    if not splits:
        raise FileNotFoundError(f"{root} holds no split folders (expected e.g. {root}/train/<video_id>/)")
    return {
        split.name: write_split(_video_rows(split, read_video), video_features(), out / f"{split.name}.parquet")
        for split in splits
    }


def convert_fishbowl(root: Path, out: Path, predictions: Path | None = None) -> dict[str, int]:
    """FISHBOWL -> `out/<split>.parquet` for each split folder of `root`; returns the row count of each split."""
    _reject_video_predictions(predictions)
    return _convert_videos(root, out, _fishbowl_video)


def convert_movid_a(root: Path, out: Path, predictions: Path | None = None) -> dict[str, int]:
    """MOViD-A -> `out/<split>.parquet` for each split folder of `root`; returns the row count of each split."""
    _reject_video_predictions(predictions)
    return _convert_videos(root, out, _movid_video)


def _reject_video_predictions(predictions: Path | None) -> None:
    if predictions is not None:
        raise ValueError("predictions: pre-detected visible masks are supported for image datasets (kins, cocoa) only")


CONVERTERS: dict[str, Callable[..., dict[str, int]]] = {
    "kins": convert_kins,
    "cocoa": convert_cocoa,
    "fishbowl": convert_fishbowl,
    "movid_a": convert_movid_a,
}
