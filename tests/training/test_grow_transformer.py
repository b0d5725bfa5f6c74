"""Growing a trained model's transformer without changing its predictions (`c2f_hf.training.grow_transformer`)."""

import dataclasses

import pytest
import torch

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation, C2FSegImageProcessor
from c2f_hf.training.grow_transformer import grow_model, grown_config, main, repeated_hidden_units
from c2f_testing import random_object_batch, tiny_config, tiny_video_config

NUM_FRAMES = 2


def with_heads(config: C2FSegConfig, num_heads: int) -> C2FSegConfig:
    """`config` with `num_heads` attention heads (the micro preset's 2 heads of 16 straddle its 8-unit parts)."""
    transformer = dataclasses.replace(config.transformer_config, num_attention_heads=num_heads)
    return dataclasses.replace(config, transformer_config=transformer)


def trained_looking_model(config: C2FSegConfig, seed: int = 0) -> C2FSegForAmodalSegmentation:
    """A random model whose norms and biases are not at their initial values either, so every weight matters."""
    torch.manual_seed(seed)
    model = C2FSegForAmodalSegmentation(config).eval()
    with torch.no_grad():
        for parameter in model.transformer.parameters():
            if parameter.dim() == 1:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def cell_logits(model: C2FSegForAmodalSegmentation, pixel_values, visible, clip_length=None) -> torch.Tensor:
    """The transformer's logits with every amodal cell masked: `(batch, cells, vocab + 1)`."""
    image_features = model.encode_image(pixel_values)[-1]
    visible_tokens = model.encode_masks(visible)
    masked = torch.full_like(visible_tokens, model.mask_token_id)
    with torch.no_grad():
        return model.transformer(image_features, visible_tokens, masked, clip_length=clip_length).logits


def test_a_wider_deeper_image_model_predicts_exactly_what_the_small_one_did():
    small = trained_looking_model(with_heads(tiny_config(num_sampling_steps=2), num_heads=4))
    grown = grow_model(small, width_factor=2, num_layers=4, noise=0.0)
    transformer = grown.config.transformer_config
    assert (transformer.hidden_size, transformer.num_attention_heads, transformer.num_hidden_layers) == (64, 8, 4)
    pixel_values, visible, _ = random_object_batch(4)
    torch.testing.assert_close(
        cell_logits(grown, pixel_values, visible), cell_logits(small, pixel_values, visible), atol=1e-5, rtol=1e-5
    )
    before = small.generate(pixel_values, visible, greedy=True)
    after = grown.generate(pixel_values, visible, greedy=True)
    assert torch.equal(after.amodal_tokens, before.amodal_tokens)
    torch.testing.assert_close(after.amodal_masks, before.amodal_masks, atol=1e-5, rtol=1e-5)


def test_a_deeper_video_model_keeps_its_temporal_windows():
    config = with_heads(tiny_video_config(num_frames=NUM_FRAMES), num_heads=4)
    small = trained_looking_model(config)
    grown = grow_model(small, width_factor=2, num_layers=3, noise=0.0)
    pixel_values, visible, _ = random_object_batch(2 * NUM_FRAMES)
    torch.testing.assert_close(
        cell_logits(grown, pixel_values, visible), cell_logits(small, pixel_values, visible), atol=1e-5, rtol=1e-5
    )


def test_deepening_alone_keeps_the_width_and_the_old_layers():
    small = trained_looking_model(tiny_config())
    grown = grow_model(small, width_factor=1, num_layers=3, noise=0.0)
    assert grown.config.transformer_config.hidden_size == small.config.transformer_config.hidden_size
    assert torch.equal(grown.transformer.layers[1].mlp.fc1.weight, small.transformer.layers[1].mlp.fc1.weight)
    assert not grown.transformer.layers[2].mlp.fc2.weight.any()
    assert not grown.transformer.layers[2].attention.out_proj.bias.any()
    small_state = small.state_dict()
    for key, value in grown.state_dict().items():
        if not key.startswith("transformer."):
            assert torch.equal(value, small_state[key]), key


def test_each_embedding_part_repeats_in_place():
    units = repeated_hidden_units(8, 2).tolist()
    assert units == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7]


def test_the_noise_breaks_the_symmetry_between_copies_and_changes_little():
    small = trained_looking_model(with_heads(tiny_config(), num_heads=4))
    grown = grow_model(small, width_factor=2, num_layers=2, noise=1e-3, seed=3)
    weight = grown.transformer.layers[0].mlp.fc1.weight
    copies = weight.shape[0] // 2
    assert not torch.equal(weight[:copies], weight[copies:])
    pixel_values, visible, _ = random_object_batch(2)
    difference = cell_logits(grown, pixel_values, visible) - cell_logits(small, pixel_values, visible)
    assert 0 < difference.abs().max() < 0.05


@pytest.mark.parametrize(
    ("width_factor", "num_layers", "num_heads", "message"),
    [
        (0, 2, 4, "width_factor: expected an integer >= 1, got 0"),
        (2, 1, 4, "num_layers: expected at least the model's 2 layers, got 1"),
        (2, 2, 2, "heads of size 16 straddle the embedding's parts of 8 units"),
    ],
)
def test_impossible_growth_is_refused_with_its_reason(width_factor, num_layers, num_heads, message):
    with pytest.raises(ValueError, match=message):
        grown_config(with_heads(tiny_config(), num_heads), width_factor, num_layers)


def test_the_command_writes_a_loadable_grown_folder(tmp_path):
    small = trained_looking_model(with_heads(tiny_config(), num_heads=4))
    small.save_pretrained(tmp_path / "small")
    C2FSegImageProcessor(crop_resolution=64, mask_threshold=0.4).save_pretrained(tmp_path / "small")
    out = tmp_path / "big"
    assert main(["--model", str(tmp_path / "small"), "--num-layers", "3", "--noise", "0", "--out", str(out)]) == 0
    grown = C2FSegForAmodalSegmentation.from_pretrained(out, dtype=torch.float32).eval()
    assert grown.config.transformer_config.num_hidden_layers == 3
    assert C2FSegImageProcessor.from_pretrained(out).mask_threshold == 0.4
    pixel_values, visible, _ = random_object_batch(2)
    torch.testing.assert_close(
        cell_logits(grown, pixel_values, visible), cell_logits(small, pixel_values, visible), atol=1e-5, rtol=1e-5
    )


def test_the_command_names_an_impossible_growth(tmp_path):
    small = trained_looking_model(tiny_config())
    small.save_pretrained(tmp_path / "small")
    with pytest.raises(SystemExit, match="grow_transformer: cannot widen"):
        main(["--model", str(tmp_path / "small"), "--num-layers", "2", "--out", str(tmp_path / "big")])


@pytest.mark.parametrize("noise", [float("nan"), float("inf"), -1e-3])
def test_a_noise_that_is_not_a_finite_non_negative_number_is_refused(noise):
    with pytest.raises(ValueError, match=f"noise: expected a finite number >= 0, got {noise}"):
        grow_model(trained_looking_model(tiny_config()), width_factor=1, num_layers=3, noise=noise)


def test_growing_leaves_the_global_random_state_alone():
    model = trained_looking_model(tiny_config())
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    grow_model(model, width_factor=1, num_layers=3, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_the_command_never_writes_over_a_folder(tmp_path):
    small = trained_looking_model(tiny_config())
    small.save_pretrained(tmp_path / "small")
    weights = (tmp_path / "small" / "model.safetensors").read_bytes()
    arguments = ["--model", str(tmp_path / "small"), "--width-factor", "1", "--num-layers", "3"]
    with pytest.raises(SystemExit, match="grow_transformer: --out: .* exists and is not an empty folder"):
        main([*arguments, "--out", str(tmp_path / "small")])
    assert (tmp_path / "small" / "model.safetensors").read_bytes() == weights


def test_the_command_names_a_folder_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="grow_transformer: .*no file named model.safetensors"):
        main(["--model", str(tmp_path / "empty"), "--num-layers", "3", "--out", str(tmp_path / "big")])
    assert not (tmp_path / "big").exists()
