import json
import re
from pathlib import Path

import pytest
import reference_original as reference
import torch
import yaml

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.cli import main as cli_main
from c2f_hf.convert_original_checkpoint import (
    build_config_from_yaml,
    build_converted_model,
    build_model_card,
    load_original_checkpoint,
    read_original_sections,
    rename_original_state_dicts,
)
from c2f_hf.models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from c2f_testing import random_object_batch, tiny_config

# A copy of shared/reference/original_checkpoint_layout_KINS.json, so the suite needs nothing outside the repository.
LAYOUT_PATH = Path(__file__).parent / "fixtures" / "original_checkpoint_layout_KINS.json"
SECTION_OF_PREFIX = {"vq_model": "g_model", "transformer": "model", "refiner": "refine"}
PART_NUMBER = {"convolution": "0", "normalization": "1"}
PART_NAME = {"convolution": "conv", "normalization": "bn"}
ATOL = 1e-4


# ----- the inverse of the rename rule, written from the layout file's patterns -----


def authors_resnet_key(key: str) -> str:
    """`transformers` ResNet key -> torchvision key (`conv1`, `layer{s}.{i}.bn{k}`, `layer{s}.{i}.downsample.{0,1}`)."""
    if match := re.match(r"^embedder\.embedder\.(convolution|normalization)\.(.+)$", key):
        return f"{PART_NAME[match[1]]}1.{match[2]}"
    if match := re.match(
        r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.(convolution|normalization)\.(.+)$", key
    ):
        stage, index, number, part, rest = match.groups()
        return f"layer{int(stage) + 1}.{index}.{PART_NAME[part]}{int(number) + 1}.{rest}"
    match = re.match(r"^encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.(convolution|normalization)\.(.+)$", key)
    stage, index, part, rest = match.groups()
    return f"layer{int(stage) + 1}.{index}.downsample.{PART_NUMBER[part]}.{rest}"


# Our names -> the authors' names, applied in order with `re.sub` (SAM-converter style, independently of the
# converter's table). The authors' index shifts (mid `block_1`/`block_2`) are written out.
AUTHORS_NAME_EDITS = {
    "vq_model": [
        (r"\.resnets\.(\d+)\.conv_shortcut\.", r".resnets.\1.nin_shortcut."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.0\.", r"\1.mid.block_1."),
        (r"^(encoder|decoder)\.mid_block\.resnets\.1\.", r"\1.mid.block_2."),
        (r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block."),
        (r"^encoder\.down_blocks\.", "encoder.down."),
        (r"^decoder\.up_blocks\.(\d+)\.resnets\.", r"decoder.up.\1.block."),
        (r"^decoder\.up_blocks\.", "decoder.up."),
    ],
    "transformer": [
        (r"^embeddings\.image_projection\.", "conv_in."),
        (r"^embeddings\.visible_token_embeddings\.", "c_emb."),
        (r"^embeddings\.amodal_token_embeddings\.", "z_emb."),
        (r"^embeddings\.position_embeddings\.", "pos_emb."),
        (r"^prediction_head\.decoder\.", "m_dec."),
        (r"^prediction_head\.bias$", "m_bias"),
        (r"^prediction_head\.layernorm_before\.", "dec.ln1."),
        (r"^prediction_head\.layernorm_after\.", "dec.ln2."),
        (r"^prediction_head\.dense\.", "dec.dense."),
        (r"^layers\.", "blocks."),
        (r"\.(attention|spatial_attention|temporal_attention)\.out_proj\.", r".\1.proj."),
        (r"\.layernorm_before\.", ".ln1."),
        (r"\.attention\.", ".attn."),
        (r"\.layernorm_after\.", ".ln2."),
        (r"\.spatial_layernorm\.", ".ln1."),
        (r"\.spatial_attention\.", ".attn1."),
        (r"\.temporal_layernorm\.", ".ln2."),
        (r"\.temporal_attention\.", ".attn2."),
        (r"\.mlp_layernorm\.", ".ln3."),
        (r"\.mlp\.fc1\.", ".mlp.0."),
        (r"\.mlp\.fc2\.", ".mlp.2."),
    ],
    "refiner": [
        (r"^feature_adapter\.", "conv_adapter."),
        (r"^feature_projection\.", "conv_in."),
        (r"^trunk_layer(\d)\.convolution\.", r"lay\1."),
        (r"^trunk_layer(\d)\.normalization\.", r"bn\1."),
        (r"^stride16_adapter\.", "adapter1."),
        (r"^(visible|amodal)_branch\.layer1\.convolution\.(\w+)$", r"lay4_\1.\2"),
        (r"^(visible|amodal)_branch\.layer1\.normalization\.(\w+)$", r"bn4_\1.\2"),
        (r"^(visible|amodal)_branch\.layer2\.convolution\.(\w+)$", r"lay5_\1.\2"),
        (r"^(visible|amodal)_branch\.layer2\.normalization\.(\w+)$", r"bn5_\1.\2"),
        (r"^(visible|amodal)_branch\.stride8_adapter\.(\w+)$", r"adapter2_\1.\2"),
        (r"^(visible|amodal)_branch\.stride4_adapter\.(\w+)$", r"adapter3_\1.\2"),
        (r"^(visible|amodal)_branch\.classifier\.(\w+)$", r"out_lay_\1.\2"),
        (r"_visible\.", "_vm."),
        (r"_amodal\.", "_am."),
    ],
}


def authors_key(key: str) -> tuple[str, str]:
    """Our key -> (section of the authors' files, the authors' key)."""
    prefix, rest = key.split(".", 1)
    if prefix == "backbone":
        return "img_encoder", "encoder.model." + authors_resnet_key(rest)
    for pattern, replacement in AUTHORS_NAME_EDITS[prefix]:
        rest = re.sub(pattern, replacement, rest)
    return SECTION_OF_PREFIX[prefix], rest


def authors_state_dicts(model: C2FSegForAmodalSegmentation, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """The model's tensors, perturbed at random, in the authors' four state dicts (with a ResNet `fc`)."""
    generator = torch.Generator().manual_seed(seed)
    sections: dict[str, dict[str, torch.Tensor]] = {"g_model": {}, "model": {}, "img_encoder": {}, "refine": {}}
    for key, tensor in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            value = torch.randint(1, 1000, (), generator=generator)
        elif key.endswith("running_var"):
            value = torch.rand(tensor.shape, generator=generator) + 0.5
        else:
            value = tensor + 0.05 * torch.randn(tensor.shape, generator=generator)
        section, original = authors_key(key)
        sections[section][original] = value.clone()
    last_width = model.config.backbone_config.hidden_sizes[-1]
    sections["img_encoder"]["encoder.model.fc.weight"] = torch.randn(10, last_width, generator=generator)
    sections["img_encoder"]["encoder.model.fc.bias"] = torch.randn(10, generator=generator)
    return sections


def as_sections(state_dicts: dict[str, dict[str, torch.Tensor]], vq_path: Path, c2f_path: Path):
    return {name: (vq_path if name == "g_model" else c2f_path, state) for name, state in state_dicts.items()}


def rename(state_dicts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return rename_original_state_dicts(
        state_dicts["g_model"], state_dicts["model"], state_dicts["img_encoder"], state_dicts["refine"]
    )


# ----- (a) the released KINS layout, on the meta device -----


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


# ----- (b) end-to-end conversion of files in the authors' format -----

VQ_YML = {
    "model_type": "vqgan",
    "dataset": "KINS",
    "input_size": 64,
    "model": {
        "params": {
            "embed_dim": 8,
            "n_embed": 16,
            "ddconfig": {
                "double_z": False,
                "z_channels": 8,
                "resolution_h": 64,
                "resolution_w": 64,
                "in_channels": 1,
                "out_ch": 1,
                "ch": 32,
                "ch_mult": [1, 1, 2, 2, 2],
                "num_res_blocks": 1,
                "attn_resolutions": [6, 10],
                "dropout": 0.0,
            },
        }
    },
}
C2F_YML = {
    "model_type": "c2f_seg",
    "input_size": 64,
    "sequence_length": 16,
    "n_embd": 32,
    "n_head": 2,
    "n_layer": 2,
    "vocab_size": 16,
    "attn_pdrop": 0.02,
    "resid_pdrop": 0.03,
    "embd_pdrop": 0.04,
    "min_mask_rate": 0.4,
    "gamma_mode": "cosine",
    "sample_topk": 5,
}


def write_yaml(path: Path, settings: dict) -> Path:
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture(scope="module")
def original_files(tmp_path_factory):
    """The authors' four files for a small VQ and transformer (their backbone and refiner sizes are fixed)."""
    folder = tmp_path_factory.mktemp("original")
    vq_yml, c2f_yml = write_yaml(folder / "vqgan_KINS.yml", VQ_YML), write_yaml(folder / "c2f_seg_KINS.yml", C2F_YML)
    config, _ = build_config_from_yaml(vq_yml, c2f_yml)
    torch.manual_seed(0)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(config))
    vq_pth, c2f_pth = folder / "vqgan_KINS.pth", folder / "c2f_seg_KINS.pth"
    torch.save({"g_model": state_dicts["g_model"], "iteration": 3}, vq_pth)
    optimizer_state = {"state": {}, "param_groups": [{"lr": 3e-4, "params": [0, 1]}]}
    c2f_sections = {name: state_dicts[name] for name in ("model", "img_encoder", "refine")}
    torch.save({"iteration": 7, "sample_iter": 2, "opt": optimizer_state, **c2f_sections}, c2f_pth)
    return {"vq_pth": vq_pth, "vq_yml": vq_yml, "c2f_pth": c2f_pth, "c2f_yml": c2f_yml, "state_dicts": state_dicts}


@pytest.fixture(scope="module")
def converted(original_files, tmp_path_factory):
    output = tmp_path_factory.mktemp("converted")
    arguments = ["--vq-checkpoint", original_files["vq_pth"], "--vq-config", original_files["vq_yml"]]
    arguments += ["--checkpoint", original_files["c2f_pth"], "--config", original_files["c2f_yml"]]
    assert cli_main(["convert-original", *map(str, arguments), "--output", str(output)]) == 0
    return output


def test_yml_settings_map_onto_our_configs(original_files):
    config, settings = build_config_from_yaml(original_files["vq_yml"], original_files["c2f_yml"])
    vq, transformer = config.vq_config, config.transformer_config
    assert (vq.base_channels, vq.channel_multipliers, vq.num_res_blocks, vq.z_channels) == (32, [1, 1, 2, 2, 2], 1, 8)
    assert (vq.resolution, vq.in_channels, vq.out_channels, vq.codebook_size, vq.codebook_dim) == (64, 1, 1, 16, 8)
    assert (transformer.hidden_size, transformer.num_hidden_layers, transformer.num_attention_heads) == (32, 2, 2)
    assert (transformer.vocab_size, transformer.sequence_length) == (16, 16)
    assert (transformer.attention_dropout, transformer.residual_dropout, transformer.embedding_dropout) == (
        0.02,
        0.03,
        0.04,
    )
    assert (config.image_size, config.min_mask_ratio) == (64, 0.4)
    assert settings["c2f_seg_KINS.yml: n_embd"] == 32
    assert settings["vqgan_KINS.yml: model.params.ddconfig.ch_mult"] == [1, 1, 2, 2, 2]


def test_converted_folder_holds_every_tensor_unchanged(converted, original_files):
    expected_files = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}
    assert expected_files <= {path.name for path in converted.iterdir()}
    assert C2FSegImageProcessor.from_pretrained(converted).crop_resolution == 64
    model = C2FSegForAmodalSegmentation.from_pretrained(converted)
    state = model.state_dict()
    for section, tensors in original_files["state_dicts"].items():
        for key, tensor in tensors.items():
            if key.startswith("encoder.model.fc."):
                continue
            new_key = next(iter(rename({**dict.fromkeys(original_files["state_dicts"], {}), section: {key: tensor}})))
            assert torch.equal(state[new_key], tensor), (section, key, new_key)
    assert len(state) == sum(len(tensors) for tensors in original_files["state_dicts"].values()) - 2


def test_converted_model_computes_like_one_built_from_the_renamed_state_dict(converted, original_files):
    converted_model = C2FSegForAmodalSegmentation.from_pretrained(converted).eval()
    direct = C2FSegForAmodalSegmentation(converted_model.config).eval()
    direct.load_state_dict(rename(original_files["state_dicts"]), strict=True)
    pixel_values, visible_masks, _ = random_object_batch(2, size=64)
    first = converted_model.generate(pixel_values, visible_masks, greedy=True)
    second = direct.generate(pixel_values, visible_masks, greedy=True)
    for name in ("amodal_masks", "pred_visible_masks", "coarse_amodal_masks", "amodal_tokens", "token_scores"):
        assert torch.equal(first[name], second[name]), name


def test_model_card_names_sources_hashes_and_settings(converted, original_files):
    card = (converted / "README.md").read_text()
    for name in ("vqgan_KINS.pth", "c2f_seg_KINS.pth", "vqgan_KINS.yml", "c2f_seg_KINS.yml"):
        assert f"`{name}`" in card
    from c2f_hf.checkpoints import file_sha256

    assert file_sha256(original_files["c2f_pth"]) in card
    assert "`c2f_seg_KINS.yml: n_layer` | `2`" in card
    assert "library_name: transformers" in card


# ----- (c) refusals and errors -----


class NotATensor:
    pass


def test_corrupted_file_is_refused(tmp_path):
    broken = tmp_path / "c2f_seg_KINS.pth"
    broken.write_bytes(b"definitely not a zip archive")
    with pytest.raises(ValueError, match=r"c2f_seg_KINS\.pth is not a readable torch checkpoint"):
        load_original_checkpoint(broken)


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("make_payload", [lambda marker: NotATensor(), RunsCode], ids=["class", "reduce"])
def test_pickled_code_is_refused_by_name_without_running_it_or_suggesting_weights_only_false(tmp_path, make_payload):
    path, marker = tmp_path / "vqgan_KINS.pth", tmp_path / "code_ran"
    torch.save({"g_model": make_payload(marker)}, path)
    with pytest.raises(ValueError, match=r"vqgan_KINS\.pth holds pickled code \(\S+\), which would run") as caught:
        load_original_checkpoint(path)
    assert "weights_only=False" not in str(caught.value) and not marker.exists()


def test_a_directory_given_as_checkpoint_is_named_as_such(tmp_path):
    with pytest.raises(ValueError, match="is a directory; expected one of the authors' .pth files"):
        load_original_checkpoint(tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_original_checkpoint(tmp_path / "nowhere.pth")


def test_swapped_files_name_the_missing_top_level_key(original_files):
    with pytest.raises(ValueError, match=r"top-level key 'model' is missing.*looks like the VQ checkpoint"):
        read_original_sections(original_files["vq_pth"], original_files["vq_pth"])
    with pytest.raises(ValueError, match=r"top-level key 'g_model' is missing.*looks like the C2F-Seg checkpoint"):
        read_original_sections(original_files["c2f_pth"], original_files["c2f_pth"])


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


VIDEO_C2F_YML = {**C2F_YML, "window_length": 2, "train_seq_len": 2, "dataset": "MOViD_A"}


def test_video_yml_maps_window_length_onto_num_frames(tmp_path, original_files):
    video_yml = write_yaml(tmp_path / "c2f_seg_MOViD_A.yml", VIDEO_C2F_YML)
    config, settings = build_config_from_yaml(original_files["vq_yml"], video_yml)
    assert config.transformer_config.num_frames == 2
    assert config.transformer_config.spatial_window_size == 4
    assert settings["c2f_seg_MOViD_A.yml: window_length"] == 2


def test_video_checkpoint_converts_end_to_end(tmp_path, original_files):
    video_yml = write_yaml(tmp_path / "c2f_seg_MOViD_A.yml", VIDEO_C2F_YML)
    config, _ = build_config_from_yaml(original_files["vq_yml"], video_yml)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(config), seed=1)
    assert any(".attn2." in key for key in state_dicts["model"])
    video_pth = tmp_path / "c2f_seg_MOViD_A.pth"
    torch.save({name: state_dicts[name] for name in ("model", "img_encoder", "refine")}, video_pth)
    output = tmp_path / "converted"
    arguments = ["--vq-checkpoint", original_files["vq_pth"], "--vq-config", original_files["vq_yml"]]
    arguments += ["--checkpoint", video_pth, "--config", video_yml, "--output", output]
    assert cli_main(["convert-original", *map(str, arguments)]) == 0
    loaded = C2FSegForAmodalSegmentation.from_pretrained(output)
    assert loaded.config.transformer_config.num_frames == 2
    for key, tensor in loaded.transformer.state_dict().items():
        section, original = authors_key(f"transformer.{key}")
        torch.testing.assert_close(tensor, state_dicts[section][original], atol=0, rtol=0)


@torch.no_grad()
def test_video_transformer_logits_match_the_authors():
    config = tiny_config()
    config.transformer_config.num_frames = 2
    config.transformer_config.spatial_window_size = 2
    torch.manual_seed(0)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(config), seed=2)
    model, ignored = build_converted_model(config, as_sections(state_dicts, Path("vq.pth"), Path("c2f.pth")))
    assert ignored == []
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(2, 32, 4, 4, generator=generator)
    visible_tokens = torch.randint(0, 16, (2, 16), generator=generator)
    amodal_tokens = torch.randint(0, 17, (2, 16), generator=generator)
    ours = model.token_logits((features,), visible_tokens, amodal_tokens)
    theirs = reference.video_transformer_logits(
        state_dicts["model"], features, visible_tokens, amodal_tokens, 2, window_length=2, window_size=2
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_bad_yml_settings_are_named(tmp_path, original_files):
    ddconfig = {**VQ_YML["model"]["params"]["ddconfig"], "resolution_w": 128}
    uneven = write_yaml(
        tmp_path / "uneven.yml", {"model": {"params": {**VQ_YML["model"]["params"], "ddconfig": ddconfig}}}
    )
    with pytest.raises(ValueError, match=r"uneven\.yml: .*resolution_h \(64\) and resolution_w \(128\) must be equal"):
        build_config_from_yaml(uneven, original_files["c2f_yml"])
    incomplete = write_yaml(tmp_path / "incomplete.yml", {key: v for key, v in C2F_YML.items() if key != "n_head"})
    with pytest.raises(ValueError, match=r"incomplete\.yml: missing setting 'n_head'"):
        build_config_from_yaml(original_files["vq_yml"], incomplete)


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
    card = build_model_card({}, {}, ignored).content
    assert "extra.weight" in card


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


def test_cli_reports_errors_with_exit_code(tmp_path, caplog):
    arguments = ["convert-original", "--vq-checkpoint", "a.pth", "--vq-config", str(tmp_path / "missing.yml")]
    arguments += ["--checkpoint", "b.pth", "--config", "c.yml", "--output", str(tmp_path / "out")]
    assert cli_main(arguments) == 1
    assert "missing.yml does not exist" in caplog.text


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
