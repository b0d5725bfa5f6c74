"""The video variant of the model: spatial-temporal blocks, their windows and rolls, and the composite on clips."""

import pytest
import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.maskgit import object_generators
from c2f_hf.models.c2f_seg.modeling_c2f_seg import merge_windows, partition_windows, roll_frames
from c2f_testing import TINY_IMAGE_SIZE, random_object_batch, tiny_config, tiny_video_config

NUM_FRAMES = 2


def random_clip_batch(batch_size: int, num_frames: int = NUM_FRAMES):
    pixel_values, visible, amodal = random_object_batch(batch_size * num_frames)
    shape = lambda tensor: tensor.view(batch_size, num_frames, *tensor.shape[1:])  # noqa: E731
    return shape(pixel_values), shape(visible), shape(amodal)


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
        assert torch.equal(transformer._run_layers(hidden, None), hidden)
        assert torch.equal(transformer._run_layers(hidden, 2 * NUM_FRAMES), hidden)
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
    with pytest.raises(ValueError, match=r"pixel_values: expected \(batch, L, 3, S, S\) with L a multiple of T=2"):
        video_model.generate(pixel_values, visible)


def test_clips_are_independent_in_a_batch(video_model):
    pixel_values, visible, _ = random_clip_batch(2)
    both = video_model.generate(pixel_values, visible, greedy=True)
    first = video_model.generate(pixel_values[:1], visible[:1], greedy=True)
    torch.testing.assert_close(both.amodal_masks[:1], first.amodal_masks, atol=1e-5, rtol=0)


def test_a_clip_sampled_from_its_own_generator_is_independent_of_its_batch(video_model):
    pixel_values, visible, _ = random_clip_batch(2)
    both = video_model.generate(pixel_values, visible, generator=object_generators(3, [0, 1]))
    second = video_model.generate(pixel_values[1:], visible[1:], generator=object_generators(3, [1]))
    assert torch.equal(both.amodal_tokens[1], second.amodal_tokens[0])


def test_a_clip_of_several_windows_runs_as_one_rolled_sequence(video_model):
    pixel_values, visible, _ = random_clip_batch(1, num_frames=2 * NUM_FRAMES)
    whole = video_model.generate(pixel_values, visible, greedy=True)
    assert whole.amodal_masks.shape[:2] == (1, 2 * NUM_FRAMES) and whole.scores.shape == (1, 2 * NUM_FRAMES)
    features = video_model.encode_image(pixel_values.flatten(0, 1))
    tokens = video_model.encode_masks(visible.flatten(0, 1))
    masked = torch.full_like(tokens, video_model.mask_token_id)
    as_sequence = video_model.token_logits(features, tokens, masked, clip_length=2 * NUM_FRAMES)
    as_windows = video_model.token_logits(features, tokens, masked)
    assert not torch.allclose(as_sequence, as_windows)


def test_a_clip_length_must_be_a_multiple_of_the_window(video_model):
    features = (torch.randn(6, 32, 4, 4),)
    tokens = torch.zeros(6, 16, dtype=torch.long)
    with pytest.raises(ValueError, match=r"clip_length: expected a multiple of T=2 that divides the 6 frame rows"):
        video_model.token_logits(features, tokens, tokens, clip_length=4)
    with pytest.raises(ValueError, match=r"with L a multiple of T=2"):
        video_model.generate(*random_clip_batch(1, num_frames=3)[:2])


def test_save_and_load_round_trip(video_model, tmp_path):
    video_model.save_pretrained(tmp_path)
    loaded = C2FSegForAmodalSegmentation.from_pretrained(tmp_path).eval()
    assert loaded.config.transformer_config.num_frames == NUM_FRAMES
    pixel_values, visible, _ = random_clip_batch(1)
    expected = video_model.generate(pixel_values, visible, greedy=True)
    torch.testing.assert_close(loaded.generate(pixel_values, visible, greedy=True).amodal_masks, expected.amodal_masks)
