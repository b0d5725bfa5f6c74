"""The video tab (spaces_demo/video_tab.py, video_inputs.py) on the shipped video model: the example clips, mask
strips, animated clips, mistakes, and one pipeline call for all objects of a clip; clicks on a clip's first frame
turned into point prompts, and tracked by a tiny random SAM 2 (`sam2_video_tab`)."""

import logging

import numpy as np
import pytest
from PIL import Image

from page import DemoInputError
from sam_prompts import POINT_MODES, add_click, empty_prompts, next_object, point_prompts
from spaces_demo_testing import video_example
from video_inputs import clip_frames, labels_from_mask_strip, read_video_inputs
from video_tab import display_scale, object_problem, video_example_rows

# Points on clip_3's first frame where the tiny random SAM 2 (seed 0) finds a mask, as do their neighbours 8 px
# away (the browser test clicks there).
CLICKS = [(64, 80), (48, 56)]


class Click:
    """What gradio hands a select handler: the clicked pixel as `index`."""

    def __init__(self, x: int, y: int):
        self.index = (x, y)


def clip_gif(folder, name: str = "clip_3"):
    """A shipped example clip as an animated GIF file in `folder`; returns its path and frames strip."""
    frames, _ = video_example(name)
    pictures = [Image.fromarray(frames[:, index * 128 : (index + 1) * 128]) for index in range(8)]
    pictures[0].save(folder / f"{name}.gif", save_all=True, append_images=pictures[1:], duration=100)
    return str(folder / f"{name}.gif"), frames


def test_video_examples_are_colour_strips_with_a_fully_hidden_object():
    rows = video_example_rows()
    assert len(rows) == 3
    for _, frames_path, masks_path, num_frames, *_ in rows:
        frames, strip = np.asarray(Image.open(frames_path)), np.asarray(Image.open(masks_path).convert("RGB"))
        assert frames.shape == (128, 128 * num_frames, 3) and strip.shape == frames.shape
        assert strip.max(axis=-1).max() == 255, "a person can see the masks"
        labels = labels_from_mask_strip(strip)
        assert sorted(np.unique(labels)) == [0, 1, 2, 3]
        per_frame = labels.reshape(128, num_frames, 128).transpose(1, 0, 2)
        assert any(not (per_frame[frame] == 1).any() for frame in range(num_frames))
        assert np.array_equal(labels_from_mask_strip(labels.astype(np.uint8)), labels), "grayscale labels too"


def test_video_example_gives_one_overlay_per_frame_and_a_table(video_tab):
    frames, strip = video_example("clip_3")
    output = video_tab.run_video_demo(None, frames, strip, 8, 0, False)
    assert len(output.overlays) == 8
    assert all(overlay.shape == (128, 128, 3) and overlay.dtype == np.uint8 for overlay in output.overlays)
    assert [row[:2] for row in output.rows[:2]] == [[1, 0], [1, 1]] and len(output.rows) == 3 * 8
    for _, _, visible, hidden, amodal, rate, _ in output.rows:
        assert amodal == visible + hidden and 0.0 <= rate <= 100.0
    gallery, table, status = video_tab.predict_video(None, frames, strip, 8, 0, True)
    assert [caption for _, caption in gallery] == [f"frame {frame}" for frame in range(8)]
    assert len(table) == 24 and "3 objects" in status and "over 8 frames" in status


@pytest.mark.parametrize(("seed", "greedy"), [(3, False), (0, True)])
def test_one_call_for_all_objects_gives_each_object_what_a_call_for_it_alone_gives(video_tab, seed, greedy):
    frames, objects = read_video_inputs(None, *video_example("clip_9"), 8)
    together = video_tab.segment_tracks(frames, objects, seed, greedy)
    assert len(together) == len(objects) == 3
    for track, result in zip(objects, together):
        (alone,) = video_tab.segment_tracks(frames, [track], seed, greedy)
        assert result["scores"] == alone["scores"] and result["completed"] == alone["completed"]
        for name in ("amodal_masks", "pred_visible_masks", "occluded_masks"):
            assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(result[name], alone[name])), name


def test_the_pipeline_sees_every_object_at_once_and_its_complaints_name_object_numbers(video_tab, caplog):
    frames, objects = read_video_inputs(None, *video_example("clip_3"), 8)
    (first, visible), (second, _), _ = objects
    only_at_start = np.zeros_like(visible)
    only_at_start[0] = visible[0]
    with caplog.at_level(logging.WARNING):
        video_tab.segment_tracks(frames, [(first, visible), (second, only_at_start)], 0, True)
    assert any(message.startswith("visible_masks[1]: frames [4, 5, 6, 7]") for message in caplog.messages)
    with pytest.raises(DemoInputError, match=r"^Object 3: the object's visible mask is empty on every frame"):
        video_tab.segment_tracks(frames, [(first, visible), (3, np.zeros_like(visible))], 0, True)
    with pytest.raises(DemoInputError, match=r"^frames\[1\]: has size \(64, 64\), frames\[0\] has \(128, 128\)\.$"):
        video_tab.segment_tracks([frames[0], frames[1][:64, :64]], [(first, visible[:2])], 0, True)


def test_an_animated_gif_is_a_clip(video_tab, tmp_path):
    frames, strip = video_example("clip_6")
    pictures = [Image.fromarray(frames[:, index * 128 : (index + 1) * 128]) for index in range(8)]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100)
    gallery, table, status = video_tab.predict_video(str(tmp_path / "clip.gif"), None, strip, 1, 0, True)
    assert len(gallery) == 8 and len(table) == 24, status
    _, _, status = video_tab.predict_video(str(tmp_path / "clip.gif"), None, strip[:, :512], 1, 0, True)
    assert "need a 1024x128 strip" in status


def test_video_mistakes_are_status_messages(video_tab):
    frames, strip = video_example("clip_3")
    assert "does not split into 7 frames" in video_tab.predict_video(None, frames, strip, 7, 0, False)[-1]
    assert "No clip" in video_tab.predict_video(None, None, strip, 8, 0, False)[-1]
    assert "mask strip is empty" in video_tab.predict_video(None, frames, np.zeros_like(strip), 8, 0, False)[-1]
    assert video_tab.predict_video(None, None, strip, 8, 0, False)[:2] == (None, None)


def test_the_status_counts_objects_and_frames_in_the_right_number(video_tab):
    frames, strip = video_example("clip_6")
    _, table, status = video_tab.predict_video(None, frames[:, :128], strip[:, :128], 1, 0, True)
    assert " over 1 frame in " in status and len(table) >= 1, status
    _, _, status = video_tab.predict_video(None, frames, strip, 8, 0, True)
    assert " over 8 frames in " in status, status


def test_an_example_click_fills_the_inputs_and_gives_the_result_in_one_call(video_tab):
    clip_file, frames, masks, num_frames, seed, greedy, shown, first_frame, prompts, gallery, table, status = (
        video_tab.example_result(0)
    )
    expected_frames, expected_masks = video_example(video_tab.example_rows[0][1].split("/")[-1][: -len("_frames.png")])
    assert clip_file is None and (num_frames, seed, greedy) == (8, 0, False)
    assert np.array_equal(frames, expected_frames) and np.array_equal(masks, expected_masks)
    assert np.array_equal(first_frame, expected_frames[:, :128]) and np.array_equal(shown[::2, ::2], first_frame)
    assert prompts == empty_prompts(), "the first frame of the example waits for clicks"
    assert len(gallery) == 8 and "Done: 3 objects" in status and len(table) == 3 * 8


def test_clicks_become_one_point_prompt_per_object_in_number_order():
    prompts = empty_prompts()
    add_click(prompts, POINT_MODES[0], 40, 50)
    add_click(prompts, POINT_MODES[1], 5, 6)
    prompts, _ = next_object(prompts)
    add_click(prompts, POINT_MODES[0], 90, 100)
    assert point_prompts(prompts) == ([1, 2], [[[40, 50], [5, 6]], [[90, 100]]], [[1, 0], [1]])
    with pytest.raises(DemoInputError, match="^No object clicked"):
        point_prompts(empty_prompts())
    prompts, _ = next_object(prompts)
    add_click(prompts, POINT_MODES[1], 7, 8)
    with pytest.raises(DemoInputError, match="^Object 3 has background points only"):
        point_prompts(prompts)


def test_the_pipelines_complaint_about_an_objects_prompt_names_that_object():
    error = ValueError("input_points[1][0]: [200, 3] is outside the 128x128 frame")
    assert str(object_problem(error, [1, 3])) == "Object 3: [200, 3] is outside the 128x128 frame."
    assert str(object_problem(ValueError("input_labels[0][1]: expected 1 or 0"), [2])) == "Object 2: expected 1 or 0."
    assert str(object_problem(ValueError("prompt_frame: 9 is not a frame"), [2])) == "prompt_frame: 9 is not a frame."


def test_a_clip_shows_its_first_frame_enlarged_to_click_on_and_clicks_are_drawn(video_tab, tmp_path):
    clip_file, frames = clip_gif(tmp_path)
    shown, first_frame, prompts, status = video_tab.load_clip(clip_file, None, 8)
    assert np.array_equal(first_frame, frames[:, :128]) and display_scale(first_frame) == 2
    assert shown.shape == (256, 256, 3) and np.array_equal(shown[1::2, 1::2], first_frame)
    assert prompts == empty_prompts() and "8 frames of 128x128" in status
    shown, prompts, status = video_tab.click_first_frame(first_frame, prompts, POINT_MODES[0], Click(61, 81))
    assert prompts["objects"] == {"1": {"points": [[30, 40]], "labels": [1], "box": None}} and "1 point" in status
    assert not np.array_equal(shown[81, 61], first_frame[40, 30]), "the click is drawn where it was made"
    assert np.array_equal(shown[200, 200], first_frame[100, 100])
    shown, prompts, status = video_tab.clear_clicks(first_frame)
    assert prompts == empty_prompts() and np.array_equal(shown[::2, ::2], first_frame)
    assert "No clip" in video_tab.load_clip(None, None, 8)[-1]
    _, _, status = video_tab.click_first_frame(None, empty_prompts(), POINT_MODES[0], Click(1, 1))
    assert "No clip" in status


def test_clicks_without_sam2_are_a_status_message(video_tab, tmp_path):
    clip_file, _ = clip_gif(tmp_path)
    prompts = empty_prompts()
    add_click(prompts, POINT_MODES[0], 30, 40)
    gallery, table, status = video_tab.predict_video(clip_file, None, None, 8, 0, True, prompts)
    assert (gallery, table) == (None, None) and "Clicks need SAM 2" in status


def test_clicked_objects_are_tracked_by_sam2_and_completed_in_one_pipeline_call(sam2_video_tab):
    frames, _ = video_example("clip_3")
    _, first_frame, prompts, _ = sam2_video_tab.load_clip(None, frames, 8)
    for number, (x, y) in enumerate(CLICKS, start=1):
        if number > 1:
            prompts, _ = next_object(prompts)
        shown_x, shown_y = 2 * x, 2 * y  # the first frame is shown twice its size
        _, prompts, _ = sam2_video_tab.click_first_frame(first_frame, prompts, POINT_MODES[0], Click(shown_x, shown_y))
    gallery, table, status = sam2_video_tab.predict_video(None, frames, None, 8, 0, True, prompts)
    assert len(gallery) == 8 and len(table) == 2 * 8 and "2 objects" in status and "tracked by SAM 2" in status
    assert [row[:2] for row in table] == [[number, frame] for number in (1, 2) for frame in range(8)]
    direct = sam2_video_tab.sources.video_segmenter()(
        clip_frames(None, frames, 8),
        input_points=[[list(click)] for click in CLICKS],
        input_labels=[[1], [1]],
        prompt_frame=0,
        greedy=True,
        union_with_visible=True,
    )
    for number, result in enumerate(direct, start=1):
        rows = [row for row in table if row[0] == number]
        assert [row[2] for row in rows] == [int((np.asarray(mask) > 0).sum()) for mask in result["visible_masks"]]
        assert [row[4] for row in rows] == [int((np.asarray(mask) > 0).sum()) for mask in result["amodal_masks"]]


def test_a_prompt_the_pipeline_refuses_names_the_object(sam2_video_tab):
    frames, _ = video_example("clip_3")
    outside = {"objects": {"2": {"points": [[500, 5]], "labels": [1], "box": None}}, "current": 2, "corner": None}
    gallery, _, status = sam2_video_tab.predict_video(None, frames, None, 8, 0, True, outside)
    assert gallery is None and "Object 2: [500, 5] is outside" in status, status
