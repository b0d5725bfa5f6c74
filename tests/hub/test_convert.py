"""`c2f-hf convert-original`: the authors' files (yml configs, `.pth` checkpoints) to a Hub-ready folder with its
card, the refusals of unreadable or unsafe files, and the upload."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import pipeline

from authors_checkpoints import as_sections, authors_key, authors_state_dicts, rename
from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.checkpoints import file_sha256
from c2f_hf.cli import main as cli_main
from c2f_hf.hub import push
from c2f_hf.hub.cards import CONVERTED_MARKER, ConversionRecord, ModelCardInputs, build_model_card, is_converted_folder
from c2f_hf.hub.convert import build_config_from_yaml, load_original_checkpoint, read_original_sections
from c2f_hf.hub.export import check_remote_code
from c2f_hf.models.c2f_seg.convert_original_checkpoint import build_converted_model
from c2f_hf.models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from c2f_testing import random_object_batch, tiny_config
from hub_testing import RecordingHfApi, front_matter

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
    # dtype=float32: the stored tensors as they are (where the CPU computes bf16, the default path is bf16)
    model = C2FSegForAmodalSegmentation.from_pretrained(converted, dtype=torch.float32)
    state = model.state_dict()
    for section, tensors in original_files["state_dicts"].items():
        for key, tensor in tensors.items():
            if key.startswith("encoder.model.fc."):
                continue
            new_key = next(iter(rename({**dict.fromkeys(original_files["state_dicts"], {}), section: {key: tensor}})))
            assert torch.equal(state[new_key], tensor), (section, key, new_key)
    assert len(state) == sum(len(tensors) for tensors in original_files["state_dicts"].values()) - 2


def test_converted_model_computes_like_one_built_from_the_renamed_state_dict(converted, original_files):
    converted_model = C2FSegForAmodalSegmentation.from_pretrained(converted, dtype=torch.float32).eval()
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
    assert file_sha256(original_files["c2f_pth"]) in card
    assert "`c2f_seg_KINS.yml: n_layer` | `2`" in card
    assert "library_name: transformers" in card


def test_converted_folder_is_an_exported_repo_with_the_authors_licence(converted):
    check_remote_code(converted)
    card = (converted / "README.md").read_text()
    assert is_converted_folder(converted) and CONVERTED_MARKER in card
    assert front_matter(card)["license"] == "apache-2.0"
    assert "licensed under Apache-2.0 ([https://github.com/amazon-science/c2f-seg]" in card
    assert f'model_id = "{converted.name}"' in card and str(converted) not in card


def test_ignored_parameters_are_listed_in_the_card(tmp_path):
    torch.manual_seed(1)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(tiny_config()), seed=1)
    state_dicts["refine"]["extra.weight"] = torch.zeros(2)
    sections = as_sections(state_dicts, Path("vq.pth"), Path("c2f.pth"))
    model, ignored = build_converted_model(tiny_config(), sections, allow_unexpected=True)
    model.save_pretrained(tmp_path)
    inputs = ModelCardInputs("someone/c2f-seg", "c2f-seg", converted=True, conversion=ConversionRecord({}, {}, ignored))
    card = build_model_card(tmp_path, inputs).content
    assert "extra.weight" in card


def test_push_to_hub_uploads_the_converted_repo(original_files, tmp_path, monkeypatch, capsys):
    RecordingHfApi.calls = []
    monkeypatch.setattr(push, "HfApi", RecordingHfApi)
    arguments = ["--vq-checkpoint", original_files["vq_pth"], "--vq-config", original_files["vq_yml"]]
    arguments += ["--checkpoint", original_files["c2f_pth"], "--config", original_files["c2f_yml"]]
    output = tmp_path / "converted"
    command = ["convert-original", *map(str, arguments), "--output", str(output), "--push-to-hub", "someone/kins"]
    assert cli_main(command) == 0
    (create_name, create), (commit_name, commit) = RecordingHfApi.calls
    assert (create_name, commit_name) == ("create_repo", "create_commit")
    assert create["repo_id"] == commit["repo_id"] == "someone/kins" and create["repo_type"] == "model"
    assert commit["paths"] == sorted(path.name for path in output.iterdir())
    assert 'model_id = "someone/kins"' in (output / "README.md").read_text()
    assert str(output) in capsys.readouterr().out


def test_a_folder_that_holds_files_is_not_overwritten(original_files, tmp_path, capsys):
    output = tmp_path / "taken"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    arguments = ["--vq-checkpoint", original_files["vq_pth"], "--vq-config", original_files["vq_yml"]]
    arguments += ["--checkpoint", original_files["c2f_pth"], "--config", original_files["c2f_yml"]]
    assert cli_main(["convert-original", *map(str, arguments), "--output", str(output)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"c2f-hf convert-original: --output: {output} exists and is not an empty folder; choose a new one"
    )
    assert [path.name for path in output.iterdir()] == ["notes.txt"]


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
    loaded = C2FSegForAmodalSegmentation.from_pretrained(output, dtype=torch.float32)
    assert loaded.config.transformer_config.num_frames == 2
    for key, tensor in loaded.transformer.state_dict().items():
        section, original = authors_key(f"transformer.{key}")
        torch.testing.assert_close(tensor, state_dicts[section][original], atol=0, rtol=0)


def write_fishbowl_layout(folder: Path) -> dict[str, Path]:
    """The authors' Fishbowl files in miniature: a VQ codebook (8) smaller than the transformer's vocabulary (16), as
    `vqgan_Fishbowl.yml` (`n_embed: 32`) and `c2f_seg_Fishbowl.yml` (`vocab_size: 256`) have it."""
    vq_settings = {**VQ_YML, "dataset": "Fishbowl"}
    vq_settings["model"] = {"params": {**VQ_YML["model"]["params"], "n_embed": 8}}
    vq_yml = write_yaml(folder / "vqgan_Fishbowl.yml", vq_settings)
    c2f_yml = write_yaml(folder / "c2f_seg_Fishbowl.yml", {**VIDEO_C2F_YML, "dataset": "Fishbowl"})
    config, _ = build_config_from_yaml(vq_yml, c2f_yml)
    torch.manual_seed(0)
    state_dicts = authors_state_dicts(C2FSegForAmodalSegmentation(config), seed=3)
    vq_pth, c2f_pth = folder / "vqgan_Fishbowl.pth", folder / "c2f_seg_Fishbowl.pth"
    torch.save({"g_model": state_dicts["g_model"]}, vq_pth)
    torch.save({name: state_dicts[name] for name in ("model", "img_encoder", "refine")}, c2f_pth)
    return {"vq_pth": vq_pth, "vq_yml": vq_yml, "c2f_pth": c2f_pth, "c2f_yml": c2f_yml}


def test_a_fishbowl_checkpoint_converts_into_a_video_folder_the_video_pipeline_loads(tmp_path):
    files = write_fishbowl_layout(tmp_path)
    output = tmp_path / "converted"
    arguments = ["--vq-checkpoint", files["vq_pth"], "--vq-config", files["vq_yml"]]
    arguments += ["--checkpoint", files["c2f_pth"], "--config", files["c2f_yml"], "--output", output]
    assert cli_main(["convert-original", *map(str, arguments)]) == 0
    card = (output / "README.md").read_text()
    metadata = front_matter(card)
    assert "video-amodal-segmentation" in metadata["tags"] and "image-segmentation" not in metadata["tags"]
    assert "pipeline_tag" not in metadata
    assert "The transformer predicts 16 codes for a codebook of 8" in card
    segmenter = pipeline("video-amodal-segmentation", model=str(output), trust_remote_code=True)
    assert segmenter.model.config.transformer_config.vocab_size == 16
    assert segmenter.model.config.vq_config.codebook_size == 8
    frames = [np.full((48, 48, 3), 60 * frame, dtype=np.uint8) for frame in range(3)]
    visible = np.zeros((48, 48), dtype=bool)
    visible[10:30, 12:34] = True
    tracks = segmenter(frames, visible_masks=[[visible] * 3], seed=0)
    assert len(tracks[0]["amodal_masks"]) == 3 and all(tracks[0]["completed"])


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


def test_cli_reports_errors_with_exit_code(tmp_path, capsys):
    arguments = ["convert-original", "--vq-checkpoint", "a.pth", "--vq-config", str(tmp_path / "missing.yml")]
    arguments += ["--checkpoint", "b.pth", "--config", "c.yml", "--output", str(tmp_path / "out")]
    assert cli_main(arguments) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("c2f-hf convert-original: ") and "missing.yml does not exist" in line
