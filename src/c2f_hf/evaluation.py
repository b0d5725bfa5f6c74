"""Amodal segmentation metrics and baselines (paper §4): the only place they live.

Conventions shared by everything in this module:

* **Masks** are full-size `(H, W)` masks after paste-back, given as numpy arrays, torch tensors or PIL images. A
  pixel is foreground when it is True (bool masks) or greater than 0.5 (any other dtype, so {0, 1} floats,
  probabilities and 0/255 "L" images all work). Functions that return masks return numpy bool `(H, W)` arrays.
* **IoU** of two masks whose union is empty is 1.0: both agree that there is nothing there.
* **IoU_occ** = IoU(pred_amodal − gt_visible, gt_amodal − gt_visible), set differences (clip at 0). It is only
  defined when the ground-truth occluded region `gt_amodal − gt_visible` is non-empty; otherwise it is None and
  the object does not enter mIoU_occ. Its union is therefore never empty.
* **Occlusion rates** are fractions in [0, 1] (like COCOA's `occlude_rate`), not percent. When none is given,
  it is computed from the masks as `1 − |visible ∩ amodal| / |amodal|` (0.0 for an empty amodal mask).
* **Occlusion-rate filter** `occlusion_range=(low, high)` keeps objects with `low <= rate <= high` (both bounds
  inclusive; FISHBOWL uses (0.1, 0.7)). It applies to every number: mIoU, bins, counts and AP, and to missed
  ground-truth objects too. Unmatched detections have no occlusion rate: they always take part in AP / AR.
* **Occlusion-rate bins** (default edges 0, 0.1, 0.3, 0.5, 0.7, 1.0) are closed on the left and open on the
  right, `[lower, upper)`, except the last one, which is closed on both sides, `[0.7, 1.0]`. So a rate of
  exactly 0.1 falls in 10-30% and a rate of 1.0 in 70-100%.
* **AP / AR** come from pycocotools' `COCOeval` with `iouType="segm"` on amodal masks: AP is the mean over IoU
  thresholds 0.50:0.05:0.95, AP50 and AP75 at one threshold, AR is AR@100 (at most 100 detections per image,
  all object areas; COCO's default AR). A value COCO reports as -1 (no ground truth) is None here. As in COCO
  and the paper, AP / AR see every detection against every ground-truth object of each image: besides the
  objects (each a ground truth with its detection), `AmodalMetrics` takes detections that match no ground-truth
  object (false positives, `add_unmatched_detection`) and ground-truth objects that no detection matched (false
  negatives, `add_missed_object`). These two enter AP / AR only, never mIoU, bins or object counts.
* **Convex hull baseline**: the hull of the foreground pixel *centres*; a pixel belongs to the hull mask when its
  centre lies inside or on the hull. Masks whose centres do not span an area (empty, one pixel, one row or
  column, collinear pixels) make Qhull fail; their hull mask is the mask itself.
* **Union with visible** (the authors report it next to the raw prediction) is `pred_amodal ∪ input_visible`,
  where the input visible mask is the one the model received (for benchmarks with a detector, the predicted
  visible mask; otherwise the ground-truth one).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.spatial import ConvexHull, QhullError

from .image_processing_c2f_seg import (
    MaskLike,
    check_same_shape,
    occluded_mask,
    occlusion_rate,
    to_bool_mask,
    union_with_visible,
)

logger = logging.getLogger(__name__)

DEFAULT_BIN_EDGES: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0)
FISHBOWL_OCCLUSION_RANGE: tuple[float, float] = (0.1, 0.7)
VISIBLE_BASELINE = "visible_baseline"
CONVEX_HULL_BASELINE = "convex_hull_baseline"
UNION_WITH_VISIBLE_SUFFIX = "_union_visible"

# Positions in COCOeval.stats (see COCOeval.summarize) of the numbers we report.
_COCO_STATS_INDEX = {"AP": 0, "AP50": 1, "AP75": 2, "AR100": 8}
_HULL_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------------------------
# Per-object metrics
# ---------------------------------------------------------------------------------------------------------------


def _bool_iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.count_nonzero(first | second)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(first & second) / union)


def _bool_occluded_iou(
    pred_amodal_mask: np.ndarray, gt_amodal_mask: np.ndarray, gt_visible_mask: np.ndarray
) -> float | None:
    gt_occluded_mask = gt_amodal_mask & ~gt_visible_mask
    if not gt_occluded_mask.any():
        return None
    return _bool_iou(pred_amodal_mask & ~gt_visible_mask, gt_occluded_mask)


def iou(pred_mask: MaskLike, gt_mask: MaskLike) -> float:
    """Intersection over union of two `(H, W)` masks, in [0, 1]; 1.0 when both are empty.

    With the amodal prediction and the ground-truth amodal mask this is the paper's IoU_full.
    """
    prediction, target = to_bool_mask(pred_mask, "pred_mask"), to_bool_mask(gt_mask, "gt_mask")
    check_same_shape(pred_mask=prediction, gt_mask=target)
    return _bool_iou(prediction, target)


def occluded_iou(pred_amodal_mask: MaskLike, gt_amodal_mask: MaskLike, gt_visible_mask: MaskLike) -> float | None:
    """The paper's IoU_occ: IoU(pred_amodal − gt_visible, gt_amodal − gt_visible), all masks `(H, W)`.

    Returns None when the ground-truth occluded region is empty (the object is fully visible), because such
    objects are left out of mIoU_occ.
    """
    prediction = to_bool_mask(pred_amodal_mask, "pred_amodal_mask")
    amodal = to_bool_mask(gt_amodal_mask, "gt_amodal_mask")
    visible = to_bool_mask(gt_visible_mask, "gt_visible_mask")
    check_same_shape(pred_amodal_mask=prediction, gt_amodal_mask=amodal, gt_visible_mask=visible)
    return _bool_occluded_iou(prediction, amodal, visible)


def occlusion_bin(rate: float, bin_edges: Sequence[float] = DEFAULT_BIN_EDGES) -> int:
    """Index of the occlusion-rate bin holding `rate`: bins are `[lower, upper)`, the last one `[lower, upper]`.

    `bin_edges` must be increasing from 0.0 to 1.0; `rate` must lie in [0, 1].
    """
    index = int(np.searchsorted(np.asarray(bin_edges), rate, side="right")) - 1
    return min(index, len(bin_edges) - 2)


# ---------------------------------------------------------------------------------------------------------------
# Post-processing and baselines
# ---------------------------------------------------------------------------------------------------------------


def _row_extreme_pixel_centres(mask: np.ndarray) -> np.ndarray:
    """`(N, 2)` (row, column) centres of the first and last foreground pixel of every non-empty row.

    Every other foreground centre lies between two of these on its row, so they have the same convex hull.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    points = np.concatenate([np.stack([rows, first], axis=1), np.stack([rows, last], axis=1)])
    return np.unique(points, axis=0).astype(np.float64)


def _rasterise_hull(hull: ConvexHull, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre `(row, column)` lies inside or on `hull`, numpy bool `shape`.

    A convex polygon covers one interval of columns per row: each facet `a·row + b·column + c <= 0` bounds the
    column from above (b > 0) or below (b < 0), or bounds only the row (b == 0).
    """
    top, bottom = int(hull.min_bound[0]), int(hull.max_bound[0])
    rows = np.arange(top, bottom + 1, dtype=np.float64)[:, None]
    row_normal, column_normal, offset = hull.equations.T
    bound = -(offset + row_normal * rows)  # (rows, facets): column_normal * column <= bound
    upper_facets = column_normal > _HULL_TOLERANCE
    lower_facets = column_normal < -_HULL_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = bound / column_normal
    last = np.where(upper_facets, limit, np.inf).min(axis=1)
    first = np.where(lower_facets, limit, -np.inf).max(axis=1)
    row_inside = np.all(upper_facets | lower_facets | (bound >= -_HULL_TOLERANCE), axis=1)
    columns = np.arange(shape[1])[None, :]
    inside = (columns >= (first - _HULL_TOLERANCE)[:, None]) & (columns <= (last + _HULL_TOLERANCE)[:, None])
    hull_mask = np.zeros(shape, dtype=bool)
    hull_mask[top : bottom + 1] = inside & row_inside[:, None]
    return hull_mask


def convex_hull_mask(mask: MaskLike) -> np.ndarray:
    """The convex-hull baseline: the convex hull of the foreground pixel centres, rasterised, numpy bool `(H, W)`.

    A pixel is in the result when its centre lies inside or on the hull, so the result contains `mask`. When the
    centres span no area (empty mask, one pixel, a straight line of pixels) Qhull raises QhullError and the
    mask itself is returned.
    """
    foreground = to_bool_mask(mask, "mask")
    points = _row_extreme_pixel_centres(foreground)
    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):  # ValueError: no point at all (empty mask)
        return foreground.copy()
    # The union only guards against round-off: every foreground centre is a hull point or inside the hull.
    return _rasterise_hull(hull, foreground.shape) | foreground


def baseline_predictions(visible_mask: MaskLike) -> dict[str, np.ndarray]:
    """The two baselines from the input visible mask `(H, W)`: `{VISIBLE_BASELINE, CONVEX_HULL_BASELINE}`."""
    visible = to_bool_mask(visible_mask, "visible_mask")
    return {VISIBLE_BASELINE: visible.copy(), CONVEX_HULL_BASELINE: convex_hull_mask(visible)}


def prediction_variants(
    pred_amodal_mask: MaskLike, visible_mask: MaskLike, name: str = "model"
) -> dict[str, np.ndarray]:
    """Every variant the paper reports for one object, numpy bool `(H, W)` each.

    Keys: `name` (the raw prediction), `name + "_union_visible"`, `"visible_baseline"` and
    `"convex_hull_baseline"`. `visible_mask` is the visible mask the model received as input.
    """
    prediction = to_bool_mask(pred_amodal_mask, "pred_amodal_mask")
    return {
        name: prediction,
        name + UNION_WITH_VISIBLE_SUFFIX: union_with_visible(prediction, visible_mask),
        **baseline_predictions(visible_mask),
    }


# ---------------------------------------------------------------------------------------------------------------
# COCO AP / AR
# ---------------------------------------------------------------------------------------------------------------


def encode_mask(mask: MaskLike) -> dict:
    """pycocotools RLE (`{"size": [H, W], "counts": bytes}`) of an `(H, W)` mask."""
    array = to_bool_mask(mask, "mask")
    return mask_utils.encode(np.asfortranarray(array.astype(np.uint8)))


@dataclass(frozen=True)
class MaskAnnotation:
    """One object for COCO evaluation: a ground-truth instance (score None) or a detection (with its score).

    `rle` is a pycocotools RLE of the full-size `(H, W)` mask; `image_id` and `category` may be any hashable
    (ints or strings); they are mapped to COCO ids internally.
    """

    rle: dict
    image_id: Hashable
    category: Hashable = 1
    score: float | None = None

    @classmethod
    def from_mask(
        cls, mask: MaskLike, image_id: Hashable, category: Hashable = 1, score: float | None = None
    ) -> MaskAnnotation:
        return cls(encode_mask(mask), image_id, category, None if score is None else float(score))


def _ids_in_order(values: Iterable[Hashable]) -> dict[Hashable, int]:
    """Map each distinct value to a COCO id, 1, 2, ... in order of first appearance."""
    ids: dict[Hashable, int] = {}
    for value in values:
        ids.setdefault(value, len(ids) + 1)
    return ids


def _coco_annotations(
    annotations: Sequence[MaskAnnotation], image_ids: dict[Hashable, int], category_ids: dict[Hashable, int]
) -> list[dict]:
    # COCOeval treats annotation id 0 as "unmatched", so ids start at 1.
    return [
        {
            "id": index + 1,
            "image_id": image_ids[annotation.image_id],
            "category_id": category_ids[annotation.category],
            "segmentation": annotation.rle,
            "area": float(mask_utils.area(annotation.rle)),
            "bbox": mask_utils.toBbox(annotation.rle).tolist(),
            "iscrowd": 0,
            "score": 1.0 if annotation.score is None else annotation.score,
        }
        for index, annotation in enumerate(annotations)
    ]


def _coco_dataset(images: list[dict], categories: list[dict], annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    coco.createIndex()
    return coco


def coco_mask_ap(
    ground_truths: Sequence[MaskAnnotation], detections: Sequence[MaskAnnotation]
) -> dict[str, float | None]:
    """COCO mask AP, AP50, AP75 and AR@100 (keys `"AP"`, `"AP50"`, `"AP75"`, `"AR100"`), each in [0, 1].

    Ground truths and detections are matched per image and category by `COCOeval(iouType="segm")`; detections
    are ranked by their `score`. Values COCO cannot define (no ground truth at all) are None. pycocotools'
    console output is swallowed.
    """
    everything = [*ground_truths, *detections]
    image_ids = _ids_in_order(annotation.image_id for annotation in everything)
    category_ids = _ids_in_order(annotation.category for annotation in everything)
    sizes = {image_ids[annotation.image_id]: annotation.rle["size"] for annotation in everything}
    images = [{"id": image_id, "height": int(h), "width": int(w)} for image_id, (h, w) in sizes.items()]
    categories = [{"id": category_id, "name": str(name)} for name, category_id in category_ids.items()]
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth_coco = _coco_dataset(images, categories, _coco_annotations(ground_truths, image_ids, category_ids))
        detection_coco = _coco_dataset(images, categories, _coco_annotations(detections, image_ids, category_ids))
        evaluator = COCOeval(ground_truth_coco, detection_coco, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {
        name: None if evaluator.stats[index] < 0 else float(evaluator.stats[index])
        for name, index in _COCO_STATS_INDEX.items()
    }


# ---------------------------------------------------------------------------------------------------------------
# Accumulator and results
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class BinMetrics:
    """mIoU over the objects whose occlusion rate lies in one bin; means are fractions in [0, 1] or None."""

    label: str
    lower: float
    upper: float
    num_objects: int
    num_occluded_objects: int
    miou_full: float | None
    miou_occ: float | None


@dataclass
class VariantMetrics:
    """Numbers for one prediction variant; means are fractions in [0, 1], None when no object defines them.

    `ap` holds `coco_mask_ap`'s dict when every counted object came with a detector score, else None; it also
    counts the unmatched detections and missed objects of `EvaluationResults`, which the other numbers do not.
    """

    miou_full: float | None
    miou_occ: float | None
    num_objects: int
    num_occluded_objects: int
    bins: list[BinMetrics]
    ap: dict[str, float | None] | None = None


@dataclass
class EvaluationResults:
    """What `AmodalMetrics.compute` returns and `write_report` writes.

    `variants` maps each prediction variant's name (e.g. "model", "visible_baseline") to its numbers.
    `num_objects_added` counts every object given; `num_objects_counted` those inside `occlusion_range`.
    `num_unmatched_detections` counts the detections that matched no ground-truth object (false positives, all of
    them take part in AP / AR) and `num_missed_objects` the ground-truth objects inside `occlusion_range` that no
    detection matched (false negatives); both enter only AP / AR, not the object counts. `run_settings` records
    how the predictions were made (model, data, sampling; filled by the evaluation runner).
    """

    variants: dict[str, VariantMetrics]
    num_objects_added: int
    num_objects_counted: int
    num_images: int
    occlusion_range: tuple[float, float] | None
    bin_edges: tuple[float, ...]
    num_unmatched_detections: int = 0
    num_missed_objects: int = 0
    conventions: dict[str, str] = field(default_factory=dict)
    run_settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN: undefined numbers are None)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResults:
        """Inverse of `to_dict` (e.g. for a loaded `metrics.json`)."""
        variants = {
            name: VariantMetrics(**{**values, "bins": [BinMetrics(**bin_values) for bin_values in values["bins"]]})
            for name, values in data["variants"].items()
        }
        occlusion_range = data["occlusion_range"]
        return cls(
            variants=variants,
            num_objects_added=data["num_objects_added"],
            num_objects_counted=data["num_objects_counted"],
            num_images=data["num_images"],
            occlusion_range=None if occlusion_range is None else tuple(occlusion_range),
            bin_edges=tuple(data["bin_edges"]),
            num_unmatched_detections=data.get("num_unmatched_detections", 0),
            num_missed_objects=data.get("num_missed_objects", 0),
            conventions=dict(data.get("conventions", {})),
            run_settings=dict(data.get("run_settings", {})),
        )


CONVENTIONS = {
    "units": "IoU, AP and AR are fractions in [0, 1]; occlusion rates are fractions in [0, 1]",
    "empty_union_iou": "1.0",
    "miou_occ": "mean IoU_occ over objects whose ground-truth occluded region (amodal minus visible) is non-empty",
    "occlusion_range": "objects with low <= occlusion_rate <= high are counted (inclusive); null: all objects",
    "bins": "[lower, upper) except the last bin, which is [lower, upper]",
    "ap": "pycocotools COCOeval iouType=segm on amodal masks; AP@[.50:.95], AP50, AP75; AR100 = AR@100, all areas",
    "ap_unmatched": "AP/AR also count unmatched detections (false positives, whatever occlusion_range) and missed "
    "ground-truth objects (false negatives, filtered by occlusion_range); mIoU and object counts do not",
}


@dataclass
class _ObjectRecord:
    image_id: Hashable
    occlusion_rate: float
    iou_full: dict[str, float]
    iou_occ: dict[str, float | None]
    ground_truth: MaskAnnotation | None
    detections: dict[str, MaskAnnotation] | None


@dataclass(frozen=True)
class _MissedObject:
    """A ground-truth object that no detection matched: a false negative of AP / AR."""

    occlusion_rate: float
    ground_truth: MaskAnnotation


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return float(np.mean(defined)) if defined else None


def _bin_label(lower: float, upper: float) -> str:
    return f"{round(lower * 100):d}-{round(upper * 100):d}%"


def _validated_bin_edges(bin_edges: Sequence[float]) -> tuple[float, ...]:
    edges = tuple(float(edge) for edge in bin_edges)
    if len(edges) < 2 or edges[0] != 0.0 or edges[-1] != 1.0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"`bin_edges` must increase strictly from 0.0 to 1.0, got {list(bin_edges)}")
    return edges


def _validated_occlusion_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"`occlusion_rate` must be a fraction in [0, 1] (not percent), got {rate}")
    return float(rate)


def _validated_occlusion_range(occlusion_range: Sequence[float] | None) -> tuple[float, float] | None:
    if occlusion_range is None:
        return None
    low, high = (float(bound) for bound in occlusion_range)
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"`occlusion_range` must be (low, high) with 0 <= low <= high <= 1, got {occlusion_range}")
    return low, high


class AmodalMetrics:
    """Accumulates per-object results for several named prediction variants and computes the paper's metrics.

    Each object brings one amodal prediction per variant (e.g. "model", "model_union_visible",
    "visible_baseline", "convex_hull_baseline"; see `prediction_variants`), its ground-truth amodal and visible
    masks, and optionally its occlusion rate, its detector score, its image id and its category. IoUs are
    computed when an object is added; only when a score is given are the masks also kept (as RLE) for COCO AP.
    For AP / AR over every detection of a detector, also add the detections that matched no ground-truth object
    (`add_unmatched_detection`) and the ground-truth objects that no detection matched (`add_missed_object`).

    Args:
        occlusion_range: `(low, high)` fractions; only objects with `low <= occlusion_rate <= high` are counted
            (FISHBOWL: `FISHBOWL_OCCLUSION_RANGE`). None counts every object.
        bin_edges: occlusion-rate bin edges from 0.0 to 1.0; bins are `[lower, upper)`, the last `[lower, upper]`.
        variants: the variant names every object must provide; None takes them from the first object.
    """

    def __init__(
        self,
        occlusion_range: Sequence[float] | None = None,
        bin_edges: Sequence[float] = DEFAULT_BIN_EDGES,
        variants: Sequence[str] | None = None,
    ) -> None:
        self.occlusion_range = _validated_occlusion_range(occlusion_range)
        self.bin_edges = _validated_bin_edges(bin_edges)
        self.variants: tuple[str, ...] | None = None if variants is None else tuple(variants)
        self._records: list[_ObjectRecord] = []
        self._unmatched_detections: list[dict[str, MaskAnnotation]] = []
        self._missed_objects: list[_MissedObject] = []

    def __len__(self) -> int:
        return len(self._records)

    def _check_variants(self, predictions: Mapping[str, MaskLike]) -> None:
        if self.variants is None:
            if not predictions:
                raise ValueError("`predictions` must map at least one variant name to a mask, got an empty mapping")
            self.variants = tuple(predictions)
        if set(predictions) != set(self.variants):
            raise ValueError(
                f"`predictions` must have exactly the variants {sorted(self.variants)}, got {sorted(predictions)}"
            )

    @staticmethod
    def _checked_rate(rate: float | None, amodal_mask: np.ndarray, visible_mask: np.ndarray) -> float:
        if rate is None:
            return occlusion_rate(amodal_mask, visible_mask)
        return _validated_occlusion_rate(rate)

    def add(
        self,
        predictions: Mapping[str, MaskLike],
        amodal_mask: MaskLike,
        visible_mask: MaskLike,
        *,
        image_id: Hashable,
        category: Hashable = 1,
        occlusion_rate: float | None = None,
        score: float | None = None,
    ) -> None:
        """Add one object.

        Args:
            predictions: variant name -> predicted amodal mask `(H, W)`.
            amodal_mask: ground-truth amodal mask `(H, W)`.
            visible_mask: ground-truth visible mask `(H, W)` (defines the occluded region for IoU_occ).
            image_id: the object's image (any hashable); AP matches detections per image.
            category: the object's category (any hashable); 1 when class-agnostic.
            occlusion_rate: fraction in [0, 1]; None computes it from the two ground-truth masks.
            score: the detector's confidence for this object, shared by every variant (they all derive from the
                same detected visible mask); needed for AP.
        """
        self._check_variants(predictions)
        gt_amodal = to_bool_mask(amodal_mask, "amodal_mask")
        gt_visible = to_bool_mask(visible_mask, "visible_mask")
        check_same_shape(amodal_mask=gt_amodal, visible_mask=gt_visible)
        rate = self._checked_rate(occlusion_rate, gt_amodal, gt_visible)
        iou_full: dict[str, float] = {}
        iou_occ: dict[str, float | None] = {}
        detections: dict[str, MaskAnnotation] = {}
        for name, prediction in predictions.items():
            pred_amodal = to_bool_mask(prediction, f"predictions[{name!r}]")
            check_same_shape(prediction=pred_amodal, amodal_mask=gt_amodal)
            iou_full[name] = _bool_iou(pred_amodal, gt_amodal)
            iou_occ[name] = _bool_occluded_iou(pred_amodal, gt_amodal, gt_visible)
            if score is not None:
                detections[name] = MaskAnnotation.from_mask(pred_amodal, image_id, category, score)
        ground_truth = None if score is None else MaskAnnotation.from_mask(gt_amodal, image_id, category)
        self._records.append(
            _ObjectRecord(image_id, rate, iou_full, iou_occ, ground_truth, detections if score is not None else None)
        )

    def add_batch(
        self,
        predictions: Mapping[str, Sequence[MaskLike]],
        amodal_masks: Sequence[MaskLike],
        visible_masks: Sequence[MaskLike],
        *,
        image_ids: Sequence[Hashable],
        categories: Sequence[Hashable] | None = None,
        occlusion_rates: Sequence[float | None] | None = None,
        scores: Sequence[float | None] | None = None,
    ) -> None:
        """Add N objects: every argument holds one entry per object, masks as sequences of `(H, W)` or as
        `(N, H, W)` arrays / tensors. See `add` for the meaning of each field."""
        count = len(amodal_masks)
        lengths = {"visible_masks": len(visible_masks), "image_ids": len(image_ids)}
        lengths.update({f"predictions[{name!r}]": len(masks) for name, masks in predictions.items()})
        for name, values in (("categories", categories), ("occlusion_rates", occlusion_rates), ("scores", scores)):
            if values is not None:
                lengths[name] = len(values)
        mismatched = {name: length for name, length in lengths.items() if length != count}
        if mismatched:
            raise ValueError(f"every batch argument must have len(amodal_masks) = {count} entries, got {mismatched}")
        for index in range(count):
            self.add(
                {name: masks[index] for name, masks in predictions.items()},
                amodal_masks[index],
                visible_masks[index],
                image_id=image_ids[index],
                category=1 if categories is None else categories[index],
                occlusion_rate=None if occlusion_rates is None else occlusion_rates[index],
                score=None if scores is None else scores[index],
            )

    def add_unmatched_detection(
        self, predictions: Mapping[str, MaskLike], *, image_id: Hashable, score: float, category: Hashable = 1
    ) -> None:
        """Add a detection that matched no ground-truth object: a false positive of AP / AR for every variant.

        It enters only AP / AR (whatever `occlusion_range`: it has no occlusion rate), never mIoU or the counts
        of objects.

        Args:
            predictions: variant name -> predicted amodal mask `(H, W)`, the same variants as the objects (build
                them with `prediction_variants` from the detected visible mask, like a matched detection's).
            image_id: the detection's image; AP matches detections to ground truth per image.
            score: the detector's confidence, shared by every variant.
            category: the detection's category; 1 when class-agnostic.
        """
        self._check_variants(predictions)
        masks = {name: to_bool_mask(mask, f"predictions[{name!r}]") for name, mask in predictions.items()}
        check_same_shape(**masks)
        self._unmatched_detections.append(
            {name: MaskAnnotation.from_mask(mask, image_id, category, score) for name, mask in masks.items()}
        )

    def add_missed_object(
        self, amodal_mask: MaskLike, *, image_id: Hashable, occlusion_rate: float, category: Hashable = 1
    ) -> None:
        """Add a ground-truth object that no detection matched: a false negative of AP / AR.

        It enters only the AP / AR ground truth, and only when `occlusion_rate` lies inside `occlusion_range`
        (like any object); never mIoU or the counts of objects.

        Args:
            amodal_mask: its ground-truth amodal mask `(H, W)`.
            image_id: its image.
            occlusion_rate: its occlusion rate, a fraction in [0, 1].
            category: its category; 1 when class-agnostic.
        """
        ground_truth = MaskAnnotation.from_mask(to_bool_mask(amodal_mask, "amodal_mask"), image_id, category)
        self._missed_objects.append(_MissedObject(_validated_occlusion_rate(occlusion_rate), ground_truth))

    def _is_counted(self, record: _ObjectRecord | _MissedObject) -> bool:
        if self.occlusion_range is None:
            return True
        low, high = self.occlusion_range
        return low <= record.occlusion_rate <= high

    def _bins(self, name: str, records: list[_ObjectRecord]) -> list[BinMetrics]:
        bin_indices = [occlusion_bin(record.occlusion_rate, self.bin_edges) for record in records]
        bins = []
        for index, (lower, upper) in enumerate(zip(self.bin_edges, self.bin_edges[1:])):
            members = [record for record, bin_index in zip(records, bin_indices) if bin_index == index]
            occluded = [record.iou_occ[name] for record in members if record.iou_occ[name] is not None]
            bins.append(
                BinMetrics(
                    label=_bin_label(lower, upper),
                    lower=lower,
                    upper=upper,
                    num_objects=len(members),
                    num_occluded_objects=len(occluded),
                    miou_full=_mean(record.iou_full[name] for record in members),
                    miou_occ=_mean(occluded),
                )
            )
        return bins

    def _ap_is_defined(self, records: list[_ObjectRecord], missed_objects: list[_MissedObject]) -> bool:
        """Whether COCO AP can be computed: every counted object came with a detector score, and there is at
        least one counted object, unmatched detection or missed object."""
        num_scored = sum(record.detections is not None for record in records)
        has_unmatched = bool(self._unmatched_detections or missed_objects)
        if num_scored < len(records):
            if num_scored > 0 or has_unmatched:
                logger.warning(
                    "AP skipped: only %d of %d counted objects have a detector score", num_scored, len(records)
                )
            return False
        return bool(records) or has_unmatched

    def _variant_ap(
        self, name: str, records: list[_ObjectRecord], missed_objects: list[_MissedObject]
    ) -> dict[str, float | None]:
        """COCO AP / AR of variant `name`: every counted object and missed object against every detection."""
        ground_truths = [record.ground_truth for record in records] + [item.ground_truth for item in missed_objects]
        detections = [record.detections[name] for record in records]
        detections += [detection[name] for detection in self._unmatched_detections]
        return coco_mask_ap(ground_truths, detections)

    def _variant_metrics(
        self, name: str, records: list[_ObjectRecord], missed_objects: list[_MissedObject], with_ap: bool
    ) -> VariantMetrics:
        """The numbers of variant `name`: mIoU over the counted `records`, AP (when `with_ap`) over them, the
        counted `missed_objects` and the unmatched detections."""
        occluded = [record.iou_occ[name] for record in records if record.iou_occ[name] is not None]
        return VariantMetrics(
            miou_full=_mean(record.iou_full[name] for record in records),
            miou_occ=_mean(occluded),
            num_objects=len(records),
            num_occluded_objects=len(occluded),
            bins=self._bins(name, records),
            ap=self._variant_ap(name, records, missed_objects) if with_ap else None,
        )

    def compute(self) -> EvaluationResults:
        """mIoU_full, mIoU_occ, per-bin mIoU over the counted objects and (with scores) COCO AP/AR over the
        counted objects, the unmatched detections and the counted missed objects, for every variant."""
        records = [record for record in self._records if self._is_counted(record)]
        missed_objects = [item for item in self._missed_objects if self._is_counted(item)]
        with_ap = self._ap_is_defined(records, missed_objects)
        return EvaluationResults(
            variants={
                name: self._variant_metrics(name, records, missed_objects, with_ap) for name in self.variants or ()
            },
            num_objects_added=len(self._records),
            num_objects_counted=len(records),
            num_images=len({record.image_id for record in records}),
            occlusion_range=self.occlusion_range,
            bin_edges=self.bin_edges,
            num_unmatched_detections=len(self._unmatched_detections),
            num_missed_objects=len(missed_objects),
            conventions=dict(CONVENTIONS),
        )


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bin_labels(bin_edges: Sequence[float]) -> list[str]:
    return [_bin_label(lower, upper) for lower, upper in zip(bin_edges, bin_edges[1:])]


def _metrics_table(results: EvaluationResults) -> list[str]:
    labels = _bin_labels(results.bin_edges)
    has_ap = any(metrics.ap is not None for metrics in results.variants.values())
    header = ["Variant", "mIoU_full", "mIoU_occ"]
    header += [f"mIoU_full {label}" for label in labels] + [f"mIoU_occ {label}" for label in labels]
    header += list(_COCO_STATS_INDEX) if has_ap else []
    lines = [_markdown_row(header), _markdown_row(["---"] + ["---:"] * (len(header) - 1))]
    for name, metrics in results.variants.items():
        cells = [name, _percent(metrics.miou_full), _percent(metrics.miou_occ)]
        cells += [_percent(bin_metrics.miou_full) for bin_metrics in metrics.bins]
        cells += [_percent(bin_metrics.miou_occ) for bin_metrics in metrics.bins]
        cells += [_percent((metrics.ap or {}).get(key)) for key in _COCO_STATS_INDEX] if has_ap else []
        lines.append(_markdown_row(cells))
    return lines


def _bin_count_table(results: EvaluationResults) -> list[str]:
    labels = _bin_labels(results.bin_edges)
    bins = next(iter(results.variants.values())).bins if results.variants else []
    objects = [str(bin_metrics.num_objects) for bin_metrics in bins] or ["0"] * len(labels)
    occluded = [str(bin_metrics.num_occluded_objects) for bin_metrics in bins] or ["0"] * len(labels)
    return [
        _markdown_row(["Bin", *labels]),
        _markdown_row(["---"] + ["---:"] * len(labels)),
        _markdown_row(["objects", *objects]),
        _markdown_row(["occluded objects", *occluded]),
    ]


def _unmatched_summary(results: EvaluationResults) -> str:
    """The sentence on unmatched detections and missed objects, empty when there are none."""
    if not results.num_unmatched_detections and not results.num_missed_objects:
        return ""
    return (
        f" AP/AR also count {results.num_unmatched_detections} unmatched detections (false positives) and "
        f"{results.num_missed_objects} missed objects (false negatives), which mIoU does not."
    )


def format_markdown(results: EvaluationResults) -> str:
    """The Markdown report: one row per prediction variant (model and baselines), mIoU_full, mIoU_occ, per-bin
    mIoU and, when present, AP columns; values in percent with 2 decimals ("n/a" when undefined)."""
    if results.occlusion_range is None:
        counted = "all objects"
    else:
        counted = "occlusion rate in [{:.0%}, {:.0%}], inclusive".format(*results.occlusion_range)
    summary = (
        f"Objects counted: {results.num_objects_counted} of {results.num_objects_added} "
        f"({results.num_images} images; {counted}). Values in percent. mIoU_occ averages only objects with a "
        "non-empty occluded region. Occlusion-rate bins are [lower, upper), the last one [lower, upper]."
        + _unmatched_summary(results)
    )
    sections = [
        ["# Amodal segmentation metrics", "", summary, ""],
        _metrics_table(results),
        ["", "## Objects per occlusion-rate bin", ""],
        _bin_count_table(results),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


@dataclass(frozen=True)
class _Panel:
    """A plot area in pixels: `left`, `top`, `right`, `bottom` of the axes box."""

    left: int
    top: int
    right: int
    bottom: int

    def y_of(self, value: float) -> float:
        return self.bottom - value * (self.bottom - self.top)


def _draw_axes(draw: ImageDraw.ImageDraw, panel: _Panel, title: str, labels: Sequence[str]) -> None:
    font = _font(13)
    for percent in range(0, 101, 20):
        y = panel.y_of(percent / 100)
        draw.line([(panel.left, y), (panel.right, y)], fill="#dddddd" if percent else "black")
        draw.line([(panel.left - 5, y), (panel.left, y)], fill="black")
        draw.text((panel.left - 8, y), f"{percent}", fill="black", font=font, anchor="rm")
    draw.line([(panel.left, panel.top), (panel.left, panel.bottom)], fill="black")
    draw.text(((panel.left + panel.right) / 2, panel.top - 10), title, fill="black", font=_font(15), anchor="md")
    draw.text((panel.left - 45, (panel.top + panel.bottom) / 2), "%", fill="black", font=font, anchor="mm")
    group_width = (panel.right - panel.left) / len(labels)
    for index, label in enumerate(labels):
        x = panel.left + (index + 0.5) * group_width
        draw.line([(x, panel.bottom), (x, panel.bottom + 5)], fill="black")
        draw.text((x, panel.bottom + 8), label, fill="black", font=font, anchor="ma")


def _draw_bars(draw: ImageDraw.ImageDraw, panel: _Panel, values_per_variant: Sequence[Sequence[float | None]]) -> None:
    num_groups = len(values_per_variant[0])
    group_width = (panel.right - panel.left) / num_groups
    bar_width = 0.8 * group_width / len(values_per_variant)
    font = _font(11)
    for variant_index, values in enumerate(values_per_variant):
        colour = _PALETTE[variant_index % len(_PALETTE)]
        for group_index, value in enumerate(values):
            x0 = panel.left + group_index * group_width + 0.1 * group_width + variant_index * bar_width
            if value is None:
                draw.text((x0 + bar_width / 2, panel.bottom - 2), "n/a", fill="#555555", font=font, anchor="md")
                continue
            draw.rectangle([x0, panel.y_of(value), x0 + bar_width - 2, panel.bottom], fill=colour)
            if bar_width >= 28:
                label_position = (x0 + bar_width / 2, panel.y_of(value) - 2)
                draw.text(label_position, f"{100 * value:.1f}", fill="black", font=font, anchor="md")


def _draw_legend(draw: ImageDraw.ImageDraw, names: Sequence[str], left: int, top: int) -> None:
    font = _font(13)
    x = left
    for index, name in enumerate(names):
        draw.rectangle([x, top, x + 14, top + 14], fill=_PALETTE[index % len(_PALETTE)])
        draw.text((x + 20, top + 7), name, fill="black", font=font, anchor="lm")
        x += 20 + int(draw.textlength(name, font=font)) + 24


def draw_per_bin_chart(results: EvaluationResults, size: tuple[int, int] = (960, 720)) -> Image.Image:
    """Grouped bar chart (RGB PIL image of `size` = (width, height)) of mIoU_full (top panel) and mIoU_occ
    (bottom panel) per occlusion-rate bin, one coloured bar per prediction variant, with a legend."""
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    labels = _bin_labels(results.bin_edges)
    names = list(results.variants)
    _draw_legend(draw, names, left=70, top=12)
    panel_height = (height - 40) // 2
    for panel_index, (title, key) in enumerate(
        [("mIoU_full by occlusion rate", "miou_full"), ("mIoU_occ by occlusion rate", "miou_occ")]
    ):
        top = 40 + panel_index * panel_height
        panel = _Panel(left=70, top=top + 30, right=width - 20, bottom=top + panel_height - 35)
        _draw_axes(draw, panel, title, labels)
        if names:
            values = [[getattr(b, key) for b in results.variants[name].bins] for name in names]
            _draw_bars(draw, panel, values)
    return image


def write_report(
    results: EvaluationResults, out_dir: str | Path, chart_size: tuple[int, int] = (960, 720)
) -> dict[str, Path]:
    """Write `metrics.json` (every number, count and setting; `EvaluationResults.from_dict` reads it back),
    `metrics.md` (see `format_markdown`) and `per_bin_miou.png` (see `draw_per_bin_chart`, `chart_size` =
    (width, height)) into `out_dir`, created if needed. Returns the three paths by kind: json, markdown, chart."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "metrics.json",
        "markdown": directory / "metrics.md",
        "chart": directory / "per_bin_miou.png",
    }
    paths["json"].write_text(json.dumps(results.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(format_markdown(results), encoding="utf-8")
    draw_per_bin_chart(results, chart_size).save(paths["chart"])
    return paths


__all__ = [
    "CONVEX_HULL_BASELINE",
    "DEFAULT_BIN_EDGES",
    "FISHBOWL_OCCLUSION_RANGE",
    "UNION_WITH_VISIBLE_SUFFIX",
    "VISIBLE_BASELINE",
    "AmodalMetrics",
    "BinMetrics",
    "EvaluationResults",
    "MaskAnnotation",
    "VariantMetrics",
    "baseline_predictions",
    "coco_mask_ap",
    "convex_hull_mask",
    "draw_per_bin_chart",
    "encode_mask",
    "format_markdown",
    "iou",
    "occluded_iou",
    "occluded_mask",
    "occlusion_bin",
    "occlusion_rate",
    "prediction_variants",
    "to_bool_mask",
    "union_with_visible",
    "write_report",
]
