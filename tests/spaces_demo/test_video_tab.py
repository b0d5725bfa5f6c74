"""The video tab (spaces_demo/video_tab.py, video_inputs.py) on the shipped video model: the example clips, mask
strips, animated clips and mistakes."""

import numpy as np
from PIL import Image

from spaces_demo_testing import video_example
from video_inputs import labels_from_mask_strip
from video_tab import video_example_rows


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
