"""The video variant: spatial-temporal blocks, the composite model on clips, the video pipeline and its windows,
the object-clip dataset and the video evaluation path."""

import textwrap

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor, VideoAmodalSegmentationPipeline
from c2f_hf.checkpoints import default_video_model_path
from c2f_hf.data.schema import clip_to_row, load_amodal_dataset, video_features, write_split
from c2f_hf.data.synthetic import SyntheticConfig, generate_clips
from c2f_hf.data.transforms import collate_object_crops
from c2f_hf.data.video_transforms import VideoObjectClipDataset
from c2f_hf.evaluation import evaluate_model
from c2f_hf.models.c2f_seg.modeling_c2f_seg import merge_windows, partition_windows, roll_frames
from c2f_hf.models.c2f_seg.video_processing_c2f_seg import frames_from_file
from c2f_testing import (
    TINY_IMAGE_SIZE,
    random_object_batch,
    run_without_package,
    save_tiny_model,
    tiny_config,
    tiny_video_config,
)

NUM_FRAMES = 2


def random_clip_batch(batch_size: int, num_frames: int = NUM_FRAMES):
    pixel_values, visible, amodal = random_object_batch(batch_size * num_frames)
    shape = lambda tensor: tensor.view(batch_size, num_frames, *tensor.shape[1:])  # noqa: E731
    return shape(pixel_values), shape(visible), shape(amodal)


@pytest.fixture(scope="module")
def video_model():
    torch.manual_seed(0)
    return C2FSegForAmodalSegmentation(tiny_video_config()).eval()


# ----- the spatial-temporal transformer -----


def test_rolling_then_unrolling_is_the_identity():
    hidden = torch.randn(3 * 4, 16, 8)
    rolled = roll_frames(hidden, 2, num_frames=4)
    assert not torch.equal(rolled, hidden)
    assert torch.equal(rolled.view(3, 4, 16, 8)[:, 2], hidden.view(3, 4, 16, 8)[:, 0])
    assert torch.equal(roll_frames(rolled, -2, num_frames=4), hidden)


def test_the_transformer_restores_the_frame_order_after_its_rolls(video_model):
    hidden = torch.randn(2 * NUM_FRAMES, 16, 32)
    transformer = video_model.transformer
    layers = transformer.layers
    transformer.layers = torch.nn.ModuleList(torch.nn.Identity() for _ in range(3))
    try:
        assert torch.equal(transformer._run_layers(hidden), hidden)
    finally:
        transformer.layers = layers


def test_window_partition_round_trips_and_groups_frames_and_cells():
    hidden = torch.arange(2 * 3 * 16, dtype=torch.float32).view(2 * 3, 16, 1)
    windows = partition_windows(hidden, num_frames=3, window_size=2)
    assert windows.shape == (2 * 4, 3 * 4, 1)
    # first window of the first clip: frames 0-2, cells (0,0), (0,1), (1,0), (1,1) of the 4x4 grid
    expected = [frame * 16 + cell for frame in range(3) for cell in (0, 1, 4, 5)]
    assert windows[0, :, 0].tolist() == expected
    assert torch.equal(merge_windows(windows, 3, 2, grid=4), hidden)


@torch.no_grad()
def test_one_frame_one_cell_window_reduces_temporal_attention_to_value_and_output_projections():
    """Softmax over a single key is 1, so the attention output is proj(value(x)) exactly."""
    torch.manual_seed(0)
    block = C2FSegForAmodalSegmentation(tiny_video_config(1, 1)).transformer.layers[0].eval()
    hidden = torch.randn(3, 16, 32)
    spatial = hidden + block.spatial_attention(block.spatial_layernorm(hidden))
    temporal = spatial + block.temporal_attention.out_proj(
        block.temporal_attention.value(block.temporal_layernorm(spatial))
    )
    expected = temporal + block.mlp(block.mlp_layernorm(temporal))
    torch.testing.assert_close(block(hidden), expected, atol=1e-5, rtol=1e-5)


def test_image_and_video_layers_share_attention_and_mlp_and_differ_in_attention(video_model):
    image_layer = C2FSegForAmodalSegmentation(tiny_config()).transformer.layers[0]
    video_layer = video_model.transformer.layers[0]
    assert type(image_layer).__name__ == "C2FSegTransformerLayer"
    assert type(video_layer).__name__ == "C2FSegVideoTransformerLayer"
    assert type(image_layer.attention) is type(video_layer.spatial_attention) is type(video_layer.temporal_attention)
    assert type(image_layer.mlp) is type(video_layer.mlp)
    assert [name for name, _ in image_layer.named_children()] == [
        "layernorm_before",
        "attention",
        "layernorm_after",
        "mlp",
    ]
    assert [name for name, _ in video_layer.named_children()] == [
        "spatial_layernorm",
        "spatial_attention",
        "temporal_layernorm",
        "temporal_attention",
        "mlp_layernorm",
        "mlp",
    ]


# ----- the composite model on clips -----


def test_forward_and_generate_shapes(video_model):
    pixel_values, visible, amodal = random_clip_batch(2)
    output = video_model.train()(pixel_values, visible, amodal_masks=amodal)
    video_model.eval()
    assert output.loss.ndim == 0 and torch.isfinite(output.loss)
    assert output.token_logits.shape == (2, NUM_FRAMES, 16, 17)
    assert output.amodal_logits.shape == (2, NUM_FRAMES, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    generated = video_model.generate(pixel_values, visible, generator=torch.Generator().manual_seed(0))
    assert generated.amodal_masks.shape == (2, NUM_FRAMES, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert generated.amodal_tokens.shape == (2, NUM_FRAMES, 16)
    assert generated.scores.shape == (2, NUM_FRAMES)


def test_wrong_layout_is_refused(video_model):
    pixel_values, visible, _ = random_object_batch(2)
    with pytest.raises(ValueError, match=r"pixel_values: expected \(batch, T=2, 3, S, S\)"):
        video_model.generate(pixel_values, visible)


def test_clips_are_independent_in_a_batch(video_model):
    pixel_values, visible, _ = random_clip_batch(2)
    both = video_model.generate(pixel_values, visible, greedy=True)
    first = video_model.generate(pixel_values[:1], visible[:1], greedy=True)
    torch.testing.assert_close(both.amodal_masks[:1], first.amodal_masks, atol=1e-5, rtol=0)


def test_save_and_load_round_trip(video_model, tmp_path):
    video_model.save_pretrained(tmp_path)
    loaded = C2FSegForAmodalSegmentation.from_pretrained(tmp_path).eval()
    assert loaded.config.transformer_config.num_frames == NUM_FRAMES
    pixel_values, visible, _ = random_clip_batch(1)
    expected = video_model.generate(pixel_values, visible, greedy=True)
    torch.testing.assert_close(loaded.generate(pixel_values, visible, greedy=True).amodal_masks, expected.amodal_masks)


# ----- the video pipeline -----


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


def test_pipeline_outputs_per_object_per_frame_masks_at_the_original_size(video_segmenter):
    assert isinstance(video_segmenter, VideoAmodalSegmentationPipeline)
    frames, tracks = moving_clip(5)
    objects = video_segmenter(frames, visible_masks=tracks, seed=0)
    assert len(objects) == 2
    for item in objects:
        assert len(item["amodal_masks"]) == 5 and len(item["scores"]) == 5
        assert all(mask.mode == "L" and mask.size == (60, 48) for mask in item["amodal_masks"])
        assert item["score"] == pytest.approx(np.mean(item["scores"]))


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


# ----- data and evaluation -----


@pytest.fixture(scope="module")
def clip_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    config = SyntheticConfig(image_size=64, num_frames=5)
    rows = (clip_to_row(clip, f"test-{index}") for index, clip in enumerate(generate_clips(config, 0, 2, "test")))
    write_split(rows, video_features(), folder / "test.parquet")
    return load_amodal_dataset(folder, "test", cache_dir=str(folder / "cache"))


def test_object_clip_windows_share_one_crop_box_and_keep_empty_frames(clip_dataset):
    clips = VideoObjectClipDataset(clip_dataset, num_frames=3, crop_size=TINY_IMAGE_SIZE, training=True)
    assert len(clips) > 0
    assert set(clips.windows[:, 2].tolist()) <= {0, 1, 2}
    batch = collate_object_crops([clips[index] for index in range(len(clips))])
    assert batch["pixel_values"].shape == (len(clips), 3, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    assert batch["crop_box"].shape == (len(clips), 4)
    visible_areas = batch["visible_mask_targets"].flatten(2).sum(-1)
    assert (visible_areas > 0).any(dim=1).all(), "every window shows its object at least once"
    assert (visible_areas == 0).any(), "the synthetic clips hide an object completely in some frame"


def test_evaluation_runs_the_video_model_over_windows(clip_dataset):
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(tiny_video_config(num_frames=3))
    results = evaluate_model(model, clip_dataset, greedy=True, progress=False, max_objects=6)
    assert results.num_objects_added >= 6


def hidden_frame_windows(num_clips: int, window: int):
    """(frames, visible masks, hidden positions) of each first window of T frames, per track of the first
    `num_clips` synthetic test clips, in which the object is fully hidden on some frame but visible on another."""
    for clip in generate_clips(SyntheticConfig(image_size=128, num_frames=8), 0, num_clips, "test"):
        for track in clip.objects:
            visible = track.visible_masks.reshape(len(track.visible_masks), -1).any(axis=1)
            for start in range(len(visible) - window + 1):
                frames = range(start, start + window)
                hidden = [frame - start for frame in frames if not visible[frame] and track.amodal_masks[frame].any()]
                if hidden and visible[start : start + window].any():
                    yield list(clip.frames[frames]), list(track.visible_masks[frames]), hidden
                    break


def test_shipped_video_checkpoint_fills_in_fully_hidden_frames():
    segmenter = pipeline("video-amodal-segmentation", model=str(default_video_model_path()), trust_remote_code=False)
    window = segmenter.model.config.transformer_config.num_frames
    filled = []
    for frames, visible_masks, hidden in hidden_frame_windows(20, window):
        amodal_masks = segmenter(frames, visible_masks=[visible_masks], greedy=True)[0]["amodal_masks"]
        filled += [bool(np.asarray(amodal_masks[position]).any()) for position in hidden]
    assert len(filled) >= 10
    assert sum(filled) / len(filled) >= 0.5, f"only {sum(filled)} of {len(filled)} hidden frames got a mask"


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


def test_a_gif_path_is_a_clip(video_segmenter, tmp_path):
    frames, tracks = moving_clip(3)
    pictures = [PIL.Image.fromarray(frame) for frame in frames]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    decoded = [np.asarray(frame) for frame in frames_from_file(tmp_path / "clip.gif")]
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
