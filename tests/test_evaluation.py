"""Metrics, COCO AP, baselines and the report writer of `c2f_hf.evaluation`, on hand-computed toy masks."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from c2f_hf.evaluation import (
    CONVEX_HULL_BASELINE,
    FISHBOWL_OCCLUSION_RANGE,
    VISIBLE_BASELINE,
    AmodalMetrics,
    EvaluationResults,
    MaskAnnotation,
    baseline_predictions,
    coco_mask_ap,
    convex_hull_mask,
    iou,
    occluded_iou,
    occluded_mask,
    occlusion_bin,
    occlusion_rate,
    prediction_variants,
    to_bool_mask,
    union_with_visible,
    write_report,
)


def box_mask(top: int, left: int, bottom: int, right: int, size: int = 10) -> np.ndarray:
    """A bool (size, size) mask with rows [top, bottom) and columns [left, right) set."""
    mask = np.zeros((size, size), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


# Per-object metrics -------------------------------------------------------------------------------------------


def test_to_bool_mask_accepts_numpy_torch_and_pil():
    expected = box_mask(2, 2, 5, 5)
    as_float_tensor = torch.from_numpy(expected.astype(np.float32)) * 0.9
    as_pil = Image.fromarray(expected.astype(np.uint8) * 255, mode="L")
    for mask in (expected, expected.astype(np.uint8), as_float_tensor, torch.from_numpy(expected), as_pil):
        result = to_bool_mask(mask)
        assert result.dtype == bool
        np.testing.assert_array_equal(result, expected)


def test_to_bool_mask_rejects_non_2d_with_the_argument_name():
    with pytest.raises(ValueError, match="visible_mask.*shape \\(1, 10, 10\\)"):
        to_bool_mask(np.zeros((1, 10, 10)), "visible_mask")


def test_iou_hand_computed():
    prediction = box_mask(0, 0, 4, 4)  # 16 pixels
    target = box_mask(2, 2, 6, 6)  # 16 pixels, overlap 2x2 = 4
    assert iou(prediction, target) == pytest.approx(4 / 28)
    assert iou(target, target) == 1.0
    assert iou(prediction, box_mask(6, 6, 8, 8)) == 0.0


def test_iou_of_two_empty_masks_is_one_and_shapes_must_match():
    empty = np.zeros((5, 5), dtype=bool)
    assert iou(empty, empty) == 1.0
    with pytest.raises(ValueError, match="same"):
        iou(empty, np.zeros((5, 6), dtype=bool))


def test_occluded_iou_hand_computed():
    amodal = box_mask(0, 0, 4, 4)  # 16 pixels
    visible = box_mask(0, 0, 2, 4)  # top half visible, occluded region = rows 2-3 (8 pixels)
    # Prediction minus visible: rows 0-1 of column 4 (2 pixels) and row 2, columns 0-4 (5 pixels); 4 of these 7 lie
    # in the occluded region, so the union is 7 + 8 - 4 = 11.
    prediction = box_mask(0, 0, 3, 5)
    assert occluded_iou(prediction, amodal, visible) == pytest.approx(4 / 11)
    assert occluded_iou(amodal, amodal, visible) == 1.0
    np.testing.assert_array_equal(occluded_mask(amodal, visible), box_mask(2, 0, 4, 4))


def test_occluded_iou_is_none_without_occlusion():
    amodal = box_mask(0, 0, 4, 4)
    assert occluded_iou(box_mask(0, 0, 6, 6), amodal, amodal) is None
    assert occluded_iou(amodal, amodal, box_mask(0, 0, 6, 6)) is None  # visible covers the amodal mask


def test_occlusion_rate_from_masks():
    assert occlusion_rate(box_mask(0, 0, 4, 4), box_mask(0, 0, 1, 4)) == pytest.approx(0.75)
    assert occlusion_rate(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 0.0


@pytest.mark.parametrize(
    ("rate", "expected_bin"),
    [(0.0, 0), (0.0999, 0), (0.1, 1), (0.2999, 1), (0.3, 2), (0.5, 3), (0.6999, 3), (0.7, 4), (1.0, 4)],
)
def test_occlusion_bins_are_closed_on_the_left_and_the_last_is_closed(rate, expected_bin):
    assert occlusion_bin(rate) == expected_bin


# Accumulator --------------------------------------------------------------------------------------------------


def three_objects_metrics(occlusion_range=None) -> AmodalMetrics:
    """Three objects in two images, with hand-computable IoUs for variants "model" and "visible_baseline"."""
    metrics = AmodalMetrics(occlusion_range=occlusion_range)
    amodal = box_mask(0, 0, 4, 4)
    half_visible = box_mask(0, 0, 2, 4)
    # Object A (rate 0.5): model perfect, visible baseline IoU_full 8/16 and IoU_occ 0.
    metrics.add({"model": amodal, VISIBLE_BASELINE: half_visible}, amodal, half_visible, image_id=0, occlusion_rate=0.5)
    # Object B (rate 0.05, fully visible): model IoU_full 4/28, no IoU_occ; baseline perfect.
    metrics.add(
        {"model": box_mask(2, 2, 6, 6), VISIBLE_BASELINE: amodal}, amodal, amodal, image_id=0, occlusion_rate=0.05
    )
    # Object C (rate computed from the masks: 0.75): model IoU_full 8/16 and IoU_occ 4/12, baseline 4/16 and 0.
    visible = box_mask(0, 0, 1, 4)
    metrics.add({"model": box_mask(0, 0, 2, 4), VISIBLE_BASELINE: visible}, amodal, visible, image_id="img-1")
    return metrics


def test_accumulator_means_exclude_unoccluded_objects_from_miou_occ():
    results = three_objects_metrics().compute()
    model, baseline = results.variants["model"], results.variants[VISIBLE_BASELINE]
    assert (results.num_objects_added, results.num_objects_counted, results.num_images) == (3, 3, 2)
    assert model.num_objects == 3 and model.num_occluded_objects == 2
    assert model.miou_full == pytest.approx((1 + 4 / 28 + 0.5) / 3)
    assert model.miou_occ == pytest.approx((1 + 4 / 12) / 2)
    assert baseline.miou_full == pytest.approx((0.5 + 1 + 0.25) / 3)
    assert baseline.miou_occ == 0.0
    assert model.ap is None


def test_accumulator_bins_by_occlusion_rate():
    bins = three_objects_metrics().compute().variants["model"].bins
    assert [b.label for b in bins] == ["0-10%", "10-30%", "30-50%", "50-70%", "70-100%"]
    assert [b.num_objects for b in bins] == [1, 0, 0, 1, 1]
    assert [b.num_occluded_objects for b in bins] == [0, 0, 0, 1, 1]
    assert bins[0].miou_full == pytest.approx(4 / 28) and bins[0].miou_occ is None
    assert bins[1].miou_full is None
    assert bins[3].miou_full == 1.0 and bins[4].miou_occ == pytest.approx(4 / 12)


def test_occlusion_range_filter_has_inclusive_bounds():
    metrics = AmodalMetrics(occlusion_range=FISHBOWL_OCCLUSION_RANGE)
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    for index, rate in enumerate([0.05, 0.1, 0.4, 0.7, 0.75]):
        prediction = amodal if rate in (0.1, 0.7) else np.zeros_like(amodal)
        metrics.add({"model": prediction}, amodal, visible, image_id=index, occlusion_rate=rate)
    results = metrics.compute()
    assert (results.num_objects_added, results.num_objects_counted) == (5, 3)
    assert results.variants["model"].miou_full == pytest.approx(2 / 3)
    assert [b.num_objects for b in results.variants["model"].bins] == [0, 1, 1, 0, 1]


def test_add_batch_matches_adding_one_by_one():
    amodal = torch.stack([torch.from_numpy(box_mask(0, 0, 4, 4)), torch.from_numpy(box_mask(3, 3, 9, 9))]).float()
    visible = amodal.clone()
    visible[:, :3] = 0
    predictions = {"model": amodal.roll(1, dims=2), "other": amodal}
    batched = AmodalMetrics()
    batched.add_batch(predictions, amodal, visible, image_ids=[0, 1], occlusion_rates=[0.2, 0.6])
    single = AmodalMetrics()
    for index in range(2):
        single.add(
            {name: masks[index] for name, masks in predictions.items()},
            amodal[index],
            visible[index],
            image_id=index,
            occlusion_rate=[0.2, 0.6][index],
        )
    assert len(batched) == 2
    assert batched.compute() == single.compute()


def test_accumulator_validates_its_inputs():
    metrics = AmodalMetrics(variants=["model"])
    amodal = box_mask(0, 0, 4, 4)
    with pytest.raises(ValueError, match="variants"):
        metrics.add({"other": amodal}, amodal, amodal, image_id=0)
    with pytest.raises(ValueError, match="not percent"):
        metrics.add({"model": amodal}, amodal, amodal, image_id=0, occlusion_rate=40)
    with pytest.raises(ValueError, match="occlusion_range"):
        AmodalMetrics(occlusion_range=(10, 70))
    with pytest.raises(ValueError, match="bin_edges"):
        AmodalMetrics(bin_edges=[0.0, 0.5, 0.4, 1.0])
    with pytest.raises(ValueError, match="len\\(amodal_masks\\)"):
        metrics.add_batch({"model": [amodal]}, [amodal], [amodal, amodal], image_ids=[0])


# COCO AP ------------------------------------------------------------------------------------------------------


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


def test_accumulator_computes_ap_when_scores_are_present():
    metrics = AmodalMetrics()
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    for index, score in enumerate([0.9, 0.6]):
        predictions = {"model": amodal, "wrong": box_mask(6, 6, 10, 10)}
        metrics.add(predictions, amodal, visible, image_id=index, score=score)
    variants = metrics.compute().variants
    assert variants["model"].ap["AP"] == 1.0 and variants["wrong"].ap["AP"] == 0.0


def test_accumulator_skips_ap_when_some_scores_are_missing():
    metrics = AmodalMetrics()
    amodal = box_mask(0, 0, 4, 4)
    metrics.add({"model": amodal}, amodal, amodal, image_id=0, score=0.9)
    metrics.add({"model": amodal}, amodal, amodal, image_id=1)
    assert metrics.compute().variants["model"].ap is None


# Unmatched detections and missed objects ----------------------------------------------------------------------


def one_detected_object_metrics(occlusion_range=None) -> AmodalMetrics:
    """One object of image 0 (rate 0.5) whose detection scored 0.5 and is predicted perfectly by "model"."""
    metrics = AmodalMetrics(occlusion_range=occlusion_range)
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    metrics.add({"model": amodal, VISIBLE_BASELINE: visible}, amodal, visible, image_id=0, score=0.5)
    return metrics


def detection(mask: np.ndarray) -> dict[str, np.ndarray]:
    """The two variants of `one_detected_object_metrics` for a detection, both the same `(10, 10)` mask."""
    return {"model": mask, VISIBLE_BASELINE: mask}


def miou_and_counts(results: EvaluationResults) -> list:
    """Every number of `results` but AP and the two AP-only counts."""
    counts = [results.num_objects_added, results.num_objects_counted, results.num_images]
    per_variant = [
        (name, metrics.miou_full, metrics.miou_occ, metrics.num_objects, metrics.num_occluded_objects, metrics.bins)
        for name, metrics in results.variants.items()
    ]
    return counts + per_variant


def test_an_unmatched_detection_ranked_first_halves_ap_and_leaves_miou_alone():
    alone = one_detected_object_metrics().compute()
    assert alone.variants["model"].ap == pytest.approx({"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "AR100": 1.0})

    metrics = one_detected_object_metrics()
    metrics.add_unmatched_detection(detection(box_mask(6, 6, 10, 10)), image_id=0, score=0.9)
    results = metrics.compute()
    # Ranked: the false positive, then the true positive: precision 1/2 at every recall up to 1.
    assert results.variants["model"].ap == pytest.approx({"AP": 0.5, "AP50": 0.5, "AP75": 0.5, "AR100": 1.0})
    assert (results.num_unmatched_detections, results.num_missed_objects) == (1, 0)
    assert miou_and_counts(results) == miou_and_counts(alone)
    assert len(metrics) == 1


def test_an_unmatched_detection_ranked_last_does_not_lower_ap():
    metrics = one_detected_object_metrics()
    metrics.add_unmatched_detection(detection(box_mask(6, 6, 10, 10)), image_id=0, score=0.1)
    ap = metrics.compute().variants["model"].ap
    assert ap == pytest.approx({"AP": 1.0, "AP50": 1.0, "AP75": 1.0, "AR100": 1.0})


def test_a_missed_object_halves_ar_and_leaves_miou_alone():
    alone = one_detected_object_metrics().compute()
    metrics = one_detected_object_metrics()
    metrics.add_missed_object(box_mask(6, 6, 10, 10), image_id=0, occlusion_rate=0.0)
    results = metrics.compute()
    ap = results.variants["model"].ap
    # One of two objects found, with precision 1: 51 of COCO's 101 recall thresholds have precision 1.
    assert ap["AR100"] == pytest.approx(0.5) and ap["AP"] == pytest.approx(51 / 101)
    assert (results.num_unmatched_detections, results.num_missed_objects) == (0, 1)
    assert miou_and_counts(results) == miou_and_counts(alone)


def test_occlusion_range_filters_missed_objects_but_not_unmatched_detections():
    metrics = one_detected_object_metrics(occlusion_range=FISHBOWL_OCCLUSION_RANGE)
    metrics.add_missed_object(box_mask(6, 6, 10, 10), image_id=0, occlusion_rate=0.05)  # outside: left out
    metrics.add_missed_object(box_mask(6, 0, 10, 4), image_id=1, occlusion_rate=0.7)  # inside (inclusive)
    metrics.add_unmatched_detection(detection(box_mask(0, 6, 4, 10)), image_id=0, score=0.9)
    results = metrics.compute()
    assert (results.num_unmatched_detections, results.num_missed_objects) == (1, 1)
    # Found 1 of 2 objects after a false positive: precision 1/2 up to recall 1/2, so AP = 0.5 * 51/101.
    ap = results.variants["model"].ap
    assert ap["AR100"] == pytest.approx(0.5) and ap["AP"] == pytest.approx(0.5 * 51 / 101)
    assert (results.num_objects_added, results.num_objects_counted) == (1, 1)


def test_only_unmatched_detections_and_missed_objects_give_zero_ap():
    metrics = AmodalMetrics(variants=["model"])
    metrics.add_unmatched_detection({"model": box_mask(0, 0, 4, 4)}, image_id=0, score=0.9)
    metrics.add_missed_object(box_mask(6, 6, 10, 10), image_id=0, occlusion_rate=0.3)
    model = metrics.compute().variants["model"]
    assert model.ap == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR100": 0.0}
    assert model.num_objects == 0 and model.miou_full is None


def test_unmatched_detections_and_missed_objects_survive_the_report_round_trip(tmp_path):
    metrics = one_detected_object_metrics()
    metrics.add_unmatched_detection(detection(box_mask(6, 6, 10, 10)), image_id=1, score=0.3)
    metrics.add_missed_object(box_mask(6, 0, 10, 4), image_id=1, category="disc", occlusion_rate=0.2)
    results = metrics.compute()
    assert EvaluationResults.from_dict(results.to_dict()) == results
    paths = write_report(results, tmp_path)
    assert EvaluationResults.from_dict(json.loads(paths["json"].read_text())) == results
    assert "1 unmatched detections (false positives) and 1 missed objects" in paths["markdown"].read_text()

    old_file = results.to_dict()
    del old_file["num_unmatched_detections"], old_file["num_missed_objects"]
    loaded = EvaluationResults.from_dict(old_file)
    assert (loaded.num_unmatched_detections, loaded.num_missed_objects) == (0, 0)


def test_unmatched_detections_and_missed_objects_are_validated():
    metrics = one_detected_object_metrics()
    with pytest.raises(ValueError, match="variants"):
        metrics.add_unmatched_detection({"model": box_mask(0, 0, 2, 2)}, image_id=0, score=0.5)
    with pytest.raises(ValueError, match="same"):
        mismatched = {"model": box_mask(0, 0, 2, 2), VISIBLE_BASELINE: box_mask(0, 0, 2, 2, size=8)}
        metrics.add_unmatched_detection(mismatched, image_id=0, score=0.5)
    with pytest.raises(ValueError, match="not percent"):
        metrics.add_missed_object(box_mask(0, 0, 2, 2), image_id=0, occlusion_rate=40)


# Baselines and post-processing --------------------------------------------------------------------------------


def test_convex_hull_of_a_square_is_the_square():
    square = box_mask(2, 3, 7, 8)
    np.testing.assert_array_equal(convex_hull_mask(square), square)


def test_convex_hull_of_an_l_shape_is_the_triangle_of_pixel_centres():
    l_shape = np.zeros((6, 6), dtype=bool)
    l_shape[1:5, 1] = True  # column 1, rows 1-4
    l_shape[4, 1:5] = True  # row 4, columns 1-4
    # Hull of the centres: triangle (1, 1), (4, 1), (4, 4); pixels on or below its diagonal, 1+2+3+4 = 10.
    expected = np.zeros((6, 6), dtype=bool)
    for row in range(1, 5):
        expected[row, 1 : row + 1] = True
    hull = convex_hull_mask(torch.from_numpy(l_shape))
    np.testing.assert_array_equal(hull, expected)
    assert hull.sum() == 10


def test_convex_hull_of_a_thick_l_shape_has_the_polygon_area():
    l_shape = box_mask(0, 0, 8, 3, size=8) | box_mask(5, 0, 8, 8, size=8)
    # Centres span the hexagon (0,0) (0,2) (5,7) (7,7) (7,0): pixels with column <= row + 2, below row 0-4.
    expected = np.fromfunction(lambda row, column: column <= row + 2, (8, 8))
    np.testing.assert_array_equal(convex_hull_mask(l_shape), expected)


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((5, 5), dtype=bool),
        box_mask(2, 2, 3, 3, size=5),
        box_mask(1, 0, 2, 5, size=5),
        box_mask(0, 2, 5, 3, size=5),
        np.eye(5, dtype=bool),
        np.fliplr(np.eye(5, dtype=bool)),
    ],
    ids=["empty", "one-pixel", "row", "column", "diagonal", "anti-diagonal"],
)
def test_convex_hull_of_degenerate_masks_is_the_mask_itself(mask):
    np.testing.assert_array_equal(convex_hull_mask(mask), mask)


def test_convex_hull_contains_random_masks():
    generator = np.random.default_rng(0)
    for _ in range(20):
        mask = generator.random((16, 12)) < 0.1
        hull = convex_hull_mask(mask)
        assert np.all(hull[mask])
        np.testing.assert_array_equal(convex_hull_mask(hull), hull)  # the hull mask is already convex


def test_union_with_visible_and_prediction_variants():
    prediction, visible = box_mask(0, 0, 4, 4), box_mask(3, 3, 6, 6)
    union = union_with_visible(torch.from_numpy(prediction).float(), visible)
    assert union.dtype == bool and union.sum() == 16 + 9 - 1
    np.testing.assert_array_equal(union, prediction | visible)
    variants = prediction_variants(prediction, visible)
    assert list(variants) == ["model", "model_union_visible", VISIBLE_BASELINE, CONVEX_HULL_BASELINE]
    np.testing.assert_array_equal(variants["model_union_visible"], union)
    np.testing.assert_array_equal(baseline_predictions(visible)[VISIBLE_BASELINE], visible)


# Report -------------------------------------------------------------------------------------------------------


def test_write_report_files(tmp_path):
    metrics = AmodalMetrics()
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    for index in range(3):
        metrics.add(prediction_variants(amodal, visible), amodal, visible, image_id=index, score=0.5 + index / 10)
    results = metrics.compute()
    paths = write_report(results, tmp_path / "report", chart_size=(800, 600))
    assert {path.name for path in (tmp_path / "report").iterdir()} == {"metrics.json", "metrics.md", "per_bin_miou.png"}

    loaded = json.loads(paths["json"].read_text())
    assert EvaluationResults.from_dict(loaded) == results
    assert loaded["variants"]["model"]["bins"][3]["num_objects"] == 3

    markdown = paths["markdown"].read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0].strip("| ") for row in rows[1:5]] == list(results.variants)
    assert "| model | 100.00 | 100.00 |" in markdown and "AR100" in rows[0]
    assert f"| {VISIBLE_BASELINE} | 50.00 | 0.00 |" in markdown

    with Image.open(paths["chart"]) as chart:
        assert chart.size == (800, 600)
        assert len(chart.getcolors(maxcolors=100_000)) > 3  # bars, text and axes were drawn


def test_report_without_objects_still_writes(tmp_path):
    results = AmodalMetrics(occlusion_range=(0.1, 0.7)).compute()
    paths = write_report(results, tmp_path)
    assert "Objects counted: 0 of 0" in paths["markdown"].read_text()
    assert math.isclose(json.loads(paths["json"].read_text())["occlusion_range"][1], 0.7)
