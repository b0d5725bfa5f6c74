"""Warm-starting a video model from an image model (`c2f_hf.training.video_from_image`)."""

import dataclasses

import pytest
import torch

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.training.video_from_image import main, video_model_from_image, video_state_from_image
from c2f_testing import random_object_batch, save_tiny_model, save_tiny_video_model, tiny_config, tiny_video_config

NUM_FRAMES = 2


def image_and_video_models(seed: int = 0) -> tuple[C2FSegForAmodalSegmentation, C2FSegForAmodalSegmentation]:
    torch.manual_seed(seed)
    image = C2FSegForAmodalSegmentation(tiny_config(num_sampling_steps=1, min_mask_ratio=1.0)).eval()
    video = C2FSegForAmodalSegmentation(tiny_video_config(num_frames=NUM_FRAMES)).eval()
    return image, video


def assert_predicts_every_frame_as_the_image_model(
    video: C2FSegForAmodalSegmentation, image: C2FSegForAmodalSegmentation
) -> None:
    """Greedy decoding of 2 clips of `NUM_FRAMES` random frames gives the image model's tokens and masks per frame."""
    pixel_values, visible, _ = random_object_batch(2 * NUM_FRAMES)
    per_frame = image.generate(pixel_values, visible, greedy=True)
    clip = video.generate(
        pixel_values.view(2, NUM_FRAMES, *pixel_values.shape[1:]),
        visible.view(2, NUM_FRAMES, *visible.shape[1:]),
        greedy=True,
    )
    assert torch.equal(clip.amodal_tokens.flatten(0, 1), per_frame.amodal_tokens)
    torch.testing.assert_close(clip.amodal_masks.flatten(0, 1), per_frame.amodal_masks, atol=1e-5, rtol=1e-5)


def test_the_warm_started_video_model_predicts_every_frame_as_the_image_model():
    image, video = image_and_video_models()
    video = video_model_from_image(image, video)
    assert_predicts_every_frame_as_the_image_model(video, image)
    assert (video.config.num_sampling_steps, video.config.min_mask_ratio) == (1, 1.0)


def test_image_weights_take_the_spatial_names_and_the_temporal_output_starts_at_zero():
    image, video = image_and_video_models()
    image_state, video_state = image.state_dict(), video.state_dict()
    state = video_state_from_image(image_state, video_state)
    layer = "transformer.layers.0."
    assert torch.equal(state[layer + "spatial_attention.query.weight"], image_state[layer + "attention.query.weight"])
    assert torch.equal(state[layer + "mlp_layernorm.weight"], image_state[layer + "layernorm_after.weight"])
    assert torch.equal(state["vq_model.decoder.conv_out.weight"], image_state["vq_model.decoder.conv_out.weight"])
    out_projection = [key for key in state if ".temporal_attention.out_proj." in key]
    assert out_projection and all(not state[key].any() for key in out_projection)
    query = layer + "temporal_attention.query.weight"
    assert torch.equal(state[query], video_state[query])


def test_models_of_different_sizes_are_refused_with_the_weights_named():
    image, video = image_and_video_models()
    wider = C2FSegConfig.from_dict(tiny_config().to_dict())
    wider.transformer_config = dataclasses.replace(wider.transformer_config, hidden_size=64)
    other_image = C2FSegForAmodalSegmentation(wider)
    expected = r"beyond the temporal branch: transformer.embeddings.image_projection.weight: image \(32, 32, 3, 3\) but"
    with pytest.raises(ValueError, match=expected):
        video_model_from_image(other_image, video)
    with pytest.raises(ValueError, match="the image model has temporal weights"):
        video_state_from_image(video.state_dict(), video.state_dict())
    with pytest.raises(ValueError, match="the video model has no num_frames"):
        video_model_from_image(image, image)


def test_the_command_writes_a_loadable_video_model(tmp_path):
    save_tiny_model(tmp_path / "image")
    save_tiny_video_model(tmp_path / "video")
    assert (
        main(
            [
                "--image-model",
                str(tmp_path / "image"),
                "--video-model",
                str(tmp_path / "video"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    loaded = C2FSegForAmodalSegmentation.from_pretrained(tmp_path / "out")
    image = C2FSegForAmodalSegmentation.from_pretrained(tmp_path / "image")
    assert loaded.num_frames == tiny_video_config().transformer_config.num_frames
    assert torch.equal(
        loaded.backbone.state_dict()["embedder.embedder.convolution.weight"],
        image.backbone.state_dict()["embedder.embedder.convolution.weight"],
    )
    assert (tmp_path / "out" / "preprocessor_config.json").is_file()
    with pytest.raises(SystemExit, match="video_from_image: the video model has no num_frames"):
        main(
            [
                "--image-model",
                str(tmp_path / "image"),
                "--video-model",
                str(tmp_path / "image"),
                "--out",
                str(tmp_path / "refused"),
            ]
        )
    assert not (tmp_path / "refused").exists()


def test_the_command_never_writes_over_a_folder(tmp_path):
    save_tiny_model(tmp_path / "image")
    save_tiny_video_model(tmp_path / "video")
    weights = (tmp_path / "video" / "model.safetensors").read_bytes()
    video = str(tmp_path / "video")
    with pytest.raises(SystemExit, match="video_from_image: --out: .* exists and is not an empty folder"):
        main(["--image-model", str(tmp_path / "image"), "--video-model", video, "--out", video])
    assert (tmp_path / "video" / "model.safetensors").read_bytes() == weights


def test_the_command_makes_a_video_model_of_the_image_models_size_from_num_frames(tmp_path):
    image_folder = save_tiny_model(tmp_path / "image")
    saved = C2FSegImageProcessor.from_pretrained(image_folder, mask_threshold=0.45, second_crop_ratio=1.5)
    saved.save_pretrained(image_folder)
    out = tmp_path / "out"
    assert main(["--image-model", str(image_folder), "--num-frames", str(NUM_FRAMES), "--out", str(out)]) == 0
    image = C2FSegForAmodalSegmentation.from_pretrained(image_folder).eval()
    video = C2FSegForAmodalSegmentation.from_pretrained(out).eval()
    assert (video.num_frames, video.config.transformer_config.spatial_window_size) == (NUM_FRAMES, 2)
    assert video.config.transformer_config.hidden_size == image.config.transformer_config.hidden_size
    processor = C2FSegImageProcessor.from_pretrained(out)
    assert processor.mask_threshold == 0.45, "the image model's processor"
    assert processor.second_crop_ratio is None, "a video model crops each window once"
    assert_predicts_every_frame_as_the_image_model(video, image)


def test_num_frames_refuses_a_window_the_grid_cannot_take_and_an_out_folder_before_loading(tmp_path):
    image_folder = str(save_tiny_model(tmp_path / "image"))
    with pytest.raises(SystemExit, match=r"video_from_image: .*spatial_window_size \(3\) must divide"):
        main(
            [
                "--image-model",
                image_folder,
                "--num-frames",
                "2",
                "--spatial-window-size",
                "3",
                "--out",
                str(tmp_path / "a"),
            ]
        )
    with pytest.raises(SystemExit, match="video_from_image: .*num_frames must be positive"):
        main(["--image-model", image_folder, "--num-frames", "0", "--out", str(tmp_path / "b")])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(SystemExit, match="video_from_image: --out: .* exists"):
        main(["--image-model", str(tmp_path / "missing"), "--num-frames", "2", "--out", image_folder])


def test_a_folder_that_is_not_a_model_is_named_and_nothing_is_written(tmp_path):
    without_processor = save_tiny_model(tmp_path / "image")
    (without_processor / "preprocessor_config.json").unlink()
    with pytest.raises(SystemExit, match="video_from_image: --image-model .*missing"):
        main(["--image-model", str(tmp_path / "missing"), "--num-frames", "2", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="video_from_image: --image-model .*preprocessor_config.json"):
        main(["--image-model", str(without_processor), "--num-frames", "2", "--out", str(tmp_path / "b")])
    with pytest.raises(SystemExit, match="video_from_image: --video-model .*missing"):
        main(
            [
                "--image-model",
                str(without_processor),
                "--video-model",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "c"),
            ]
        )
    assert not any((tmp_path / name).exists() for name in "abc")
