"""COCO mask AP / AR (`c2f_hf.evaluation.coco`), on hand-computed toy masks."""

import pytest

from c2f_hf.evaluation import MaskAnnotation, coco_mask_ap
from evaluation_testing import box_mask


def test_coco_ap_perfect_predictions_score_one():
    masks = [box_mask(0, 0, 4, 4), box_mask(5, 5, 9, 9), box_mask(1, 1, 8, 3)]
    image_ids, categories = [0, 0, 1], [1, 2, 1]
    ground_truths = [MaskAnnotation.from_mask(m, i, c) for m, i, c in zip(masks, image_ids, categories)]
    detections = [MaskAnnotation.from_mask(m, i, c, score=0.9) for m, i, c in zip(masks, image_ids, categories)]
    assert coco_mask_ap(ground_truths, detections) == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "AR100": 1.0}


def test_coco_ap_all_wrong_predictions_score_zero_and_prints_nothing(capsys):
    ground_truths = [MaskAnnotation.from_mask(box_mask(0, 0, 4, 4), "a")]
    detections = [MaskAnnotation.from_mask(box_mask(6, 6, 10, 10), "a", score=0.8)]
    assert coco_mask_ap(ground_truths, detections) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR100": 0.0}
    assert capsys.readouterr().out == ""


def test_coco_ap_half_recall_matches_the_101_point_interpolation():
    # Two objects, the confident detection is right and the other misses: precision 1 up to recall 0.5, so
    # 51 of COCO's 101 recall thresholds have precision 1.
    ground_truths = [
        MaskAnnotation.from_mask(box_mask(0, 0, 4, 4), 0),
        MaskAnnotation.from_mask(box_mask(6, 6, 9, 9), 0),
    ]
    detections = [
        MaskAnnotation.from_mask(box_mask(0, 0, 4, 4), 0, score=0.9),
        MaskAnnotation.from_mask(box_mask(0, 6, 2, 9), 0, score=0.3),
    ]
    result = coco_mask_ap(ground_truths, detections)
    assert result["AP"] == pytest.approx(51 / 101) and result["AP50"] == pytest.approx(51 / 101)
    assert result["AR100"] == pytest.approx(0.5)


def test_coco_ap_without_ground_truth_is_none():
    detections = [MaskAnnotation.from_mask(box_mask(0, 0, 4, 4), 0, score=0.5)]
    assert coco_mask_ap([], detections) == {"AP": None, "AP50": None, "AP75": None, "AR100": None}
