"""Converters from the public and the authors' on-disk formats to the common schema (`schema.py`), as Parquet.

Every converter reads `root` and writes `<out>/<split>.parquet` (split names `train`, `test`, or the source's own
split folders for videos). Ground truth is kept **as released**: amodal and visible masks are rasterised at the
annotated size exactly as the files give them, even where a visible polygon pokes out of its amodal one;
`ConversionOptions.amodal_union_visible` replaces every amodal mask by amodal ∪ visible instead (the dataset card
records which). Bbox and occlusion rate are computed from the masks. Objects whose visible mask is empty are
dropped (they cannot be cropped; the count is logged).

Nothing is written half-empty: every split goes to a temporary file first and the files are renamed into place
only when every split holds at least one object; otherwise `AnnotationError` names what was read and what was
looked for. Malformed files raise `AnnotationError` naming the file and the field; missing files
FileNotFoundError naming them. What a source names is checked before it is read (`bounds`): files stay inside the
folder they belong to and are images of the annotated size, RLEs and polygons are checked before pycocotools decodes
them, and pickles are read by `plain_pickle.PlainDataUnpickler`.

The formats, one module each: `coco_amodal` (KINS, COCOA, COCOA-cls and users' COCO-style json),
`authors_detections` (the authors' detection pickles of KINS and COCOA), `video_formats` (FISHBOWL, MOViD-A) and
`mask_folders` (users' folders of per-object mask PNGs); `registry.CONVERTERS` names them. This module holds what
they share: the options, the object rows, the matching of COCO results json detections and the staged writing.

Pre-detected visible masks from a COCO results json (`ConversionOptions.predictions`: a list of `{image_id,
segmentation (RLE), score, category_id}`) go to the `predicted_visible_masks` column of the `test` split, every
one of them; each is paired with a ground-truth object (`object_index`, else -1) by `ConversionOptions.pairing`:
`"one-to-one"` (the default, COCO's rule) takes the detections in descending score order and gives each the
not yet paired object whose visible mask has the highest IoU with it, if that IoU is at least 0.5, so a second
detection of an object stays unpaired (-1: a false positive of AP, no mIoU entry); `"per-detection"` pairs every
detection with the object whose visible mask overlaps it most, at IoU >= 0.5, however many other detections that
object has, which the authors' pickles allow too (each pickled detection carries its own ground truth, so two
detections, of one detector or of two, may share an object; the IoU they paired at is not published). The
authors' pickles carry their own pairing, which is kept as it is (`authors_detections`).
"""

import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from datasets import Features

from .annotations import AnnotationError
from .schema import mask_to_png, object_record, write_split

logger = logging.getLogger(__name__)
MATCH_IOU = 0.5
TEST_SETS = ("auto", "authors", "annotations")
PAIRINGS = ("one-to-one", "per-detection")


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """How a converter reads its source.

    Args:
        predictions: COCO results json of pre-detected visible masks for the `test` split (kins, cocoa, coco_amodal).
        amodal_union_visible: replace each amodal mask by amodal ∪ visible (default: ground truth as released).
        keep_stuff: COCOA (original json): keep the "stuff" regions (`isStuff`), which COCOA-cls leaves out.
        test_set: KINS / COCOA test split: `"authors"` reads the authors' detection pickles (the paper's evaluated
            object set), `"annotations"` the annotation json, `"auto"` the pickles when they are there.
        pairing: how `predictions` are paired with objects: `"one-to-one"` (COCO's rule) or `"per-detection"`
            (several detections may share an object, as in the authors' pickles); see the module docstring.
        annotation_files: `coco_amodal`: `(split, json path)` pairs.
        amodal_field, visible_field, category_field: `coco_amodal`: the annotation fields of the amodal and the
            visible segmentation (polygons or RLE) and of the category id.
    """

    predictions: Path | None = None
    amodal_union_visible: bool = False
    keep_stuff: bool = False
    test_set: str = "auto"
    pairing: str = "one-to-one"
    annotation_files: tuple[tuple[str, Path], ...] = ()
    amodal_field: str = "segmentation"
    visible_field: str = "visible_mask"
    category_field: str = "category_id"

    def __post_init__(self) -> None:
        if self.test_set not in TEST_SETS:
            raise ValueError(f"test_set must be one of {TEST_SETS}, got {self.test_set!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}, got {self.pairing!r}")
        if self.pairing != PAIRINGS[0] and self.predictions is None:
            raise ValueError(f"pairing {self.pairing!r} pairs the detections of --predictions, and none were given")

    def card_entries(self) -> dict[str, str]:
        """What the dataset card records about the conversion."""
        entries = {
            "ground truth": "amodal ∪ visible (--amodal-union-visible)" if self.amodal_union_visible else "as released",
            "stuff regions (COCOA)": "kept (--keep-stuff)" if self.keep_stuff else "excluded",
        }
        if self.predictions is not None:
            entries["detection pairing (--predictions)"] = f"{self.pairing}, visible-mask IoU >= {MATCH_IOU}"
        return entries


class SourceObject(NamedTuple):
    """One annotated object: its class name and `(H, W)` bool masks as the source gives them."""

    category: str
    amodal_mask: np.ndarray
    visible_mask: np.ndarray


class Detection(NamedTuple):
    """A pre-detected visible mask `(H, W)` bool; `object_index` is the paired object's index or None (match by
    IoU)."""

    visible_mask: np.ndarray
    score: float
    category: str
    object_index: int | None = None


def ground_truth(source: SourceObject, options: ConversionOptions) -> SourceObject:
    """`source` as released, or with amodal ∪ visible when the options say so."""
    if not options.amodal_union_visible:
        return source
    return source._replace(amodal_mask=source.amodal_mask | source.visible_mask)


def mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def match_predictions(
    predictions: list[Detection], visible_masks: list[np.ndarray], pairing: str = "one-to-one"
) -> list[int]:
    """The index of the paired ground-truth visible mask `(H, W)` bool of each prediction, or -1: the highest IoU,
    if >= 0.5; with `pairing="one-to-one"` greedy by descending score, each ground truth at most once."""
    matches = [-1] * len(predictions)
    taken: set[int] = set()
    for index in sorted(range(len(predictions)), key=lambda item: -predictions[item].score):
        ious = [
            -1.0 if j in taken else mask_iou(predictions[index].visible_mask, mask)
            for j, mask in enumerate(visible_masks)
        ]
        if ious and max(ious) >= MATCH_IOU:
            matches[index] = int(np.argmax(ious))
            if pairing == "one-to-one":
                taken.add(matches[index])
    return matches


def _kept_objects(objects: list[SourceObject], image_id: str, options: ConversionOptions) -> tuple[list, list[int]]:
    """The objects with a non-empty visible mask (ground-truth policy applied) and their source indices."""
    kept = [(index, ground_truth(item, options)) for index, item in enumerate(objects) if item.visible_mask.any()]
    if len(kept) < len(objects):
        logger.info("%s: dropped %d objects with an empty visible mask", image_id, len(objects) - len(kept))
    return [item for _, item in kept], [index for index, _ in kept]


def _prediction_records(
    detections: list[Detection], objects: list[SourceObject], kept_indices: list[int], pairing: str
) -> list:
    """`predicted_visible_masks` entries: the authors' pairing re-indexed to the kept objects, or IoU matching."""
    if all(detection.object_index is None for detection in detections):
        matches = match_predictions(detections, [item.visible_mask for item in objects], pairing)
    else:
        position = {source: kept for kept, source in enumerate(kept_indices)}
        matches = [position.get(detection.object_index, -1) for detection in detections]
    return [
        {
            "visible_mask": mask_to_png(detection.visible_mask),
            "score": detection.score,
            "category": detection.category,
            "object_index": match,
        }
        for detection, match in zip(detections, matches)
    ]


def image_row(
    image: dict,
    image_id: str,
    objects: list[SourceObject],
    detections: list[Detection] | None,
    options: ConversionOptions,
) -> dict:
    """A row of `image_features(detections is not None)`; `image` is an `Image()` value (path or bytes)."""
    kept, kept_indices = _kept_objects(objects, image_id, options)
    row = {"image_id": image_id, "image": image, "objects": [object_record(*item) for item in kept]}
    if detections is not None:
        usable = [detection for detection in detections if detection.visible_mask.any()]
        row["predicted_visible_masks"] = _prediction_records(usable, kept, kept_indices, options.pairing)
    return row


def count_objects(row: dict) -> int:
    """Objects of an image or video row (video objects count when visible in some frame)."""
    return len(row["objects"])


class StagedOutput:
    """Splits written as `<out>/<split>.parquet.tmp`, renamed into place together by `commit`, deleted on error."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.staged: dict[str, Path] = {}
        self.counts: dict[str, int] = {}

    def write(self, split: str, rows: Iterable[dict], features: Features, looked_for: str) -> int:
        """Write one split; AnnotationError naming `looked_for` (what was read) when it holds no object."""
        objects = 0

        def counted(items: Iterable[dict]) -> Iterator[dict]:
            nonlocal objects
            for row in items:
                objects += count_objects(row)
                yield row

        path = self.out / f"{split}.parquet.tmp"
        self.staged[split] = path
        self.counts[split] = write_split(counted(rows), features, path)
        if objects == 0:
            raise AnnotationError(
                f"split {split!r}: no object found in {looked_for} ({self.counts[split]} rows read, every object "
                "missing or with an empty visible mask); nothing was written"
            )
        logger.info("split %s: %d rows, %d objects from %s", split, self.counts[split], objects, looked_for)
        return self.counts[split]

    def commit(self) -> dict[str, int]:
        for split, path in self.staged.items():
            path.replace(self.out / f"{split}.parquet")
        self.staged.clear()
        return dict(self.counts)

    def discard(self) -> None:
        for path in self.staged.values():
            path.unlink(missing_ok=True)
        self.staged.clear()


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[StagedOutput]:
    """A `StagedOutput` whose files are deleted when the block raises; call `commit()` at its end."""
    stage = StagedOutput(out)
    try:
        yield stage
    finally:
        stage.discard()


def reject_predictions(options: ConversionOptions, dataset: str) -> None:
    if options.predictions is not None:
        raise ValueError(f"--predictions: pre-detected visible masks are not supported for {dataset}")


__all__ = [
    "AnnotationError",
    "ConversionOptions",
    "Detection",
    "SourceObject",
    "count_objects",
    "ground_truth",
    "image_row",
    "match_predictions",
    "staged_output",
]
