"""COCO-style amodal json: KINS, COCOA (original and COCOA-cls) and users' own files with configurable fields.

Layouts read (split names as written: `train`, `test`):

KINS (KITTI images; per annotation the 2020 update's polygon lists `a_segm` amodal / `i_segm` visible, or the
original release's `segmentation` amodal / `inmodal_seg` visible; `category_id`):
    root/update_{train,test}_2020.json, or root/instances_{train,val}.json (also under root/annotations/)
    root/training/image_2/<file_name>  root/testing/image_2/<file_name>
    test split: with root/kins_intersection.pkl + kins_intersection_list.txt, the authors' detections
    (`authors_detections`), unless `test_set="annotations"`.

COCOA-cls (the authors' COCOA: flat `annotations` with RLE `segmentation` amodal and `visible_mask`, `category_id`;
an object that nothing occludes has no `visible_mask`: its visible mask is amodal minus `invisible_mask` when that is
given, else the amodal mask, as in the original COCOA json):
    root/COCO_amodal_{train,val}2014_with_classes.json (or under root/annotations/) -> train, test
    root/train2014/<file_name>  root/val2014/<file_name>
    test split: with root/fusion_test.pkl + c2f_seg_test_list.txt, the authors' detections.
COCOA (the original json, read when no COCOA-cls file is there: `annotations[*].regions[*]` with flat polygon
`segmentation`, optional RLE `visible_mask` / `invisible_mask`, `name`, `order` (1 = front; written back to
front), `isStuff` (left out unless `keep_stuff`)):
    root/annotations/COCO_amodal_{train,val}2014.json

Users' COCO-style json (`coco_amodal`): `images` with `id`, `file_name`, `height`, `width`; `annotations` with
`image_id` and an amodal and a visible segmentation, each polygons or RLE, under field names of your choice.
"""

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from .annotations import (
    AnnotationError,
    CocoFile,
    category_of,
    find_file,
    read_coco_file,
    read_json,
    require,
    required_segmentation,
    rle_to_mask,
    segmentation_to_mask,
    visible_or_unoccluded,
)
from .authors_detections import authors_cocoa_rows, authors_kins_rows, has_authors_cocoa, has_authors_kins
from .bounds import checked_image_file, contained_path
from .converters import ConversionOptions, Detection, SourceObject, image_row, staged_output
from .schema import image_features

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CocoFields:
    """Annotation field names: amodal and visible segmentation (polygons or RLE) and category id.
    `visible_optional`: an annotation without the visible field is an object nothing occludes
    (`annotations.visible_or_unoccluded`), as COCOA stores it."""

    amodal: str
    visible: str
    category: str = "category_id"
    visible_optional: bool = False


KINS_2020_FIELDS = CocoFields("a_segm", "i_segm")
KINS_ORIGINAL_FIELDS = CocoFields("segmentation", "inmodal_seg")
COCOA_CLS_FIELDS = CocoFields("segmentation", "visible_mask", visible_optional=True)


def kins_fields(annotation: dict, path: Path, where: str) -> CocoFields:
    """The field naming of one KINS annotation: the 2020 update's or the original release's."""
    if "a_segm" in annotation or "i_segm" in annotation:
        return KINS_2020_FIELDS
    if "inmodal_seg" in annotation:
        return KINS_ORIGINAL_FIELDS
    raise AnnotationError(
        f"{path}: {where}: missing field 'a_segm' (KINS 2020 update: 'a_segm' / 'i_segm'; original KINS: "
        "'segmentation' / 'inmodal_seg')"
    )


def fielded_objects(
    coco: CocoFile, image: dict, fields_of: Callable[[dict, Path, str], CocoFields]
) -> list[SourceObject]:
    """The objects of one image, each annotation read with the fields `fields_of(annotation, path, where)`."""
    height, width = image["height"], image["width"]
    objects = []
    for position, annotation in coco.annotations[image["id"]]:
        where = f"annotations[{position}]"
        fields = fields_of(annotation, coco.path, where)
        amodal = required_segmentation(annotation, fields.amodal, height, width, coco.path, where)
        if fields.visible_optional:
            visible = visible_or_unoccluded(annotation, amodal, coco.path, where, fields.visible)
        else:
            visible = required_segmentation(annotation, fields.visible, height, width, coco.path, where)
        category = category_of(annotation, fields.category, coco.categories, coco.path, where)
        objects.append(SourceObject(category, amodal, visible))
    return objects


def cocoa_region_objects(coco: CocoFile, image: dict, keep_stuff: bool) -> list[SourceObject]:
    """The regions of one image of the original COCOA json, back to front (descending `order`); COCOA names each
    region itself. Stuff regions (`isStuff`) are left out unless `keep_stuff`."""
    height, width = image["height"], image["width"]
    regions = []
    for position, annotation in coco.annotations[image["id"]]:
        for index, region in enumerate(require(annotation, "regions", list, coco.path, f"annotations[{position}]")):
            where = f"annotations[{position}].regions[{index}]"
            if not isinstance(region, dict):
                raise AnnotationError(f"{coco.path}: {where}: should be an object, got {type(region).__name__}")
            if region.get("isStuff") and not keep_stuff:
                continue
            amodal = segmentation_to_mask(
                require(region, "segmentation", list, coco.path, where), height, width, coco.path, where, "segmentation"
            )
            visible = visible_or_unoccluded(region, amodal, coco.path, where)
            order = require(region, "order", (int, float), coco.path, where) if "order" in region else 0
            regions.append((order, SourceObject(str(region.get("name", "object")), amodal, visible)))
    regions.sort(key=lambda region: -region[0])
    return [region for _, region in regions]


def read_predictions(path: Path, coco: CocoFile) -> dict[int, list[Detection]]:
    """A COCO results json -> per image id, its non-empty detections (paired later by IoU)."""
    results = read_json(path)
    if not isinstance(results, list):
        raise AnnotationError(f"{path}: top level should be a list of detections, got {type(results).__name__}")
    grouped: dict[int, list[Detection]] = {}
    for position, result in enumerate(results):
        where = f"[{position}]"
        image_id = require(result, "image_id", int, path, where)
        if image_id not in coco.images:
            raise AnnotationError(f"{path}: {where}: field 'image_id' {image_id} is not an image of the test split")
        height, width = coco.images[image_id]["height"], coco.images[image_id]["width"]
        segmentation = require(result, "segmentation", dict, path, where)
        mask = rle_to_mask(segmentation, height, width, path, where, "segmentation")
        score = float(require(result, "score", (int, float), path, where))
        category = category_of(result, "category_id", coco.categories, path, where)
        grouped.setdefault(image_id, []).append(Detection(mask, score, category))
    return grouped


def coco_rows(
    coco: CocoFile,
    image_dir: Path,
    objects_of: Callable[[CocoFile, dict], list[SourceObject]],
    options: ConversionOptions,
    predictions: Path | None,
) -> Iterator[dict]:
    """Rows of a COCO-style file, objects from `objects_of(coco, image)`, detections from `predictions`."""
    detections = read_predictions(predictions, coco) if predictions else None
    for image_id, image in coco.images.items():
        source = f"{coco.path}: images[{coco.image_positions[image_id]}].file_name"
        image_path = contained_path(image_dir, image["file_name"], source)
        checked_image_file(image_path, source, (image["width"], image["height"]))
        image_detections = None if detections is None else detections.get(image_id, [])
        value = {"path": str(image_path), "bytes": None}
        yield image_row(value, image["file_name"], objects_of(coco, image), image_detections, options)


def _write_coco_splits(
    out: Path,
    splits: dict[str, tuple[Path, Path]],
    objects_of: Callable[[CocoFile, dict], list[SourceObject]],
    options: ConversionOptions,
    authors_test: Callable[[CocoFile], Iterator[dict]] | None = None,
) -> dict[str, int]:
    """Write each `split: (json, image folder)`; the test split from `authors_test(coco)` when given."""
    with staged_output(out) as stage:
        for split, (annotation_path, image_dir) in splits.items():
            coco = read_coco_file(annotation_path)
            if split == "test" and authors_test is not None:
                stage.write(split, authors_test(coco), image_features(with_predictions=True), "the authors' detections")
                continue
            predictions = options.predictions if split == "test" else None
            rows = coco_rows(coco, image_dir, objects_of, options, predictions)
            features = image_features(with_predictions=predictions is not None)
            stage.write(split, rows, features, f"{annotation_path} (annotations with amodal and visible masks)")
        return stage.commit()


def _use_authors_test(root: Path, options: ConversionOptions, present: bool, files: str) -> bool:
    if options.test_set == "authors" and not present:
        raise FileNotFoundError(f"test_set 'authors': {files} not found under {root}")
    if present and options.test_set != "annotations" and options.predictions is not None:
        raise ValueError(f"--predictions and the authors' detections ({files}) both give the test split's detections")
    return present and options.test_set != "annotations"


def convert_kins(root: Path, out: Path, options: ConversionOptions | None = None) -> dict[str, int]:
    """KINS -> `out/{train,test}.parquet`; returns the row count of each split."""
    root, out, options = Path(root), Path(out), options or ConversionOptions()
    annotation_names = {
        "train": ("update_train_2020.json", "instances_train.json"),
        "test": ("update_test_2020.json", "instances_val.json"),
    }
    splits = {
        split: (
            find_file(root, [*names, *(f"annotations/{name}" for name in names)]),
            find_file(root, [f"{folder}/image_2"]),
        )
        for (split, names), folder in zip(annotation_names.items(), ("training", "testing"))
    }
    authors = _use_authors_test(
        root, options, has_authors_kins(root), "kins_intersection.pkl + kins_intersection_list.txt"
    )

    def objects_of(coco: CocoFile, image: dict) -> list[SourceObject]:
        return fielded_objects(coco, image, kins_fields)

    def authors_test(coco: CocoFile) -> Iterator[dict]:
        return authors_kins_rows(root, splits["test"][1], coco, objects_of, options)

    return _write_coco_splits(out, splits, objects_of, options, authors_test if authors else None)


def convert_cocoa(root: Path, out: Path, options: ConversionOptions | None = None) -> dict[str, int]:
    """COCOA-cls (or the original COCOA json when no COCOA-cls file is there) -> `out/{train,test}.parquet` (test =
    val2014); returns the row count of each split."""
    root, out, options = Path(root), Path(out), options or ConversionOptions()
    sources = {"train": "train2014", "test": "val2014"}
    cls_names = {split: f"COCO_amodal_{source}_with_classes.json" for split, source in sources.items()}
    is_cls = all((root / name).is_file() or (root / "annotations" / name).is_file() for name in cls_names.values())
    if is_cls:
        splits = {
            split: (find_file(root, [cls_names[split], f"annotations/{cls_names[split]}"]), find_file(root, [source]))
            for split, source in sources.items()
        }

        def objects_of(coco: CocoFile, image: dict) -> list[SourceObject]:
            return fielded_objects(coco, image, lambda *_: COCOA_CLS_FIELDS)

    else:
        splits = {
            split: (
                find_file(root, [f"annotations/COCO_amodal_{source}.json", f"COCO_amodal_{source}.json"]),
                find_file(root, [source]),
            )
            for split, source in sources.items()
        }

        def objects_of(coco: CocoFile, image: dict) -> list[SourceObject]:
            return cocoa_region_objects(coco, image, options.keep_stuff)

    authors = _use_authors_test(root, options, has_authors_cocoa(root), "fusion_test.pkl + c2f_seg_test_list.txt")
    if authors and not is_cls:
        raise FileNotFoundError(
            f"the authors' COCOA detections need COCOA-cls ({cls_names['test']}) next to them under {root}"
        )

    def authors_test(coco: CocoFile) -> Iterator[dict]:
        return authors_cocoa_rows(root, splits["test"][1], coco, objects_of, options)

    return _write_coco_splits(out, splits, objects_of, options, authors_test if authors else None)


def convert_coco_amodal(root: Path, out: Path, options: ConversionOptions) -> dict[str, int]:
    """Users' COCO-style json files (`options.annotation_files`, `(split, path)` pairs) with images under `root`
    (their `file_name`s are relative to it) -> `out/<split>.parquet`; fields from `options`."""
    root, out = Path(root), Path(out)
    if not options.annotation_files:
        raise ValueError("--annotations: coco_amodal needs at least one SPLIT=PATH annotation file")
    fields = CocoFields(options.amodal_field, options.visible_field, options.category_field)
    splits = {split: (Path(path), root) for split, path in options.annotation_files}

    def objects_of(coco: CocoFile, image: dict) -> list[SourceObject]:
        return fielded_objects(coco, image, lambda *_: fields)

    return _write_coco_splits(out, splits, objects_of, options)


__all__ = ["CocoFields", "convert_coco_amodal", "convert_cocoa", "convert_kins"]
