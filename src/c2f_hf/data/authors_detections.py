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
A COCOA ground-truth line becomes a detection equal to the ground-truth visible mask with score 1.0 (an annotation
without `visible_mask`, an object nothing occludes, has visible = amodal: `annotations.visible_or_unoccluded`).

Categories. The pickles name no class: a pickled instance is the detection of one annotated object, whose masks
it carries (`gt_full_mask`). Its category, on the object and on the detection alike, is that of the annotation of
the same image in the split's annotation json (KINS: `update_test_2020.json`, else `instances_val.json`; COCOA:
`COCO_amodal_val2014_with_classes.json`) whose amodal mask overlaps `gt_full_mask` most, at IoU >= 0.5, read as
`--test-set annotations` reads it; an instance with no such annotation keeps the category `object` (a warning
counts them). Pickles are read with `read_plain_pickle`: nothing in them can run.
"""

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from .annotations import (
    AnnotationError,
    CocoFile,
    category_of,
    find_file,
    png_bytes_of,
    read_coco_file,
    read_list_file,
    read_plain_pickle,
    require,
    required_segmentation,
    rle_size,
    rle_to_mask,
    visible_or_unoccluded,
)
from .bounds import checked_image_file, contained_path, open_image
from .converters import MATCH_IOU, ConversionOptions, Detection, SourceObject, image_row, mask_iou

logger = logging.getLogger(__name__)

KINS_PICKLE, KINS_LIST = "kins_intersection.pkl", "kins_intersection_list.txt"
KINS_IMAGE_TABLES = ["instances_val_upate.json", "instances_val.json", "update_test_2020.json"]
COCOA_PICKLE, COCOA_LIST = "fusion_test.pkl", "c2f_seg_test_list.txt"
ObjectsOf = Callable[[CocoFile, dict], list[SourceObject]]


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


class AnnotatedCategories:
    """The category of a pickled instance: that of the annotation of its image whose amodal mask overlaps the
    instance's `gt_full_mask` most (IoU >= `MATCH_IOU`), else `UNMATCHED`; `objects_of(image_id)` gives the
    annotated objects of an image (none for an image the json does not have). Counts the unmatched instances."""

    UNMATCHED = "object"

    def __init__(self, objects_of: Callable[[Any], list[SourceObject]]):
        self.objects_of = objects_of
        self.image_id: Any = None
        self.objects: list[SourceObject] = []
        self.unmatched = 0

    def __call__(self, image_id: Any, amodal_mask: np.ndarray) -> str:
        """The category of the instance of image `image_id` whose ground-truth amodal mask is `amodal_mask`
        `(H, W)` bool; annotations of another size are resized to it (nearest)."""
        if image_id != self.image_id:
            self.image_id, self.objects = image_id, self.objects_of(image_id)
        ious = [mask_iou(amodal_mask, _at_size(item.amodal_mask, amodal_mask.shape)) for item in self.objects]
        if ious and max(ious) >= MATCH_IOU:
            return self.objects[int(np.argmax(ious))].category
        self.unmatched += 1
        return self.UNMATCHED

    def log_unmatched(self, total: int, annotation_path: Path) -> None:
        if self.unmatched:
            logger.warning(
                "%d of %d listed instances match no annotation of %s (amodal IoU >= %.1f): category %r",
                self.unmatched,
                total,
                annotation_path,
                MATCH_IOU,
                self.UNMATCHED,
            )


def _at_size(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`mask` `(h, w)` bool resized (nearest) to `shape` `(H, W)`."""
    if mask.shape == shape:
        return mask
    resized = PIL.Image.fromarray(mask).resize((shape[1], shape[0]), PIL.Image.NEAREST)
    return np.asarray(resized, dtype=bool)


def _paired_instance(instance: Any, pickle_path: Path, where: str, category_of: Callable, index: int) -> tuple:
    """`(SourceObject, Detection, (H, W))` of one pickled instance, named by `category_of(amodal mask)`; the
    detection points at object `index`."""
    prediction = require(instance, "pred_visible_mask", (dict, list), pickle_path, where)
    height, width = rle_size(prediction, pickle_path, where, "pred_visible_mask")
    masks = [
        required_segmentation(instance, name, height, width, pickle_path, where)
        for name in ("gt_full_mask", "gt_visible_mask")
    ]
    predicted = rle_to_mask(prediction, height, width, pickle_path, where, "pred_visible_mask")
    score = instance.get("score", instance.get("pred_score", 1.0))
    if not isinstance(score, (int, float, np.integer, np.floating)) or isinstance(score, bool):
        raise AnnotationError(f"{pickle_path}: {where}: field 'score' should be a number, got {score!r}")
    category = category_of(masks[0])
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


def annotated_objects(coco: CocoFile, objects_of: ObjectsOf) -> Callable[[Any], list[SourceObject]]:
    """`image_id -> ` the objects `objects_of(coco, image)` of that image of `coco`, none for an image it lacks."""
    return lambda image_id: objects_of(coco, coco.images[image_id]) if image_id in coco.images else []


def authors_kins_rows(
    root: Path, image_dir: Path, coco: CocoFile, objects_of: ObjectsOf, options: ConversionOptions
) -> Iterator[dict]:
    """Test rows of KINS from `kins_intersection.pkl` and `kins_intersection_list.txt` under `root`; `coco` is the
    parsed test annotation json and `objects_of(coco, image)` reads its objects (they name the categories)."""
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
    categories = AnnotatedCategories(annotated_objects(coco, objects_of))
    resized = 0
    for image_id, entries in grouped.items():
        file_name = _entry(table.images, image_id, table_path, "images", "image id")["file_name"]
        source = f"{table_path}: images[{table.image_positions[image_id]}].file_name"
        instances = _entry(data, image_id, pickle_path, "top level", "image id")
        pairs = []
        for index, (number, anno_id) in enumerate(entries):
            where = f"image {image_id}, instance {anno_id} (line {number} of {list_path.name})"
            instance = _entry(instances, anno_id, pickle_path, f"image {image_id}", "instance")
            category_of = functools.partial(categories, image_id)
            pairs.append(_paired_instance(instance, pickle_path, where, category_of, index))
        row, was_resized = _paired_row(
            (contained_path(image_dir, file_name, source), source), file_name, pairs, options
        )
        resized += was_resized
        yield row
    _log_resized(resized, len(grouped), "KINS")
    categories.log_unmatched(sum(map(len, grouped.values())), coco.path)


def authors_cocoa_rows(
    root: Path, image_dir: Path, coco: CocoFile, objects_of: ObjectsOf, options: ConversionOptions
) -> Iterator[dict]:
    """Test rows of COCOA from `fusion_test.pkl` and `c2f_seg_test_list.txt` under `root`; `coco` is the parsed
    `COCO_amodal_val2014_with_classes.json` (ground-truth lines index its annotations; `objects_of(coco, image)`
    reads its objects, which name the detections' categories)."""
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
    categories = AnnotatedCategories(annotated_objects(coco, objects_of))
    detections = 0
    resized = 0
    for image_id, entries in grouped.items():
        pairs = []
        for index, (number, entry) in enumerate(entries):
            where = f"line {number} of {list_path.name}"
            if entry[0] == "detection":
                _, source, _, anno_id = entry
                instances = _entry(data, f"{source}_{image_id}", pickle_path, "top level", "key")
                instance = _entry(instances, anno_id, pickle_path, f"{source}_{image_id}", "instance")
                category_of = functools.partial(categories, image_id)
                pairs.append(_paired_instance(instance, pickle_path, where, category_of, index))
                detections += 1
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
    categories.log_unmatched(detections, coco.path)


def _ground_truth_pair(coco, annotation: dict, where: str, index: int) -> tuple:
    """A COCOA-cls annotation as `(SourceObject, Detection of its own visible mask, size)`."""
    image = _entry(coco.images, annotation["image_id"], coco.path, where, "image id")
    height, width = image["height"], image["width"]
    amodal = required_segmentation(annotation, "segmentation", height, width, coco.path, where)
    visible = visible_or_unoccluded(annotation, amodal, coco.path, where)
    category = category_of(annotation, "category_id", coco.categories, coco.path, where)
    return SourceObject(category, amodal, visible), Detection(visible, 1.0, category, index), (height, width)


__all__ = ["authors_cocoa_rows", "authors_kins_rows", "has_authors_cocoa", "has_authors_kins"]
