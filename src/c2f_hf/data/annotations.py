"""Reading annotation files: json, list files, pickles of plain data, COCO polygons and RLEs, mask PNGs.

Every reader raises `AnnotationError` (a ValueError) naming the file and the field, or FileNotFoundError naming
the missing file. Pickles come from other people: `read_plain_pickle` admits only the containers and numpy types
that the authors' data pickles hold and refuses anything else before it can run.
"""

import dataclasses
import io
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
from pycocotools import mask as mask_utils

from .bounds import (
    AnnotationError,
    binary_mask,
    check_image_size,
    check_polygon_coordinates,
    checked_rle_counts,
    open_image,
)
from .plain_pickle import PlainDataUnpickler


def read_plain_pickle(path: Path) -> Any:
    """Load a pickle that holds plain data only (see `PlainDataUnpickler`).

    Raises FileNotFoundError for a missing file and AnnotationError naming the file for anything else: a pickle
    that asks for a class or function (nothing of it runs), or bytes that are no pickle."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickle file {path} does not exist")
    try:
        with path.open("rb") as handle:
            return PlainDataUnpickler(handle, path.stat().st_size).load()
    except pickle.UnpicklingError as error:
        if "is not plain data" in str(error) or "would allocate" in str(error):
            raise AnnotationError(
                f"{path}: refused to load: {error}; only dicts, lists, tuples, strings, numbers and numpy arrays "
                "are read from data pickles, so a pickle that would import or run code is never opened"
            ) from None
        raise AnnotationError(f"{path}: not a readable pickle ({error})") from None
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError, MemoryError) as error:
        raise AnnotationError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from None


def read_json(path: Path) -> Any:
    """Parse a json file, with errors that name it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON ({error})") from error


@dataclasses.dataclass
class CocoFile:
    """A parsed COCO-style json: images by id, annotations grouped by image id, category names by id."""

    path: Path
    images: dict[int, dict]
    annotations: dict[int, list[tuple[int, dict]]]
    categories: dict[int, str]
    image_positions: dict[int, int]


def _read_images(data: dict, path: Path) -> tuple[dict[int, dict], dict[int, int]]:
    """`images` by id and each id's position; AnnotationError naming a duplicate id or an unusable size."""
    images, positions = {}, {}
    for position, entry in enumerate(require(data, "images", list, path, "top level")):
        where = f"images[{position}]"
        for name, kind in (("id", int), ("file_name", str), ("height", int), ("width", int)):
            require(entry, name, kind, path, where)
        check_image_size(entry["height"], entry["width"], f"{path}: {where}: fields 'height', 'width'")
        if entry["id"] in positions:
            raise AnnotationError(
                f"{path}: {where}: field 'id' {entry['id']} is also images[{positions[entry['id']]}]'s (image ids "
                "must be unique, or two images' objects would be merged)"
            )
        images[entry["id"]], positions[entry["id"]] = entry, position
    return images, positions


def read_coco_file(path: Path) -> CocoFile:
    """Parse and check a COCO-style json (`images` with `id`, `file_name`, `height`, `width`; `annotations` with
    `image_id`; optional `categories`)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: top level should be an object with 'images' and 'annotations'")
    images, positions = _read_images(data, path)
    grouped: dict[int, list[tuple[int, dict]]] = {image_id: [] for image_id in images}
    for position, annotation in enumerate(require(data, "annotations", list, path, "top level")):
        image_id = require(annotation, "image_id", int, path, f"annotations[{position}]")
        if image_id not in images:
            raise AnnotationError(f"{path}: annotations[{position}]: field 'image_id' {image_id} is not in 'images'")
        grouped[image_id].append((position, annotation))
    categories = {
        require(entry, "id", int, path, f"categories[{position}]"): str(entry.get("name", entry["id"]))
        for position, entry in enumerate(data.get("categories", []))
    }
    return CocoFile(path, images, grouped, categories, positions)


def read_list_file(path: Path) -> list[str]:
    """The non-empty, stripped lines of a list file such as `kins_intersection_list.txt`; an empty file is an
    AnnotationError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"list file {path} does not exist")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise AnnotationError(f"{path}: the list file names no entry")
    return lines


def require(record: Any, name: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """`record[name]`, checked to exist and to be of type `kind`; else `AnnotationError` naming file and field."""
    if not isinstance(record, dict) or name not in record:
        raise AnnotationError(f"{path}: {where}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(item.__name__ for item in kind)
        raise AnnotationError(f"{path}: {where}: field {name!r} should be {expected}, got {type(value).__name__}")
    return value


def category_of(record: dict, field: str, categories: dict, path: Path, where: str) -> str:
    """The category name of `record[field]` (an id of `categories`, else the id itself; -1 when absent);
    AnnotationError naming file and field for a value that is no integer or string."""
    category_id = record.get(field, -1)
    if not isinstance(category_id, (int, str)) or isinstance(category_id, bool):
        raise AnnotationError(f"{path}: {where}: field {field!r} should be an integer or a string, got {category_id!r}")
    return categories.get(category_id, str(category_id))


def find_file(root: Path, candidates: list[str]) -> Path:
    """The first of `candidates` (paths relative to `root`) that exists; FileNotFoundError listing them all."""
    for candidate in candidates:
        if (root / candidate).exists():
            return root / candidate
    raise FileNotFoundError(f"none of {candidates} found under {root}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def polygons_to_mask(polygons: Any, height: int, width: int, path: Path, where: str, field: str) -> np.ndarray:
    """COCO polygons (a list of flat `[x0, y0, x1, y1, ...]` lists, or one flat list) -> `(H, W)` bool."""
    if isinstance(polygons, np.ndarray):
        polygons = polygons.tolist()
    if isinstance(polygons, list) and polygons and all(_is_number(value) for value in polygons):
        polygons = [polygons]
    polygons = [list(polygon) if isinstance(polygon, (tuple, np.ndarray)) else polygon for polygon in polygons or []]
    valid = all(
        isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0 and all(map(_is_number, polygon))
        for polygon in polygons
    )
    if not valid or not polygons:
        raise AnnotationError(f"{path}: {where}: field {field!r} should be a list of polygons [x0, y0, x1, y1, ...]")
    check_polygon_coordinates(polygons, height, width, f"{path}: {where}: field {field!r}")
    rles = mask_utils.frPyObjects([[float(value) for value in polygon] for polygon in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def rle_to_mask(rle: Any, height: int, width: int, path: Path, where: str, field: str) -> np.ndarray:
    """COCO RLE (`{"size": [H, W], "counts": str, bytes or list}`, or a one-element list of it) -> `(H, W)` bool."""
    if isinstance(rle, (list, tuple)) and len(rle) == 1 and isinstance(rle[0], dict):
        rle = rle[0]
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise AnnotationError(f"{path}: {where}: field {field!r} should be an RLE dict with 'size' and 'counts'")
    if rle_size(rle, path, where, field) != (height, width):
        raise AnnotationError(
            f"{path}: {where}: field {field!r} has size {list(rle['size'])}, expected {[height, width]}"
        )
    counts = checked_rle_counts(rle["counts"], height, width, f"{path}: {where}: field {field!r}")
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        rle = {"size": [height, width], "counts": counts}
    try:
        return mask_utils.decode(rle).astype(bool)
    except (ValueError, TypeError) as error:
        raise AnnotationError(f"{path}: {where}: field {field!r} is not a decodable RLE ({error})") from None


def rle_size(rle: Any, path: Path, where: str, field: str) -> tuple[int, int]:
    """`(H, W)` of an RLE dict (or a one-element list of it)."""
    if isinstance(rle, (list, tuple)) and len(rle) == 1:
        rle = rle[0]
    if not isinstance(rle, dict) or not isinstance(rle.get("size"), (list, tuple, np.ndarray)) or len(rle["size"]) != 2:
        raise AnnotationError(f"{path}: {where}: field {field!r} should be an RLE dict with 'size' and 'counts'")
    return check_image_size(*rle["size"], f"{path}: {where}: field {field!r}")


def segmentation_to_mask(value: Any, height: int, width: int, path: Path, where: str, field: str) -> np.ndarray:
    """A COCO segmentation, polygons or RLE (told apart by type) -> `(H, W)` bool."""
    is_rle = isinstance(value, dict) or (
        isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], dict)
    )
    if is_rle:
        return rle_to_mask(value, height, width, path, where, field)
    return polygons_to_mask(value, height, width, path, where, field)


def required_segmentation(record: Any, field: str, height: int, width: int, path: Path, where: str) -> np.ndarray:
    """`record[field]`, a COCO segmentation (polygons or RLE), as an `(H, W)` bool mask; AnnotationError naming
    file and field when it is missing or malformed."""
    return segmentation_to_mask(require(record, field, (list, dict), path, where), height, width, path, where, field)


def visible_or_unoccluded(
    record: dict, amodal_mask: np.ndarray, path: Path, where: str, field: str = "visible_mask"
) -> np.ndarray:
    """The `(H, W)` bool visible mask of a COCOA-style record whose amodal mask is `amodal_mask` `(H, W)` bool:
    its `field` segmentation (polygons or RLE), else amodal minus its RLE `invisible_mask`, else the amodal mask
    itself. COCOA and COCOA-cls leave both fields out for an object that nothing occludes."""
    height, width = amodal_mask.shape
    if field in record:
        return required_segmentation(record, field, height, width, path, where)
    if "invisible_mask" in record:
        return amodal_mask & ~rle_to_mask(record["invisible_mask"], height, width, path, where, "invisible_mask")
    return amodal_mask


def read_mask_file(path: Path) -> np.ndarray:
    """A mask or instance-id PNG -> `(H, W)` integer array; AnnotationError naming a file that is no image or is
    too large to decode (`bounds.open_image`)."""
    with open_image(path) as image:
        try:
            converted = image.convert("I") if image.mode not in ("L", "P", "I", "I;16") else image
            return np.array(converted).astype(np.int64)
        except OSError as error:
            raise AnnotationError(f"{path}: not a readable image ({error})") from None


def read_binary_mask(path: Path) -> np.ndarray:
    """A binary mask PNG (0/255 or 0/1) -> `(H, W)` bool; AnnotationError naming a file with other values."""
    return binary_mask(read_mask_file(path), path)


def png_bytes_of(image: PIL.Image.Image) -> dict:
    """An `Image()` value holding `image` as lossless PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


__all__ = [
    "AnnotationError",
    "CocoFile",
    "category_of",
    "PlainDataUnpickler",
    "find_file",
    "polygons_to_mask",
    "read_json",
    "read_list_file",
    "read_coco_file",
    "read_binary_mask",
    "read_mask_file",
    "read_plain_pickle",
    "require",
    "required_segmentation",
    "rle_size",
    "rle_to_mask",
    "segmentation_to_mask",
    "visible_or_unoccluded",
]
