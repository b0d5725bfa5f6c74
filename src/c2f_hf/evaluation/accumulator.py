"""`AmodalMetrics`, the accumulator of per-object results, and what it computes (`EvaluationResults`).

Conventions (occlusion-rate filter and bins, invented area, AP / AR with unmatched detections and missed objects):
see `c2f_hf.evaluation`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..models.c2f_seg.mask_policy import MaskLike, check_same_shape, occluded_mask, occlusion_rate, to_bool_mask
from .coco import MaskAnnotation, coco_mask_ap
from .metrics import DEFAULT_BIN_EDGES, bin_label, bool_invented_area, bool_iou, bool_occluded_iou, occlusion_bin

logger = logging.getLogger(__name__)


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
    `invented_area` is the mean, over the `num_unoccluded_objects` counted objects that nothing occludes (empty
    ground-truth occluded region, non-empty amodal mask), of the predicted amodal area outside the ground-truth
    amodal mask divided by the ground-truth amodal area: a fraction >= 0 (above 1 when a prediction adds more than
    the object's own area), None when no counted object is unoccluded. Both default to None / 0 so that a
    `metrics.json` written before they existed still loads.
    """

    miou_full: float | None
    miou_occ: float | None
    num_objects: int
    num_occluded_objects: int
    bins: list[BinMetrics]
    ap: dict[str, float | None] | None = None
    invented_area: float | None = None
    num_unoccluded_objects: int = 0


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
    "invented_area": "mean over objects whose ground-truth occluded region (amodal minus visible) is empty and amodal "
    "mask non-empty of |predicted amodal minus ground-truth amodal| / |ground-truth amodal|, a fraction >= 0",
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
    invented_area: dict[str, float | None]
    ground_truth: MaskAnnotation | None
    detections: dict[str, MaskAnnotation] | None
    object_key: Hashable | None = None


def _unique_ground_truths(records: list[_ObjectRecord]) -> list[MaskAnnotation]:
    """The records' ground truths, an object added several times (the same `object_key` in its image) once."""
    seen, ground_truths = set(), []
    for record in records:
        if record.object_key is not None:
            if (record.image_id, record.object_key) in seen:
                continue
            seen.add((record.image_id, record.object_key))
        ground_truths.append(record.ground_truth)
    return ground_truths


@dataclass(frozen=True)
class _MissedObject:
    """A ground-truth object that no detection matched: a false negative of AP / AR."""

    occlusion_rate: float
    ground_truth: MaskAnnotation


def _invented_area(pred_amodal: np.ndarray, gt_amodal: np.ndarray, is_unoccluded: bool) -> float | None:
    """|pred_amodal − gt_amodal| / |gt_amodal| of numpy bool `(H, W)` masks, for an object that nothing occludes
    (`is_unoccluded`) and whose amodal mask is not empty; None for any other object."""
    return bool_invented_area(pred_amodal, gt_amodal) if is_unoccluded else None


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [value for value in values if value is not None]
    return float(np.mean(defined)) if defined else None


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
    masks, and optionally its occlusion rate, its detector score, its image id and its category. IoUs and the
    invented area are computed when an object is added; only when a score is given are the masks also kept (as
    RLE) for COCO AP.
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
        object_key: Hashable | None = None,
    ) -> None:
        """Add one object.

        Args:
            predictions: variant name -> predicted amodal mask `(H, W)`.
            amodal_mask: ground-truth amodal mask `(H, W)`.
            visible_mask: ground-truth visible mask `(H, W)` (defines the occluded region: IoU_occ, and whether the
                object is unoccluded and enters the invented area).
            image_id: the object's image (any hashable); AP matches detections per image.
            category: the object's category (any hashable); 1 when class-agnostic.
            occlusion_rate: fraction in [0, 1]; None computes it from the two ground-truth masks.
            score: the detector's confidence for this object, shared by every variant (they all derive from the
                same detected visible mask); needed for AP.
            object_key: the ground-truth object's identity within its image when several detections may be paired
                with it (the authors' COCOA list, `--pairing per-detection`): AP / AR count its ground truth once,
                with the first such detection added, and the others are detections like any other (a duplicate is a
                false positive). None: every added object is its own ground truth.
        """
        self._check_variants(predictions)
        gt_amodal = to_bool_mask(amodal_mask, "amodal_mask")
        gt_visible = to_bool_mask(visible_mask, "visible_mask")
        check_same_shape(amodal_mask=gt_amodal, visible_mask=gt_visible)
        rate = self._checked_rate(occlusion_rate, gt_amodal, gt_visible)
        # The test is on the masks, not on `rate`: a given rate may be rounded or come from other masks.
        is_unoccluded = not occluded_mask(gt_amodal, gt_visible).any()
        iou_full: dict[str, float] = {}
        iou_occ: dict[str, float | None] = {}
        invented_area: dict[str, float | None] = {}
        detections: dict[str, MaskAnnotation] = {}
        for name, prediction in predictions.items():
            pred_amodal = to_bool_mask(prediction, f"predictions[{name!r}]")
            check_same_shape(prediction=pred_amodal, amodal_mask=gt_amodal)
            iou_full[name] = bool_iou(pred_amodal, gt_amodal)
            iou_occ[name] = bool_occluded_iou(pred_amodal, gt_amodal, gt_visible)
            invented_area[name] = _invented_area(pred_amodal, gt_amodal, is_unoccluded)
            if score is not None:
                detections[name] = MaskAnnotation.from_mask(pred_amodal, image_id, category, score)
        self._records.append(
            _ObjectRecord(
                image_id=image_id,
                occlusion_rate=rate,
                iou_full=iou_full,
                iou_occ=iou_occ,
                invented_area=invented_area,
                ground_truth=None if score is None else MaskAnnotation.from_mask(gt_amodal, image_id, category),
                detections=detections if score is not None else None,
                object_key=object_key,
            )
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

    def merge(self, other: AmodalMetrics) -> None:
        """Append `other`'s objects, unmatched detections and missed objects after this one's. Merging the shares
        of a run's processes in process order gives back the one-process order, and so the same numbers. Both
        must count the same `occlusion_range` and `bin_edges` and, once they hold objects, the same variants."""
        for name in ("occlusion_range", "bin_edges"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(f"cannot merge metrics with {name} {getattr(other, name)} into {getattr(self, name)}")
        if self.variants is not None and other.variants is not None and set(self.variants) != set(other.variants):
            raise ValueError(f"cannot merge metrics of variants {other.variants} into {self.variants}")
        self.variants = self.variants or other.variants
        self._records.extend(other._records)
        self._unmatched_detections.extend(other._unmatched_detections)
        self._missed_objects.extend(other._missed_objects)

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
                    label=bin_label(lower, upper),
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
        ground_truths = _unique_ground_truths(records) + [item.ground_truth for item in missed_objects]
        detections = [record.detections[name] for record in records]
        detections += [detection[name] for detection in self._unmatched_detections]
        return coco_mask_ap(ground_truths, detections)

    def _variant_metrics(
        self, name: str, records: list[_ObjectRecord], missed_objects: list[_MissedObject], with_ap: bool
    ) -> VariantMetrics:
        """The numbers of variant `name`: mIoU and the invented area over the counted `records`, AP (when
        `with_ap`) over them, the counted `missed_objects` and the unmatched detections."""
        occluded = [record.iou_occ[name] for record in records if record.iou_occ[name] is not None]
        unoccluded = [record.invented_area[name] for record in records if record.invented_area[name] is not None]
        return VariantMetrics(
            miou_full=_mean(record.iou_full[name] for record in records),
            miou_occ=_mean(occluded),
            num_objects=len(records),
            num_occluded_objects=len(occluded),
            bins=self._bins(name, records),
            ap=self._variant_ap(name, records, missed_objects) if with_ap else None,
            invented_area=_mean(unoccluded),
            num_unoccluded_objects=len(unoccluded),
        )

    def compute(self) -> EvaluationResults:
        """mIoU_full, mIoU_occ, per-bin mIoU and the invented area over the counted objects and (with scores)
        COCO AP/AR over the counted objects, the unmatched detections and the counted missed objects, for every
        variant."""
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


__all__ = ["CONVENTIONS", "AmodalMetrics", "BinMetrics", "EvaluationResults", "VariantMetrics"]
