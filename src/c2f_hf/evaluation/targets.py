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
    `predicted_visible_masks` (-1 without detections).
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
    format) by the batch's `image_index`, `object_index` and `prediction_index` `(N,)`; the image is not decoded."""
    targets = []
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
            )
        )
    return targets


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
    with every variant of `prediction_variants` (named `MODEL_VARIANT`, its union with the input visible mask and
    the two baselines). When `predictions` is a list, each model prediction is appended (`prediction_record`)."""
    for prediction, target, score in zip(pred_amodal_masks, targets, scores, strict=True):
        metrics.add(
            prediction_variants(prediction, target.input_visible_mask, name=MODEL_VARIANT),
            target.amodal_mask,
            target.visible_mask,
            image_id=target.image_id,
            category=target.category,
            occlusion_rate=target.occlusion_rate,
            score=score,
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
    built from the detected visible mask, and the detection's category and score, read from `rows` (the dataset
    in Arrow format) by the batch's `image_index` and `prediction_index` `(N,)`. When `predictions` is a list,
    each model prediction is appended (`prediction_record`)."""
    indices = zip(batch["image_index"].tolist(), batch["prediction_index"].tolist(), strict=True)
    for prediction, (image_index, prediction_index) in zip(pred_amodal_masks, indices, strict=True):
        row = rows[image_index]
        detection = _list_entry(row, "predicted_visible_masks", prediction_index)
        metrics.add_unmatched_detection(
            prediction_variants(prediction, decode_mask(detection["visible_mask"]), name=MODEL_VARIANT),
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


__all__ = ["MODEL_VARIANT", "ObjectTargets", "add_objects", "prediction_record", "read_object_targets"]
