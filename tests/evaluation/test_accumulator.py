"""`AmodalMetrics` and `EvaluationResults` (`c2f_hf.evaluation.accumulator`), on hand-computed toy masks."""

import json
import pickle

import numpy as np
import pytest
import torch

from c2f_hf.evaluation import FISHBOWL_OCCLUSION_RANGE, VISIBLE_BASELINE, AmodalMetrics, EvaluationResults, write_report
from evaluation_testing import box_mask


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


def test_accumulator_computes_ap_when_scores_are_present():
    metrics = AmodalMetrics()
    amodal, visible = box_mask(0, 0, 4, 4), box_mask(0, 0, 2, 4)
    for index, score in enumerate([0.9, 0.6]):
        predictions = {"model": amodal, "wrong": box_mask(6, 6, 10, 10)}
        metrics.add(predictions, amodal, visible, image_id=index, score=score)
    variants = metrics.compute().variants
    assert variants["model"].ap["AP"] == 1.0 and variants["wrong"].ap["AP"] == 0.0


def test_an_object_paired_with_two_detections_is_one_ground_truth_of_ap():
    first, second = box_mask(0, 0, 4, 4), box_mask(6, 6, 10, 10)
    aps = {}
    for keyed in (False, True):
        metrics = AmodalMetrics()
        for mask, score, key in ((first, 0.9, 0), (first, 0.8, 0), (second, 0.7, 1)):
            object_key = key if keyed else None
            metrics.add({"model": mask}, mask, mask, image_id=0, score=score, object_key=object_key)
        aps[keyed] = metrics.compute().variants["model"].ap
    assert aps[False]["AP50"] == pytest.approx(1.0)  # three ground truths, three true positives
    # One ground truth per object: the second detection of the first object is a false positive ranked second.
    assert aps[True]["AP50"] < 1.0 and aps[True]["AR100"] == pytest.approx(1.0)


def test_accumulator_skips_ap_when_some_scores_are_missing():
    metrics = AmodalMetrics()
    amodal = box_mask(0, 0, 4, 4)
    metrics.add({"model": amodal}, amodal, amodal, image_id=0, score=0.9)
    metrics.add({"model": amodal}, amodal, amodal, image_id=1)
    assert metrics.compute().variants["model"].ap is None


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


def unoccluded_square(extra_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """A 10x10 square (area 100) in a 20x20 image and a prediction of it plus `extra_pixels` pixels of row 15."""
    square = box_mask(0, 0, 10, 10, size=20)
    prediction = square.copy()
    prediction[15, :extra_pixels] = True
    return square, prediction


def test_invented_area_of_an_unoccluded_square_is_the_added_area_over_its_area():
    square, prediction = unoccluded_square(5)
    metrics = AmodalMetrics()
    metrics.add(
        {"model": prediction, "exact": square, "smaller": square & ~box_mask(0, 0, 5, 10, size=20)},
        square,
        square,
        image_id=0,
    )
    variants = metrics.compute().variants
    assert variants["model"].invented_area == pytest.approx(0.05)
    assert (
        variants["exact"].invented_area == 0.0 and variants["smaller"].invented_area == 0.0
    )  # missing is not invented
    assert all(numbers.num_unoccluded_objects == 1 for numbers in variants.values())


def test_invented_area_averages_only_objects_that_nothing_occludes():
    metrics = AmodalMetrics()
    for index, extra_pixels in enumerate((5, 15)):
        square, prediction = unoccluded_square(extra_pixels)
        metrics.add({"model": prediction}, square, square, image_id=index)
    square, prediction = unoccluded_square(20)
    # One hidden pixel makes an object occluded, whatever its given rate; an object whose visible mask spills out
    # of its amodal mask hides nothing.
    metrics.add({"model": prediction}, square, square & ~box_mask(0, 0, 1, 1, size=20), image_id=2, occlusion_rate=0.0)
    metrics.add({"model": prediction}, square, square | box_mask(0, 0, 12, 12, size=20), image_id=3)
    # An empty object has no area to divide by: it enters neither mIoU_occ nor the invented area.
    empty = np.zeros_like(square)
    metrics.add({"model": prediction}, empty, empty, image_id=4)
    model = metrics.compute().variants["model"]
    assert (model.num_objects, model.num_occluded_objects, model.num_unoccluded_objects) == (5, 1, 3)
    assert model.invented_area == pytest.approx((0.05 + 0.15 + 0.20) / 3)


def test_invented_area_is_none_without_unoccluded_objects():
    model = one_detected_object_metrics().compute().variants["model"]
    assert model.invented_area is None and model.num_unoccluded_objects == 0
    model = AmodalMetrics(variants=["model"]).compute().variants["model"]
    assert model.invented_area is None and model.num_unoccluded_objects == 0


def test_invented_area_follows_the_occlusion_range():
    # Object B of `three_objects_metrics` (rate 0.05) is its only unoccluded one: the model adds 12 of 16 pixels.
    model = three_objects_metrics().compute().variants["model"]
    assert model.invented_area == pytest.approx(12 / 16) and model.num_unoccluded_objects == 1
    assert three_objects_metrics().compute().variants[VISIBLE_BASELINE].invented_area == 0.0
    for occlusion_range, expected in (((0.0, 0.6), 12 / 16), (FISHBOWL_OCCLUSION_RANGE, None)):
        model = three_objects_metrics(occlusion_range).compute().variants["model"]
        assert model.invented_area == (None if expected is None else pytest.approx(expected))
        assert model.num_unoccluded_objects == (0 if expected is None else 1)


def test_invented_area_survives_merging_pickled_shares():
    whole, first, second = AmodalMetrics(), AmodalMetrics(), AmodalMetrics()
    for index, extra_pixels in enumerate((5, 15, 0)):
        square, prediction = unoccluded_square(extra_pixels)
        for metrics in (whole, first if index < 1 else second):
            metrics.add({"model": prediction}, square, square, image_id=index)
    # Processes send their accumulators to the main process pickled (`Processes.gather`).
    merged = pickle.loads(pickle.dumps(first))
    merged.merge(pickle.loads(pickle.dumps(second)))
    results = merged.compute()
    assert results == whole.compute()
    assert results.variants["model"].invented_area == pytest.approx(0.2 / 3)
    assert results.variants["model"].num_unoccluded_objects == 3


def test_metrics_written_before_the_invented_area_still_load():
    results = three_objects_metrics().compute()
    assert EvaluationResults.from_dict(json.loads(json.dumps(results.to_dict()))) == results
    old_file = results.to_dict()
    for values in old_file["variants"].values():
        del values["invented_area"], values["num_unoccluded_objects"]
    loaded = EvaluationResults.from_dict(old_file)
    assert all(
        (numbers.invented_area, numbers.num_unoccluded_objects) == (None, 0) for numbers in loaded.variants.values()
    )
    assert loaded.variants["model"].miou_full == results.variants["model"].miou_full
