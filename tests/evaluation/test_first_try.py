"""The first-try scenes: three shapes half hidden by a box, and beside it, segmented through the pipeline."""

import numpy as np
import pytest
from transformers import pipeline

from c2f_hf.checkpoints import default_model_path
from c2f_hf.evaluation.first_try import (
    FIRST_TRY_SHAPES,
    IMAGE_SIZE,
    first_try_scene,
    first_try_scenes,
    results_table,
    run_first_try,
    score_first_try,
)


@pytest.mark.parametrize("shape", FIRST_TRY_SHAPES)
def test_the_box_hides_half_of_the_shape_or_nothing(shape: str):
    hidden, beside = first_try_scene(shape, hidden=True), first_try_scene(shape, hidden=False)
    assert hidden.image.shape == (IMAGE_SIZE[1], IMAGE_SIZE[0], 3) and hidden.image.dtype == np.uint8
    share_hidden = 1 - hidden.visible_mask.sum() / hidden.amodal_mask.sum()
    assert 0.45 <= share_hidden <= 0.55
    assert np.array_equal(beside.visible_mask, beside.amodal_mask)
    assert np.array_equal(hidden.amodal_mask, beside.amodal_mask)


def test_an_unknown_shape_is_named():
    with pytest.raises(ValueError, match="shape must be one of"):
        first_try_scene("star")


def test_the_scores_of_the_right_answer_and_of_the_visible_mask():
    scene = first_try_scene("disc")
    perfect = score_first_try(scene, scene.amodal_mask)
    assert (perfect.iou_full, perfect.iou_occ, perfect.invented_area) == (1.0, 1.0, 0.0)
    unchanged = score_first_try(scene, scene.visible_mask)
    assert unchanged.iou_occ == 0.0 and unchanged.invented_area == 0.0
    beside = first_try_scene("square", hidden=False)
    grown = beside.amodal_mask | np.roll(beside.amodal_mask, 10, axis=1)
    result = score_first_try(beside, grown)
    assert result.iou_occ is None
    assert result.invented_area == pytest.approx((grown & ~beside.amodal_mask).sum() / beside.amodal_mask.sum())


def test_the_shipped_model_is_scored_on_every_scene_through_the_pipeline():
    segmenter = pipeline("amodal-segmentation", model=str(default_model_path()))
    results = run_first_try(segmenter, greedy=True)
    assert [(item.shape, item.hidden) for item in results] == [
        (scene.shape, scene.hidden) for scene in first_try_scenes()
    ]
    assert all(0.0 <= item.iou_full <= 1.0 and item.invented_area >= 0.0 for item in results)
    assert all((item.iou_occ is None) == (not item.hidden) for item in results)
    assert results_table(results).count("\n") == len(results) + 1
