import json

import numpy as np
import pytest

from c2f_hf.data.schema import clip_to_row, video_features, write_split
from c2f_hf.data.synthetic import SyntheticClip, SyntheticTrack
from c2f_hf.evaluation.hidden_frames import (
    HiddenFrameResult,
    hidden_frames_of_track,
    main,
    measure_hidden_frames,
    summarize,
    visible_frame_area,
)
from c2f_testing import save_tiny_video_model


def _square_track(num_frames: int, hidden_frames: set[int], size: int = 64) -> SyntheticTrack:
    """A 20x20 square in every frame, fully hidden (empty visible mask) on `hidden_frames`."""
    amodal = np.zeros((num_frames, size, size), dtype=bool)
    amodal[:, 20:40, 20:40] = True
    visible = amodal.copy()
    visible[sorted(hidden_frames)] = False
    return SyntheticTrack("square", amodal, visible, (~visible & amodal).sum(axis=(1, 2)) / amodal.sum(axis=(1, 2)))


def _clip_folder(folder, tracks: list[SyntheticTrack], num_frames: int = 3):
    frames = np.random.default_rng(0).integers(0, 255, (num_frames, 64, 64, 3), dtype=np.uint8)
    write_split([clip_to_row(SyntheticClip(frames, tracks), "clip-0")], video_features(), folder / "test.parquet")
    return folder


def test_hidden_frames_are_those_inside_the_frame_without_visible_pixels():
    track = _square_track(4, {1, 2})
    track.amodal_masks[2] = False
    assert hidden_frames_of_track(track.visible_masks, track.amodal_masks) == [1]
    assert visible_frame_area(track.visible_masks, track.amodal_masks) == 400.0


def test_summary_counts_frames_within_the_tolerance_of_the_visible_frame_area():
    def result(area: int, completed: bool = True) -> HiddenFrameResult:
        return HiddenFrameResult("clip", 0, 1, area, 100.0, 0.5, completed)

    summary = summarize([result(100), result(129), result(60), result(0, completed=False)], tolerance=0.3)
    assert summary["hidden_frames"] == 4 and summary["tracks"] == 1 and summary["completed_frames"] == 3
    assert summary["fraction_within_tolerance"] == 0.5
    assert summary["fraction_of_completed_within_tolerance"] == pytest.approx(2 / 3)
    assert summary["fraction_non_empty"] == 0.75 and summary["mean_iou"] == 50.0
    with pytest.raises(ValueError, match="no fully hidden frame"):
        summarize([])


def test_measured_through_the_video_pipeline_on_each_hidden_frame(tmp_path):
    model = save_tiny_video_model(tmp_path / "model")
    dataset = _clip_folder(tmp_path / "data", [_square_track(3, {1}), _square_track(3, set())])
    results = measure_hidden_frames(model, dataset, greedy=True)
    assert [(result.object_index, result.frame, result.visible_frame_area) for result in results] == [(0, 1, 400.0)]
    assert results[0].completed and 0 <= results[0].predicted_area <= 64 * 64
    assert main(["--model", str(model), "--dataset", str(dataset), "--greedy", "--out", str(tmp_path / "h.json")]) == 0
    written = json.loads((tmp_path / "h.json").read_text())
    assert written["summary"]["hidden_frames"] == 1 and written["frames"][0]["frame"] == 1
