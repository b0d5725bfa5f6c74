"""The video->frames transform (`c2f_hf.data.video_frames.frame_dataset`) on tiny synthetic clips."""

import numpy as np
import pytest

from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.data.video_frames import frame_dataset
from c2f_testing import synthetic_video_folder, visible_track_frames


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    return synthetic_video_folder(tmp_path_factory.mktemp("videos"))


def test_frame_dataset_keeps_the_frames_where_each_track_is_visible(video_folder, tmp_path):
    clips = load_amodal_dataset(video_folder, "test")
    expected, total = visible_track_frames(clips)
    assert expected < total  # the synthetic clips hide an object in some frame

    frames = frame_dataset(clips, tmp_path)
    assert sum(len(row["objects"]) for row in frames) == expected
    assert frames[0]["image_id"] == f"{clips[0]['video_id']}/0"
    assert all(np.asarray(item["visible_mask"]).any() for row in frames for item in row["objects"])
    assert sum(len(row["objects"]) for row in frame_dataset(clips, tmp_path / "limited", max_objects=3)) >= 3
