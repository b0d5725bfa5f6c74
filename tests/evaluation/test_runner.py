"""`evaluate_model` (`c2f_hf.evaluation.runner`) on tiny synthetic datasets with a randomly initialised tiny model."""

import numpy as np
import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.data.schema import image_features, load_amodal_dataset, scene_to_row, write_split
from c2f_hf.data.synthetic import SyntheticConfig, generate_scenes
from c2f_hf.data.transforms import AmodalObjectDataset, collate_object_crops
from c2f_hf.data.video_frames import frame_dataset
from c2f_hf.evaluation import (
    CONVEX_HULL_BASELINE,
    VISIBLE_BASELINE,
    AmodalMetrics,
    EvaluationResults,
    MaskAnnotation,
    coco_mask_ap,
    evaluate_model,
)
from c2f_hf.evaluation.runner import paste_amodal_masks
from c2f_hf.evaluation.targets import ObjectTargets, add_objects, read_object_targets
from c2f_testing import tiny_video_config, visible_track_frames
from evaluation_testing import VARIANTS


def _all_means(results: EvaluationResults) -> list[float]:
    values = []
    for metrics in results.variants.values():
        values += [metrics.miou_full, metrics.miou_occ]
        values += [value for b in metrics.bins for value in (b.miou_full, b.miou_occ)]
        values += list(metrics.ap.values())
    return [value for value in values if value is not None]


def test_evaluate_model_counts_every_object_and_keeps_the_metric_invariants(image_folder, tiny_model):
    dataset = load_amodal_dataset(image_folder, "test")
    rates = [item["occlusion_rate"] for row in dataset for item in row["objects"]]
    tiny_model.train()
    results = evaluate_model(tiny_model, dataset, batch_size=5, progress=False)

    assert tiny_model.training  # the training mode is restored
    assert list(results.variants) == VARIANTS
    assert results.num_objects_added == results.num_objects_counted == len(rates)
    assert results.num_images == len(dataset)
    num_occluded = sum(rate > 0 for rate in rates)
    for metrics in results.variants.values():
        assert metrics.num_objects == sum(b.num_objects for b in metrics.bins) == len(rates)
        assert metrics.num_occluded_objects == num_occluded > 0
        assert metrics.ap is not None  # the model's scores rank the objects
    assert all(0.0 <= value <= 1.0 for value in _all_means(results))

    model, union, visible = (results.variants[name] for name in ("model", "model_union_visible", VISIBLE_BASELINE))
    # The visible mask lies inside the amodal mask: its IoU is 1 - occlusion rate and it predicts no occluded pixel.
    assert visible.miou_full == pytest.approx(1 - np.mean(rates), abs=1e-6)
    assert visible.miou_occ == 0.0
    # Adding ground-truth visible pixels adds only true positives and leaves the occluded region unchanged.
    assert union.miou_full >= model.miou_full
    assert union.miou_occ == model.miou_occ


def test_evaluate_model_is_reproducible_and_limits_the_objects(image_folder, tiny_model):
    dataset = load_amodal_dataset(image_folder, "test")
    first = evaluate_model(tiny_model, dataset, batch_size=4, seed=3, max_objects=7, progress=False)
    second = evaluate_model(tiny_model, dataset, batch_size=4, seed=3, max_objects=7, progress=True)
    assert first == second
    assert first.num_objects_added == 7
    fully_visible = sum(item["occlusion_rate"] == 0 for row in dataset for item in row["objects"])
    filtered = evaluate_model(tiny_model, dataset, greedy=True, occlusion_range=(0.0, 0.0), progress=False)
    assert filtered.num_objects_counted == fully_visible < filtered.num_objects_added
    assert filtered.variants["model"].num_occluded_objects == 0 and filtered.variants["model"].miou_occ is None


def test_evaluate_model_validates_its_arguments(image_folder, tiny_model):
    dataset = load_amodal_dataset(image_folder, "test")
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_model(tiny_model, dataset, batch_size=0)
    with pytest.raises(ValueError, match="visible_source"):
        evaluate_model(tiny_model, dataset, visible_source="detector")
    with pytest.raises(ValueError, match="predicted_visible_masks"):
        evaluate_model(tiny_model, dataset, visible_source="predicted")


def _box(shape: tuple[int, int], rows: slice, columns: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[rows, columns] = True
    return mask


def test_paste_and_add_objects_give_the_hand_computed_ious():
    # Object A: 4x4 box in an 8x10 image, crop size 4 (no resize); columns of probability 0.9, 0.9, 0.5, 0.2.
    # Object B: 2x2 box in a 6x6 image, a constant crop of 1.0 shrunk to the box.
    crops = torch.zeros(2, 1, 4, 4)
    crops[0, 0] = torch.tensor([0.9, 0.9, 0.5, 0.2])
    crops[1] = 1.0
    batch = {
        "crop_box": torch.tensor([[2, 3, 6, 7], [0, 0, 2, 2]]),
        "image_height": torch.tensor([8, 6]),
        "image_width": torch.tensor([10, 6]),
    }
    predictions = paste_amodal_masks(crops, batch)
    np.testing.assert_array_equal(predictions[0], _box((8, 10), slice(2, 6), slice(3, 6)))
    np.testing.assert_array_equal(predictions[1], _box((6, 6), slice(0, 2), slice(0, 2)))

    amodal_a = _box((8, 10), slice(2, 6), slice(3, 9))  # 24 pixels
    visible_a = _box((8, 10), slice(2, 6), slice(3, 5))  # 8 pixels; occluded region 16 pixels
    input_visible_a = _box((8, 10), slice(2, 6), slice(3, 7))  # a detected visible mask, 16 pixels
    box_b = _box((6, 6), slice(0, 2), slice(0, 2))
    targets = [
        ObjectTargets(amodal_a, visible_a, input_visible_a, "a", "disc", 2 / 3),
        ObjectTargets(box_b, box_b, box_b, "b", "disc", 0.0),
    ]
    metrics = AmodalMetrics()
    add_objects(metrics, predictions, targets, [0.9, 0.3])
    results = metrics.compute()

    model, union, visible, hull = (
        results.variants[name] for name in ("model", "model_union_visible", VISIBLE_BASELINE, CONVEX_HULL_BASELINE)
    )
    assert (model.miou_full, model.miou_occ) == (pytest.approx((12 / 24 + 1) / 2), pytest.approx(4 / 16))
    assert (union.miou_full, union.miou_occ) == (pytest.approx((16 / 24 + 1) / 2), pytest.approx(8 / 16))
    assert (visible.miou_full, visible.miou_occ) == (pytest.approx((16 / 24 + 1) / 2), pytest.approx(8 / 16))
    assert (hull.miou_full, hull.miou_occ) == (visible.miou_full, visible.miou_occ)  # rectangles are convex
    assert model.num_occluded_objects == 1 and results.num_images == 2 and model.ap is not None


def _predicted_visible_rows(num_rows: int):
    """Synthetic rows whose detections are the ground-truth visible masks of every object but the last, plus one
    detection matched to nothing."""
    for index, scene in enumerate(generate_scenes(SyntheticConfig(image_size=64), seed=0, count=num_rows)):
        row = scene_to_row(scene, f"test-{index}")
        predictions = [
            {
                "visible_mask": item["visible_mask"],
                "score": 0.9 - 0.1 * position,
                "category": item["category"],
                "object_index": position,
            }
            for position, item in enumerate(row["objects"][:-1])
        ]
        predictions.append({**predictions[0], "object_index": -1})
        yield {**row, "predicted_visible_masks": predictions}


def _write_dataset(rows, folder):
    write_split(rows, image_features(with_predictions=True), folder / "test.parquet")
    return load_amodal_dataset(folder, "test", cache_dir=str(folder / "cache"))


def test_predicted_visible_source_evaluates_the_matched_detections(tmp_path, tiny_model):
    dataset = _write_dataset(_predicted_visible_rows(3), tmp_path)
    rates = [item["occlusion_rate"] for row in dataset for item in row["objects"][:-1]]
    results = evaluate_model(tiny_model, dataset, visible_source="predicted", greedy=True, progress=False)
    assert results.num_objects_added == len(rates)
    assert (results.num_unmatched_detections, results.num_missed_objects) == (3, 3)
    visible = results.variants[VISIBLE_BASELINE]
    assert visible.miou_full == pytest.approx(1 - np.mean(rates), abs=1e-6) and visible.miou_occ == 0.0


def test_predicted_visible_source_scores_ap_over_every_detection_and_object(tmp_path, tiny_model):
    dataset = _write_dataset(_predicted_visible_rows(1), tmp_path)
    results = evaluate_model(tiny_model, dataset, visible_source="predicted", greedy=True, progress=False)
    row = dataset[0]
    assert results.num_objects_added == results.num_objects_counted == len(row["objects"]) - 1
    assert (results.num_unmatched_detections, results.num_missed_objects) == (1, 1)
    # The visible baseline does not depend on the model: its AP is COCO's over all detections and all objects.
    ground_truths = [
        MaskAnnotation.from_mask(item["amodal_mask"], "test-0", item["category"]) for item in row["objects"]
    ]
    detections = [
        MaskAnnotation.from_mask(item["visible_mask"], "test-0", item["category"], item["score"])
        for item in row["predicted_visible_masks"]
    ]
    assert results.variants[VISIBLE_BASELINE].ap == pytest.approx(coco_mask_ap(ground_truths, detections))
    assert results.variants[VISIBLE_BASELINE].ap["AR100"] < 1.0  # the missed object is never found


def test_predicted_visible_source_misses_every_object_of_an_image_without_detections(tmp_path, tiny_model):
    rows = list(_predicted_visible_rows(2))
    rows[1]["predicted_visible_masks"] = []
    dataset = _write_dataset(rows, tmp_path)
    num_objects = [len(row["objects"]) for row in rows]
    results = evaluate_model(tiny_model, dataset, visible_source="predicted", greedy=True, progress=False)
    assert results.num_objects_added == num_objects[0] - 1
    assert (results.num_unmatched_detections, results.num_missed_objects) == (1, 1 + num_objects[1])
    # The first sample only: the first image's other objects are matched by detections left unevaluated.
    first = evaluate_model(tiny_model, dataset, visible_source="predicted", max_objects=1, progress=False)
    assert (first.num_objects_added, first.num_unmatched_detections, first.num_missed_objects) == (1, 0, 1)


def test_predicted_visible_source_scores_objects_with_the_detector_scores(tmp_path):
    write_split(_predicted_visible_rows(2), image_features(with_predictions=True), tmp_path / "test.parquet")
    dataset = load_amodal_dataset(tmp_path, "test", cache_dir=str(tmp_path / "cache"))
    objects = AmodalObjectDataset(dataset, crop_size=64, visible_source="predicted")
    batch = collate_object_crops([objects[index] for index in range(len(objects))])
    targets = read_object_targets(dataset.with_format("arrow"), batch, "predicted")
    expected = [pytest.approx(0.9 - 0.1 * position) for position in batch["object_index"].tolist()]
    assert [target.detector_score for target in targets] == expected
    assert all(
        target.detector_score is None for target in read_object_targets(dataset.with_format("arrow"), batch, "gt")
    )


def test_video_datasets_are_evaluated_per_frame_without_hidden_objects(video_folder, tiny_model, tmp_path):
    clips = load_amodal_dataset(video_folder, "test")
    expected, total = visible_track_frames(clips)
    assert expected < total  # the synthetic clips hide an object in some frame

    frames = frame_dataset(clips, tmp_path)  # its rows are tested in tests/data/test_video_frames.py
    results = evaluate_model(tiny_model, clips, batch_size=16, progress=False)
    assert results.num_objects_added == expected and results.num_images == len(frames)
    assert evaluate_model(tiny_model, clips, max_objects=3, progress=False).num_objects_added == 3


def test_evaluation_runs_the_video_model_over_windows(clip_dataset):
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_video_config(num_frames=3))
    results = evaluate_model(model, clip_dataset, greedy=True, progress=False, max_objects=6)
    assert list(results.variants) == VARIANTS
    assert results.num_objects_added >= 6


def test_a_video_model_can_run_each_clip_as_one_rolled_sequence(clip_dataset):
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_video_config(num_frames=2))
    windows, sequence = [], []
    by_windows = evaluate_model(model, clip_dataset, greedy=True, progress=False, predictions=windows)
    as_sequence = evaluate_model(
        model, clip_dataset, greedy=True, progress=False, predictions=sequence, clip_mode="sequence"
    )
    assert as_sequence.run_settings["clip_mode"] == "sequence" and by_windows.run_settings["clip_mode"] == "windows"
    assert as_sequence.num_objects_added == by_windows.num_objects_added
    assert [(item["image_id"], item["object_index"]) for item in sequence] == [
        (item["image_id"], item["object_index"]) for item in windows
    ]
    assert any(abs(one["score"] - other["score"]) > 1e-6 for one, other in zip(windows, sequence))
    with pytest.raises(ValueError, match="clip_mode: expected one of"):
        evaluate_model(model, clip_dataset, progress=False, clip_mode="clips")
