"""The occluder rule of the mask policy (`mask_policy.restrict_to_occluders`, `occluder_masks_from_visible`)."""

import numpy as np
import pytest
import torch

from c2f_hf.models.c2f_seg.mask_policy import (
    crops_with_pixels,
    object_result,
    occluder_masks_from_visible,
    restrict_to_occluders,
)


def row(*values: int) -> np.ndarray:
    return np.array([values], dtype=bool)


def test_restrict_to_occluders_truth_table():
    # Columns: (amodal, visible, occluder) = every combination; the result is visible | (amodal & occluder).
    amodal = row(0, 0, 0, 0, 1, 1, 1, 1)
    visible = row(0, 0, 1, 1, 0, 0, 1, 1)
    occluder = row(0, 1, 0, 1, 0, 1, 0, 1)
    result = restrict_to_occluders(amodal, visible, occluder)
    # hidden part on background removed (column 4), on another object kept (5), visible part always kept (2, 3, 6, 7)
    np.testing.assert_array_equal(result, row(0, 0, 1, 1, 0, 1, 1, 1))


def test_restrict_to_occluders_takes_batches_tensors_and_probabilities():
    amodal = torch.tensor([[[0.9, 0.9, 0.2]], [[0.6, 0.0, 0.7]]])  # (2, 1, 3) probabilities: > 0.5 is foreground
    visible = np.array([[[True, False, False]], [[False, False, False]]])
    occluder = np.array([[[False, False, True]], [[True, True, False]]])
    result = restrict_to_occluders(amodal, visible, occluder)
    assert result.dtype == bool
    np.testing.assert_array_equal(result, [[[True, False, False]], [[True, False, False]]])


def test_restrict_to_occluders_names_mismatched_shapes():
    with pytest.raises(ValueError, match="occluder_masks"):
        restrict_to_occluders(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5)))


def test_occluder_masks_are_the_union_of_the_other_objects():
    a, b, c = row(1, 1, 0, 0, 0), row(0, 1, 1, 0, 0), row(0, 0, 0, 1, 0)  # a and b overlap on column 1
    occluders = occluder_masks_from_visible(np.stack([a, b, c]))
    np.testing.assert_array_equal(occluders[0], b | c)
    np.testing.assert_array_equal(occluders[1], a | c)
    np.testing.assert_array_equal(occluders[2], a | b)
    assert not occluder_masks_from_visible(a[None]).any()  # a lone object has no occluder


def test_occluder_masks_of_tracks_are_per_frame():
    tracks = np.zeros((2, 3, 1, 4), dtype=bool)  # 2 tracks, 3 frames
    tracks[0, :, 0, 0] = True
    tracks[1, 1, 0, 2] = True  # track 1 is visible on frame 1 only
    occluders = occluder_masks_from_visible(torch.from_numpy(tracks))
    assert occluders.shape == tracks.shape
    np.testing.assert_array_equal(occluders[0], tracks[1])
    np.testing.assert_array_equal(occluders[1], tracks[0])


def test_occluder_masks_from_a_label_map_match_the_authors_rule():
    # The authors keep a pixel of object `value` when the scene segmentation there is neither 0 nor `value`.
    label_map = np.array([[0, 1, 1, 2], [3, 3, 2, 0]])
    labels = [1, 2, 3]
    occluders = occluder_masks_from_visible(np.stack([label_map == label for label in labels]))
    for label, occluder in zip(labels, occluders):
        np.testing.assert_array_equal(occluder, (label_map != 0) & (label_map != label))


def test_occluder_masks_refuse_a_single_mask():
    with pytest.raises(ValueError, match=r"visible_masks: expected all objects' masks as \(N, H, W\)"):
        occluder_masks_from_visible(np.zeros((4, 4), dtype=bool))


def test_object_result_restricts_the_amodal_mask_and_derives_the_rest_from_it():
    amodal, visible, occluder = row(1, 1, 1, 0), row(1, 0, 0, 0), row(0, 1, 0, 1)
    result = object_result(amodal, amodal, visible, 0.5, add_visible=True, occluder_mask=occluder)
    np.testing.assert_array_equal(result["amodal_mask"], row(1, 1, 0, 0))
    np.testing.assert_array_equal(result["occluded_mask"], row(0, 1, 0, 0))
    assert result["occlusion_rate"] == pytest.approx(0.5) and result["bbox"] == [0, 0, 2, 1]
    np.testing.assert_array_equal(result["pred_visible_mask"], amodal)  # only the amodal mask is restricted


def test_a_crop_shows_its_object_when_a_pixel_is_above_one_half():
    masks = torch.zeros(3, 1, 4, 4)
    masks[1, 0, 2, 2] = 0.5  # on the threshold: not a pixel of the object
    masks[2, 0, 3, 1] = 0.51
    assert crops_with_pixels(masks).tolist() == [False, False, True]
