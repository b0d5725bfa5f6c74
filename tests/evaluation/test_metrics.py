"""Per-object metrics (`c2f_hf.evaluation.metrics`) and the mask policy they use, on hand-computed toy masks."""

import numpy as np
import pytest
import torch
from PIL import Image

from c2f_hf.evaluation import iou, occluded_iou
from c2f_hf.evaluation.metrics import bool_invented_area, occlusion_bin
from c2f_hf.models.c2f_seg.mask_policy import occluded_mask, occlusion_rate, to_bool_mask
from evaluation_testing import box_mask


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


def test_invented_area_counts_predicted_pixels_outside_the_object_over_its_area():
    amodal = np.zeros((20, 20), dtype=bool)
    amodal[5:15, 5:15] = True
    grown = amodal.copy()
    grown[5:10, 15] = True
    assert bool_invented_area(grown, amodal) == pytest.approx(0.05)
    assert bool_invented_area(amodal[:, ::-1] & amodal, amodal) == 0.0
    assert bool_invented_area(grown, np.zeros_like(amodal)) is None
