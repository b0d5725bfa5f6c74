"""Conversion of the authors' released checkpoints into `C2FSegForAmodalSegmentation` state dicts.

The rename rule (one-to-one, no reshaping; only the ResNet classifier `fc` is dropped):

| authors' file and key                          | our key                                             |
|------------------------------------------------|-----------------------------------------------------|
| `vqgan_<DS>.pth['g_model'][K]`                 | `vq_model.K`                                        |
| `c2f_seg_<DS>.pth['model'][K]`                 | `transformer.K`                                     |
| `c2f_seg_<DS>.pth['refine'][K]`                | `refiner.K`                                         |
| `c2f_seg_<DS>.pth['img_encoder']['encoder.model.' + K]` | `backbone.` + `rename_resnet_key(K)`       |

`rename_resnet_key` maps torchvision's ResNet names onto `transformers`' ResNet names:
`conv1`/`bn1` -> `embedder.embedder.convolution`/`.normalization`;
`layer{s}.{i}.conv{k}`/`bn{k}` -> `encoder.stages.{s-1}.layers.{i}.layer.{k-1}.convolution`/`.normalization`;
`layer{s}.{i}.downsample.0`/`.1` -> `encoder.stages.{s-1}.layers.{i}.shortcut.convolution`/`.normalization`.

`convert_original_checkpoint` (CLI: `c2f-hf convert-original`) reads the two `.pth` files with
`torch.load(weights_only=True)` and the two yml files, applies the rule, loads the result strictly into a
`C2FSegForAmodalSegmentation` and writes a `save_pretrained` folder with a model card. Both variants convert: the
video checkpoints (Fishbowl, MOViD-A) use the same rule, their spatial-temporal blocks keeping the authors' names
(`blocks.{i}.ln1/attn1/ln2/attn2/ln3/mlp`), and the yml's `window_length` becomes
`transformer_config.num_frames`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import StrictDataclassError

from .configuration_c2f_seg import C2FSegConfig, C2FSegTransformerConfig, C2FSegVQConfig
from .image_processing_c2f_seg import C2FSegImageProcessor
from .modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)

RESNET_PREFIX = "encoder.model."
DROPPED_RESNET_PREFIX = "fc."

_STEM_PATTERN = re.compile(r"^(conv1|bn1)\.(.+)$")
_BLOCK_PATTERN = re.compile(r"^layer(\d+)\.(\d+)\.(conv|bn)(\d+)\.(.+)$")
_SHORTCUT_PATTERN = re.compile(r"^layer(\d+)\.(\d+)\.downsample\.([01])\.(.+)$")
_PART_NAMES = {"conv": "convolution", "bn": "normalization", "0": "convolution", "1": "normalization"}

VQ_SECTION = "g_model"
C2F_SECTIONS = ("model", "img_encoder", "refine")
# How torch's weights-only unpickler reports a class or function it refuses to import.
_PICKLED_CODE_MARKER = "Unsupported global"
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


def rename_resnet_key(key: str) -> str:
    """torchvision ResNet key (without `encoder.model.`) -> `transformers` ResNet key. Raises on unknown keys."""
    if match := _STEM_PATTERN.match(key):
        part = "convolution" if match[1] == "conv1" else "normalization"
        return f"embedder.embedder.{part}.{match[2]}"
    if match := _BLOCK_PATTERN.match(key):
        stage, index, part, number, rest = match.groups()
        return f"encoder.stages.{int(stage) - 1}.layers.{index}.layer.{int(number) - 1}.{_PART_NAMES[part]}.{rest}"
    if match := _SHORTCUT_PATTERN.match(key):
        stage, index, part, rest = match.groups()
        return f"encoder.stages.{int(stage) - 1}.layers.{index}.shortcut.{_PART_NAMES[part]}.{rest}"
    raise KeyError(f"not a torchvision ResNet-50 parameter name: {key!r}")


def rename_original_state_dicts(
    vq_state: Mapping[str, torch.Tensor],
    transformer_state: Mapping[str, torch.Tensor],
    image_encoder_state: Mapping[str, torch.Tensor],
    refiner_state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Apply the rename rule to the four state dicts of the authors' two files (`g_model`; `model`,
    `img_encoder`, `refine`) and return one state dict for `C2FSegForAmodalSegmentation`."""
    renamed = {f"vq_model.{key}": value for key, value in vq_state.items()}
    renamed.update({f"transformer.{key}": value for key, value in transformer_state.items()})
    renamed.update({f"refiner.{key}": value for key, value in refiner_state.items()})
    for key, value in image_encoder_state.items():
        if not key.startswith(RESNET_PREFIX):
            raise KeyError(f"image encoder key {key!r} does not start with {RESNET_PREFIX!r}")
        resnet_key = key[len(RESNET_PREFIX) :]
        if resnet_key.startswith(DROPPED_RESNET_PREFIX):
            continue
        renamed[f"backbone.{rename_resnet_key(resnet_key)}"] = value
    return renamed


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
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if _PICKLED_CODE_MARKER not in str(error):
            raise ValueError(f"{path} is not a readable torch checkpoint (corrupted?): {error}") from error
        raise ValueError(
            f"{path} cannot be loaded with weights_only=True: it needs pickled code (custom classes or functions) "
            "that we refuse to execute. Expected a dict of tensors as the authors save it."
        ) from error
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


_SECTION_ARGUMENTS = {
    VQ_SECTION: "vq_state",
    "model": "transformer_state",
    "img_encoder": "image_encoder_state",
    "refine": "refiner_state",
}


def _renamed_key(section: str, key: str) -> str | None:
    """Our name of `section[key]` by `rename_original_state_dicts`; None for the dropped ResNet `fc`.
    Raises KeyError for a name the rule does not know."""
    arguments: dict[str, dict[str, torch.Tensor]] = {argument: {} for argument in _SECTION_ARGUMENTS.values()}
    arguments[_SECTION_ARGUMENTS[section]] = {key: torch.empty(0)}
    return next(iter(rename_original_state_dicts(**arguments)), None)


def rename_with_sources(
    sections: Mapping[str, tuple[Path, Mapping[str, torch.Tensor]]],
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Rename every tensor of `{section: (file, state dict)}`.

    Returns our state dict, `{our key: "file['section']['key']"}` and the source names the rule cannot rename.
    """
    renamed: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    unrenamable: list[str] = []
    for section, (path, state) in sections.items():
        for key, tensor in state.items():
            source = f"{path.name}[{section!r}][{key!r}]"
            try:
                new_key = _renamed_key(section, key)
            except KeyError:
                unrenamable.append(source)
                continue
            if new_key is not None:
                renamed[new_key] = tensor
                sources[new_key] = source
    return renamed, sources, unrenamable


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    renamed: Mapping[str, torch.Tensor],
    sources: Mapping[str, str],
    unrenamable: list[str],
    allow_unexpected: bool,
) -> list[str]:
    """Compare the renamed tensors with the model's state dict (names and shapes).

    Missing or mis-shaped keys are an error; unexpected ones too unless `allow_unexpected`, in which case
    their descriptions are returned (they are then not loaded).
    """
    missing = sorted(set(expected) - set(renamed))
    unexpected = unrenamable + [f"{sources[key]} (would be {key!r})" for key in renamed if key not in expected]
    mismatched = [
        f"{sources[key]} -> {key!r}: expected shape {list(expected[key].shape)}, found {list(tensor.shape)}"
        for key, tensor in renamed.items()
        if key in expected and tensor.shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing (not in the authors' files): {missing}")
    if mismatched:
        problems.append(f"wrong shape: {mismatched}")
    if unexpected and not allow_unexpected:
        problems.append(f"unexpected (pass allow_unexpected / --allow-unexpected to ignore them): {unexpected}")
    if problems:
        raise ValueError("the authors' checkpoints do not match the configured model; " + "; ".join(problems))
    return unexpected


def build_converted_model(
    config: C2FSegConfig,
    sections: Mapping[str, tuple[Path, Mapping[str, torch.Tensor]]],
    allow_unexpected: bool = False,
) -> tuple[C2FSegForAmodalSegmentation, list[str]]:
    """The model with the authors' tensors loaded strictly; also returns the ignored extra parameters."""
    with torch.device("meta"):
        model = C2FSegForAmodalSegmentation(config)
    renamed, sources, unrenamable = rename_with_sources(sections)
    ignored = check_state_dict(model.state_dict(), renamed, sources, unrenamable, allow_unexpected)
    expected_keys = set(model.state_dict())
    loadable = {key: value.contiguous() for key, value in renamed.items() if key in expected_keys}
    model.load_state_dict(loadable, strict=True, assign=True)
    return model.eval(), ignored


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_model_card(source_files: Mapping[str, Path], settings: Mapping[str, Any], ignored: list[str]) -> ModelCard:
    """Model card naming the source files (with SHA-256), the yml settings used and any ignored extras."""
    data = ModelCardData(library_name="transformers", tags=["c2f-seg", "amodal-segmentation", "image-segmentation"])
    files = "\n".join(f"| {role} | `{path.name}` | `{sha256_of(path)}` |" for role, path in source_files.items())
    setting_rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in settings.items())
    ignored_text = "\n".join(f"- `{entry}`" for entry in ignored) or "None."
    body = f"""
# C2F-Seg (converted from the authors' release)

C2F-Seg amodal segmentation (Gao et al., ICCV 2023) converted with `c2f-hf convert-original` from the authors'
checkpoint and configuration files. Every tensor is copied unchanged under a new name (see
`c2f_hf.convert_original_checkpoint`); the ResNet classifier `fc` is dropped.

## Source files

| role | file | SHA-256 |
|------|------|---------|
{files}

## Settings read from the yml files

| setting | value |
|---------|-------|
{setting_rows}

## Extra parameters ignored (`--allow-unexpected`)

{ignored_text}

## Usage

```python
import c2f_hf
from c2f_hf import C2FSegForAmodalSegmentation

model = C2FSegForAmodalSegmentation.from_pretrained("path/to/this/folder")
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


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
    variant) into a `save_pretrained` folder (config, safetensors weights, image processor, model card); returns
    the folder.

    Args:
        push_to_hub: optional Hub repository id the folder is uploaded to.
        allow_unexpected: ignore (and list in the card) extra parameters inside the authors' state dicts.
    """
    paths = {
        name: Path(value)
        for name, value in (
            ("VQ checkpoint", vq_checkpoint),
            ("VQ config", vq_config),
            ("C2F-Seg checkpoint", checkpoint),
            ("C2F-Seg config", config),
        )
    }
    model_config, settings = build_config_from_yaml(paths["VQ config"], paths["C2F-Seg config"])
    sections = read_original_sections(paths["VQ checkpoint"], paths["C2F-Seg checkpoint"])
    model, ignored = build_converted_model(model_config, sections, allow_unexpected)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    C2FSegImageProcessor(crop_resolution=model_config.image_size).save_pretrained(output)
    build_model_card(paths, settings, ignored).save(output / "README.md")
    logger.info("wrote %s", output)
    if push_to_hub:
        _upload(output, push_to_hub)
    return output


def _upload(folder: Path, repo_id: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Convert the authors' C2F-Seg checkpoint")


def _run_cli(args: argparse.Namespace) -> int:
    try:
        output = convert_original_checkpoint(
            args.vq_checkpoint,
            args.vq_config,
            args.checkpoint,
            args.config,
            args.output,
            push_to_hub=args.push_to_hub,
            allow_unexpected=args.allow_unexpected,
        )
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        logger.error("convert-original failed: %s", error)
        return 1
    logger.info("converted checkpoint written to %s", output)
    return 0


def add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """`c2f-hf convert-original`."""
    parser = subparsers.add_parser(
        "convert-original",
        help="convert the authors' released .pth checkpoints and yml configs into a save_pretrained folder",
    )
    parser.add_argument("--vq-checkpoint", required=True, help="vqgan_<DS>.pth (key 'g_model')")
    parser.add_argument("--vq-config", required=True, help="vqgan_<DS>.yml")
    parser.add_argument("--checkpoint", required=True, help="c2f_seg_<DS>.pth (keys 'model', 'img_encoder', 'refine')")
    parser.add_argument("--config", required=True, help="c2f_seg_<DS>.yml")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO", help="also upload the folder to this repo")
    parser.add_argument(
        "--allow-unexpected",
        action="store_true",
        help="ignore extra parameters in the state dicts (listed in the card)",
    )
    parser.set_defaults(handler=_run_cli)
