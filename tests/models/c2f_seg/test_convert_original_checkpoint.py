"""The bundle's converter of the authors' checkpoints: the key table onto our model, strict loading, and numerical
faithfulness to the authors' computations (`tests/reference_original.py`)."""

import json
import re
from pathlib import Path

import pytest
import reference_original as reference
import torch

from authors_checkpoints import as_sections, authors_key, authors_state_dicts, rename
from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.convert_original_checkpoint import build_converted_model, rename_original_state_dicts
from c2f_testing import random_object_batch, tiny_config

# A copy of shared/reference/original_checkpoint_layout_KINS.json, so the suite needs nothing outside the repository.
LAYOUT_PATH = Path(__file__).parents[2] / "fixtures" / "original_checkpoint_layout_KINS.json"
ATOL = 1e-4


# ----- the released KINS layout and the authors' video transformer, on the meta device -----


def test_kins_layout_converts_one_to_one_onto_the_default_model():
    layout = json.loads(LAYOUT_PATH.read_text())
    state_dicts = {
        re.search(r"\['(\w+)'\]", file_key)[1]: {key: torch.empty(shape, device="meta") for key, shape in keys.items()}
        for file_key, keys in layout.items()
    }
    renamed = rename(state_dicts)
    with torch.device("meta"):
        model = C2FSegForAmodalSegmentation(C2FSegConfig())
    expected = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert {key: list(tensor.shape) for key, tensor in renamed.items()} == expected
    for section, state in state_dicts.items():
        for key in state:
            if not key.startswith("encoder.model.fc."):
                assert authors_key(next(iter(rename({**dict.fromkeys(state_dicts, {}), section: {key: 0}})))) == (
                    section,
                    key,
                )


def authors_video_transformer_layout(num_layers: int, width: int, vocab: int, cells: int, channels: int) -> dict:
    """Names and shapes of the authors' video `MaskedTransformer` state dict, written from their
    `src/video_component.py` (`Block`: ln1, ln2, ln3, attn1, attn2, mlp; `CausalSelfAttention`: key, query,
    value, proj)."""
    layout = {
        "conv_in.weight": [width // 2, channels, 3, 3],
        "conv_in.bias": [width // 2],
        "c_emb.weight": [vocab + 1, width // 4],
        "z_emb.weight": [vocab + 1, width // 4],
        "pos_emb.weight": [cells, width],
        "dec.ln1.weight": [width],
        "dec.ln1.bias": [width],
        "dec.dense.weight": [width, width],
        "dec.dense.bias": [width],
        "dec.ln2.weight": [width],
        "dec.ln2.bias": [width],
        "m_dec.weight": [vocab + 1, width],
        "m_bias": [vocab + 1],
    }
    for block in range(num_layers):
        for norm in ("ln1", "ln2", "ln3"):
            layout.update({f"blocks.{block}.{norm}.weight": [width], f"blocks.{block}.{norm}.bias": [width]})
        for attention in ("attn1", "attn2"):
            for projection in ("key", "query", "value", "proj"):
                layout[f"blocks.{block}.{attention}.{projection}.weight"] = [width, width]
                layout[f"blocks.{block}.{attention}.{projection}.bias"] = [width]
        layout.update({f"blocks.{block}.mlp.0.weight": [4 * width, width], f"blocks.{block}.mlp.0.bias": [4 * width]})
        layout.update({f"blocks.{block}.mlp.2.weight": [width, 4 * width], f"blocks.{block}.mlp.2.bias": [width]})
    return layout


def test_movid_a_video_transformer_layout_converts_one_to_one():
    from c2f_hf.presets import model_config

    config = model_config("movid_a")
    layout = authors_video_transformer_layout(8, 768, 256, 256, 2048)
    renamed = rename_original_state_dicts(
        {}, {key: torch.empty(shape, device="meta") for key, shape in layout.items()}, {}, {}
    )
    with torch.device("meta"):
        model = C2FSegForAmodalSegmentation(config)
    ours = {key: list(tensor.shape) for key, tensor in model.state_dict().items() if key.startswith("transformer.")}
    assert {key: list(tensor.shape) for key, tensor in renamed.items()} == ours


@torch.no_grad()
@pytest.mark.parametrize("num_frames", [2, 4], ids=["one window", "a clip of two windows"])
def test_video_transformer_logits_match_the_authors(num_frames):
    """A clip of T frames, and a clip of 2T run as one sequence rolled as a whole, as the authors run FISHBOWL."""
    config = tiny_config()
    config.transformer_config.num_frames = 2
    config.transformer_config.spatial_window_size = 2
    torch.manual_seed(0)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(config), seed=2)
    model, ignored = build_converted_model(config, as_sections(state_dicts, Path("vq.pth"), Path("c2f.pth")))
    assert ignored == []
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(num_frames, 32, 4, 4, generator=generator)
    visible_tokens = torch.randint(0, 16, (num_frames, 16), generator=generator)
    amodal_tokens = torch.randint(0, 17, (num_frames, 16), generator=generator)
    ours = model.token_logits((features,), visible_tokens, amodal_tokens, clip_length=num_frames)
    theirs = reference.video_transformer_logits(
        state_dicts["model"], features, visible_tokens, amodal_tokens, 2, window_length=2, window_size=2
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    if num_frames > 2:  # run as separate windows, the later blocks differ
        windows_apart = model.token_logits((features,), visible_tokens, amodal_tokens)
        assert (windows_apart - theirs).abs().max() > 10 * ATOL


# ----- strict loading -----


@pytest.fixture(scope="module")
def tiny_original():
    torch.manual_seed(1)
    return authors_state_dicts(C2FSegForAmodalSegmentation(tiny_config()), seed=1)


def test_unexpected_keys_are_refused_unless_allowed(tiny_original):
    state_dicts = {name: dict(state) for name, state in tiny_original.items()}
    state_dicts["refine"]["extra.weight"] = torch.zeros(2)
    state_dicts["img_encoder"]["encoder.model.layer9.0.foo.weight"] = torch.zeros(2)
    sections = as_sections(state_dicts, Path("vq.pth"), Path("c2f.pth"))
    with pytest.raises(
        ValueError, match=r"unexpected.*c2f\.pth\['img_encoder'\]\['encoder\.model\.layer9.*'extra\.weight'"
    ):
        build_converted_model(tiny_config(), sections)
    _, ignored = build_converted_model(tiny_config(), sections, allow_unexpected=True)
    assert any("extra.weight" in entry for entry in ignored) and any("layer9" in entry for entry in ignored)


def test_missing_and_misshaped_keys_are_listed(tiny_original):
    state_dicts = {name: dict(state) for name, state in tiny_original.items()}
    del state_dicts["model"]["m_bias"]
    state_dicts["g_model"]["quant_conv.bias"] = torch.zeros(3)
    with pytest.raises(ValueError) as raised:
        build_converted_model(tiny_config(), as_sections(state_dicts, Path("vq.pth"), Path("c2f.pth")))
    message = str(raised.value)
    assert "missing" in message and "'transformer.prediction_head.bias'" in message
    assert (
        "vq.pth['g_model']['quant_conv.bias'] -> 'vq_model.quant_conv.bias': expected shape [8], found [3]" in message
    )


# ----- (d) numerical faithfulness to the authors' computations (tiny config, fp32) -----


@pytest.fixture(scope="module")
def tiny_converted(tiny_original):
    sections = as_sections(tiny_original, Path("vq.pth"), Path("c2f.pth"))
    model, ignored = build_converted_model(tiny_config(), sections)
    assert ignored == []
    return model


@pytest.fixture(scope="module")
def tiny_inputs():
    pixel_values, visible_masks, amodal_masks = random_object_batch(2, seed=3)
    return pixel_values, visible_masks, amodal_masks


def vq_groups() -> int:
    return tiny_config().vq_config.norm_num_groups


@torch.no_grad()
def test_backbone_features_match_the_authors(tiny_converted, tiny_original, tiny_inputs):
    ours = tiny_converted.encode_image(tiny_inputs[0])
    theirs = reference.resnet_features(tiny_original["img_encoder"], tiny_inputs[0])
    for our_map, their_map in zip(ours, theirs, strict=True):
        torch.testing.assert_close(our_map, their_map, atol=ATOL, rtol=0)


@torch.no_grad()
def test_vq_encode_and_decode_match_the_authors(tiny_converted, tiny_original, tiny_inputs):
    masks = torch.cat([tiny_inputs[1], tiny_inputs[2]])
    encoded = tiny_converted.vq_model.encode(masks)
    latents, indices = reference.vq_encode(tiny_original["g_model"], masks, groups=vq_groups())
    torch.testing.assert_close(encoded.latents, latents, atol=ATOL, rtol=0)
    assert torch.equal(encoded.indices, indices)
    grid = tiny_converted.config.vq_config.latent_size
    tokens = torch.randint(0, 16, (3, grid * grid), generator=torch.Generator().manual_seed(4))
    expected = reference.vq_decode(tiny_original["g_model"], tokens, grid, groups=vq_groups())
    torch.testing.assert_close(tiny_converted.decode_tokens(tokens), expected, atol=ATOL, rtol=0)


@torch.no_grad()
def test_transformer_logits_match_the_authors(tiny_converted, tiny_original, tiny_inputs):
    features = tiny_converted.encode_image(tiny_inputs[0])
    generator = torch.Generator().manual_seed(5)
    visible_tokens = torch.randint(0, 16, (2, 16), generator=generator)
    amodal_tokens = torch.randint(0, 17, (2, 16), generator=generator)
    ours = tiny_converted.token_logits(features, visible_tokens, amodal_tokens)
    theirs = reference.transformer_logits(tiny_original["model"], features[-1], visible_tokens, amodal_tokens, 2)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@torch.no_grad()
def test_refiner_logits_match_the_authors(tiny_converted, tiny_original, tiny_inputs):
    features = tiny_converted.encode_image(tiny_inputs[0])
    coarse = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(6)) * tiny_inputs[2]
    ours = tiny_converted.refine(features, coarse)
    visible, amodal = reference.refiner_logits(tiny_original["refine"], list(features), coarse)
    torch.testing.assert_close(ours.visible_logits, visible, atol=ATOL, rtol=0)
    torch.testing.assert_close(ours.amodal_logits, amodal, atol=ATOL, rtol=0)
