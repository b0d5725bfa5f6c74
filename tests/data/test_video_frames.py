"""The video->frames transform (`c2f_hf.data.video_frames.frame_dataset`) on tiny synthetic clips."""

import numpy as np
import pytest

from c2f_hf.cli import main
from c2f_hf.data.schema import load_amodal_dataset
from c2f_hf.data.transforms import decode_mask
from c2f_hf.data.video_frames import frame_dataset


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    arguments = ["--num-train", "0", "--num-test", "2", "--size", "64", "--video", "--num-frames", "4"]
    main(["data", "synthetic", "--out", str(folder), *arguments])
    return folder


def test_frame_dataset_keeps_the_frames_where_each_track_is_visible(video_folder, tmp_path):
    clips = load_amodal_dataset(video_folder, "test")
    visible_per_track_frame = [
        decode_mask(mask).any()
        for clip in clips.with_format("arrow")[:].to_pylist()
        for track in clip["objects"]
        for mask in track["visible_masks"]
    ]
    expected = sum(visible_per_track_frame)
    assert expected < len(visible_per_track_frame)  # the synthetic clips hide an object in some frame

    frames = frame_dataset(clips, tmp_path)
    assert sum(len(row["objects"]) for row in frames) == expected
    assert frames[0]["image_id"] == f"{clips[0]['video_id']}/0"
    assert all(np.asarray(item["visible_mask"]).any() for row in frames for item in row["objects"])
    assert sum(len(row["objects"]) for row in frame_dataset(clips, tmp_path / "limited", max_objects=3)) >= 3
