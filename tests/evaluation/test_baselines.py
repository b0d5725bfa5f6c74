"""The convex-hull and visible baselines and the prediction variants (`c2f_hf.evaluation.baselines`)."""

import numpy as np
import pytest
import torch

from c2f_hf.evaluation import CONVEX_HULL_BASELINE, VISIBLE_BASELINE, convex_hull_mask, prediction_variants
from c2f_hf.evaluation.baselines import baseline_predictions
from c2f_hf.models.c2f_seg.mask_policy import union_with_visible
from evaluation_testing import box_mask


def test_convex_hull_of_a_square_is_the_square():
    square = box_mask(2, 3, 7, 8)
    np.testing.assert_array_equal(convex_hull_mask(square), square)


def test_convex_hull_of_an_l_shape_is_the_triangle_of_pixel_centres():
    l_shape = np.zeros((6, 6), dtype=bool)
    l_shape[1:5, 1] = True  # column 1, rows 1-4
    l_shape[4, 1:5] = True  # row 4, columns 1-4
    # Hull of the centres: triangle (1, 1), (4, 1), (4, 4); pixels on or below its diagonal, 1+2+3+4 = 10.
    expected = np.zeros((6, 6), dtype=bool)
    for row in range(1, 5):
        expected[row, 1 : row + 1] = True
    hull = convex_hull_mask(torch.from_numpy(l_shape))
    np.testing.assert_array_equal(hull, expected)
    assert hull.sum() == 10


def test_convex_hull_of_a_thick_l_shape_has_the_polygon_area():
    l_shape = box_mask(0, 0, 8, 3, size=8) | box_mask(5, 0, 8, 8, size=8)
    # Centres span the hexagon (0,0) (0,2) (5,7) (7,7) (7,0): pixels with column <= row + 2, below row 0-4.
    expected = np.fromfunction(lambda row, column: column <= row + 2, (8, 8))
    np.testing.assert_array_equal(convex_hull_mask(l_shape), expected)


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros((5, 5), dtype=bool),
        box_mask(2, 2, 3, 3, size=5),
        box_mask(1, 0, 2, 5, size=5),
        box_mask(0, 2, 5, 3, size=5),
        np.eye(5, dtype=bool),
        np.fliplr(np.eye(5, dtype=bool)),
    ],
    ids=["empty", "one-pixel", "row", "column", "diagonal", "anti-diagonal"],
)
def test_convex_hull_of_degenerate_masks_is_the_mask_itself(mask):
    np.testing.assert_array_equal(convex_hull_mask(mask), mask)


def test_convex_hull_contains_random_masks():
    generator = np.random.default_rng(0)
    for _ in range(20):
        mask = generator.random((16, 12)) < 0.1
        hull = convex_hull_mask(mask)
        assert np.all(hull[mask])
        np.testing.assert_array_equal(convex_hull_mask(hull), hull)  # the hull mask is already convex


def test_union_with_visible_and_prediction_variants():
    prediction, visible = box_mask(0, 0, 4, 4), box_mask(3, 3, 6, 6)
    union = union_with_visible(torch.from_numpy(prediction).float(), visible)
    assert union.dtype == bool and union.sum() == 16 + 9 - 1
    np.testing.assert_array_equal(union, prediction | visible)
    variants = prediction_variants(prediction, visible)
    assert list(variants) == ["model", "model_union_visible", VISIBLE_BASELINE, CONVEX_HULL_BASELINE]
    np.testing.assert_array_equal(variants["model_union_visible"], union)
    np.testing.assert_array_equal(baseline_predictions(visible)[VISIBLE_BASELINE], visible)


def test_prediction_variants_with_an_occluder_mask_add_the_restricted_variant():
    prediction, visible, occluder = box_mask(0, 0, 4, 4), box_mask(3, 3, 6, 6), box_mask(0, 2, 10, 10)
    variants = prediction_variants(prediction, visible, name="m", occluder_mask=occluder.astype(np.float32))
    assert list(variants) == [
        "m",
        "m_union_visible",
        "m_restricted_to_occluders",
        VISIBLE_BASELINE,
        CONVEX_HULL_BASELINE,
    ]
    np.testing.assert_array_equal(variants["m_restricted_to_occluders"], visible | (prediction & occluder))
    with pytest.raises(ValueError, match="`occluder_mask` must be a 2-D"):
        prediction_variants(prediction, visible, occluder_mask=occluder[None])
