"""What the evaluation runner reads from a dataset's Arrow rows and how each prediction enters `AmodalMetrics`.

Objects (matched detections, or ground-truth objects) enter every metric; detections that match no object enter
AP / AR as false positives and objects that no detection matched as false negatives (conventions: see
`c2f_hf.evaluation`). Rows are one-row Arrow tables, so image bytes are decoded only when a mask is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import torch

from ..data.transforms import decode_mask
from ..models.c2f_seg.mask_policy import occluder_masks_from_visible
from .accumulator import AmodalMetrics
from .baselines import prediction_variants
from .coco import encode_mask

MODEL_VARIANT = "model"


@dataclass(frozen=True)
class ObjectTargets:
    """Full-size ground truth of one evaluated object, all masks numpy bool `(H, W)` at the image size.

    `visible_mask` is the ground-truth visible mask (defines the occluded region); `input_visible_mask` is the
    mask the model received (the same one with `visible_source="gt"`, the detected one with `"predicted"`);
    `detector_score` is the detection's score with `"predicted"`, else None. `object_index` is the object's
    position in its row's `objects` (a video's tracks) and `prediction_index` its detection's position in
    `predicted_visible_masks` (-1 without detections). `occluder_mask` is the union of the *other* input visible
    masks of the same image or frame (the other objects', or the other detections' with `"predicted"`); with it
    the object is also scored restricted to its occluders (`prediction_variants`), without it (None) it is not.
    """

    amodal_mask: np.ndarray
    visible_mask: np.ndarray
    input_visible_mask: np.ndarray
    image_id: str
    category: str
    occlusion_rate: float
    detector_score: float | None = None
    object_index: int = -1
    prediction_index: int = -1
    occluder_mask: np.ndarray | None = None


def prediction_record(
    mask: np.ndarray, image_id: str, category: str, score: float, object_index: int, prediction_index: int
) -> dict:
    """One saved model prediction: its object and detection, score and full-size amodal mask as COCO RLE
    (`segmentation`, `counts` as text, so the record is JSON-ready; `pycocotools.mask.decode` reads it back)."""
    rle = encode_mask(mask)
    return {
        "image_id": image_id,
        "object_index": int(object_index),
        "prediction_index": int(prediction_index),
        "category": category,
        "score": float(score),
        "segmentation": {"size": [int(side) for side in rle["size"]], "counts": rle["counts"].decode("ascii")},
    }


def read_object_targets(
    rows: datasets.Dataset, batch: dict[str, torch.Tensor], visible_source: str
) -> list[ObjectTargets]:
    """The full-size ground truth of each object of a collated batch, decoded from `rows` (the dataset in Arrow
    format) by the batch's `image_index`, `object_index` and `prediction_index` `(N,)`, with its occluder mask
    from every input visible mask of its image; the image is not decoded."""
    targets = []
    occluders = _RowOccluders(rows, visible_source)
    indices = zip(batch["image_index"].tolist(), batch["object_index"].tolist(), batch["prediction_index"].tolist())
    for (image_index, object_index, prediction_index), rate in zip(indices, batch["occlusion_rate"].tolist()):
        row = rows[image_index]
        target = _list_entry(row, "objects", object_index)
        visible_mask = decode_mask(target["visible_mask"])
        input_visible_mask, detector_score = visible_mask, None
        if visible_source == "predicted":
            detection = _list_entry(row, "predicted_visible_masks", prediction_index)
            input_visible_mask, detector_score = decode_mask(detection["visible_mask"]), detection["score"]
        targets.append(
            ObjectTargets(
                amodal_mask=decode_mask(target["amodal_mask"]),
                visible_mask=visible_mask,
                input_visible_mask=input_visible_mask,
                image_id=_image_id(row),
                category=target["category"],
                occlusion_rate=rate,
                detector_score=detector_score,
                object_index=object_index,
                prediction_index=prediction_index,
                occluder_mask=occluders(image_index, object_index if visible_source == "gt" else prediction_index),
            )
        )
    return targets


def _input_visible_column(visible_source: str) -> str:
    """The list column holding the input visible masks of an image: its objects', or its detections'."""
    return "objects" if visible_source == "gt" else "predicted_visible_masks"


class _RowOccluders:
    """The occluder masks of the entries of one input visible column (`_input_visible_column`) of `rows`, by row,
    decoded once per row and kept for the last row asked (a batch holds the objects of an image together)."""

    def __init__(self, rows: datasets.Dataset, visible_source: str):
        self.rows = rows
        self.column = _input_visible_column(visible_source)
        self.image_index: int | None = None
        self.masks: np.ndarray | None = None

    def __call__(self, image_index: int, position: int) -> np.ndarray:
        """`(H, W)` bool: the union of the input visible masks of row `image_index` other than entry `position`."""
        if image_index != self.image_index:
            self.image_index = image_index
            self.masks = row_occluder_masks(self.rows[image_index], self.column)
        return self.masks[position]


def row_occluder_masks(row: pa.Table, column: str) -> np.ndarray:
    """`(N, H, W)` bool occluder masks of the N entries of list column `column` (`"objects"` or
    `"predicted_visible_masks"`) of a one-row Arrow table: for each, the union of the others' `visible_mask`."""
    entries = row.column(column)[0].values
    return occluder_masks_from_visible(
        np.stack([decode_mask(mask) for mask in entries.field("visible_mask").to_pylist()])
    )


def clip_occluder_masks(tracks: Sequence[dict]) -> np.ndarray:
    """`(N, F, H, W)` bool occluder masks of a clip's N tracks (a video row's `objects`, as Python dicts with
    per-frame `visible_masks`): on each frame, the union of the other tracks' visible masks."""
    return occluder_masks_from_visible(
        np.stack([np.stack([decode_mask(mask) for mask in track["visible_masks"]]) for track in tracks])
    )


def _list_entry(row: pa.Table, column: str, position: int) -> dict:
    """Entry `position` of list column `column` of a one-row Arrow table (image bytes left encoded)."""
    return row.column(column)[0].values[position].as_py()


def _image_id(row: pa.Table) -> str:
    return row.column("image_id")[0].as_py()


def add_objects(
    metrics: AmodalMetrics,
    pred_amodal_masks: Sequence[np.ndarray],
    targets: Sequence[ObjectTargets],
    scores: Sequence[float],
    predictions: list[dict] | None = None,
) -> None:
    """Add N objects to `metrics`: the pasted model predictions `(H, W)` bool, their targets and the model's scores,
    with every variant of `prediction_variants` (named `MODEL_VARIANT`, its union with the input visible mask, its
    restriction to the occluders when the targets have `occluder_mask`, and the two baselines). When
    `predictions` is a list, each model prediction is appended (`prediction_record`)."""
    for prediction, target, score in zip(pred_amodal_masks, targets, scores, strict=True):
        metrics.add(
            prediction_variants(
                prediction, target.input_visible_mask, name=MODEL_VARIANT, occluder_mask=target.occluder_mask
            ),
            target.amodal_mask,
            target.visible_mask,
            image_id=target.image_id,
            category=target.category,
            occlusion_rate=target.occlusion_rate,
            score=score,
            object_key=target.object_index,
        )
        if predictions is not None:
            predictions.append(
                prediction_record(
                    prediction, target.image_id, target.category, score, target.object_index, target.prediction_index
                )
            )


def add_unmatched_detections(
    metrics: AmodalMetrics,
    rows: datasets.Dataset,
    batch: dict[str, torch.Tensor],
    pred_amodal_masks: Sequence[np.ndarray],
    predictions: list[dict] | None = None,
) -> None:
    """Add the N detections of a collated batch that matched no object (`object_index` -1) to `metrics` as false
    positives of AP / AR: the pasted model predictions `(H, W)` bool, with every variant of `prediction_variants`
    built from the detected visible mask (and the other detections' as occluders), and the detection's category
    and score, read from `rows` (the dataset in Arrow format) by the batch's `image_index` and `prediction_index`
    `(N,)`. When `predictions` is a list, each model prediction is appended (`prediction_record`)."""
    occluders = _RowOccluders(rows, "predicted")
    indices = zip(batch["image_index"].tolist(), batch["prediction_index"].tolist(), strict=True)
    for prediction, (image_index, prediction_index) in zip(pred_amodal_masks, indices, strict=True):
        row = rows[image_index]
        detection = _list_entry(row, "predicted_visible_masks", prediction_index)
        variants = prediction_variants(
            prediction,
            decode_mask(detection["visible_mask"]),
            name=MODEL_VARIANT,
            occluder_mask=occluders(image_index, prediction_index),
        )
        metrics.add_unmatched_detection(
            variants,
            image_id=_image_id(row),
            category=detection["category"],
            score=detection["score"],
        )
        if predictions is not None:
            predictions.append(
                prediction_record(
                    prediction, _image_id(row), detection["category"], detection["score"], -1, prediction_index
                )
            )


def _matched_object_indices(row: pa.Table) -> set[int]:
    """The `object_index` of every detection of a one-row Arrow table (-1 included), masks left encoded."""
    detections = row.column("predicted_visible_masks")[0].values
    return set() if detections is None else set(detections.field("object_index").to_pylist())


def add_missed_objects(metrics: AmodalMetrics, row: pa.Table) -> None:
    """Add the ground-truth objects of a one-row Arrow table (an image with `predicted_visible_masks`) that no
    detection matched to `metrics`, as false negatives of AP / AR; only their amodal masks are decoded."""
    matched = _matched_object_indices(row)
    for object_index, target in enumerate(row.column("objects")[0].as_py() or []):
        if object_index not in matched:
            metrics.add_missed_object(
                decode_mask(target["amodal_mask"]),
                image_id=_image_id(row),
                category=target["category"],
                occlusion_rate=target["occlusion_rate"],
            )


__all__ = [
    "MODEL_VARIANT",
    "ObjectTargets",
    "add_objects",
    "clip_occluder_masks",
    "prediction_record",
    "read_object_targets",
    "row_occluder_masks",
]
