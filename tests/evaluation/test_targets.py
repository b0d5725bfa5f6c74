"""Occluder masks of the evaluation targets (`c2f_hf.evaluation.targets`) and the occluder-restricted variant."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from c2f_hf.data.schema import image_features, load_amodal_dataset, mask_to_png, scene_to_row, write_split
from c2f_hf.data.synthetic import SyntheticConfig, generate_scenes
from c2f_hf.data.transforms import AmodalObjectDataset, collate_object_crops
from c2f_hf.evaluation import AmodalMetrics, evaluate_model, iou, occluded_iou
from c2f_hf.evaluation.baselines import RESTRICTED_TO_OCCLUDERS_SUFFIX
from c2f_hf.evaluation.targets import ObjectTargets, add_objects, clip_occluder_masks, read_object_targets
from evaluation_testing import box_mask

RESTRICTED = "model" + RESTRICTED_TO_OCCLUDERS_SUFFIX


def _others(masks: list[np.ndarray], index: int) -> np.ndarray:
    return np.logical_or.reduce([mask for other, mask in enumerate(masks) if other != index] or [masks[index] & False])


def _rows_with_detections(num_rows: int):
    """Synthetic rows whose detections are the visible masks of every object but the first, shifted one pixel
    down (so they differ from the ground truth), plus one unmatched detection."""
    for index, scene in enumerate(generate_scenes(SyntheticConfig(image_size=48), seed=1, count=num_rows)):
        row = scene_to_row(scene, f"test-{index}")
        detections = [
            {"visible_mask": mask_to_png(np.roll(item.visible_mask, 1, axis=0)), "score": 0.5, "category": "x"}
            for item in scene.objects[1:]
        ]
        for position, detection in enumerate(detections):
            detection["object_index"] = position + 1
        detections.append({**detections[0], "object_index": -1})
        yield {**row, "predicted_visible_masks": detections}


@pytest.fixture(scope="module")
def detection_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detections")
    write_split(_rows_with_detections(2), image_features(with_predictions=True), folder / "test.parquet")
    return load_amodal_dataset(folder, "test", cache_dir=str(folder / "cache"))


@pytest.mark.parametrize(("visible_source", "column"), [("gt", "objects"), ("predicted", "predicted_visible_masks")])
def test_each_target_is_occluded_by_the_other_input_visible_masks_of_its_image(
    detection_dataset, visible_source, column
):
    objects = AmodalObjectDataset(detection_dataset, crop_size=32, visible_source=visible_source)
    batch = collate_object_crops([objects[index] for index in range(len(objects))])
    targets = read_object_targets(detection_dataset.with_format("arrow"), batch, visible_source)
    positions = batch["object_index" if visible_source == "gt" else "prediction_index"].tolist()
    for target, image_index, position in zip(targets, batch["image_index"].tolist(), positions):
        masks = [np.asarray(item["visible_mask"]) > 127 for item in detection_dataset[image_index][column]]
        np.testing.assert_array_equal(target.occluder_mask, _others(masks, position))
        np.testing.assert_array_equal(target.input_visible_mask, masks[position])


def test_add_objects_scores_the_restricted_variant_by_hand():
    # The prediction (rows 2..7, columns 0..9) covers the object (rows 2..5, columns 0..5; visible columns 0..2)
    # and background; the occluder (columns 3..9) keeps rows 2..7 there, the visible mask keeps columns 0..2.
    prediction, amodal, visible = box_mask(2, 0, 8, 10), box_mask(2, 0, 6, 6), box_mask(2, 0, 6, 3)
    occluder = box_mask(0, 3, 10, 10)
    target = ObjectTargets(amodal, visible, visible, "a", "x", 0.5, occluder_mask=occluder)
    metrics = AmodalMetrics()
    add_objects(metrics, [prediction], [target], [0.5])
    results = metrics.compute()
    assert list(results.variants)[:3] == ["model", "model_union_visible", RESTRICTED]
    restricted = visible | (prediction & occluder)  # rows 2..7: columns 0..9 but for rows 6..7, columns 0..2
    assert restricted.sum() == 6 * 10 - 2 * 3
    assert results.variants[RESTRICTED].miou_full == pytest.approx(24 / 54)
    assert results.variants[RESTRICTED].miou_occ == pytest.approx(12 / 42)
    assert results.variants["model"].miou_full == pytest.approx(24 / 60)
    without = AmodalMetrics()
    add_objects(without, [prediction], [ObjectTargets(amodal, visible, visible, "a", "x", 0.5)], [0.5])
    assert RESTRICTED not in without.compute().variants  # no occluder mask, no restricted variant


def _decoded(record: dict) -> np.ndarray:
    segmentation = {**record["segmentation"], "counts": record["segmentation"]["counts"].encode("ascii")}
    return mask_utils.decode(segmentation).astype(bool)


def test_evaluate_model_reports_the_restricted_variant_of_every_object(image_folder, tiny_model):
    dataset = load_amodal_dataset(image_folder, "test")
    saved = []
    results = evaluate_model(tiny_model, dataset, greedy=True, progress=False, predictions=saved)
    assert list(results.variants)[:3] == ["model", "model_union_visible", RESTRICTED]
    rows = {row["image_id"]: row for row in dataset}
    full, occluded = [], []
    for record in saved:
        objects = rows[record["image_id"]]["objects"]
        visible = [np.asarray(item["visible_mask"]) > 127 for item in objects]
        index = record["object_index"]
        restricted = visible[index] | (_decoded(record) & _others(visible, index))
        amodal = np.asarray(objects[index]["amodal_mask"]) > 127
        full.append(iou(restricted, amodal))
        occluded.append(occluded_iou(restricted, amodal, visible[index]))
    metrics = results.variants[RESTRICTED]
    assert metrics.miou_full == pytest.approx(np.mean(full))
    assert metrics.miou_occ == pytest.approx(np.mean([value for value in occluded if value is not None]))


def test_evaluate_model_restricts_detections_to_the_other_detections(detection_dataset, tiny_model):
    results = evaluate_model(tiny_model, detection_dataset, visible_source="predicted", greedy=True, progress=False)
    assert RESTRICTED in results.variants and results.num_unmatched_detections == 2
    assert results.variants[RESTRICTED].ap is not None


def test_clip_occluder_masks_are_the_other_tracks_per_frame():
    tracks = np.zeros((3, 2, 4, 4), dtype=bool)  # 3 tracks, 2 frames
    tracks[0, :, 0, :] = True
    tracks[1, 0, 1, :] = True
    tracks[2, 1, 2, :] = True
    encoded = [{"visible_masks": [mask_to_png(frame) for frame in track]} for track in tracks]
    occluders = clip_occluder_masks(encoded)
    assert occluders.shape == tracks.shape
    for index in range(3):
        np.testing.assert_array_equal(occluders[index], _others(list(tracks), index))
