"""The authors' detection pickles of KINS and COCOA: the object set and the detector pairing the paper scores.

The paper evaluates KINS and COCOA on visible masks predicted by a detector (AISFormer / VRSP), each listed with
the ground truth it belongs to. The authors' test loaders (`data/dataloader_{KINS,COCOA}.py` of
amazon-science/c2f-seg) read:

KINS (`KINS_Aisformer_VRSP_Intersection`): `kins_intersection.pkl`, a dict `{image_id (int): [instance, ...]}`,
and `kins_intersection_list.txt`, one `<image_id>_<index>` per evaluated object; per instance
`pred_visible_mask` (RLE), `gt_visible_mask` (RLE), `gt_full_mask` (polygons), `pred_visible_mask_bbox`; file
names from `instances_val_upate.json` (sic; else `instances_val.json` / `update_test_2020.json`), images in
`testing/image_2/`, resized to the masks' size as the authors do.

COCOA (`COCOA_Fusion_dataset`, test): `fusion_test.pkl`, a dict `{"<source>_<image_id>": [instance, ...]}` with
RLE `pred_visible_mask`, `gt_visible_mask`, `gt_full_mask`, and `c2f_seg_test_list.txt`: a line
`<source>,<image_id>,<index>` is a detection; a line `<annotation index>,<image path>` feeds the ground-truth
visible mask of `COCO_amodal_val2014_with_classes.json`'s annotation at that index. Images
`val2014/COCO_val2014_<image_id:012d>.jpg`.

Rows hold, per image and in list order, each listed object as ground truth (`objects`) and its detection in
`predicted_visible_masks` with `object_index` pointing at it: the pairing is the authors', nothing is re-matched.
A COCOA ground-truth line becomes a detection equal to the ground-truth visible mask with score 1.0. Pickles are
read with `read_plain_pickle`: nothing in them can run.
"""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from .annotations import (
    AnnotationError,
    category_of,
    find_file,
    png_bytes_of,
    read_coco_file,
    read_list_file,
    read_plain_pickle,
    require,
    rle_size,
    rle_to_mask,
    segmentation_to_mask,
)
from .bounds import checked_image_file, contained_path, open_image
from .converters import ConversionOptions, Detection, SourceObject, image_row

logger = logging.getLogger(__name__)

KINS_PICKLE, KINS_LIST = "kins_intersection.pkl", "kins_intersection_list.txt"
KINS_IMAGE_TABLES = ["instances_val_upate.json", "instances_val.json", "update_test_2020.json"]
COCOA_PICKLE, COCOA_LIST = "fusion_test.pkl", "c2f_seg_test_list.txt"


def has_authors_kins(root: Path) -> bool:
    return (Path(root) / KINS_PICKLE).is_file() and (Path(root) / KINS_LIST).is_file()


def has_authors_cocoa(root: Path) -> bool:
    return (Path(root) / COCOA_PICKLE).is_file() and (Path(root) / COCOA_LIST).is_file()


def _entry(container: Any, key: Any, path: Path, where: str, what: str) -> Any:
    """`container[key]` of a dict, list or tuple, or AnnotationError naming `path`, `where` and `what` is missing."""
    try:
        return container[key]
    except (KeyError, IndexError, TypeError):
        raise AnnotationError(f"{path}: {where}: no {what} {key!r}") from None


def _image_value(image_path: Path, source: str, height: int, width: int) -> tuple[dict, bool]:
    """The `Image()` value of `image_path` (named by `source`) at the masks' size `(height, width)`, and whether it
    was resized."""
    if checked_image_file(image_path, source) == (width, height):
        return {"path": str(image_path), "bytes": None}, False
    with open_image(image_path, source) as image:
        return png_bytes_of(image.convert("RGB").resize((width, height), PIL.Image.LANCZOS)), True


def _paired_instance(instance: Any, pickle_path: Path, where: str, category: str, index: int) -> tuple:
    """`(SourceObject, Detection, (H, W))` of one pickled instance; the detection points at object `index`."""
    prediction = require(instance, "pred_visible_mask", (dict, list), pickle_path, where)
    height, width = rle_size(prediction, pickle_path, where, "pred_visible_mask")
    masks = [
        segmentation_to_mask(
            require(instance, name, (dict, list), pickle_path, where), height, width, pickle_path, where, name
        )
        for name in ("gt_full_mask", "gt_visible_mask")
    ]
    predicted = rle_to_mask(prediction, height, width, pickle_path, where, "pred_visible_mask")
    score = instance.get("score", instance.get("pred_score", 1.0))
    if not isinstance(score, (int, float, np.integer, np.floating)) or isinstance(score, bool):
        raise AnnotationError(f"{pickle_path}: {where}: field 'score' should be a number, got {score!r}")
    return SourceObject(category, *masks), Detection(predicted, float(score), category, index), (height, width)


def _grouped_lines(lines: list[str], parse) -> dict[Any, list[tuple[int, Any]]]:
    """List-file lines grouped by image (first appearance order), each `(line number, parsed entry)`."""
    grouped: dict[Any, list[tuple[int, Any]]] = {}
    for number, line in enumerate(lines, start=1):
        image_key, entry = parse(number, line)
        grouped.setdefault(image_key, []).append((number, entry))
    return grouped


def _paired_row(image: tuple[Path, str], image_id: str, pairs: list[tuple], options: ConversionOptions) -> tuple:
    """A row from `(SourceObject, Detection, size)` triples of one image (`(path, source naming it)`), and whether
    its image was resized."""
    sizes = {size for _, _, size in pairs}
    if len(sizes) > 1:
        raise AnnotationError(f"{image_id}: the listed masks of one image have different sizes {sorted(sizes)}")
    value, resized = _image_value(*image, *sizes.pop())
    objects = [source for source, _, _ in pairs]
    detections = [detection for _, detection, _ in pairs]
    return image_row(value, image_id, objects, detections, options), resized


def _log_resized(count: int, total: int, dataset: str) -> None:
    if count:
        logger.warning(
            "%s: %d of %d images resized to their masks' size (as the authors' loader does)", dataset, count, total
        )


def authors_kins_rows(root: Path, image_dir: Path, categories: dict, options: ConversionOptions) -> Iterator[dict]:
    """Test rows of KINS from `kins_intersection.pkl` and `kins_intersection_list.txt` under `root`."""
    root = Path(root)
    pickle_path, list_path = root / KINS_PICKLE, root / KINS_LIST
    data = read_plain_pickle(pickle_path)
    table_path = find_file(root, KINS_IMAGE_TABLES)
    table = read_coco_file(table_path)

    def parse(number: int, line: str) -> tuple[int, int]:
        parts = line.split("_")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise AnnotationError(f"{list_path}: line {number}: {line!r} should be <image_id>_<index>")
        return int(parts[0]), int(parts[1])

    grouped = _grouped_lines(read_list_file(list_path), parse)
    resized = 0
    for image_id, entries in grouped.items():
        file_name = _entry(table.images, image_id, table_path, "images", "image id")["file_name"]
        source = f"{table_path}: images[{table.image_positions[image_id]}].file_name"
        instances = _entry(data, image_id, pickle_path, "top level", "image id")
        pairs = []
        for index, (number, anno_id) in enumerate(entries):
            where = f"image {image_id}, instance {anno_id} (line {number} of {list_path.name})"
            instance = _entry(instances, anno_id, pickle_path, f"image {image_id}", "instance")
            category_id = instance.get("category_id", -1) if isinstance(instance, dict) else -1
            category = categories.get(category_id, "object" if category_id == -1 else str(category_id))
            pairs.append(_paired_instance(instance, pickle_path, where, category, index))
        row, was_resized = _paired_row(
            (contained_path(image_dir, file_name, source), source), file_name, pairs, options
        )
        resized += was_resized
        yield row
    _log_resized(resized, len(grouped), "KINS")


def authors_cocoa_rows(root: Path, image_dir: Path, coco, options: ConversionOptions) -> Iterator[dict]:
    """Test rows of COCOA from `fusion_test.pkl` and `c2f_seg_test_list.txt` under `root`; `coco` is the parsed
    `COCO_amodal_val2014_with_classes.json` (ground-truth lines index its annotations)."""
    root = Path(root)
    pickle_path, list_path = root / COCOA_PICKLE, root / COCOA_LIST
    data = read_plain_pickle(pickle_path)
    by_position = {position: ann for annotations in coco.annotations.values() for position, ann in annotations}

    def parse(number: int, line: str) -> tuple[int, tuple]:
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), ("detection", parts[0], int(parts[1]), int(parts[2]))
        if len(parts) == 2 and parts[0].isdigit():
            annotation = _entry(by_position, int(parts[0]), coco.path, f"line {number} of {list_path}", "annotation")
            return annotation["image_id"], ("ground truth", int(parts[0]))
        raise AnnotationError(
            f"{list_path}: line {number}: {line!r} should be <source>,<image_id>,<index> or <annotation index>,<path>"
        )

    grouped = _grouped_lines(read_list_file(list_path), parse)
    resized = 0
    for image_id, entries in grouped.items():
        pairs = []
        for index, (number, entry) in enumerate(entries):
            where = f"line {number} of {list_path.name}"
            if entry[0] == "detection":
                _, source, _, anno_id = entry
                instances = _entry(data, f"{source}_{image_id}", pickle_path, "top level", "key")
                instance = _entry(instances, anno_id, pickle_path, f"{source}_{image_id}", "instance")
                pairs.append(_paired_instance(instance, pickle_path, where, "object", index))
            else:
                pairs.append(_ground_truth_pair(coco, by_position[entry[1]], where, index))
        image = coco.images.get(image_id)
        file_name = image["file_name"] if image else f"COCO_val2014_{image_id:012d}.jpg"
        source = f"{coco.path}: images[{coco.image_positions[image_id]}].file_name" if image else f"image {image_id}"
        image_path = contained_path(image_dir, file_name, source)
        row, was_resized = _paired_row((image_path, source), file_name, pairs, options)
        resized += was_resized
        yield row
    _log_resized(resized, len(grouped), "COCOA")


def _ground_truth_pair(coco, annotation: dict, where: str, index: int) -> tuple:
    """A COCOA-cls annotation as `(SourceObject, Detection of its own visible mask, size)`."""
    image = _entry(coco.images, annotation["image_id"], coco.path, where, "image id")
    height, width = image["height"], image["width"]
    masks = [
        segmentation_to_mask(
            require(annotation, name, (dict, list), coco.path, where), height, width, coco.path, where, name
        )
        for name in ("segmentation", "visible_mask")
    ]
    category = category_of(annotation, "category_id", coco.categories, coco.path, where)
    return SourceObject(category, *masks), Detection(masks[1], 1.0, category, index), (height, width)


__all__ = ["authors_cocoa_rows", "authors_kins_rows", "has_authors_cocoa", "has_authors_kins"]
