import base64
import functools
import http.server
import textwrap
import threading

import numpy as np
import PIL.Image
import pytest
from transformers import BertConfig, BertModel, pipeline

from c2f_hf import AmodalSegmentationPipeline, C2FSegImageProcessor
from c2f_hf.checkpoints import default_model_path
from c2f_hf.hub.export import marked_for_remote_code
from c2f_testing import TINY_IMAGE_SIZE, run_without_package, save_tiny_model


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def segmenter(model_folder):
    return pipeline("amodal-segmentation", model=str(model_folder), trust_remote_code=False)


def scene(height=90, width=110, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    masks = []
    for top, left, box_height, box_width in ((5, 5, 20, 30), (40, 50, 30, 20), (60, 10, 15, 15)):
        mask = np.zeros((height, width), dtype=bool)
        mask[top : top + box_height, left : left + box_width] = True
        masks.append(mask)
    return image, masks


def as_arrays(result):
    return {key: np.asarray(value) if isinstance(value, PIL.Image.Image) else value for key, value in result.items()}


def assert_same_objects(first, second):
    assert len(first) == len(second)
    for one, other in zip(first, second):
        one, other = as_arrays(one), as_arrays(other)
        assert one.keys() == other.keys()
        for key in one:
            if isinstance(one[key], np.ndarray):
                assert np.array_equal(one[key], other[key]), key
            elif isinstance(one[key], float):
                assert one[key] == pytest.approx(other[key], abs=1e-5), key
            else:
                assert one[key] == other[key], key


def test_pipeline_class_and_processor(segmenter):
    assert isinstance(segmenter, AmodalSegmentationPipeline)
    assert isinstance(segmenter.image_processor, C2FSegImageProcessor)


def test_output_fields_types_and_sizes(segmenter):
    image, masks = scene()
    objects = segmenter(image, visible_masks=masks[:2], seed=0, return_coarse=True)
    assert len(objects) == 2
    for result, visible in zip(objects, masks):
        assert set(result) == {
            "label",
            "score",
            "mask",
            "amodal_mask",
            "visible_mask",
            "detection_score",
            "pred_visible_mask",
            "occluded_mask",
            "bbox",
            "occlusion_rate",
            "coarse_amodal_mask",
        }
        assert result["mask"] is result["amodal_mask"] and result["detection_score"] is None
        assert np.array_equal(np.asarray(result["visible_mask"]) > 0, visible)
        for key in ("amodal_mask", "visible_mask", "pred_visible_mask", "occluded_mask", "coarse_amodal_mask"):
            assert isinstance(result[key], PIL.Image.Image) and result[key].mode == "L"
            assert result[key].size == (110, 90)
            assert set(np.unique(np.asarray(result[key]))) <= {0, 255}
        amodal, occluded = np.asarray(result["amodal_mask"]) > 0, np.asarray(result["occluded_mask"]) > 0
        assert not (occluded & visible).any()
        assert np.array_equal(occluded, amodal & ~visible)
        expected_rate = occluded.sum() / amodal.sum() if amodal.any() else 0.0
        assert result["occlusion_rate"] == pytest.approx(expected_rate)
        assert 0.0 < result["score"] <= 1.0
        if amodal.any():
            x, y, width, height = result["bbox"]
            rows, columns = np.nonzero(amodal)
            assert (x, y, width, height) == (
                columns.min(),
                rows.min(),
                columns.max() - columns.min() + 1,
                rows.max() - rows.min() + 1,
            )


def test_several_images_batched_equal_per_object_calls(segmenter):
    first_image, first_masks = scene(seed=1)
    second_image, second_masks = scene(seed=2)
    batched = segmenter(
        [
            {"image": first_image, "visible_masks": first_masks[:1]},
            {"image": second_image, "visible_masks": second_masks},
        ],
        batch_size=4,
        greedy=True,
    )
    assert [len(objects) for objects in batched] == [1, 3]
    singles = [segmenter(first_image, visible_masks=[first_masks[0]], greedy=True)] + [
        segmenter(second_image, visible_masks=[mask], greedy=True) for mask in second_masks
    ]
    assert_same_objects(batched[0], singles[0])
    assert_same_objects(batched[1], [single[0] for single in singles[1:]])


def test_seeded_calls_are_reproducible(segmenter):
    image, masks = scene()
    assert_same_objects(segmenter(image, visible_masks=masks, seed=3), segmenter(image, visible_masks=masks, seed=3))


def test_seeded_sampling_does_not_depend_on_the_batch_size_nor_on_the_other_objects(segmenter):
    image, masks = scene()
    one_at_a_time = segmenter(image, visible_masks=masks, seed=3, batch_size=1)
    assert_same_objects(segmenter(image, visible_masks=masks, seed=3, batch_size=3), one_at_a_time)
    reversed_call = segmenter(image, visible_masks=masks[::-1], seed=3, batch_size=2)
    assert_same_objects(reversed_call[::-1], one_at_a_time)
    assert_same_objects(segmenter(image, visible_masks=masks[2:], seed=3), one_at_a_time[2:])
    other_seed = segmenter(image, visible_masks=masks, seed=4, batch_size=3)
    assert any(
        not np.array_equal(np.asarray(first["mask"]), np.asarray(second["mask"]))
        or first["score"] != pytest.approx(second["score"], abs=1e-6)
        for first, second in zip(one_at_a_time, other_seed)
    )


def test_union_with_visible_contains_the_input_mask(segmenter):
    image, masks = scene()
    objects = segmenter(image, visible_masks=masks, greedy=True, union_with_visible=True)
    for result, visible in zip(objects, masks):
        assert (np.asarray(result["amodal_mask"])[visible] == 255).all()


def touching_scene():
    """Three objects, the first two side by side so each lies in the other's crop box."""
    image, masks = scene()
    left, right = np.zeros_like(masks[0]), np.zeros_like(masks[0])
    left[30:50, 20:40] = True
    right[30:50, 40:60] = True
    return image, [left, right, masks[2] & ~left]


def test_restrict_to_occluders_keeps_hidden_parts_only_on_other_objects(segmenter):
    image, masks = touching_scene()
    others = [np.logical_or.reduce([mask for other, mask in enumerate(masks) if other != index]) for index in range(3)]
    # mask_threshold 0 predicts every pixel: what remains is exactly the visible mask and the other objects.
    everything = segmenter(image, visible_masks=masks, greedy=True, mask_threshold=0.0, restrict_to_occluders=True)
    for result, visible, other in zip(everything, masks, others):
        assert np.array_equal(np.asarray(result["amodal_mask"]) > 0, visible | other)
        assert np.array_equal(np.asarray(result["occluded_mask"]) > 0, other & ~visible)
    raw = segmenter(image, visible_masks=masks, greedy=True, return_coarse=True)
    restricted = segmenter(image, visible_masks=masks, greedy=True, return_coarse=True, restrict_to_occluders=True)
    united = segmenter(image, visible_masks=masks, greedy=True, union_with_visible=True, restrict_to_occluders=True)
    label_map = sum((index + 1) * mask.astype(np.int64) for index, mask in enumerate(masks))
    from_map = segmenter(image, label_map=label_map, greedy=True, return_coarse=True, restrict_to_occluders=True)
    for plain, result, both, mapped, visible, other in zip(raw, restricted, united, from_map, masks, others):
        amodal = np.asarray(result["amodal_mask"]) > 0
        assert np.array_equal(amodal, visible | ((np.asarray(plain["amodal_mask"]) > 0) & other))
        assert np.array_equal(np.asarray(both["amodal_mask"]), np.asarray(result["amodal_mask"]))
        assert np.array_equal(np.asarray(mapped["amodal_mask"]), np.asarray(result["amodal_mask"]))
        for key in ("coarse_amodal_mask", "pred_visible_mask"):  # only the amodal mask is restricted
            assert np.array_equal(np.asarray(result[key]), np.asarray(plain[key]))


def test_mask_threshold_one_gives_empty_masks(segmenter):
    image, masks = scene()
    result = segmenter(image, visible_masks=masks[:1], greedy=True, mask_threshold=1.0)[0]
    assert not np.asarray(result["amodal_mask"]).any()
    assert result["bbox"] is None and result["occlusion_rate"] == 0.0


def test_the_prediction_threshold_has_one_name(segmenter):
    image, masks = scene()
    with pytest.raises(TypeError, match="threshold"):
        segmenter(image, visible_masks=masks[:1], greedy=True, threshold=0.3)
    with pytest.raises(ValueError, match="mask_threshold: expected a probability"):
        segmenter(image, visible_masks=masks[:1], mask_threshold=1.5)


def test_the_saved_processors_thresholds_are_used(segmenter, tmp_path):
    image, masks = scene()
    expected = segmenter(image, visible_masks=masks[:1], greedy=True, mask_threshold=0.2)[0]
    segmenter.model.save_pretrained(tmp_path)
    C2FSegImageProcessor(crop_resolution=segmenter.image_processor.crop_resolution, mask_threshold=0.2).save_pretrained(
        tmp_path
    )
    reloaded = pipeline("amodal-segmentation", model=str(tmp_path), trust_remote_code=False)
    result = reloaded(image, visible_masks=masks[:1], greedy=True)[0]
    assert np.array_equal(np.asarray(result["amodal_mask"]), np.asarray(expected["amodal_mask"]))


def test_a_saved_second_crop_is_used_and_does_not_depend_on_batching(segmenter, tmp_path):
    image, masks = scene()
    segmenter.model.save_pretrained(tmp_path)
    size = segmenter.image_processor.crop_resolution
    C2FSegImageProcessor(crop_resolution=size, mask_threshold=0.3, second_crop_ratio=1.5).save_pretrained(tmp_path)
    twice = pipeline("amodal-segmentation", model=str(tmp_path), trust_remote_code=False)
    one_at_a_time = twice(image, visible_masks=masks, seed=3, batch_size=1)
    assert_same_objects(twice(image, visible_masks=masks, seed=3, batch_size=3), one_at_a_time)
    assert_same_objects(twice(image, visible_masks=masks[::-1], seed=3, batch_size=2)[::-1], one_at_a_time)
    once = segmenter(image, visible_masks=masks, seed=3, mask_threshold=0.3)
    assert any(
        not np.array_equal(np.asarray(first["mask"]), np.asarray(second["mask"]))
        for first, second in zip(one_at_a_time, once)
    )


def test_border_and_one_pixel_objects_work(segmenter):
    image = np.zeros((50, 60, 3), dtype=np.uint8)
    border = np.zeros((50, 60), dtype=bool)
    border[40:, 50:] = True
    pixel = np.zeros((50, 60), dtype=bool)
    pixel[0, 0] = True
    with pytest.warns(UserWarning, match=r"visible_masks\[1\]: the object is only 1x1 px, so its crop is 2x2 px"):
        objects = segmenter(image, visible_masks=[border, pixel], greedy=True, mask_threshold=1.0)
    assert len(objects) == 2 and all(result["amodal_mask"].size == (60, 50) for result in objects)
    # mask_threshold=1.0 predicts nothing: the tiny object keeps its visible pixel, the 10x10 one does not
    assert np.asarray(objects[1]["amodal_mask"])[0, 0] == 255 and np.asarray(objects[1]["amodal_mask"]).sum() == 255
    assert not np.asarray(objects[0]["amodal_mask"]).any()


def test_label_map_and_path_inputs(segmenter, tmp_path):
    image, masks = scene()
    PIL.Image.fromarray(image).save(tmp_path / "scene.png")
    label_map = sum((index + 1) * mask.astype(np.int32) for index, mask in enumerate(masks))
    from_map = segmenter(str(tmp_path / "scene.png"), label_map=label_map, greedy=True)
    from_list = segmenter(image, visible_masks=masks, greedy=True)
    assert [result.pop("label") for result in from_map] == [1, 2, 3]
    assert [result.pop("label") for result in from_list] == [None, None, None]
    assert_same_objects(from_map, from_list)


def test_label_map_results_carry_the_labels_they_came_from(segmenter):
    image, masks = scene()
    label_map = 7 * masks[0].astype(np.int64) + 42 * masks[2].astype(np.int64)
    objects = segmenter(image, label_map=label_map, greedy=True, union_with_visible=True)
    assert [result["label"] for result in objects] == [7, 42]
    assert (np.asarray(objects[1]["amodal_mask"])[masks[2]] == 255).all()


@pytest.mark.parametrize(
    ("label_map", "message"),
    [
        (np.where(scene()[1][0], -1, 0), r"label_map: has negative labels \[-1\]"),
        (scene()[1][0], "expected integer labels, got dtype bool"),
        (scene()[1][0].astype(np.float32), "expected integer labels, got dtype float32"),
        (np.zeros((90, 110), np.int32), "has no positive label"),
    ],
)
def test_bad_label_maps_are_refused(segmenter, label_map, message):
    with pytest.raises(ValueError, match=message):
        segmenter(scene()[0], label_map=label_map)


@pytest.mark.parametrize(
    ("image", "masks", "message"),
    [
        (np.zeros((40, 50, 3), np.uint8), [np.zeros((40, 50), bool)], "is empty"),
        (np.zeros((40, 50, 3), np.uint8), [np.ones((30, 50), bool)], "has shape"),
        (np.zeros((40, 50, 3), np.uint8), [np.full((40, 50), 2.0, np.float32)], "must lie in"),
        (np.zeros((40, 50, 3), np.uint8), [], "zero masks"),
        (np.zeros((40, 0, 3), np.uint8), [np.ones((40, 0), bool)], "zero height or width"),
        (np.full((40, 50, 3), np.nan, np.float32), [np.ones((40, 50), bool)], "NaN"),
    ],
)
def test_bad_input_gets_a_clear_error(segmenter, image, masks, message):
    with pytest.raises(ValueError, match=message):
        segmenter(image, visible_masks=masks)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"num_steps": 0}, "num_steps: expected a positive integer number of decoding steps, got 0"),
        ({"num_steps": -1}, "num_steps: expected a positive integer number of decoding steps, got -1"),
        ({"num_steps": True}, "num_steps: expected a positive integer number of decoding steps, got True"),
        ({"num_steps": 2.0}, "num_steps: expected a positive integer number of decoding steps, got 2.0"),
        ({"seed": True}, "seed: expected an integer, got True"),
        ({"seed": "0"}, "seed: expected an integer, got '0'"),
        ({"greedy": "yes"}, "greedy: expected True or False, got 'yes'"),
        ({"union_with_visible": 1}, "union_with_visible: expected True or False, got 1"),
        ({"return_coarse": "no"}, "return_coarse: expected True or False, got 'no'"),
        ({"restrict_to_occluders": "yes"}, "restrict_to_occluders: expected True or False, got 'yes'"),
        ({"restrict_to_occluders": 0}, "restrict_to_occluders: expected True or False, got 0"),
        ({"mask_threshold": 1.5}, r"mask_threshold: expected a probability in \[0, 1\], got 1.5"),
        ({"mask_threshold": "0.5"}, "mask_threshold: expected a number, got '0.5'"),
        ({"mask_threshold": True}, "mask_threshold: expected a number, got True"),
    ],
)
def test_bad_parameters_get_a_clear_error(segmenter, parameters, message):
    image, masks = scene()
    with pytest.raises(ValueError, match=message):
        segmenter(image, visible_masks=masks, **parameters)


def test_input_dicts_need_an_image_and_input_lists_an_item(segmenter):
    image, masks = scene()
    with pytest.raises(ValueError, match="'image' key"):
        segmenter([{"picture": image, "visible_masks": masks}])
    with pytest.raises(ValueError, match="inputs: the list is empty"):
        segmenter([])


def test_a_folder_without_a_processor_gets_a_default_one_with_a_warning(tmp_path, caplog):
    folder = save_tiny_model(tmp_path / "model")
    (folder / "preprocessor_config.json").unlink()
    with caplog.at_level("WARNING", logger="c2f_hf.models.c2f_seg.image_processing_c2f_seg"):
        segmenter = pipeline("amodal-segmentation", model=str(folder))
    assert "has no preprocessor_config.json" in caplog.text and str(folder) in caplog.text
    assert segmenter.image_processor.crop_resolution == TINY_IMAGE_SIZE
    image, masks = scene()
    assert len(segmenter(image, visible_masks=masks, greedy=True)) == 3


def test_a_processor_of_another_crop_size_is_refused_at_construction(tmp_path):
    folder = save_tiny_model(tmp_path / "model")
    C2FSegImageProcessor(crop_resolution=2 * TINY_IMAGE_SIZE).save_pretrained(folder)
    with pytest.raises(ValueError, match=rf"crop_resolution={2 * TINY_IMAGE_SIZE}, but the model takes image_size="):
        pipeline("amodal-segmentation", model=str(folder))


def test_a_folder_that_is_not_a_c2f_seg_model_is_refused_at_construction(tmp_path):
    folder = tmp_path / "bert"
    BertModel(
        BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    ).save_pretrained(folder)
    C2FSegImageProcessor().save_pretrained(folder)
    with pytest.raises(ValueError, match=r"bert: is a BertModel \(model_type 'bert'\); the amodal-segmentation"):
        pipeline("amodal-segmentation", model=str(folder))


def test_saved_pipeline_runs_with_remote_code_without_the_package(segmenter, tmp_path):
    image, masks = scene()
    expected = segmenter(image, visible_masks=masks, greedy=True)
    with marked_for_remote_code():  # as `c2f-hf export` saves: plain folders name no remote code
        segmenter.save_pretrained(tmp_path / "pipe")
    np.savez(tmp_path / "inputs.npz", image=image, masks=np.stack(masks))
    script = textwrap.dedent(
        f"""
        import numpy as np
        from transformers import BertConfig, BertModel, pipeline
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        pipe = pipeline("amodal-segmentation", model={str(tmp_path / "pipe")!r}, trust_remote_code=True)
        assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
        objects = pipe(inputs["image"], visible_masks=list(inputs["masks"]), greedy=True)
        np.savez({str(tmp_path / "out.npz")!r}, *[np.asarray(o["amodal_mask"]) for o in objects],
                 scores=np.array([o["score"] for o in objects]))
        """
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    for index, expected_object in enumerate(expected):
        assert np.array_equal(outputs[f"arr_{index}"], np.asarray(expected_object["amodal_mask"]))
    assert np.allclose(outputs["scores"], [o["score"] for o in expected], atol=1e-6)


@pytest.fixture
def served_folder(tmp_path):
    """`tmp_path` served over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_urls_and_data_uris_load_like_the_image_itself(segmenter, served_folder, tmp_path):
    image, masks = scene()
    PIL.Image.fromarray(image).save(tmp_path / "scene.png")
    encoded = base64.b64encode((tmp_path / "scene.png").read_bytes()).decode()
    expected = segmenter(image, visible_masks=masks, greedy=True)
    from_url = segmenter(f"{served_folder}/scene.png", visible_masks=masks, greedy=True, timeout=10)
    from_uri = segmenter(f"data:image/png;base64,{encoded}", visible_masks=masks, greedy=True)
    assert_same_objects(from_url, expected)
    assert_same_objects(from_uri, expected)
    with pytest.raises(ValueError, match=rf"image: could not read '{served_folder}/missing.png'"):
        segmenter(f"{served_folder}/missing.png", visible_masks=masks)
    with pytest.raises(ValueError, match="timeout: expected a number, got '10'"):
        segmenter(image, visible_masks=masks, timeout="10")


def test_the_task_alone_loads_the_shipped_default_model():
    segmenter = pipeline("amodal-segmentation")
    assert isinstance(segmenter, AmodalSegmentationPipeline)
    assert segmenter.model.name_or_path == str(default_model_path())
