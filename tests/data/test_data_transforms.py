"""The object-crop transform: geometry, seeded augmentation, per-object dataset and collate."""

import dataclasses

import numpy as np
import pytest
import torch

from c2f_hf.data.schema import image_features, load_amodal_dataset, mask_to_png, scene_to_row, write_split
from c2f_hf.data.synthetic import generate_scenes
from c2f_hf.data.transforms import (
    AmodalObjectDataset,
    ObjectCropTransform,
    VisibleMaskAugmentation,
    collate_object_crops,
    crop_boxes,
)
from c2f_hf.models.c2f_seg.mask_geometry import grown_crop_box, object_crop_box, paste_crop, reaches_crop_border


def as_bool(image) -> np.ndarray:
    return np.asarray(image) > 127


def test_pairs_follow_the_objects_column(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64)
    lengths = [len(objects) for objects in tiny_dataset["objects"]]
    expected = [(row, position) for row, length in enumerate(lengths) for position in range(length)]
    assert [tuple(pair) for pair in dataset.pairs] == expected
    assert len(dataset) == sum(lengths)


def test_evaluation_crop_matches_the_authors_rule_and_pastes_back(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64)
    for index in (0, 5, len(dataset) - 1):
        sample = dataset[index]
        row = tiny_dataset[int(sample["image_index"])]
        target = row["objects"][int(sample["object_index"])]
        visible, amodal = as_bool(target["visible_mask"]), as_bool(target["amodal_mask"])
        box = object_crop_box(visible, 2.0)
        assert sample["crop_box"].tolist() == box.to_list()
        assert sample["pixel_values"].shape == (3, 64, 64) and 0 <= sample["pixel_values"].min() <= 1
        assert torch.equal(sample["visible_masks"], sample["visible_mask_targets"])
        assert not bool(sample["flipped"])
        pasted = paste_crop(sample["amodal_masks"], box, 64, 64, mode="nearest")[0].numpy() > 0.5
        inside = (slice(box.top, box.bottom), slice(box.left, box.right))
        assert np.array_equal(pasted[inside], amodal[inside]) and not pasted.sum() > amodal.sum()
        assert sample["occlusion_rate"] == pytest.approx(target["occlusion_rate"])


def test_input_arrays_are_the_uncropped_image_and_input_visible_mask(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64)
    index = len(dataset) - 1
    image, visible_mask = dataset.input_arrays(index)
    row_index, position = (int(value) for value in dataset.pairs[index])
    row = tiny_dataset[row_index]
    assert np.array_equal(image, np.asarray(row["image"].convert("RGB")))
    assert np.array_equal(visible_mask, as_bool(row["objects"][position]["visible_mask"]))


def test_the_authors_cocoa_rule_crops_from_the_amodal_mask_on_request(tiny_dataset):
    transform = ObjectCropTransform(crop_size=64, crop_from="amodal")
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64, transform=transform)
    differs = 0
    for index in range(len(dataset)):
        sample = dataset[index]
        target = tiny_dataset[int(sample["image_index"])]["objects"][int(sample["object_index"])]
        visible, amodal = as_bool(target["visible_mask"]), as_bool(target["amodal_mask"])
        assert sample["crop_box"].tolist() == object_crop_box(amodal, 2.0).to_list()
        differs += object_crop_box(amodal, 2.0) != object_crop_box(visible, 2.0)
    assert differs > 0, "the fixture has occluded objects whose two boxes differ"
    with pytest.raises(ValueError, match=r"crop_from: expected one of \('visible', 'amodal'\), got 'bbox'"):
        ObjectCropTransform(crop_from="bbox")


def test_training_crop_uses_the_seeded_enlarge_ratio(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64, training=True, seed=5)
    dataset.set_epoch(2)
    for index in (1, 4, 9):
        sample = dataset[index]
        target = tiny_dataset[int(sample["image_index"])]["objects"][int(sample["object_index"])]
        enlarge_ratio = np.random.default_rng([5, 2, index]).uniform(1.5, 3.0)
        assert sample["crop_box"].tolist() == object_crop_box(as_bool(target["visible_mask"]), enlarge_ratio).to_list()
        assert 1.5 <= enlarge_ratio <= 3.0


def test_a_training_second_crop_grows_the_crop_an_amodal_mask_reaches_past():
    image = np.zeros((80, 100, 3), dtype=np.uint8)
    amodal = np.zeros((80, 100), dtype=bool)
    amodal[30:50, 20:80] = True
    visible = amodal.copy()
    visible[:, 40:] = False  # hidden from x = 40 on: the visible crop at ratio 2 ends at x = 50
    transform = ObjectCropTransform(crop_size=32, training=True, flip_probability=0.0, augmentation=None)
    second = dataclasses.replace(transform, second_crop_probability=1.0, second_crop_range=(1.6, 1.6))
    first_box = object_crop_box(visible, float(np.random.default_rng(0).uniform(1.5, 3.0)))
    assert reaches_crop_border(amodal, first_box)
    plain = transform(image, visible, visible, amodal, np.random.default_rng(0))
    grown = second(image, visible, visible, amodal, np.random.default_rng(0))
    assert plain["crop_box"].tolist() == first_box.to_list()
    assert grown["crop_box"].tolist() == grown_crop_box(first_box, amodal, 1.6).to_list()
    whole = dataclasses.replace(second, second_crop_range=(3.0, 3.0))
    held = whole(image, visible, visible, visible, np.random.default_rng(0))  # nothing reaches past: kept
    assert held["crop_box"].tolist() == first_box.to_list()


def test_training_samples_are_reproducible_and_change_with_the_epoch(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64, training=True, seed=1)
    first = [dataset[index] for index in range(8)]
    again = [dataset[index] for index in range(8)]
    assert all(torch.equal(a[key], b[key]) for a, b in zip(first, again) for key in a)
    dataset.set_epoch(1)
    later = [dataset[index] for index in range(8)]
    assert any(not torch.equal(a["crop_box"], b["crop_box"]) for a, b in zip(first, later))
    flips = [bool(sample["flipped"]) for sample in first + later]
    assert any(flips) and not all(flips)


def test_flip_mirrors_every_crop():
    rng_draws = np.random.default_rng(0)
    image = rng_draws.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    amodal = np.zeros((32, 32), dtype=bool)
    amodal[8:20, 4:14] = True
    visible = amodal.copy()
    visible[:, 10:] = False
    transform = ObjectCropTransform(crop_size=16, training=True, flip_probability=1.0, augmentation=None)
    plain = ObjectCropTransform(crop_size=16, training=True, flip_probability=0.0, augmentation=None)
    flipped = transform(image, visible, visible, amodal, np.random.default_rng(3))
    unflipped = plain(image, visible, visible, amodal, np.random.default_rng(3))
    assert torch.equal(flipped["crop_box"], unflipped["crop_box"])
    for key in ("pixel_values", "visible_masks", "amodal_masks"):
        assert torch.equal(flipped[key], unflipped[key].flip(-1))


def _square_mask() -> np.ndarray:
    mask = np.zeros((64, 64), dtype=np.float32)
    mask[20:44, 16:40] = 1
    return mask


def test_augmentation_is_reproducible_binary_and_follows_its_branches():
    mask = _square_mask()
    augmentation = VisibleMaskAugmentation()
    outputs = [augmentation(mask, np.random.default_rng(seed)) for seed in range(30)]
    assert all(np.array_equal(out, augmentation(mask, np.random.default_rng(seed))) for seed, out in enumerate(outputs))
    assert all(set(np.unique(out)) <= {0.0, 1.0} for out in outputs)
    unchanged = sum(np.array_equal(out, mask) for out in outputs)
    assert 0 < unchanged < 30
    dilate = VisibleMaskAugmentation(blur_probability=0, morphology_probability=1, dilation_probability=1)
    erode = VisibleMaskAugmentation(blur_probability=0, morphology_probability=1, dilation_probability=0)
    for seed in range(5):
        grown, shrunk = dilate(mask, np.random.default_rng(seed)), erode(mask, np.random.default_rng(seed))
        assert grown.sum() > mask.sum() and shrunk.sum() < mask.sum()
        assert not (mask.astype(bool) & ~grown.astype(bool)).any()
        assert not (shrunk.astype(bool) & ~mask.astype(bool)).any()
    blurred = VisibleMaskAugmentation(blur_probability=1)(mask, np.random.default_rng(0))
    assert not np.array_equal(blurred, mask) and blurred.sum() > 0


def _centred_square(side: int) -> np.ndarray:
    mask = np.zeros((side, side), dtype=np.float32)
    mask[side * 3 // 8 : side * 5 // 8, side * 3 // 8 : side * 5 // 8] = 1
    return mask


def test_augmentation_sizes_scale_with_the_crop_side():
    dilate = VisibleMaskAugmentation(blur_probability=0, morphology_probability=1, dilation_probability=1)
    for seed in range(5):
        at_reference = dilate(_centred_square(256), np.random.default_rng(seed))
        at_half = dilate(_centred_square(128), np.random.default_rng(seed))
        growth_reference = at_reference.any(axis=0).sum() - 64
        growth_half = at_half.any(axis=0).sum() - 32
        assert growth_reference >= 4
        assert abs(growth_half - growth_reference / 2) <= 4
    blur = VisibleMaskAugmentation(blur_probability=1)
    square = _centred_square(256)
    area_reference = blur(square, np.random.default_rng(0)).sum()
    area_half = blur(square[::2, ::2], np.random.default_rng(0)).sum()
    assert 0 < area_reference < 0.95 * square.sum()
    assert abs(area_half * 4 - area_reference) <= 0.05 * area_reference


def test_collate_stacks_samples(tiny_dataset):
    dataset = AmodalObjectDataset(tiny_dataset, crop_size=64, training=True)
    batch = collate_object_crops([dataset[index] for index in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 64, 64)
    assert batch["visible_masks"].shape == batch["amodal_masks"].shape == (3, 1, 64, 64)
    assert batch["crop_box"].shape == (3, 4) and batch["image_index"].shape == (3,)
    assert [box.to_list() for box in crop_boxes(batch)] == batch["crop_box"].tolist()
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, collate_fn=collate_object_crops)
    assert sum(len(batch["object_index"]) for batch in loader) == len(dataset)


def test_predicted_source_needs_the_column(tiny_dataset):
    with pytest.raises(ValueError, match="predicted_visible_masks"):
        AmodalObjectDataset(tiny_dataset, visible_source="predicted")
    with pytest.raises(ValueError, match="visible_source"):
        AmodalObjectDataset(tiny_dataset, visible_source="detector")


def _unmatched_box() -> np.ndarray:
    """A 64x64 detected visible mask matched to no object: rows 10-21, columns 30-39."""
    mask = np.zeros((64, 64), dtype=bool)
    mask[10:22, 30:40] = True
    return mask


def _detected_dataset(tiny_config, folder, unmatched_mask: np.ndarray):
    """Two synthetic scenes whose detections are object 0 (matched), `unmatched_mask` (object_index -1) and object
    1 (matched), each detected visible mask the object's ground-truth one."""
    rows = []
    for index, scene in enumerate(generate_scenes(tiny_config, 3, 2)):
        row = scene_to_row(scene, f"test-{index}")
        matched = [
            {"visible_mask": item["visible_mask"], "score": 0.9, "category": item["category"], "object_index": position}
            for position, item in enumerate(row["objects"][:2])
        ]
        unmatched = {"visible_mask": mask_to_png(unmatched_mask), "score": 0.8, "category": "disc", "object_index": -1}
        rows.append({**row, "predicted_visible_masks": [matched[0], unmatched, matched[1]]})
    write_split(rows, image_features(with_predictions=True), folder / "test.parquet")
    return load_amodal_dataset(folder, "test", cache_dir=str(folder / "cache"))


def test_predicted_source_yields_unmatched_detections_only_when_asked(tiny_config, tmp_path):
    dataset = _detected_dataset(tiny_config, tmp_path, _unmatched_box())
    matched = AmodalObjectDataset(dataset, crop_size=64, visible_source="predicted")
    everything = AmodalObjectDataset(dataset, crop_size=64, visible_source="predicted", include_unmatched=True)
    assert [tuple(pair) for pair in matched.pairs] == [(0, 0), (0, 2), (1, 0), (1, 2)]
    assert [tuple(pair) for pair in everything.pairs] == [(row, position) for row in (0, 1) for position in range(3)]

    samples = [everything[index] for index in range(len(everything))]
    assert [int(sample["object_index"]) for sample in samples] == [0, -1, 1, 0, -1, 1]
    for sample in (samples[1], samples[4]):
        assert int(sample["prediction_index"]) == 1
        assert sample["crop_box"].tolist() == object_crop_box(_unmatched_box(), 2.0).to_list()
        assert sample["visible_masks"].sum() > 0
        assert not sample["visible_mask_targets"].any() and not sample["amodal_masks"].any()
        assert sample["occlusion_rate"] == 0.0
    # The matched detections are the same samples with or without the unmatched ones.
    for sample, other in zip([samples[0], samples[2], samples[3], samples[5]], matched):
        assert all(torch.equal(sample[key], other[key]) for key in sample)


def test_include_unmatched_needs_predictions_and_empty_detections_still_raise(tiny_config, tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="include_unmatched"):
        AmodalObjectDataset(tiny_dataset, include_unmatched=True)
    dataset = _detected_dataset(tiny_config, tmp_path, np.zeros((64, 64), dtype=bool))
    objects = AmodalObjectDataset(dataset, crop_size=64, visible_source="predicted", include_unmatched=True)
    with pytest.raises(ValueError, match="row 0, prediction 1 \\(no object\\): the input visible mask is empty"):
        objects[1]
