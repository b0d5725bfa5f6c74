"""COCO mask AP / AR through pycocotools (conventions: see `c2f_hf.evaluation`)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..models.c2f_seg.mask_policy import MaskLike, to_bool_mask

# Positions in COCOeval.stats (see COCOeval.summarize) of the numbers we report.
COCO_STATS_INDEX = {"AP": 0, "AP50": 1, "AP75": 2, "AR100": 8}


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
        for name, index in COCO_STATS_INDEX.items()
    }


__all__ = ["COCO_STATS_INDEX", "MaskAnnotation", "coco_mask_ap", "encode_mask"]
