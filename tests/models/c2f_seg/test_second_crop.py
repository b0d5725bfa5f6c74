"""The second crop: its geometry, and `with_second_crops` against the model run by hand on the second crops."""

import numpy as np
import pytest
import torch

from c2f_hf import C2FSegImageProcessor
from c2f_hf.models.c2f_seg.mask_geometry import CropBox, grown_crop_box, object_crop_box, reaches_crop_border
from c2f_hf.models.c2f_seg.maskgit import object_generators
from c2f_hf.models.c2f_seg.second_crop import reaching_objects, with_second_crops
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import C2FSegVideoProcessor
from c2f_testing import TINY_IMAGE_SIZE


def box_mask(height, width, top, left, box_height, box_width):
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + box_height, left : left + box_width] = True
    return mask


@pytest.mark.parametrize(
    ("mask_box", "expected"),
    [
        ((20, 20, 10, 10), False),  # inside the crop, off every side
        ((20, 20, 10, 40), True),  # reaches the right side, where the image goes on
        ((10, 20, 10, 10), True),  # reaches the top side
        ((0, 0, 10, 10), False),  # reaches the box's top and left sides, both on the image border
        ((0, 70, 10, 10), False),  # outside the box only
    ],
)
def test_a_mask_reaches_the_crop_border_only_where_the_image_goes_on(mask_box, expected):
    inner = CropBox(10, 10, 40, 50)
    at_corner = CropBox(0, 0, 40, 50)
    box = at_corner if mask_box[:2] == (0, 0) else inner
    assert reaches_crop_border(box_mask(60, 80, *mask_box), box) is expected


def test_the_grown_box_holds_the_first_box_and_the_masks_own_crop():
    first = CropBox(20, 20, 40, 40)
    mask = box_mask(100, 120, 25, 30, 10, 40)  # goes on to the right of the first box
    grown = grown_crop_box(first, mask, 1.5)
    own = object_crop_box(mask, 1.5)
    assert (grown.top, grown.left) == (min(first.top, own.top), min(first.left, own.left))
    assert (grown.bottom, grown.right) == (max(first.bottom, own.bottom), max(first.right, own.right))
    assert grown.right > first.right and grown.top == first.top


def test_only_the_objects_reaching_past_their_crop_get_a_second_crop():
    inside, past = box_mask(60, 80, 20, 20, 10, 10), box_mask(60, 80, 20, 20, 10, 40)
    boxes = [CropBox(10, 10, 40, 50)] * 2
    assert reaching_objects([inside, past], boxes) == [1]
    assert reaching_objects([inside, inside], boxes) == []


def scene(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    return image, [box_mask(70, 90, 10, 10, 20, 25), box_mask(70, 90, 35, 40, 25, 30)]


def first_pass(model, processor, image, masks, seed):
    inputs = processor(image, visible_masks=masks)
    generator = object_generators(seed, list(range(len(masks))), torch.device("cpu"))
    output = model.generate(inputs["pixel_values"], inputs["visible_masks"], generator=generator)
    return inputs, output


def test_with_second_crops_replaces_the_reaching_objects_by_the_model_run_on_their_second_crop(model):
    image, masks = scene()
    processor = C2FSegImageProcessor(crop_resolution=TINY_IMAGE_SIZE, second_crop_ratio=1.5, mask_threshold=0.3)
    inputs, first = first_pass(model, processor, image, masks, seed=5)
    calls = []

    def generate(indices, pixel_values, visible_masks):
        calls.append(indices)
        generator = object_generators(5, indices, torch.device("cpu"))
        return model.generate(pixel_values, visible_masks, generator=generator)

    read = []

    def object_arrays(index):
        read.append(index)
        return image, masks[index]

    sizes = [tuple(inputs["original_sizes"][0].tolist())] * len(masks)
    output, boxes = with_second_crops(dict(first), inputs["crop_boxes"], sizes, object_arrays, generate, processor)
    pasted = processor.post_process_amodal_masks(first.amodal_masks, inputs["crop_boxes"], sizes, range(len(masks)))
    first_boxes = [CropBox.from_list(box) for box in inputs["crop_boxes"].tolist()]
    expected = {
        index: grown_crop_box(box, mask[0].numpy() | masks[index], 1.5)
        for index, (mask, box) in enumerate(zip(pasted, first_boxes))
        if reaches_crop_border(mask[0].numpy(), box)
    }
    assert expected, "the random model's first masks should reach past at least one crop"
    assert calls == [sorted(expected)] and read == sorted(expected), "only the reaching objects are read and run"
    for index in range(len(masks)):
        if index not in expected:
            assert boxes[index].tolist() == first_boxes[index].to_list()
            torch.testing.assert_close(output["amodal_masks"][index], first.amodal_masks[index], rtol=0, atol=0)
            continue
        assert boxes[index].tolist() == expected[index].to_list()
        crops = processor.crop_objects([image], [masks[index]], [expected[index]])
        again = model.generate(
            crops["pixel_values"], crops["visible_masks"], generator=object_generators(5, [index], torch.device("cpu"))
        )
        assert torch.equal(output["amodal_tokens"][index], again["amodal_tokens"][0])
        for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks", "scores"):  # batch of 1 vs of n
            torch.testing.assert_close(output[name][index], again[name][0], rtol=1e-5, atol=1e-5)


def test_without_a_second_crop_ratio_nothing_is_predicted_again(model):
    image, masks = scene()
    processor = C2FSegImageProcessor(crop_resolution=TINY_IMAGE_SIZE, mask_threshold=0.0)
    inputs, first = first_pass(model, processor, image, masks, seed=0)

    def generate(*_):
        raise AssertionError("called without a second_crop_ratio")

    sizes = [tuple(inputs["original_sizes"][0].tolist())] * len(masks)
    output, boxes = with_second_crops(
        first, inputs["crop_boxes"], sizes, lambda index: (image, masks[index]), generate, processor
    )
    assert output is first and boxes is inputs["crop_boxes"]


@pytest.mark.parametrize("ratio", [0, -1.5, "2", float("nan"), True])
def test_a_bad_second_crop_ratio_is_refused_by_name(ratio):
    with pytest.raises(ValueError, match=r"second_crop_ratio: expected None \(one crop\) or a positive number"):
        C2FSegImageProcessor(second_crop_ratio=ratio)


def test_the_second_crop_ratio_is_saved_and_read_back(tmp_path):
    C2FSegImageProcessor(crop_resolution=32, second_crop_ratio=1.75).save_pretrained(tmp_path)
    assert C2FSegImageProcessor.from_pretrained(tmp_path).second_crop_ratio == 1.75
    assert C2FSegImageProcessor().second_crop_ratio is None


def test_a_video_processor_crops_each_window_once():
    with pytest.raises(ValueError, match="second_crop_ratio: a video processor crops each window once"):
        C2FSegVideoProcessor(second_crop_ratio=1.5)
    image_processor = C2FSegImageProcessor(crop_resolution=32, enlarge_ratio=1.8, second_crop_ratio=1.5)
    video_processor = C2FSegVideoProcessor.from_image_processor(image_processor)
    assert (video_processor.second_crop_ratio, video_processor.enlarge_ratio) == (None, 1.8)
