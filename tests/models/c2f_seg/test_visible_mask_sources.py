"""Visible masks from SAM prompts, from a segmentation model and from `pipeline("image-segmentation")` output,
with tiny randomly initialised transformers models saved by the tests."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import SamModel, SamProcessor, pipeline

from c2f_testing import save_tiny_mask2former, save_tiny_model, save_tiny_sam, save_tiny_sam2

HEIGHT, WIDTH = 90, 110


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {
        "c2f": save_tiny_model(root / "c2f"),
        "sam": save_tiny_sam(root / "sam"),
        "mask2former": save_tiny_mask2former(root / "mask2former"),
    }


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sam_segmenter(folders):
    return pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=str(folders["sam"]))


@pytest.fixture(scope="module")
def auto_segmenter(folders):
    return pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=str(folders["mask2former"]))


def sam_best_masks(folder, image, **prompts):
    """SAM's best-IoU mask and IoU per prompt, computed directly with transformers."""
    model, processor = SamModel.from_pretrained(folder).eval(), SamProcessor.from_pretrained(folder)
    inputs = processor(images=PIL.Image.fromarray(image), return_tensors="pt", **prompts)
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=True)
    masks = processor.image_processor.post_process_masks(
        outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0]
    scores, best = outputs.iou_scores[0].max(dim=-1)
    return [masks[index, choice].numpy() for index, choice in enumerate(best.tolist())], scores.tolist()


def test_sam_boxes_give_one_completed_object_per_box(sam_segmenter, folders, image):
    boxes = [[10, 10, 50, 60], [40, 30, 100, 85]]
    objects = sam_segmenter(image, input_boxes=boxes, greedy=True)
    expected_masks, expected_scores = sam_best_masks(folders["sam"], image, input_boxes=[boxes])
    assert len(objects) == 2
    for result, mask, score in zip(objects, expected_masks, expected_scores):
        assert np.array_equal(np.asarray(result["visible_mask"]) > 0, mask)
        assert result["detection_score"] == pytest.approx(score, abs=1e-5) and result["label"] is None
        assert result["mask"].size == (WIDTH, HEIGHT) and result["amodal_mask"].size == (WIDTH, HEIGHT)
        occluded = np.asarray(result["occluded_mask"]) > 0
        assert not (occluded & mask).any()


def test_sam_points_with_labels_give_one_object_per_point_list(sam_segmenter, folders, image):
    points, labels = [[[20, 20], [30, 35]], [[80, 60]]], [[1, 0], [1]]
    objects = sam_segmenter(image, input_points=points, input_labels=labels, greedy=True)
    padded_points, padded_labels = [[[20, 20], [30, 35]], [[80, 60], [-10, -10]]], [[1, 0], [1, -10]]
    expected, _ = sam_best_masks(folders["sam"], image, input_points=[padded_points], input_labels=[padded_labels])
    assert len(objects) == 2
    for result, mask in zip(objects, expected):
        assert np.array_equal(np.asarray(result["visible_mask"]) > 0, mask)


def test_prompts_in_input_dicts_batch_several_images(sam_segmenter, image):
    first = sam_segmenter(image, input_boxes=[[10, 10, 50, 60]], greedy=True)
    batched = sam_segmenter(
        [{"image": image, "input_boxes": [[10, 10, 50, 60]]}, {"image": image[:60], "input_points": [[[5, 5]]]}],
        greedy=True,
        batch_size=2,
    )
    assert [len(objects) for objects in batched] == [1, 1]
    assert np.array_equal(np.asarray(batched[0][0]["visible_mask"]), np.asarray(first[0]["visible_mask"]))
    assert batched[1][0]["mask"].size == (WIDTH, 60)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"input_boxes": [[10, 10, 200, 60]]}, r"input_boxes\[0\]: \[10, 10, 200, 60\] is not a box inside the 110x90"),
        ({"input_boxes": [[50, 10, 10, 60]]}, r"input_boxes\[0\]: .* \(need 0 <= x0 < x1"),
        ({"input_boxes": [[1, 2, 3]]}, r"input_boxes\[0\]: expected \[x0, y0, x1, y1\]"),
        ({"input_boxes": []}, "input_boxes: expected a non-empty list"),
        ({"input_points": []}, "input_points: expected a non-empty list"),
        ({"input_points": [[[500, 5]]]}, r"input_points\[0\]\[0\]: \[500, 5\] is outside the 110x90 image"),
        ({"input_points": [[[5, 5], [6, 6]]], "input_labels": [[1]]}, r"input_labels\[0\]: expected 2 labels"),
        ({"input_points": [[[5, 5]]], "input_labels": [[1], [1]]}, "input_labels: expected one list of labels per"),
        ({"input_points": [[[5, 5]]], "input_labels": [[3]]}, r"input_labels\[0\]\[0\]: expected 1 \(object\) or 0"),
        ({"input_labels": [[1]]}, "input_labels: given without input_points"),
        (
            {"input_boxes": [[1, 1, 9, 9]], "input_points": [[[5, 5]], [[6, 6]]]},
            "give one of each per object, got 1 boxes and 2 point lists",
        ),
        ({}, "a promptable visible_mask_model needs prompts"),
    ],
)
def test_bad_prompts_are_named(sam_segmenter, image, prompts, message):
    with pytest.raises(ValueError, match=message):
        sam_segmenter(image, **prompts)


def test_prompts_without_a_promptable_model_are_refused(folders, auto_segmenter, image):
    plain = pipeline("amodal-segmentation", model=str(folders["c2f"]))
    with pytest.raises(ValueError, match="input_boxes: prompts need a promptable visible_mask_model"):
        plain(image, input_boxes=[[1, 1, 9, 9]])
    with pytest.raises(ValueError, match="give visible_masks .* or build the pipeline with a visible_mask_model"):
        plain(image)
    with pytest.raises(ValueError, match="input_points: this visible_mask_model is a segmentation model"):
        auto_segmenter(image, input_points=[[[5, 5]]])
    with pytest.raises(ValueError, match="give either prompts .* or visible_masks"):
        plain(image, visible_masks=[np.ones((HEIGHT, WIDTH), bool)], input_boxes=[[1, 1, 9, 9]])


def test_a_segmentation_model_completes_every_detection_with_its_label_and_score(folders, auto_segmenter, image):
    detector = pipeline("image-segmentation", model=str(folders["mask2former"]))
    detections = [
        item
        for item in detector(PIL.Image.fromarray(image), subtask="instance", threshold=0.0)
        if np.asarray(item["mask"]).any()
    ]
    objects = auto_segmenter(image, detection_threshold=0.0, greedy=True)
    assert len(objects) == len(detections) > 0
    for result, detection in zip(objects, detections):
        assert result["label"] == detection["label"] and result["label"] in {"cat", "dog", "car"}
        assert result["detection_score"] == pytest.approx(detection["score"], abs=1e-6)
        assert np.array_equal(np.asarray(result["visible_mask"]) > 0, np.asarray(detection["mask"]) > 0)
    with pytest.raises(ValueError, match="found no object scoring at least detection_threshold=1.0"):
        auto_segmenter(image, detection_threshold=1.0)


def test_image_segmentation_output_is_accepted_as_visible_masks(folders, image):
    detector = pipeline("image-segmentation", model=str(folders["mask2former"]))
    segments = [
        item
        for item in detector(PIL.Image.fromarray(image), subtask="instance", threshold=0.0)
        if np.asarray(item["mask"]).any()
    ]
    segmenter = pipeline("amodal-segmentation", model=str(folders["c2f"]))
    objects = segmenter(image, visible_masks=segments, greedy=True)
    plain = segmenter(image, visible_masks=[np.asarray(item["mask"]) > 0 for item in segments], greedy=True)
    assert [result["label"] for result in objects] == [item["label"] for item in segments]
    assert [result["detection_score"] for result in objects] == pytest.approx([item["score"] for item in segments])
    for result, reference in zip(objects, plain):
        assert np.array_equal(np.asarray(result["mask"]), np.asarray(reference["mask"]))
    with pytest.raises(ValueError, match=r"visible_masks\[0\]: a segment dict needs a 'mask' key"):
        segmenter(image, visible_masks=[{"label": "cat"}])


def test_a_loaded_sam_model_needs_its_processor_when_it_has_no_folder(folders, image):
    model = SamModel(SamModel.from_pretrained(folders["sam"]).config)
    model.name_or_path = ""
    with pytest.raises(ValueError, match="visible_mask_processor: needed with a model object"):
        pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=model)
    segmenter = pipeline(
        "amodal-segmentation",
        model=str(folders["c2f"]),
        visible_mask_model=model,
        visible_mask_processor=SamProcessor.from_pretrained(folders["sam"]),
    )
    assert len(segmenter(image, input_boxes=[[10, 10, 50, 60]], greedy=True)) == 1


@pytest.fixture(scope="module")
def plain_segmenter(tmp_path_factory):
    return pipeline(
        "amodal-segmentation",
        model=str(save_tiny_model(tmp_path_factory.mktemp("plain") / "c2f")),
        trust_remote_code=False,
    )


def object_probabilities() -> np.ndarray:
    """A `(HEIGHT, WIDTH)` float probability map: 0.9 on a rectangle, 0.01 elsewhere."""
    probabilities = np.full((HEIGHT, WIDTH), 0.01, dtype=np.float32)
    probabilities[20:50, 30:70] = 0.9
    return probabilities


def test_a_probability_map_in_a_segment_dict_is_thresholded_like_a_plain_mask(plain_segmenter, image):
    (result,) = plain_segmenter(image, visible_masks=[{"mask": object_probabilities(), "label": "box"}], greedy=True)
    assert np.array_equal(np.asarray(result["visible_mask"]) > 0, object_probabilities() >= 0.5)
    assert result["label"] == "box"


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32), "NaN"),
        (np.where(object_probabilities() > 0.5, 7, 0).astype(np.uint8), r"\{0, 1\} or \{0, 255\}"),
        (np.where(object_probabilities() > 0.5, 4.0, -4.0).astype(np.float32), r"must lie in \[0, 1\]"),
        (PIL.Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255)), "single-channel"),
        (np.ones((HEIGHT + 1, WIDTH), dtype=bool), "has shape"),
        (np.zeros((HEIGHT, WIDTH), dtype=bool), "is empty"),
        (None, "expected a PIL image, numpy array or torch tensor, got NoneType"),
        ("mask.png", "expected a PIL image, numpy array or torch tensor, got str"),
    ],
)
def test_segment_dict_masks_get_the_plain_mask_checks(plain_segmenter, image, mask, message):
    with pytest.raises(ValueError, match=r"visible_masks\[0\]\['mask'\]: .*" + message):
        plain_segmenter(image, visible_masks=[{"mask": mask}])


def test_a_segment_list_with_a_non_dict_entry_is_refused(plain_segmenter, image):
    with pytest.raises(ValueError, match=r"visible_masks\[1\]: expected a segment dict"):
        plain_segmenter(image, visible_masks=[{"mask": object_probabilities()}, "mask.png"])


def test_a_missing_visible_mask_model_folder_is_named(plain_segmenter, tmp_path):
    missing = tmp_path / "no-such-sam"
    with pytest.raises(ValueError, match=rf"visible_mask_model: no folder at '{missing}'"):
        pipeline("amodal-segmentation", model=plain_segmenter.model, visible_mask_model=str(missing))


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A tiny random ViT image classifier and its image processor, saved in a folder."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("classifier")
    config = ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, image_size=32, patch_size=16
    )
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_an_image_classifier_is_refused_as_a_visible_mask_source(plain_segmenter, tiny_classifier):
    message = r"visible_mask_model: .*\((ViTForImageClassification )?model_type 'vit'\) is neither a promptable model"
    for source in (str(tiny_classifier), pipeline("image-classification", model=str(tiny_classifier))):
        with pytest.raises(ValueError, match=message):
            pipeline("amodal-segmentation", model=plain_segmenter.model, visible_mask_model=source)


@pytest.fixture(scope="module")
def sam2_folder(tmp_path_factory):
    pytest.importorskip("torchvision")
    return save_tiny_sam2(tmp_path_factory.mktemp("sam2") / "sam2")


def sam2_best_masks(folder, image, **prompts):
    """SAM 2's best-IoU mask and IoU per prompt, computed directly with transformers' `Sam2Model` (the image part of
    the saved "sam2_video" folder) and its processor."""
    from transformers import AutoProcessor, Sam2Config, Sam2Model, Sam2VideoConfig

    video_config = Sam2VideoConfig.from_pretrained(folder)
    config = Sam2Config(
        vision_config=video_config.vision_config.to_dict(),
        prompt_encoder_config=video_config.prompt_encoder_config.to_dict(),
        mask_decoder_config=video_config.mask_decoder_config.to_dict(),
    )
    model, processor = Sam2Model.from_pretrained(folder, config=config).eval(), AutoProcessor.from_pretrained(folder)
    inputs = processor(images=PIL.Image.fromarray(image), return_tensors="pt", **prompts)
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=True)
    masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0]
    scores, best = outputs.iou_scores[0].max(dim=-1)
    return [masks[index, choice].numpy() for index, choice in enumerate(best.tolist())], scores.tolist()


def test_sam2_prompts_give_its_best_iou_mask_per_object(folders, sam2_folder, image):
    segmenter = pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=str(sam2_folder))
    points, labels, boxes = [[[20, 20], [30, 35]], [[80, 60]]], [[1, 0], [1]], [[10, 10, 50, 60], [40, 30, 100, 85]]
    objects = segmenter(image, input_points=points, input_labels=labels, input_boxes=boxes, greedy=True)
    padded_points, padded_labels = [[[20, 20], [30, 35]], [[80, 60], [-10, -10]]], [[1, 0], [1, -10]]
    expected_masks, expected_scores = sam2_best_masks(
        sam2_folder, image, input_points=[padded_points], input_labels=[padded_labels], input_boxes=[boxes]
    )
    assert len(objects) == 2
    for result, mask, score in zip(objects, expected_masks, expected_scores):
        assert mask.any() and np.array_equal(np.asarray(result["visible_mask"]) > 0, mask)
        assert result["detection_score"] == pytest.approx(score, abs=1e-5)
        assert result["mask"].size == (WIDTH, HEIGHT)
    with pytest.raises(ValueError, match=r"input_points\[1\]\[0\]: \[500, 5\] is outside the 110x90 image"):
        segmenter(image, input_points=[[[5, 5]], [[500, 5]]])


def test_a_loaded_sam2_video_model_serves_the_image_pipeline_with_its_image_part(folders, sam2_folder, image):
    from transformers import Sam2VideoModel

    from_folder = pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=str(sam2_folder))
    video_model = Sam2VideoModel.from_pretrained(sam2_folder)
    from_model = pipeline("amodal-segmentation", model=str(folders["c2f"]), visible_mask_model=video_model)
    video_weights = {name: weight.data_ptr() for name, weight in video_model.named_parameters()}
    image_weights = {
        name: weight.data_ptr() for name, weight in from_model.visible_mask_source.model.named_parameters()
    }
    assert image_weights.items() <= video_weights.items()  # shared, not copied
    expected = from_folder(image, input_boxes=[[10, 10, 50, 60]], greedy=True)
    (result,) = from_model(image, input_boxes=[[10, 10, 50, 60]], greedy=True)
    assert np.array_equal(np.asarray(result["visible_mask"]), np.asarray(expected[0]["visible_mask"]))
    assert result["detection_score"] == pytest.approx(expected[0]["detection_score"], abs=1e-6)
