"""The image tab's handlers (spaces_demo/image_tab.py) on a tiny random model: examples, results, the table,
mistakes, large and grayscale uploads, and SAM prompts with a tiny random SAM model."""

import logging

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from c2f_hf.visualization import draw_amodal_overlay
from editor import brush_size, masks_from_layer
from image_tab import SLIDER_POSITIONS, load_examples, slider_start
from sam_prompts import CLICK_MODES, next_object
from spaces_demo_testing import DEMO_DIR, example_value


def test_examples_are_small_pairs_whose_thumbnails_show_their_masks():
    examples = load_examples()
    assert len(examples) == 5
    total = sum(path.stat().st_size for path in (DEMO_DIR / "examples").rglob("*.png"))
    assert total < 500_000, f"examples take {total} bytes"
    for example in examples:
        painted = example.layer[..., 3] > 0
        assert example.layer.shape[:2] == example.image.shape[:2] and painted.any()
        assert not np.array_equal(example.thumbnail[painted], example.image[painted])
        assert np.array_equal(example.thumbnail[~painted], example.image[~painted])


def test_an_example_click_puts_the_clean_photo_and_its_masks_as_a_layer_and_the_defaults(demo, image_tab):
    sliders = {block.label: block.value for block in demo.blocks.values() if isinstance(block, gr.Slider)}
    assert sliders == {"MaskGIT steps K": 2, "Mask threshold": 0.4}
    index = [example.name for example in image_tab.examples].index("synthetic_3")
    outputs = image_tab.example_result(index)
    assert len(outputs) == 12 and outputs[4:7] == (2, 0, 0.4)
    editor = outputs[2]["value"]
    example = image_tab.examples[index]
    assert np.array_equal(editor["background"], example.image) and np.array_equal(outputs[1], example.image)
    assert len(editor["layers"]) == 1 and np.array_equal(editor["layers"][0], example.layer)
    assert editor["composite"] is None, "gradio's editor shows a composite as its background: the masks would bake"
    assert outputs[3]["current"] == 3, "the next prompt is the first object number the example leaves free"
    slider = outputs[7]
    assert np.array_equal(slider["value"][0], example.image) and slider["slider_position"] in SLIDER_POSITIONS
    assert "Done: 2 objects" in outputs[-1]


def test_the_slider_starts_where_its_handle_covers_no_hidden_part():
    visible = np.zeros((40, 100), dtype=bool)
    visible[10:30, 10:40] = True
    amodal = visible.copy()
    amodal[10:30, 40:70] = True
    position = slider_start([visible], [amodal])
    assert position in SLIDER_POSITIONS and not 37 <= position <= 73
    assert abs(position - 50) == min(abs(p - 50) for p in SLIDER_POSITIONS if not 37 <= p <= 73)
    assert slider_start([visible], [visible]) == 50.0, "nothing hidden: the middle"


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


def test_a_huge_upload_is_downscaled_before_the_editor_with_a_note_and_a_brush_to_match(image_tab, tmp_path):
    value = example_value("photo_ball_behind_books")
    path = tmp_path / "big.png"
    Image.fromarray(value["background"]).resize((4000, 3000)).save(path)
    prompt_image, image, editor, prompts, status = image_tab.load_image(str(path))
    assert image.shape == (768, 1024, 3) and prompt_image.shape == image.shape
    assert "4000x3000 pixels scaled down to 1024x768" in status
    assert editor["value"]["background"].shape[:2] == (768, 1024) and editor["value"]["composite"] is None
    assert not editor["value"]["layers"][0].any() and prompts["objects"] == {}
    assert editor["brush"].default_size == brush_size((768, 1024)) == 13
    big = np.asarray(Image.open(path).convert("RGBA"))
    painted = {"background": big, "layers": [np.asarray(Image.fromarray(value["layers"][0]).resize((4000, 3000)))]}
    output = image_tab.run_demo(painted, 2, 0, 0.5)
    assert output.overlay.shape == (768, 1024, 3) and any("scaled down" in note for note in output.notes)


def test_an_unreadable_upload_is_a_status_message(image_tab, tmp_path):
    path = tmp_path / "not_an_image.png"
    path.write_text("hello")
    *updates, status = image_tab.load_image(str(path))
    assert updates == [gr.skip()] * 4 and "Unsupported image" in status


def test_sam_clicks_and_boxes_make_numbered_objects_in_the_editor(sam_image_tab):
    image = np.asarray(Image.open(DEMO_DIR / "examples" / "photo_ball_behind_books.png").convert("RGB"))
    _, image, editor, prompts, _ = sam_image_tab.load_image(image)
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
