"""Conversion of the authors' released checkpoints into `C2FSegForAmodalSegmentation` state dicts.

The authors' names live in one place: `ORIGINAL_KEY_MAPPING`, an ordered table of rules, each a regular
expression over `"<section>.<key>"` (the section being the entry of the authors' file: `g_model` of
`vqgan_<DS>.pth`; `model`, `img_encoder` and `refine` of `c2f_seg_<DS>.pth`) and our key as a template of its
groups. The first rule that matches the whole name wins; a name no rule matches is reported, never guessed. The
rename is one-to-one, no tensor is reshaped, and only the ResNet classifier `fc` is dropped.

Examples, per section of the authors' files and our sub-model:
- `g_model` -> `vq_model`: `encoder.down.{i}.block.{j}.nin_shortcut` -> `encoder.down_blocks.{i}.resnets.{j}.
  conv_shortcut`; `decoder.mid.block_1` -> `decoder.mid_block.resnets.0`.
- `model` -> `transformer`: `blocks.{i}.attn.proj` -> `layers.{i}.attention.out_proj`; `c_emb` ->
  `embeddings.visible_token_embeddings`; `m_bias` -> `prediction_head.bias`.
- `refine` -> `refiner`: `lay4_vm` -> `visible_branch.layer1.convolution`; `bn4_am` ->
  `amodal_branch.layer1.normalization`; `adapter1` -> `stride16_adapter`.
- `img_encoder` -> `backbone` (torchvision ResNet-50 under `encoder.model.` -> `ResNetBackbone`):
  `layer{s}.{i}.conv{k}` -> `encoder.stages.{s-1}.layers.{i}.layer.{k-1}.convolution`; `fc` is dropped.

Image and video transformers share most names; the rules of `blocks.{i}.ln1`/`ln2` differ (image: the LayerNorms
before the attention and the MLP; video: before the spatial and the temporal attention, `ln3` being the MLP's),
so those rules name their variant. A `model` state dict with `blocks.{i}.attn1` keys is the video variant
(`blocks.{i}.ln1/attn1/ln2/attn2/ln3/mlp` in the authors' `src/video_component.py`).

`convert_original_checkpoint` (CLI: `c2f-hf convert-original`) reads the two `.pth` files with
`torch.load(weights_only=True)` and the two yml files, applies the table, loads the result strictly into a
`C2FSegForAmodalSegmentation` and writes a `save_pretrained` folder with a model card. Both variants convert; the
video yml's `window_length` becomes `transformer_config.num_frames`.

The file is a little over our ~600-line guideline because the key table spells out every rule (one per
authors' layer name) rather than generating them; the conversion code itself is short.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.errors import StrictDataclassError

from .checkpoints import file_sha256
from .models.c2f_seg.configuration_c2f_seg import C2FSegConfig, C2FSegTransformerConfig, C2FSegVQConfig
from .models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from .models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation
from .weights_only import refused_global

logger = logging.getLogger(__name__)


class KeyRule(NamedTuple):
    """One rule of `ORIGINAL_KEY_MAPPING`.

    `pattern` matches a whole `"<section>.<authors' key>"`; `replacement` is our key as a `str.format` template of
    the pattern's groups (`{1}` is group 1), or None for a dropped tensor; the groups listed in `one_based` are
    1-based indices of the authors that become 0-based in ours; `variant` is "image", "video" or None (both).
    """

    pattern: str
    replacement: str | None
    one_based: tuple[int, ...] = ()
    variant: str | None = None


_PARAMETER = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_RESNET = r"img_encoder\.encoder\.model\."

ORIGINAL_KEY_MAPPING: tuple[KeyRule, ...] = (
    # ----- g_model: the mask VQ-GAN -----
    KeyRule(rf"g_model\.(encoder|decoder)\.(conv_in|norm_out|conv_out)\.{_PARAMETER}", "vq_model.{1}.{2}.{3}"),
    KeyRule(
        rf"g_model\.encoder\.down\.(\d+)\.block\.(\d+)\.(norm1|conv1|norm2|conv2)\.{_PARAMETER}",
        "vq_model.encoder.down_blocks.{1}.resnets.{2}.{3}.{4}",
    ),
    KeyRule(
        rf"g_model\.encoder\.down\.(\d+)\.block\.(\d+)\.nin_shortcut\.{_PARAMETER}",
        "vq_model.encoder.down_blocks.{1}.resnets.{2}.conv_shortcut.{3}",
    ),
    KeyRule(
        rf"g_model\.encoder\.down\.(\d+)\.downsample\.conv\.{_PARAMETER}",
        "vq_model.encoder.down_blocks.{1}.downsample.conv.{2}",
    ),
    KeyRule(
        rf"g_model\.decoder\.up\.(\d+)\.block\.(\d+)\.(norm1|conv1|norm2|conv2)\.{_PARAMETER}",
        "vq_model.decoder.up_blocks.{1}.resnets.{2}.{3}.{4}",
    ),
    KeyRule(
        rf"g_model\.decoder\.up\.(\d+)\.block\.(\d+)\.nin_shortcut\.{_PARAMETER}",
        "vq_model.decoder.up_blocks.{1}.resnets.{2}.conv_shortcut.{3}",
    ),
    KeyRule(
        rf"g_model\.decoder\.up\.(\d+)\.upsample\.conv\.{_PARAMETER}",
        "vq_model.decoder.up_blocks.{1}.upsample.conv.{2}",
    ),
    KeyRule(
        rf"g_model\.(encoder|decoder)\.mid\.block_(\d)\.(norm1|conv1|norm2|conv2)\.{_PARAMETER}",
        "vq_model.{1}.mid_block.resnets.{2}.{3}.{4}",
        one_based=(2,),
    ),
    KeyRule(rf"g_model\.(quant_conv|post_quant_conv)\.{_PARAMETER}", "vq_model.{1}.{2}"),
    KeyRule(r"g_model\.quantize\.embedding\.weight", "vq_model.quantize.embedding.weight"),
    # ----- model: the mask-and-predict transformer -----
    KeyRule(rf"model\.conv_in\.{_PARAMETER}", "transformer.embeddings.image_projection.{1}"),
    KeyRule(r"model\.c_emb\.weight", "transformer.embeddings.visible_token_embeddings.weight"),
    KeyRule(r"model\.z_emb\.weight", "transformer.embeddings.amodal_token_embeddings.weight"),
    KeyRule(r"model\.pos_emb\.weight", "transformer.embeddings.position_embeddings.weight"),
    KeyRule(
        rf"model\.blocks\.(\d+)\.ln1\.{_PARAMETER}", "transformer.layers.{1}.layernorm_before.{2}", variant="image"
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn\.(key|query|value)\.{_PARAMETER}",
        "transformer.layers.{1}.attention.{2}.{3}",
        variant="image",
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn\.proj\.{_PARAMETER}",
        "transformer.layers.{1}.attention.out_proj.{2}",
        variant="image",
    ),
    KeyRule(rf"model\.blocks\.(\d+)\.ln2\.{_PARAMETER}", "transformer.layers.{1}.layernorm_after.{2}", variant="image"),
    KeyRule(
        rf"model\.blocks\.(\d+)\.ln1\.{_PARAMETER}", "transformer.layers.{1}.spatial_layernorm.{2}", variant="video"
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn1\.(key|query|value)\.{_PARAMETER}",
        "transformer.layers.{1}.spatial_attention.{2}.{3}",
        variant="video",
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn1\.proj\.{_PARAMETER}",
        "transformer.layers.{1}.spatial_attention.out_proj.{2}",
        variant="video",
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.ln2\.{_PARAMETER}", "transformer.layers.{1}.temporal_layernorm.{2}", variant="video"
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn2\.(key|query|value)\.{_PARAMETER}",
        "transformer.layers.{1}.temporal_attention.{2}.{3}",
        variant="video",
    ),
    KeyRule(
        rf"model\.blocks\.(\d+)\.attn2\.proj\.{_PARAMETER}",
        "transformer.layers.{1}.temporal_attention.out_proj.{2}",
        variant="video",
    ),
    KeyRule(rf"model\.blocks\.(\d+)\.ln3\.{_PARAMETER}", "transformer.layers.{1}.mlp_layernorm.{2}", variant="video"),
    KeyRule(rf"model\.blocks\.(\d+)\.mlp\.0\.{_PARAMETER}", "transformer.layers.{1}.mlp.fc1.{2}"),
    KeyRule(rf"model\.blocks\.(\d+)\.mlp\.2\.{_PARAMETER}", "transformer.layers.{1}.mlp.fc2.{2}"),
    KeyRule(rf"model\.dec\.ln1\.{_PARAMETER}", "transformer.prediction_head.layernorm_before.{1}"),
    KeyRule(rf"model\.dec\.dense\.{_PARAMETER}", "transformer.prediction_head.dense.{1}"),
    KeyRule(rf"model\.dec\.ln2\.{_PARAMETER}", "transformer.prediction_head.layernorm_after.{1}"),
    KeyRule(r"model\.m_dec\.weight", "transformer.prediction_head.decoder.weight"),
    KeyRule(r"model\.m_bias", "transformer.prediction_head.bias"),
    # ----- refine: the refiner (branches `_vm` visible, `_am` amodal) -----
    KeyRule(rf"refine\.conv_adapter\.{_PARAMETER}", "refiner.feature_adapter.{1}"),
    KeyRule(rf"refine\.conv_in\.{_PARAMETER}", "refiner.feature_projection.{1}"),
    KeyRule(rf"refine\.lay([123])\.{_PARAMETER}", "refiner.trunk_layer{1}.convolution.{2}"),
    KeyRule(rf"refine\.bn([123])\.{_PARAMETER}", "refiner.trunk_layer{1}.normalization.{2}"),
    KeyRule(rf"refine\.adapter1\.{_PARAMETER}", "refiner.stride16_adapter.{1}"),
    KeyRule(rf"refine\.lay4_vm\.{_PARAMETER}", "refiner.visible_branch.layer1.convolution.{1}"),
    KeyRule(rf"refine\.bn4_vm\.{_PARAMETER}", "refiner.visible_branch.layer1.normalization.{1}"),
    KeyRule(rf"refine\.lay5_vm\.{_PARAMETER}", "refiner.visible_branch.layer2.convolution.{1}"),
    KeyRule(rf"refine\.bn5_vm\.{_PARAMETER}", "refiner.visible_branch.layer2.normalization.{1}"),
    KeyRule(rf"refine\.adapter2_vm\.{_PARAMETER}", "refiner.visible_branch.stride8_adapter.{1}"),
    KeyRule(rf"refine\.adapter3_vm\.{_PARAMETER}", "refiner.visible_branch.stride4_adapter.{1}"),
    KeyRule(rf"refine\.out_lay_vm\.{_PARAMETER}", "refiner.visible_branch.classifier.{1}"),
    KeyRule(rf"refine\.lay4_am\.{_PARAMETER}", "refiner.amodal_branch.layer1.convolution.{1}"),
    KeyRule(rf"refine\.bn4_am\.{_PARAMETER}", "refiner.amodal_branch.layer1.normalization.{1}"),
    KeyRule(rf"refine\.lay5_am\.{_PARAMETER}", "refiner.amodal_branch.layer2.convolution.{1}"),
    KeyRule(rf"refine\.bn5_am\.{_PARAMETER}", "refiner.amodal_branch.layer2.normalization.{1}"),
    KeyRule(rf"refine\.adapter2_am\.{_PARAMETER}", "refiner.amodal_branch.stride8_adapter.{1}"),
    KeyRule(rf"refine\.adapter3_am\.{_PARAMETER}", "refiner.amodal_branch.stride4_adapter.{1}"),
    KeyRule(rf"refine\.out_lay_am\.{_PARAMETER}", "refiner.amodal_branch.classifier.{1}"),
    # ----- img_encoder: torchvision ResNet-50 under `encoder.model.` -> transformers' ResNetBackbone -----
    KeyRule(rf"{_RESNET}fc\.{_PARAMETER}", None),
    KeyRule(rf"{_RESNET}conv1\.{_PARAMETER}", "backbone.embedder.embedder.convolution.{1}"),
    KeyRule(rf"{_RESNET}bn1\.{_PARAMETER}", "backbone.embedder.embedder.normalization.{1}"),
    KeyRule(
        rf"{_RESNET}layer(\d)\.(\d+)\.conv(\d)\.{_PARAMETER}",
        "backbone.encoder.stages.{1}.layers.{2}.layer.{3}.convolution.{4}",
        one_based=(1, 3),
    ),
    KeyRule(
        rf"{_RESNET}layer(\d)\.(\d+)\.bn(\d)\.{_PARAMETER}",
        "backbone.encoder.stages.{1}.layers.{2}.layer.{3}.normalization.{4}",
        one_based=(1, 3),
    ),
    KeyRule(
        rf"{_RESNET}layer(\d)\.(\d+)\.downsample\.0\.{_PARAMETER}",
        "backbone.encoder.stages.{1}.layers.{2}.shortcut.convolution.{3}",
        one_based=(1,),
    ),
    KeyRule(
        rf"{_RESNET}layer(\d)\.(\d+)\.downsample\.1\.{_PARAMETER}",
        "backbone.encoder.stages.{1}.layers.{2}.shortcut.normalization.{3}",
        one_based=(1,),
    ),
)
_VIDEO_BLOCK_PATTERN = re.compile(r"blocks\.\d+\.attn1\.")


VQ_SECTION = "g_model"
C2F_SECTIONS = ("model", "img_encoder", "refine")
# How torch's weights-only unpickler reports a class or function it refuses to import.
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


def is_video_transformer(transformer_state: Mapping[str, Any]) -> bool:
    """Whether the authors' `model` state dict is the video variant (it has spatial-temporal `attn1` layers)."""
    return any(_VIDEO_BLOCK_PATTERN.match(key) for key in transformer_state)


def rename_original_key(section: str, key: str, is_video: bool = False) -> str | None:
    """Our name of the authors' `section[key]` by `ORIGINAL_KEY_MAPPING`; None for a dropped tensor (the ResNet
    `fc`). Raises KeyError for a name no rule matches."""
    name = f"{section}.{key}"
    variant = "video" if is_video else "image"
    for rule in ORIGINAL_KEY_MAPPING:
        if rule.variant not in (None, variant):
            continue
        match = re.fullmatch(rule.pattern, name)
        if match is None:
            continue
        if rule.replacement is None:
            return None
        groups = [
            str(int(group) - 1) if index in rule.one_based else group
            for index, group in enumerate(match.groups(), start=1)
        ]
        return rule.replacement.format(None, *groups)
    raise KeyError(f"no rule of ORIGINAL_KEY_MAPPING matches {section}[{key!r}]")


def rename_original_state_dicts(
    vq_state: Mapping[str, torch.Tensor],
    transformer_state: Mapping[str, torch.Tensor],
    image_encoder_state: Mapping[str, torch.Tensor],
    refiner_state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Apply `ORIGINAL_KEY_MAPPING` to the four state dicts of the authors' two files (`g_model`; `model`,
    `img_encoder`, `refine`) and return one state dict for `C2FSegForAmodalSegmentation`."""
    is_video = is_video_transformer(transformer_state)
    renamed = {}
    for section, state in (
        (VQ_SECTION, vq_state),
        ("model", transformer_state),
        ("img_encoder", image_encoder_state),
        ("refine", refiner_state),
    ):
        for key, value in state.items():
            new_key = rename_original_key(section, key, is_video)
            if new_key is not None:
                renamed[new_key] = value
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


def rename_with_sources(
    sections: Mapping[str, tuple[Path, Mapping[str, torch.Tensor]]],
) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Rename every tensor of `{section: (file, state dict)}`.

    Returns our state dict, `{our key: "file['section']['key']"}` and the source names the rule cannot rename.
    """
    renamed: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    unrenamable: list[str] = []
    is_video = "model" in sections and is_video_transformer(sections["model"][1])
    for section, (path, state) in sections.items():
        for key, tensor in state.items():
            source = f"{path.name}[{section!r}][{key!r}]"
            try:
                new_key = rename_original_key(section, key, is_video)
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


def build_model_card(source_files: Mapping[str, Path], settings: Mapping[str, Any], ignored: list[str]) -> ModelCard:
    """Model card naming the source files (with SHA-256), the yml settings used and any ignored extras. (`hub.cards`
    is imported here, not at the top: it needs the evaluation stack, `datasets` and `pycocotools`, which converting
    weights does not.)"""
    from .hub.cards import CODE_LICENCE, MIN_TRANSFORMERS, licence_text

    data = ModelCardData(
        library_name="transformers",
        license=CODE_LICENCE,
        tags=["c2f-seg", "amodal-segmentation", "image-segmentation"],
    )
    files = "\n".join(f"| {role} | `{path.name}` | `{file_sha256(path)}` |" for role, path in source_files.items())
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

Needs `c2f_hf` and `transformers>={MIN_TRANSFORMERS}`; `c2f-hf export` turns this folder into a Hub repo that loads
with `trust_remote_code=True` alone.

## Licence

{licence_text(converted=True)}
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
