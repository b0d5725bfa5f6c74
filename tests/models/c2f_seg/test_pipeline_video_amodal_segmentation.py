"""The `video-amodal-segmentation` pipeline: per-object per-frame masks, windows, hidden frames, remote code and
bad input."""

import textwrap

import numpy as np
import PIL.Image
import pytest
from transformers import pipeline

from c2f_hf import C2FSegImageProcessor, VideoAmodalSegmentationPipeline
from c2f_hf.hub.export import marked_for_remote_code
from c2f_hf.models.c2f_seg.image_loading import load_rgb_image
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import frames_from_file, sequence_window
from c2f_testing import TINY_IMAGE_SIZE, run_without_package, save_tiny_model


@pytest.fixture(scope="module")
def video_folder(video_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_video_model")
    video_model.save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=TINY_IMAGE_SIZE).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def video_segmenter(video_folder):
    return pipeline("video-amodal-segmentation", model=str(video_folder), trust_remote_code=False)


def moving_clip(num_frames: int, hidden_frames: tuple[int, ...] = (), height: int = 48, width: int = 60):
    """Frames with two squares moving right; the first is fully hidden (empty visible mask) on `hidden_frames`."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num_frames)]
    tracks = [[], []]
    for frame in range(num_frames):
        for index, (top, left) in enumerate(((5, 3 + 2 * frame), (25, 20 + frame))):
            mask = np.zeros((height, width), dtype=bool)
            if not (index == 0 and frame in hidden_frames):
                mask[top : top + 12, left : left + 12] = True
            tracks[index].append(mask)
    return frames, tracks


def test_seeded_clip_sampling_does_not_depend_on_the_batch_size(video_segmenter):
    frames, tracks = moving_clip(5)
    one_at_a_time = video_segmenter(frames, visible_masks=tracks, seed=2, batch_size=1)
    together = video_segmenter(frames, visible_masks=tracks, seed=2, batch_size=4)
    for first, second in zip(one_at_a_time, together):
        assert first["scores"] == pytest.approx(second["scores"], abs=1e-6)
        for one, other in zip(first["amodal_masks"], second["amodal_masks"]):
            assert np.array_equal(np.asarray(one), np.asarray(other))


def test_pipeline_outputs_per_object_per_frame_masks_at_the_original_size(video_segmenter):
    assert isinstance(video_segmenter, VideoAmodalSegmentationPipeline)
    frames, tracks = moving_clip(5)
    objects = video_segmenter(frames, visible_masks=tracks, seed=0)
    assert len(objects) == 2
    for item, track in zip(objects, tracks):
        assert len(item["amodal_masks"]) == 5 and len(item["scores"]) == 5
        assert all(mask.mode == "L" and mask.size == (60, 48) for mask in item["amodal_masks"])
        assert item["score"] == pytest.approx(np.mean(item["scores"]))
        assert np.array_equal(np.stack([np.asarray(mask) > 0 for mask in item["visible_masks"]]), np.stack(track))
        assert item["detection_scores"] == [None] * 5


def test_pipeline_takes_each_frame_from_its_most_central_window(video_segmenter, video_model):
    frames, tracks = moving_clip(3)
    objects = video_segmenter(frames, visible_masks=tracks[:1], greedy=True)
    single = video_segmenter(frames[1:3], visible_masks=[tracks[0][1:3]], greedy=True)
    # T = 2, windows start at 0 and 1; frame 2 is kept from the window (1, 2), which is the whole 2-frame clip
    assert np.array_equal(np.asarray(objects[0]["amodal_masks"][2]), np.asarray(single[0]["amodal_masks"][1]))
    assert objects[0]["scores"][2] == pytest.approx(single[0]["scores"][1])


def test_empty_masks_are_accepted_on_hidden_frames(video_segmenter):
    frames, tracks = moving_clip(4, hidden_frames=(2,))
    objects = video_segmenter(frames, visible_masks=tracks, seed=0)
    assert len(objects[0]["amodal_masks"]) == 4


def test_pipeline_applies_the_processors_mask_policy_per_frame(video_segmenter):
    frames, tracks = moving_clip(4, hidden_frames=(2,))
    plain = video_segmenter(frames, visible_masks=tracks, greedy=True)
    united = video_segmenter(frames, visible_masks=tracks, greedy=True, union_with_visible=True)
    for plain_track, united_track, visible in zip(plain, united, tracks):
        assert set(united_track) >= {"pred_visible_masks", "occluded_masks", "bboxes", "occlusion_rates"}
        for frame, visible_mask in enumerate(visible):
            amodal = np.asarray(united_track["amodal_masks"][frame]) > 0
            raw = np.asarray(plain_track["amodal_masks"][frame]) > 0
            assert np.array_equal(amodal, raw | visible_mask)
            occluded = np.asarray(united_track["occluded_masks"][frame]) > 0
            assert np.array_equal(occluded, amodal & ~visible_mask)
            expected_rate = occluded.sum() / amodal.sum() if amodal.any() else 0.0
            assert united_track["occlusion_rates"][frame] == pytest.approx(expected_rate)


def test_restrict_to_occluders_keeps_hidden_parts_only_on_the_other_tracks_of_the_frame(video_segmenter):
    frames, tracks = moving_clip(4, hidden_frames=(2,))
    tracks[1] = [mask | np.roll(mask, -12, axis=0) for mask in tracks[1]]  # taller, so it shares crops with the first
    # mask_threshold 0 predicts every pixel: what remains is the visible mask and the other track on that frame.
    objects = video_segmenter(frames, visible_masks=tracks, greedy=True, mask_threshold=0.0, restrict_to_occluders=True)
    raw = video_segmenter(frames, visible_masks=tracks, greedy=True)
    restricted = video_segmenter(frames, visible_masks=tracks, greedy=True, restrict_to_occluders=True)
    for index, (everything, plain, result) in enumerate(zip(objects, raw, restricted)):
        for frame, visible in enumerate(tracks[index]):
            other = tracks[1 - index][frame]
            assert np.array_equal(np.asarray(everything["amodal_masks"][frame]) > 0, visible | other)
            expected = visible | ((np.asarray(plain["amodal_masks"][frame]) > 0) & other)
            assert np.array_equal(np.asarray(result["amodal_masks"][frame]) > 0, expected)
    with pytest.raises(ValueError, match="restrict_to_occluders: expected True or False, got 'yes'"):
        video_segmenter(frames, visible_masks=tracks, restrict_to_occluders="yes")


def test_a_track_hidden_in_a_whole_window_is_completed_from_a_window_that_reaches_a_visible_frame(video_segmenter):
    frames, tracks = moving_clip(5, hidden_frames=(2, 3))
    # T = 2: the clip window (2, 3) never sees object 0; frame 2 is run with frame 1, frame 3 with frame 4
    objects = video_segmenter(frames, visible_masks=tracks, greedy=True)
    assert objects[0]["completed"] == [True] * 5
    assert objects[0]["scores"][2] > 0 and objects[0]["scores"][3] > 0


def test_frames_too_far_from_every_visible_frame_are_marked_and_named(video_segmenter, caplog):
    frames, tracks = moving_clip(6, hidden_frames=(1, 2, 3, 4, 5))
    with caplog.at_level("WARNING", logger="c2f_hf.models.c2f_seg.pipeline_video_amodal_segmentation"):
        objects = video_segmenter(frames, visible_masks=tracks, greedy=True)
    assert "visible_masks[0]: frames [2, 3, 4, 5]" in caplog.text
    assert objects[0]["completed"] == [True, True, False, False, False, False]
    assert objects[1]["completed"] == [True] * 6
    for frame in range(2, 6):
        assert not np.asarray(objects[0]["amodal_masks"][frame]).any()
        assert objects[0]["bboxes"][frame] is None and objects[0]["scores"][frame] == 0.0
    assert objects[0]["score"] == pytest.approx(np.mean(objects[0]["scores"][:2]))


def test_the_sequence_mode_runs_the_clip_as_one_rolled_sequence_and_completes_every_frame(video_segmenter, video_model):
    frames, tracks = moving_clip(6, hidden_frames=(1, 2, 3, 4, 5))
    objects = video_segmenter(frames, visible_masks=tracks, greedy=True, clip_mode="sequence")
    assert objects[0]["completed"] == [True] * 6 and objects[1]["completed"] == [True] * 6
    processor = video_segmenter.video_processor
    track = np.stack(tracks[1])
    window = sequence_window(6, 2)
    crops = processor.preprocess_window(frames, track, window)
    output = video_model.generate(crops["pixel_values"][None], crops["visible_masks"][None], greedy=True)
    assert output.amodal_masks.shape[1] == 6
    assert objects[1]["scores"] == pytest.approx(output.scores[0].tolist(), abs=1e-6)


def test_a_track_never_visible_is_refused(video_segmenter):
    frames, tracks = moving_clip(4, hidden_frames=(0, 1, 2, 3))
    with pytest.raises(ValueError, match=r"visible_masks\[0\]: the object's visible mask is empty on every frame"):
        video_segmenter(frames, visible_masks=tracks)


def test_bad_track_lengths_are_named(video_segmenter):
    frames, tracks = moving_clip(3)
    with pytest.raises(ValueError, match=r"visible_masks\[1\]: expected a list of 3 masks"):
        video_segmenter(frames, visible_masks=[tracks[0], tracks[1][:2]])


def test_saved_video_pipeline_runs_with_remote_code_without_the_package(video_segmenter, tmp_path):
    frames, tracks = moving_clip(3)
    expected = video_segmenter(frames, visible_masks=tracks, greedy=True)
    with marked_for_remote_code():  # as `c2f-hf export` saves: plain folders name no remote code
        video_segmenter.save_pretrained(tmp_path / "pipe")
    np.savez(tmp_path / "inputs.npz", frames=np.stack(frames), masks=np.stack([np.stack(t) for t in tracks]))
    script = textwrap.dedent(
        f"""
        import numpy as np
        from transformers import pipeline
        inputs = np.load({str(tmp_path / "inputs.npz")!r})
        pipe = pipeline("video-amodal-segmentation", model={str(tmp_path / "pipe")!r}, trust_remote_code=True)
        assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
        objects = pipe(list(inputs["frames"]), visible_masks=[list(track) for track in inputs["masks"]], greedy=True)
        np.savez({str(tmp_path / "out.npz")!r}, masks=np.array([[np.asarray(m) for m in o["amodal_masks"]]
                 for o in objects]), scores=np.array([o["scores"] for o in objects]))
        """
    )
    result = run_without_package(script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = np.load(tmp_path / "out.npz")
    expected_masks = np.array([[np.asarray(mask) for mask in item["amodal_masks"]] for item in expected])
    assert np.array_equal(outputs["masks"], expected_masks)
    assert np.allclose(outputs["scores"], [item["scores"] for item in expected], atol=1e-6)


def test_video_pipeline_refuses_an_empty_list_and_an_image_model(video_segmenter, tmp_path):
    with pytest.raises(ValueError, match="inputs: the list is empty"):
        video_segmenter([])
    image_folder = save_tiny_model(tmp_path / "image_model")
    with pytest.raises(ValueError, match=r"image_model: is an image model \(transformer_config.num_frames is None\)"):
        pipeline("video-amodal-segmentation", model=str(image_folder))


def test_video_pipeline_refuses_bad_parameters_by_name(video_segmenter):
    frames, tracks = moving_clip(3)
    with pytest.raises(ValueError, match="num_steps: expected a positive integer"):
        video_segmenter(frames, visible_masks=tracks, num_steps=0)
    with pytest.raises(ValueError, match="seed: expected an integer, got True"):
        video_segmenter(frames, visible_masks=tracks, seed=True)
    with pytest.raises(ValueError, match="clip_mode: expected one of"):
        video_segmenter(frames, visible_masks=tracks, clip_mode="all")


def test_a_gif_path_is_a_clip(video_segmenter, tmp_path):
    frames, tracks = moving_clip(3)
    pictures = [PIL.Image.fromarray(frame) for frame in frames]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    decoded = [load_rgb_image(frame) for frame in frames_from_file(tmp_path / "clip.gif")]
    from_gif = video_segmenter(str(tmp_path / "clip.gif"), visible_masks=tracks, greedy=True)
    from_frames = video_segmenter(decoded, visible_masks=tracks, greedy=True)
    assert len(decoded) == 3 and decoded[0].shape == (48, 60, 3)
    for gif_track, frame_track in zip(from_gif, from_frames):
        assert [np.asarray(m).tolist() for m in gif_track["amodal_masks"]] == [
            np.asarray(m).tolist() for m in frame_track["amodal_masks"]
        ]
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(ValueError, match="is not a multi-frame image PIL can read .* decode other video formats"):
        video_segmenter(str(tmp_path / "clip.mp4"), visible_masks=tracks)
