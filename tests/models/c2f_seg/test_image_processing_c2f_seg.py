import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoImageProcessor

from c2f_hf import C2FSegImageProcessor
from c2f_hf.models.c2f_seg.image_loading import load_rgb_image
from c2f_hf.models.c2f_seg.mask_geometry import CropBox, crop_mask, object_crop_box, paste_crop
from c2f_testing import tiny_config


def box_mask(height, width, top, left, box_height, box_width):
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + box_height, left : left + box_width] = True
    return mask


@pytest.mark.parametrize(
    ("mask_box", "enlarge", "expected"),
    [
        # 10x20 box at rows 10..19, cols 30..49: centre (15, 40); half spans 10 and 20 -> rows 5..25, cols 20..60.
        ((10, 30, 10, 20), 2.0, CropBox(5, 20, 26, 61)),
        # Clipped at the top-left corner: rows 0..3 -> centre 2, half 4 -> [0, 6]; same for columns.
        ((0, 0, 4, 4), 2.0, CropBox(0, 0, 7, 7)),
        # Clipped at the bottom-right: rows 95..99 -> centre 97, half 5 -> [92, 100) clipped to the image.
        ((95, 115, 5, 5), 2.0, CropBox(92, 112, 100, 120)),
        # A 1-pixel object still gets a 3x3 crop.
        ((50, 60, 1, 1), 2.0, CropBox(49, 59, 52, 62)),
        # enlarge 3: a 4x6 box at (40, 40): centres 42 / 43, halves 6 / 9.
        ((40, 40, 4, 6), 3.0, CropBox(36, 34, 49, 53)),
    ],
)
def test_crop_box_follows_the_authors_rule(mask_box, enlarge, expected):
    mask = box_mask(100, 120, *mask_box)
    assert object_crop_box(mask, enlarge) == expected


def test_empty_mask_has_no_crop_box():
    with pytest.raises(ValueError, match="empty"):
        object_crop_box(np.zeros((8, 8), dtype=bool))


def test_paste_back_of_a_crop_of_the_input_returns_the_input_exactly():
    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = rng.integers(10, 200, size=2)
        mask = np.zeros((height, width), dtype=bool)
        top, left = rng.integers(0, height - 2), rng.integers(0, width - 2)
        mask[top : top + rng.integers(1, 30), left : left + rng.integers(1, 30)] = True
        mask &= rng.random((height, width)) < 0.8
        if not mask.any():
            continue
        box = object_crop_box(mask)
        pasted = paste_crop(crop_mask(mask, box, 64), box, height, width, mode="nearest")[0].numpy() > 0.5
        assert np.array_equal(pasted, mask)


def test_processor_outputs(tmp_path):
    processor = C2FSegImageProcessor(crop_resolution=64)
    image = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    masks = [box_mask(100, 120, 10, 30, 10, 20), box_mask(100, 120, 50, 60, 30, 10)]
    out = processor(image, visible_masks=masks)
    assert out["pixel_values"].shape == (2, 3, 64, 64)
    assert out["pixel_values"].min() >= 0 and out["pixel_values"].max() <= 1
    assert out["visible_masks"].shape == (2, 1, 64, 64)
    assert set(out["visible_masks"].unique().tolist()) == {0.0, 1.0}
    assert out["crop_boxes"].tolist()[0] == [5, 20, 26, 61]
    assert out["original_sizes"].tolist() == [[100, 120]] and out["image_indices"].tolist() == [0, 0]


def test_crop_of_a_constant_image_keeps_its_colour():
    processor = C2FSegImageProcessor(crop_resolution=32)
    image = np.full((40, 40, 3), (255, 0, 51), dtype=np.uint8)
    out = processor(image, visible_masks=[box_mask(40, 40, 10, 10, 5, 5)])
    torch.testing.assert_close(out["pixel_values"][0, :, 5, 5], torch.tensor([1.0, 0.0, 0.2]))


def test_normalisation_is_an_option_off_by_default():
    image = np.full((40, 40, 3), 128, dtype=np.uint8)
    masks = [box_mask(40, 40, 10, 10, 5, 5)]
    raw = C2FSegImageProcessor(crop_resolution=32)(image, visible_masks=masks)["pixel_values"]
    normalised = C2FSegImageProcessor(crop_resolution=32, do_normalize=True)(image, visible_masks=masks)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(normalised["pixel_values"][0, :, 0, 0], (raw[0, :, 0, 0] - mean) / std)


def test_label_map_equals_the_list_of_masks():
    processor = C2FSegImageProcessor(crop_resolution=32)
    image = np.zeros((60, 60, 3), dtype=np.uint8)
    first, second = box_mask(60, 60, 5, 5, 10, 10), box_mask(60, 60, 30, 30, 20, 5)
    label_map = first.astype(np.int64) * 3 + second.astype(np.int64) * 7
    from_list = processor(image, visible_masks=[first, second])
    from_map = processor(image, label_map=label_map)
    for key in ("pixel_values", "visible_masks", "crop_boxes"):
        assert torch.equal(from_list[key], from_map[key])


@pytest.mark.parametrize(
    "mask",
    [
        PIL.Image.fromarray(box_mask(40, 50, 5, 5, 10, 10).astype(np.uint8) * 255, mode="L"),
        box_mask(40, 50, 5, 5, 10, 10),
        box_mask(40, 50, 5, 5, 10, 10).astype(np.uint8),
        box_mask(40, 50, 5, 5, 10, 10).astype(np.float32) * 0.9,
        torch.from_numpy(box_mask(40, 50, 5, 5, 10, 10))[None],
    ],
)
def test_every_mask_type_gives_the_same_crop(mask):
    processor = C2FSegImageProcessor(crop_resolution=32)
    reference = processor(np.zeros((40, 50, 3), np.uint8), visible_masks=[box_mask(40, 50, 5, 5, 10, 10)])
    out = processor(np.zeros((40, 50, 3), np.uint8), visible_masks=[mask])
    assert torch.equal(out["visible_masks"], reference["visible_masks"])


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((40, 50), np.uint8),
        np.zeros((40, 50, 4), np.uint8),
        np.zeros((40, 50, 3), np.float32),
        PIL.Image.new("L", (50, 40)),
    ],
)
def test_every_image_type_is_accepted(image, tmp_path):
    out = C2FSegImageProcessor(crop_resolution=32)(image, visible_masks=[box_mask(40, 50, 5, 5, 10, 10)])
    assert out["pixel_values"].shape == (1, 3, 32, 32)


def test_image_path_is_accepted(tmp_path):
    PIL.Image.new("RGB", (50, 40), (10, 20, 30)).save(tmp_path / "image.png")
    out = C2FSegImageProcessor(crop_resolution=32)(tmp_path / "image.png", visible_masks=[box_mask(40, 50, 5, 5, 3, 3)])
    torch.testing.assert_close(out["pixel_values"][0, :, 0, 0], torch.tensor([10, 20, 30]) / 255.0)


@pytest.mark.parametrize(
    ("image", "masks", "message"),
    [
        (np.zeros((40, 50, 3), np.uint8), [np.zeros((40, 50), bool)], r"visible_masks\[0\]: is empty"),
        (np.zeros((40, 50, 3), np.uint8), [np.ones((40, 51), bool)], r"visible_masks\[0\]: has shape \(40, 51\)"),
        (np.zeros((40, 50, 3), np.uint8), [np.full((40, 50), 1.5, np.float32)], "must lie in \\[0, 1\\]"),
        (np.zeros((40, 50, 3), np.uint8), [np.full((40, 50), np.nan, np.float32)], "NaN"),
        (np.zeros((40, 50, 3), np.uint8), [np.full((40, 50), 7, np.uint8)], r"\{0, 1\} or \{0, 255\}"),
        (np.zeros((40, 50, 3), np.uint8), [], "zero masks"),
        (np.zeros((40, 0, 3), np.uint8), [np.ones((40, 0), bool)], "zero height or width"),
        (np.full((40, 50, 3), np.nan, np.float32), [np.ones((40, 50), bool)], "image: contains NaN"),
        (np.zeros((3, 40, 50), np.uint8), [np.ones((40, 50), bool)], "shape \\(H, W\\)"),
        ("/no/such/image.png", [np.ones((40, 50), bool)], "no file"),
        (
            np.zeros((40, 50, 3), np.uint8),
            [PIL.Image.new("RGB", (50, 40))],
            r"visible_masks\[0\]: expected a single-channel PIL mask \(mode 1, L or P\), got mode RGB",
        ),
        (np.zeros((40, 50, 3), np.uint8), ["mask.png"], r"visible_masks\[0\]: expected a PIL image, numpy array"),
    ],
)
def test_bad_input_gets_a_clear_error(image, masks, message):
    with pytest.raises(ValueError, match=message):
        C2FSegImageProcessor(crop_resolution=32)(image, visible_masks=masks)


def test_post_processing_pastes_thresholds_and_unions():
    processor = C2FSegImageProcessor(crop_resolution=32)
    visible = box_mask(40, 50, 10, 10, 10, 10)
    crops = processor(np.zeros((40, 50, 3), np.uint8), visible_masks=[visible])
    probabilities = torch.zeros(1, 1, 32, 32)
    probabilities[..., :16, :] = 0.8
    (pasted,) = processor.post_process_amodal_masks(probabilities, crops["crop_boxes"], [(40, 50)])
    assert pasted.shape == (1, 40, 50) and pasted.dtype == torch.bool
    top, left, bottom, right = crops["crop_boxes"][0].tolist()
    assert pasted[0, top : top + (bottom - top) // 2 - 1, left:right].all()
    assert not pasted[0, bottom:, :].any() and not pasted[0, :, right:].any()
    (strict,) = processor.post_process_amodal_masks(probabilities, crops["crop_boxes"], [(40, 50)], mask_threshold=0.9)
    assert not strict.any()
    (union,) = processor.post_process_amodal_masks(
        torch.zeros(1, 1, 32, 32), crops["crop_boxes"], [(40, 50)], visible_masks=[torch.from_numpy(visible)[None]]
    )
    assert torch.equal(union[0], torch.from_numpy(visible))


def test_processor_round_trips_through_auto_image_processor(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    C2FSegImageProcessor(crop_resolution=64, enlarge_ratio=2.5).save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, C2FSegImageProcessor)
    assert loaded.crop_resolution == 64 and loaded.enlarge_ratio == 2.5 and loaded.do_normalize is False


def test_input_and_prediction_thresholds_are_separate_settings(tmp_path):
    soft = box_mask(40, 50, 5, 5, 10, 10).astype(np.float32) * 0.3
    strict = C2FSegImageProcessor(crop_resolution=32, mask_threshold=0.2)
    with pytest.raises(ValueError, match=r"visible_masks\[0\]: is empty"):
        strict(np.zeros((40, 50, 3), np.uint8), visible_masks=[soft])
    lenient = C2FSegImageProcessor(crop_resolution=32, visible_mask_threshold=0.25, mask_threshold=0.9)
    lenient.save_pretrained(tmp_path)
    loaded = C2FSegImageProcessor.from_pretrained(tmp_path)
    assert (loaded.visible_mask_threshold, loaded.mask_threshold) == (0.25, 0.9)
    crops = loaded(np.zeros((40, 50, 3), np.uint8), visible_masks=[soft])
    assert torch.equal(crops["original_visible_masks"][0][0], torch.from_numpy(soft > 0))
    probabilities = torch.full((1, 1, 32, 32), 0.5)
    (pasted,) = loaded.post_process_amodal_masks(probabilities, crops["crop_boxes"], crops["original_sizes"])
    assert not pasted.any()


def test_post_process_objects_applies_the_mask_policy():
    processor = C2FSegImageProcessor(crop_resolution=32)
    visible = box_mask(40, 50, 10, 10, 10, 10)
    crops = processor(np.zeros((40, 50, 3), np.uint8), visible_masks=[visible])
    amodal = torch.zeros(1, 1, 32, 32)
    amodal[..., 16:, :] = 0.9
    outputs = {
        "amodal_masks": amodal,
        "pred_visible_masks": torch.zeros(1, 1, 32, 32),
        "coarse_amodal_masks": amodal,
        "scores": torch.tensor([0.25]),
    }
    boxes, sizes, masks = crops["crop_boxes"], crops["original_sizes"], crops["original_visible_masks"]
    ((raw,),) = processor.post_process_objects(outputs, boxes, sizes, masks, return_coarse=True)
    ((united,),) = processor.post_process_objects(outputs, boxes, sizes, masks, union_with_visible=True)
    pasted = processor.post_process_amodal_masks(amodal, boxes, sizes)[0][0].numpy()
    assert np.array_equal(raw["amodal_mask"], pasted) and np.array_equal(raw["coarse_amodal_mask"], pasted)
    assert np.array_equal(united["amodal_mask"], pasted | visible)
    assert np.array_equal(united["occluded_mask"], (pasted | visible) & ~visible)
    assert united["occlusion_rate"] == pytest.approx(united["occluded_mask"].sum() / united["amodal_mask"].sum())
    rows, columns = np.nonzero(united["amodal_mask"])
    assert united["bbox"] == [columns.min(), rows.min(), np.ptp(columns) + 1, np.ptp(rows) + 1]
    assert raw["score"] == 0.25 and not raw["pred_visible_mask"].any() and "coarse_amodal_mask" not in united


@pytest.mark.parametrize("as_pil", [False, True])
def test_transparent_pixels_are_composited_over_white(as_pil):
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 25:, 3] = 255
    image = PIL.Image.fromarray(rgba, mode="RGBA") if as_pil else rgba
    crops = C2FSegImageProcessor(crop_resolution=40, enlarge_ratio=10.0)(image, visible_masks=[np.ones((40, 50), bool)])
    pixels = crops["pixel_values"][0]
    torch.testing.assert_close(pixels[:, 20, 2], torch.ones(3))
    torch.testing.assert_close(pixels[:, 20, 38], torch.tensor([200 / 255, 0.0, 0.0]))


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (PIL.Image.fromarray(np.full((40, 50), 32896, np.uint16)), 128),
        (PIL.Image.fromarray(np.full((40, 50), 0.25, np.float32), mode="F"), 64),
        (np.full((40, 50, 3), 65535, np.uint16), 255),
    ],
)
def test_high_bit_depth_images_are_scaled_by_their_range(image, expected):
    assert (load_rgb_image(image) == expected).all()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (PIL.Image.fromarray(np.full((40, 50), np.nan, np.float32), mode="F"), "NaN"),
        (PIL.Image.fromarray(np.full((40, 50), 2.0, np.float32), mode="F"), r"must lie in \[0, 1\]"),
        (PIL.Image.fromarray(np.full((40, 50), 70000, np.int32), mode="I"), "PIL mode I holds values"),
        (np.zeros((40, 50, 3), np.int64), "uint8, uint16 or float"),
    ],
)
def test_unreadable_pixel_values_are_refused_with_the_reason(image, message):
    with pytest.raises(ValueError, match=message):
        load_rgb_image(image)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="is not an image file"):
        load_rgb_image(tmp_path / "notes.png")


def test_a_batch_of_images_concatenates_their_objects_in_order():
    processor = C2FSegImageProcessor(crop_resolution=32)
    first, second = np.zeros((40, 50, 3), np.uint8), np.full((30, 20, 3), 255, np.uint8)
    first_masks = [box_mask(40, 50, 5, 5, 10, 10), box_mask(40, 50, 20, 20, 10, 10)]
    second_masks = [box_mask(30, 20, 2, 2, 8, 8)]
    batch = processor([first, second], visible_masks=[first_masks, second_masks])
    singles = [processor(first, visible_masks=first_masks), processor(second, visible_masks=second_masks)]
    assert batch["image_indices"].tolist() == [0, 0, 1]
    assert batch["original_sizes"].tolist() == [[40, 50], [30, 20]]
    for key in ("pixel_values", "visible_masks", "crop_boxes"):
        assert torch.equal(batch[key], torch.cat([single[key] for single in singles]))
    assert [masks.shape for masks in batch["original_visible_masks"]] == [(2, 40, 50), (1, 30, 20)]
    labelled = processor([first, second], label_map=[2 * first_masks[0], 5 * second_masks[0]])
    assert labelled["labels"].tolist() == [2, 5]


def test_return_tensors_np_gives_numpy_arrays():
    processor = C2FSegImageProcessor(crop_resolution=32)
    image, mask = np.zeros((40, 50, 3), np.uint8), box_mask(40, 50, 5, 5, 10, 10)
    single = processor(image, visible_masks=[mask], return_tensors="np")
    arrays = [item for value in single.values() for item in (value if isinstance(value, list) else [value])]
    assert all(isinstance(value, np.ndarray) for value in arrays)
    assert single["pixel_values"].shape == (1, 3, 32, 32)
    batch = processor([image, image], visible_masks=[[mask], [mask]], return_tensors="np")
    assert isinstance(batch["original_visible_masks"][1], np.ndarray)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, image, mask: p([image, image], visible_masks=[[mask]]), "with 2 images, expected one entry per"),
        (lambda p, image, mask: p([image, image[:10]], visible_masks=[[mask], [mask]]), r"images\[1\]: visible_masks"),
        (lambda p, image, mask: p([], visible_masks=[]), "images: the list is empty"),
        (lambda p, image, mask: p(image, visible_masks=[mask], return_tensors="tf"), "return_tensors: expected"),
    ],
)
def test_bad_batches_are_named(call, message):
    image, mask = np.zeros((40, 50, 3), np.uint8), box_mask(40, 50, 5, 5, 10, 10)
    with pytest.raises(ValueError, match=message):
        call(C2FSegImageProcessor(crop_resolution=32), image, mask)


def test_one_image_and_a_batch_share_one_output_layout():
    processor = C2FSegImageProcessor(crop_resolution=32)
    image, mask = np.zeros((40, 50, 3), np.uint8), box_mask(40, 50, 5, 5, 10, 10)
    single = processor(image, visible_masks=[mask])
    batch = processor([image], visible_masks=[[mask]])
    assert set(single) == set(batch)
    for key in ("pixel_values", "visible_masks", "crop_boxes", "image_indices", "original_sizes"):
        assert torch.equal(single[key], batch[key]), key
    assert torch.equal(single["original_visible_masks"][0], batch["original_visible_masks"][0])


def test_post_processing_a_batch_of_images_gives_each_image_its_objects():
    processor = C2FSegImageProcessor(crop_resolution=32)
    first, second = np.zeros((40, 50, 3), np.uint8), np.zeros((30, 20, 3), np.uint8)
    first_masks = [box_mask(40, 50, 5, 5, 10, 10), box_mask(40, 50, 20, 20, 10, 10)]
    second_masks = [box_mask(30, 20, 2, 2, 8, 8)]
    batch = processor([first, second], visible_masks=[first_masks, second_masks])
    probabilities = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    outputs = {name: probabilities for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks")}
    outputs["scores"] = torch.tensor([0.1, 0.2, 0.3])
    args = (batch["crop_boxes"], batch["original_sizes"], batch["original_visible_masks"], batch["image_indices"])
    results = processor.post_process_objects(outputs, *args)
    assert [len(objects) for objects in results] == [2, 1]
    assert [result["amodal_mask"].shape for result in results[1]] == [(30, 20)]
    assert [result["score"] for objects in results for result in objects] == pytest.approx([0.1, 0.2, 0.3])
    second_alone = processor(second, visible_masks=second_masks)
    single_outputs = {name: value[2:] for name, value in outputs.items()}
    ((expected,),) = processor.post_process_objects(
        single_outputs,
        second_alone["crop_boxes"],
        second_alone["original_sizes"],
        second_alone["original_visible_masks"],
    )
    assert np.array_equal(results[1][0]["amodal_mask"], expected["amodal_mask"])


def test_every_setting_is_honoured_per_call():
    processor = C2FSegImageProcessor(crop_resolution=32)
    image, mask = np.full((40, 50, 3), 128, np.uint8), box_mask(40, 50, 10, 10, 10, 10)
    soft = mask.astype(np.float32) * 0.3
    with pytest.raises(ValueError, match="is empty"):
        processor(image, visible_masks=[soft])
    assert processor(image, visible_masks=[soft], visible_mask_threshold=0.25)["visible_masks"].sum() > 0
    assert processor(image, visible_masks=[mask], crop_resolution=16)["pixel_values"].shape == (1, 3, 16, 16)
    assert processor(image, visible_masks=[mask], enlarge_ratio=3.0)["crop_boxes"].tolist() == [[0, 0, 31, 31]]
    normalised = processor(image, visible_masks=[mask], do_normalize=True, image_mean=[0.5] * 3, image_std=[0.25] * 3)
    torch.testing.assert_close(normalised["pixel_values"], torch.full((1, 3, 32, 32), (128 / 255 - 0.5) / 0.25))
    with pytest.warns(UserWarning, match="min_crop_size=64"):
        processor(image, visible_masks=[mask], min_crop_size=64)
    assert processor.visible_mask_threshold == 0.5 and processor.crop_resolution == 32


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 64}, "size: not an option here"),
        ({"mask_threshold": 0.5}, "mask_threshold: not an option here"),
        ({"crop_resolution": 0}, "crop_resolution: expected a positive integer"),
        ({"enlarge_ratio": float("nan")}, "enlarge_ratio: expected a positive number"),
        ({"visible_mask_threshold": 1.5}, r"visible_mask_threshold: expected a number in \[0, 1\]"),
        ({"min_crop_size": -1}, "min_crop_size: expected a non-negative integer"),
        ({"do_normalize": "yes"}, "do_normalize: expected True or False"),
        ({"image_std": [0.2, 0.0, 0.2]}, "image_std: expected three positive numbers"),
        ({"image_mean": [0.5, 0.5]}, "image_mean: expected three numbers"),
    ],
)
def test_a_bad_option_of_a_call_is_named(options, message):
    image, mask = np.zeros((40, 50, 3), np.uint8), box_mask(40, 50, 5, 5, 10, 10)
    with pytest.raises(ValueError, match=message):
        C2FSegImageProcessor(crop_resolution=32)(image, visible_masks=[mask], **options)


def test_a_saved_processor_with_a_bad_setting_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"mask_threshold: expected a number in \[0, 1\]"):
        C2FSegImageProcessor(mask_threshold=2.0)
    C2FSegImageProcessor(crop_resolution=32).save_pretrained(tmp_path)
    saved = tmp_path / "preprocessor_config.json"
    saved.write_text(saved.read_text().replace('"crop_resolution": 32', '"crop_resolution": -4'))
    with pytest.raises(ValueError, match="crop_resolution: expected a positive integer"):
        C2FSegImageProcessor.from_pretrained(tmp_path)


def test_an_image_with_many_objects_warns_with_the_memory_estimate():
    from c2f_hf.models.c2f_seg.image_processing_c2f_seg import MANY_OBJECTS

    processor = C2FSegImageProcessor(crop_resolution=16, min_crop_size=1)
    label_map = np.repeat(np.arange(1, MANY_OBJECTS + 2, dtype=np.int64)[None], 4, axis=0)
    with pytest.warns(UserWarning, match=rf"image: has {MANY_OBJECTS + 1} objects \(more than {MANY_OBJECTS}\)"):
        crops = processor(np.zeros((4, MANY_OBJECTS + 1, 3), dtype=np.uint8), label_map=label_map)
    assert crops["pixel_values"].shape[0] == MANY_OBJECTS + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        processor(np.zeros((4, MANY_OBJECTS, 3), dtype=np.uint8), label_map=label_map[:, :MANY_OBJECTS])


def test_post_process_objects_restricts_hidden_parts_to_the_other_objects():
    processor = C2FSegImageProcessor(crop_resolution=32)
    visible = [box_mask(40, 50, 10, 10, 10, 10), box_mask(40, 50, 20, 10, 10, 30)]  # the second below the first
    crops = processor(np.zeros((40, 50, 3), np.uint8), visible_masks=visible)
    outputs = {
        "amodal_masks": torch.ones(2, 1, 32, 32),  # each prediction covers its whole crop box
        "pred_visible_masks": torch.zeros(2, 1, 32, 32),
        "coarse_amodal_masks": torch.ones(2, 1, 32, 32),
        "scores": torch.tensor([0.5, 0.5]),
    }
    args = (outputs, crops["crop_boxes"], crops["original_sizes"], crops["original_visible_masks"])
    (raw,) = processor.post_process_objects(*args, return_coarse=True)
    (restricted,) = processor.post_process_objects(*args, return_coarse=True, restrict_to_occluders=True)
    (both,) = processor.post_process_objects(*args, union_with_visible=True, restrict_to_occluders=True)
    for index, (plain, result) in enumerate(zip(raw, restricted)):
        other = visible[1 - index]
        assert np.array_equal(result["amodal_mask"], visible[index] | (plain["amodal_mask"] & other))
        assert np.array_equal(result["occluded_mask"], plain["amodal_mask"] & other & ~visible[index])
        assert np.array_equal(result["coarse_amodal_mask"], plain["coarse_amodal_mask"])
        assert np.array_equal(both[index]["amodal_mask"], result["amodal_mask"])
    # Explicit occluder regions replace the other objects' masks.
    empty = [np.zeros((2, 40, 50), dtype=bool)]
    (alone,) = processor.post_process_objects(*args, restrict_to_occluders=True, occluder_masks=empty)
    assert all(np.array_equal(result["amodal_mask"], mask) for result, mask in zip(alone, visible))
    with pytest.raises(ValueError, match=r"occluder_masks\[0\]: expected one mask per object"):
        processor.post_process_objects(*args, restrict_to_occluders=True, occluder_masks=[empty[0][:1]])
