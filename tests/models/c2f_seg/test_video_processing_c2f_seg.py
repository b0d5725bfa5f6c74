"""The video processor: clip windows, per-window crops with one box, paste-back of the kept frames."""

import numpy as np
import pytest
import torch

from c2f_hf.models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from c2f_hf.models.c2f_seg.mask_geometry import clip_crop_box
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import (
    C2FSegVideoProcessor,
    frame_windows,
    load_frames,
    object_windows,
    sequence_window,
    window_starts,
)

# ----- windows over long clips -----


@pytest.mark.parametrize(
    ("num_frames", "window_length", "starts"),
    [(1, 4, [0]), (4, 4, [0]), (6, 4, [0, 2]), (11, 4, [0, 2, 4, 6, 7]), (9, 3, [0, 1, 2, 3, 4, 5, 6])],
)
def test_window_starts(num_frames, window_length, starts):
    assert window_starts(num_frames, window_length) == starts


@pytest.mark.parametrize(("num_frames", "window_length"), [(1, 4), (3, 4), (4, 4), (11, 4), (24, 8), (10, 5)])
def test_every_frame_is_kept_once_from_the_window_where_it_is_most_central(num_frames, window_length):
    owners = {}
    for window in frame_windows(num_frames, window_length):
        assert len(window.frame_indices) == window_length
        for position in window.kept:
            frame = window.frame_indices[position]
            assert frame not in owners
            owners[frame] = window.start
    assert sorted(owners) == list(range(num_frames))
    starts = window_starts(num_frames, window_length)
    for frame, start in owners.items():
        distance = abs(frame - (start + (window_length - 1) / 2))
        assert all(distance <= abs(frame - (other + (window_length - 1) / 2)) for other in starts)


def test_short_clips_repeat_their_last_frame():
    (window,) = frame_windows(3, 4)
    assert window.frame_indices == (0, 1, 2, 2) and window.kept == (0, 1, 2)


def test_video_processor_takes_the_saved_image_processors_settings(tmp_path):
    C2FSegImageProcessor(crop_resolution=32, enlarge_ratio=1.7, mask_threshold=0.3).save_pretrained(tmp_path)
    processor = C2FSegVideoProcessor.from_image_processor(C2FSegImageProcessor.from_pretrained(tmp_path))
    assert (processor.crop_resolution, processor.enlarge_ratio, processor.mask_threshold) == (32, 1.7, 0.3)
    assert C2FSegVideoProcessor.from_image_processor(processor) is processor


def moving_square(num_frames: int, hidden: tuple[int, ...] = ()) -> tuple[list[np.ndarray], np.ndarray]:
    frames = [np.full((40, 50, 3), 10 * frame, dtype=np.uint8) for frame in range(num_frames)]
    track = np.zeros((num_frames, 40, 50), dtype=bool)
    for frame in range(num_frames):
        if frame not in hidden:
            track[frame, 10:20, 5 + 3 * frame : 15 + 3 * frame] = True
    return frames, track


def test_a_window_is_cropped_with_one_box_from_the_union_of_its_visible_masks():
    processor = C2FSegVideoProcessor(crop_resolution=16, enlarge_ratio=2.0)
    frames, track = moving_square(5, hidden=(3,))
    window = processor.clip_windows(5, 4)[1]
    crops = processor.preprocess_window(frames, track, window)
    assert crops["pixel_values"].shape == (4, 3, 16, 16) and crops["visible_masks"].shape == (4, 1, 16, 16)
    assert crops["crop_box"] == clip_crop_box(track[list(window.frame_indices)], 2.0)
    hidden_position = window.frame_indices.index(3)
    assert crops["visible_masks"][hidden_position].sum() == 0
    assert torch.allclose(
        crops["pixel_values"][0], torch.full((3, 16, 16), frames[window.frame_indices[0]][0, 0, 0] / 255)
    )


def test_a_window_hidden_on_every_frame_has_no_crop():
    processor = C2FSegVideoProcessor(crop_resolution=16)
    frames, track = moving_square(4, hidden=(0, 1, 2, 3))
    with pytest.raises(ValueError, match="empty in every frame of the window"):
        processor.preprocess_window(frames, track, processor.clip_windows(4, 4)[0])


def test_post_processing_returns_the_kept_frames_with_the_mask_policy():
    processor = C2FSegVideoProcessor(crop_resolution=16, mask_threshold=0.6)
    frames, track = moving_square(6)
    window = processor.clip_windows(6, 4)[1]
    crops = processor.preprocess_window(frames, track, window)
    probabilities = torch.full((4, 1, 16, 16), 0.5)
    outputs = {"amodal_masks": probabilities, "pred_visible_masks": probabilities, "scores": torch.arange(4.0)}
    results = processor.post_process_window(outputs, crops["crop_box"], track, window, union_with_visible=True)
    assert sorted(results) == [window.frame_indices[position] for position in window.kept]
    for frame, result in results.items():
        assert np.array_equal(result["amodal_mask"], track[frame])
        assert not result["occluded_mask"].any() and result["occlusion_rate"] == 0.0
        assert result["score"] == float(window.frame_indices.index(frame))
    lowered = processor.post_process_window(outputs, crops["crop_box"], track, window, mask_threshold=0.4)
    box = crops["crop_box"]
    for result in lowered.values():
        assert result["amodal_mask"].sum() == box.height * box.width


def kept_frames(windows) -> list[int]:
    return sorted(window.frame_indices[position] for window in windows for position in window.kept)


def test_object_windows_move_a_fully_hidden_window_to_reach_the_nearest_visible_frame():
    visible = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    windows, uncompleted = object_windows(visible, window_length=4)
    # the clip windows start at 0, 2, 4, 6; those at 2 and 4 never see the object
    assert [window.start for window in windows] == [0, 1, 6]
    assert all(visible[list(window.frame_indices)].any() for window in windows)
    assert kept_frames(windows) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    # frame 5 is 4 frames from frames 1 and 9: no window of 4 frames holds it and a visible frame
    assert uncompleted == [5]


def test_object_windows_keep_the_clip_windows_when_the_object_is_visible_in_each():
    visible = np.array([1, 0, 1, 0, 1, 0, 1], dtype=bool)
    windows, uncompleted = object_windows(visible, window_length=3)
    assert windows == frame_windows(7, 3) and uncompleted == []


def test_object_windows_refuse_an_object_that_is_never_visible():
    with pytest.raises(ValueError, match="empty on every frame"):
        object_windows(np.zeros(5, dtype=bool), window_length=2)


def test_frames_of_different_sizes_are_named():
    frames = [np.zeros((40, 50, 3), np.uint8), np.zeros((40, 51, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"frames\[1\]: has size \(40, 51\), frames\[0\] has \(40, 50\)"):
        load_frames(frames)
    with pytest.raises(ValueError, match="frames: expected a non-empty list of images"):
        load_frames([])


def test_post_processing_restricts_each_frame_to_its_occluders():
    processor = C2FSegVideoProcessor(crop_resolution=16)
    frames, track = moving_square(6)
    window = processor.clip_windows(6, 4)[1]
    crops = processor.preprocess_window(frames, track, window)
    ones = torch.ones(4, 1, 16, 16)
    outputs = {"amodal_masks": ones, "pred_visible_masks": ones, "scores": torch.zeros(4)}
    occluders = np.zeros_like(track)
    occluders[:, 15:, :] = True  # another object covers the lower rows on every frame
    raw = processor.post_process_window(outputs, crops["crop_box"], track, window)
    restricted = processor.post_process_window(outputs, crops["crop_box"], track, window, occluder_track=occluders)
    assert sorted(restricted) == sorted(raw)
    for frame, result in restricted.items():
        assert np.array_equal(result["amodal_mask"], track[frame] | (raw[frame]["amodal_mask"] & occluders[frame]))


def test_the_sequence_mode_is_one_window_rounded_up_to_a_multiple_of_the_model_window():
    window = sequence_window(5, 2)
    assert window.frame_indices == (0, 1, 2, 3, 4, 4) and window.kept == (0, 1, 2, 3, 4)
    assert sequence_window(4, 2).frame_indices == (0, 1, 2, 3)
    track = np.zeros((7, 8, 8), dtype=bool)
    track[0, 2:5, 2:5] = True
    windows, uncompleted = C2FSegVideoProcessor().object_windows(track, 2, clip_mode="sequence")
    assert [window.kept for window in windows] == [tuple(range(7))] and uncompleted == []
    with pytest.raises(ValueError, match=r"clip_mode: expected one of \('windows', 'sequence'\), got 'whole'"):
        C2FSegVideoProcessor().object_windows(track, 2, clip_mode="whole")
