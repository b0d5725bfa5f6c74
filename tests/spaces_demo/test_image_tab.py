"""The image tab's handlers (spaces_demo/image_tab.py) on a tiny random model: examples, results, the table,
mistakes, large and grayscale uploads, and SAM prompts with a tiny random SAM model."""

import logging

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from c2f_hf.visualization import draw_amodal_overlay
from editor import brush_size, masks_from_layer
from image_tab import example_rows
from sam_prompts import CLICK_MODES, next_object
from spaces_demo_testing import DEMO_DIR, example_value


def test_examples_are_small_pairs_whose_thumbnails_show_their_masks():
    rows = example_rows()
    assert len(rows) == 5
    total = sum(path.stat().st_size for path in (DEMO_DIR / "examples").rglob("*.png"))
    assert total < 500_000, f"examples take {total} bytes"
    for (editor_value,) in rows:
        image, layer = editor_value["background"], editor_value["layers"][0]
        painted = layer[..., 3] > 0
        assert layer.shape[:2] == image.shape[:2] and painted.any()
        assert not np.array_equal(editor_value["composite"][painted], image[painted])
        assert np.array_equal(editor_value["composite"][~painted], image[~painted])


def test_controls_and_examples_start_at_the_models_defaults(demo, image_tab):
    sliders = {block.label: block.value for block in demo.blocks.values() if isinstance(block, gr.Slider)}
    assert sliders == {"MaskGIT steps K": 2, "Mask threshold": 0.4}
    outputs = image_tab.example_result(example_value("synthetic_3"))
    assert outputs[4:7] == (2, 0, 0.4)
    assert "Done: 2 objects" in outputs[-1]


def test_two_colours_give_two_numbered_objects_and_the_outputs(image_tab):
    output = image_tab.run_demo(example_value("photo_mug_behind_box"), 2, 0, 0.4)
    assert output.numbers == [1, 2] and [row[0] for row in output.rows] == [1, 2]
    for image in (output.image, output.overlay, output.coarse, output.refined):
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert output.notes == []


def test_table_columns_agree(image_tab):
    output = image_tab.run_demo(example_value("photo_ball_behind_books"), 2, 0, 0.4)
    for _, visible, hidden, amodal, rate, score in output.rows:
        assert amodal == visible + hidden and visible > 0
        assert rate == pytest.approx(100.0 * hidden / amodal, abs=0.05)
        assert 0.0 <= score <= 1.0


def test_seeded_runs_are_reproducible(image_tab):
    first = image_tab.run_demo(example_value("synthetic_3"), 2, 7, 0.5)
    second = image_tab.run_demo(example_value("synthetic_3"), 2, 7, 0.5)
    assert np.array_equal(first.refined, second.refined) and first.rows == second.rows


def test_overlay_tints_visible_hatches_hidden_and_outlines_in_the_objects_colour():
    image = np.full((64, 64, 3), 128, dtype=np.uint8)
    visible = np.zeros((64, 64), dtype=bool)
    visible[8:24, 8:40] = True
    amodal = visible.copy()
    amodal[24:48, 8:40] = True
    overlay = draw_amodal_overlay(image, [visible], [amodal], [(0, 191, 255)], numbers=False).astype(int)
    inside_visible, inside_hidden = overlay[12:20, 12:36], overlay[28:44, 12:36]
    assert (inside_visible[..., 2] > inside_visible[..., 0]).all()
    assert len({tuple(pixel) for pixel in inside_hidden.reshape(-1, 3)}) == 2, "hatching: stripes of two colours"
    assert inside_hidden.max() > inside_visible.max() and inside_hidden.min() < inside_visible.min()
    assert tuple(overlay[47, 20]) == (0, 191, 255)
    assert (overlay[56:, 50:] < 128).all(), "the background is dimmed so the masks stand out"


def test_a_mistake_is_one_log_line_and_a_status_message_not_error_badges(image_tab, caplog):
    value = example_value("synthetic_3")
    no_mask = {**value, "layers": [np.zeros_like(value["layers"][0])]}
    with caplog.at_level(logging.INFO, logger="c2f_seg_space"):
        result, coarse, refined, table, status = image_tab.predict(no_mask, 2, 0, 0.5)
    assert (result, coarse, refined, table) == (None, None, None, None)
    assert "No visible mask" in status
    assert [(record.levelname, record.exc_info) for record in caplog.records] == [("WARNING", None)]
    assert "No image" in image_tab.predict(None, 2, 0, 0.5)[-1]
    value["layers"][0] = np.zeros_like(value["layers"][0])
    value["layers"][0][0, 0] = (255, 0, 255, 255)
    assert "too small" in image_tab.predict(value, 2, 0, 0.5)[-1]


def test_grayscale_image_is_used_with_a_note(image_tab):
    value = example_value("synthetic_3")
    gray = np.asarray(Image.fromarray(value["background"]).convert("L").convert("RGBA"))
    output = image_tab.run_demo({**value, "background": gray}, 2, 0, 0.5)
    assert len(output.rows) >= 1 and any("Grayscale image" in note for note in output.notes)


def test_a_huge_upload_is_downscaled_at_once_with_a_brush_to_match(image_tab):
    value = example_value("photo_ball_behind_books")
    big = np.asarray(Image.fromarray(value["background"]).resize((3200, 2400)))
    prompt_image, image, editor, prompts, status = image_tab.load_image(big, None)
    assert image.shape == (768, 1024, 3) and prompt_image.shape == image.shape
    assert "3200x2400 pixels scaled down to 1024x768" in status
    assert editor["value"]["background"].shape[:2] == (768, 1024)
    assert editor["brush"].default_size == brush_size((768, 1024)) == 13
    assert image_tab.load_image(image, image) == (gr.skip(),) * 5, "the app setting its own image is no new upload"
    painted = {"background": big, "layers": [np.asarray(Image.fromarray(value["layers"][0]).resize((3200, 2400)))]}
    output = image_tab.run_demo(painted, 2, 0, 0.5)
    assert output.overlay.shape == (768, 1024, 3) and any("scaled down" in note for note in output.notes)


def test_sam_clicks_and_boxes_make_numbered_objects_in_the_editor(sam_image_tab):
    image = np.asarray(Image.open(DEMO_DIR / "examples" / "photo_ball_behind_books.png").convert("RGB"))
    _, image, editor, prompts, _ = sam_image_tab.load_image(image, None)
    event = type("Click", (), {"index": (190, 110)})()
    prompt_image, editor, prompts, status = sam_image_tab.click_prompt(
        image, prompts, "point on the object", editor["value"], event
    )
    assert "SAM mask of" in status and prompt_image.shape == image.shape
    first = masks_from_layer(editor["value"]["layers"][0])
    assert list(first) == [1] and first[1].any()
    prompts, status = next_object(prompts, editor["value"])
    assert prompts["current"] == 2 and "click on it" in status
    box_mode = CLICK_MODES[2]
    for corner in ((40, 150), (120, 200)):
        event.index = corner
        _, editor, prompts, status = sam_image_tab.click_prompt(image, prompts, box_mode, editor["value"], event)
    assert prompts["objects"]["2"]["box"] == [40, 150, 121, 201] and "SAM mask of" in status
    output = sam_image_tab.run_demo(editor["value"], 2, 0, 0.5)
    assert output.numbers == sorted(masks_from_layer(editor["value"]["layers"][0]))
