"""`c2f-hf convert-original`: the authors' released checkpoints and yml configs to a Hub-ready model folder.

The authors release, per dataset, `vqgan_<DS>.pth` + `vqgan_<DS>.yml` (the mask VQ-GAN, key `g_model`) and
`c2f_seg_<DS>.pth` + `c2f_seg_<DS>.yml` (keys `model` = transformer, `img_encoder` = ResNet-50, `refine` =
refiner), in an image (KINS, COCOA) or a video (Fishbowl, MOViD-A) variant. This module reads them: the `.pth`
files with `torch.load(weights_only=True)` (a file holding pickled code is refused, named through
`c2f_hf.weights_only`), the yml files with yaml's safe loader, mapped onto our configs (a video yml's
`window_length` becomes `transformer_config.num_frames`). The key table, the renaming and the strict load are the
bundle's `c2f_hf.models.c2f_seg.convert_original_checkpoint`. The folder is written as `c2f-hf export` writes a
repo (weights, config, image processor, the bundle's code and the card of `hub.cards`, with a conversion section
naming the source files, their SHA-256 and the settings read) and uploaded with `hub.push.push_folder` on request.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from huggingface_hub.errors import StrictDataclassError

from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig, C2FSegTransformerConfig, C2FSegVQConfig
from ..models.c2f_seg.convert_original_checkpoint import C2F_SECTIONS, VQ_SECTION, build_converted_model
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..weights_only import refused_global
from .cards import AUTHORS_REPOSITORY, ConversionRecord
from .export import ExportOptions, check_new_folder, export_model
from .push import push_folder

logger = logging.getLogger(__name__)

# The video configurations' window of frames (Fishbowl 16, MOViD-A 24) -> C2FSegTransformerConfig.num_frames.
_VIDEO_WINDOW_FIELD = "window_length"

# authors' yml field -> our config field. `model.params.ddconfig` of vqgan_<DS>.yml:
_VQ_DDCONFIG_FIELDS = {
    "ch": "base_channels",
    "ch_mult": "channel_multipliers",
    "num_res_blocks": "num_res_blocks",
    "z_channels": "z_channels",
    "in_channels": "in_channels",
    "out_ch": "out_channels",
}
# `model.params` of vqgan_<DS>.yml:
_VQ_PARAMS_FIELDS = {"n_embed": "codebook_size", "embed_dim": "codebook_dim"}
# top level of c2f_seg_<DS>.yml -> C2FSegTransformerConfig:
_TRANSFORMER_FIELDS = {
    "vocab_size": "vocab_size",
    "sequence_length": "sequence_length",
    "n_embd": "hidden_size",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "embd_pdrop": "embedding_dropout",
    "attn_pdrop": "attention_dropout",
    "resid_pdrop": "residual_dropout",
}
# top level of c2f_seg_<DS>.yml -> C2FSegConfig (optional there: training or data settings):
_COMPOSITE_FIELDS = {"input_size": "image_size", "min_mask_rate": "min_mask_ratio"}


def _read_yaml(path: Path) -> dict[str, Any]:
    """The settings of one of the authors' yml files (read with yaml's safe loader, like the authors)."""
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        with path.open() as stream:
            settings = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid yml: {error}") from error
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a yml mapping of settings, found {type(settings).__name__}")
    return settings


def _required(settings: Mapping[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in settings:
        raise ValueError(f"{path}: missing setting {where}{key!r} (found: {sorted(settings)})")
    return settings[key]


def _nested_mapping(settings: Mapping[str, Any], keys: tuple[str, ...], path: Path) -> Mapping[str, Any]:
    where = ""
    for key in keys:
        settings = _required(settings, key, path, where)
        where += f"{key}."
        if not isinstance(settings, Mapping):
            raise ValueError(f"{path}: expected {where[:-1]!r} to be a mapping, found {type(settings).__name__}")
    return settings


def vq_config_from_yaml(path: Path) -> tuple[C2FSegVQConfig, dict[str, Any]]:
    """`vqgan_<DS>.yml` -> our VQ config and the yml settings it used (`{"yml key": value}`)."""
    settings = _read_yaml(path)
    params = _nested_mapping(settings, ("model", "params"), path)
    ddconfig = _nested_mapping(params, ("ddconfig",), path)
    used = {f"model.params.{key}": _required(params, key, path, "model.params.") for key in _VQ_PARAMS_FIELDS}
    used.update(
        {
            f"model.params.ddconfig.{key}": _required(ddconfig, key, path, "model.params.ddconfig.")
            for key in (*_VQ_DDCONFIG_FIELDS, "resolution_h", "resolution_w")
        }
    )
    fields = {ours: params[theirs] for theirs, ours in _VQ_PARAMS_FIELDS.items()}
    fields.update({ours: ddconfig[theirs] for theirs, ours in _VQ_DDCONFIG_FIELDS.items()})
    if ddconfig["resolution_h"] != ddconfig["resolution_w"]:
        raise ValueError(
            f"{path}: model.params.ddconfig.resolution_h ({ddconfig['resolution_h']}) and resolution_w "
            f"({ddconfig['resolution_w']}) must be equal: C2FSegVQConfig.resolution describes square masks"
        )
    fields["resolution"] = ddconfig["resolution_h"]
    if ddconfig.get("double_z", False):
        raise ValueError(f"{path}: model.params.ddconfig.double_z is true; expected false (single-z encoder)")
    if "dropout" in ddconfig:
        used["model.params.ddconfig.dropout"] = fields["dropout"] = ddconfig["dropout"]
        if ddconfig["dropout"]:
            logger.warning("%s: the authors' Encoder/Decoder ignore ddconfig.dropout (they use 0.0)", path)
    return C2FSegVQConfig(**fields), used


def c2f_config_from_yaml(path: Path, vq_config: C2FSegVQConfig) -> tuple[C2FSegConfig, dict[str, Any]]:
    """`c2f_seg_<DS>.yml` (+ the VQ config) -> our composite config and the yml settings it used."""
    settings = _read_yaml(path)
    used = {key: _required(settings, key, path, "") for key in _TRANSFORMER_FIELDS}
    if settings.get("gamma_mode", "cosine") != "cosine":
        raise ValueError(f"{path}: gamma_mode is {settings['gamma_mode']!r}; expected 'cosine' (our schedule)")
    transformer_fields = {ours: settings[theirs] for theirs, ours in _TRANSFORMER_FIELDS.items()}
    if _VIDEO_WINDOW_FIELD in settings:
        used[_VIDEO_WINDOW_FIELD] = transformer_fields["num_frames"] = int(settings[_VIDEO_WINDOW_FIELD])
    transformer_config = C2FSegTransformerConfig(**transformer_fields)
    composite = {ours: settings[theirs] for theirs, ours in _COMPOSITE_FIELDS.items() if theirs in settings}
    used.update({theirs: settings[theirs] for theirs in _COMPOSITE_FIELDS if theirs in settings})
    composite.setdefault("image_size", vq_config.resolution)
    config = C2FSegConfig(vq_config=vq_config, transformer_config=transformer_config, **composite)
    return config, used


def build_config_from_yaml(vq_config_path: Path, config_path: Path) -> tuple[C2FSegConfig, dict[str, Any]]:
    """Both yml files -> `C2FSegConfig` and `{"<file name>: <yml key>": value}` of every setting used."""
    try:
        vq_config, vq_used = vq_config_from_yaml(vq_config_path)
        config, used = c2f_config_from_yaml(config_path, vq_config)
    except (TypeError, StrictDataclassError) as error:
        raise ValueError(
            f"{vq_config_path} and {config_path} do not describe a valid C2F-Seg model: {error}"
        ) from error
    settings = {f"{vq_config_path.name}: {key}": value for key, value in vq_used.items()}
    settings.update({f"{config_path.name}: {key}": value for key, value in used.items()})
    return config, settings


def load_original_checkpoint(path: Path) -> dict[str, Any]:
    """Read one of the authors' `.pth` files with `weights_only=True`; files that need pickled code are refused."""
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a directory; expected one of the authors' .pth files")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = refused_global(error)
        if found is None:
            raise ValueError(f"{path} is not a readable torch checkpoint (corrupted, or not a torch file)") from None
        raise ValueError(
            f"{path} holds pickled code ({found}), which would run "
            "when loaded, so it is refused. The authors' checkpoints are plain dicts of tensors; get the file from "
            "their release, or re-save its tensors with torch.save(state_dict) where you trust it."
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable torch checkpoint (corrupted or truncated?): {error}") from error
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a dict of state dicts, found {type(checkpoint).__name__}")
    return checkpoint


def _state_dict_section(checkpoint: Mapping[str, Any], key: str, path: Path, role: str) -> dict[str, torch.Tensor]:
    """`checkpoint[key]`, a state dict; names the file, the key and what was found when it is not there."""
    if key not in checkpoint:
        hint = ""
        if role == "C2F-Seg" and VQ_SECTION in checkpoint:
            hint = f" It has {VQ_SECTION!r}: this looks like the VQ checkpoint (vqgan_<DS>.pth)."
        elif role == "VQ" and any(section in checkpoint for section in C2F_SECTIONS):
            hint = " It has the C2F-Seg keys: this looks like the C2F-Seg checkpoint (c2f_seg_<DS>.pth)."
        raise ValueError(
            f"{path} is not the {role} checkpoint: top-level key {key!r} is missing "
            f"(found: {sorted(map(str, checkpoint))}).{hint}"
        )
    section = checkpoint[key]
    if not isinstance(section, Mapping):
        raise ValueError(f"{path}[{key!r}]: expected a state dict, found {type(section).__name__}")
    not_tensors = [name for name, value in section.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{path}[{key!r}]: expected tensors only, these entries are not: {not_tensors}")
    return dict(section)


def read_original_sections(vq_checkpoint: Path, checkpoint: Path) -> dict[str, tuple[Path, dict[str, torch.Tensor]]]:
    """`{section: (file, state dict)}` for `g_model` of the VQ file and `model`, `img_encoder`, `refine` of the
    C2F-Seg file; other top-level entries (optimizer state, iteration counters) are not read."""
    vq_file = load_original_checkpoint(vq_checkpoint)
    sections = {VQ_SECTION: (vq_checkpoint, _state_dict_section(vq_file, VQ_SECTION, vq_checkpoint, "VQ"))}
    c2f_file = load_original_checkpoint(checkpoint)
    for section in C2F_SECTIONS:
        sections[section] = (checkpoint, _state_dict_section(c2f_file, section, checkpoint, "C2F-Seg"))
    skipped = sorted(str(key) for key in c2f_file if key not in C2F_SECTIONS)
    skipped += sorted(str(key) for key in vq_file if key != VQ_SECTION)
    if skipped:
        logger.info("not read (training state): %s", skipped)
    return sections


def _save_converted(
    config: C2FSegConfig,
    sections: Mapping[str, tuple[Path, Mapping[str, torch.Tensor]]],
    allow_unexpected: bool,
    folder: Path,
) -> list[str]:
    """Build the model with the authors' tensors and `save_pretrained` it, with the image processor of its crop size,
    into `folder`; return the ignored extra parameters. (The model is freed on return, before the export loads it.)"""
    model, ignored = build_converted_model(config, sections, allow_unexpected)
    model.save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=config.image_size).save_pretrained(folder)
    return ignored


def convert_original_checkpoint(
    vq_checkpoint: str | Path,
    vq_config: str | Path,
    checkpoint: str | Path,
    config: str | Path,
    output_dir: str | Path,
    push_to_hub: str | None = None,
    allow_unexpected: bool = False,
) -> Path:
    """Convert `vqgan_<DS>.pth` + `vqgan_<DS>.yml` and `c2f_seg_<DS>.pth` + `c2f_seg_<DS>.yml` (image or video
    variant) into the new (or empty) folder `output_dir`, written as `c2f-hf export` writes a Hub repo; returns
    the folder.

    Args:
        push_to_hub: optional Hub model repo id the folder is uploaded to (the card's snippets load from it).
        allow_unexpected: ignore (and list in the card) extra parameters inside the authors' state dicts.
    """
    paths = {
        role: Path(value)
        for role, value in (
            ("VQ checkpoint", vq_checkpoint),
            ("VQ config", vq_config),
            ("C2F-Seg checkpoint", checkpoint),
            ("C2F-Seg config", config),
        )
    }
    output = Path(output_dir)
    check_new_folder(output, "--output")
    model_config, settings = build_config_from_yaml(paths["VQ config"], paths["C2F-Seg config"])
    sections = read_original_sections(paths["VQ checkpoint"], paths["C2F-Seg checkpoint"])
    with tempfile.TemporaryDirectory() as saved:
        ignored = _save_converted(model_config, sections, allow_unexpected, Path(saved))
        options = ExportOptions(
            repo_id=push_to_hub,
            model_name=output.resolve().name,
            training_data=f"Trained by the C2F-Seg authors ({AUTHORS_REPOSITORY}) on the dataset that the source "
            "files name.",
            converted=True,
            synthetic_only=False,
            conversion=ConversionRecord(paths, settings, ignored),
        )
        export_model(saved, output, options)
    logger.info("wrote %s", output)
    if push_to_hub:
        push_folder(output, push_to_hub, commit_message="Convert the authors' C2F-Seg checkpoint")
    return output


__all__ = [
    "build_config_from_yaml",
    "c2f_config_from_yaml",
    "convert_original_checkpoint",
    "load_original_checkpoint",
    "read_original_sections",
    "vq_config_from_yaml",
]
