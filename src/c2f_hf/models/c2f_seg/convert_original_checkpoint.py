"""The authors' checkpoints as `C2FSegForAmodalSegmentation` state dicts: the key table and the renaming.

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

`build_converted_model` applies the table to state dicts already in memory and loads the result strictly. Reading
the authors' files (`torch.load(weights_only=True)`, their yml configs), the model card and the upload are
`c2f_hf.hub.convert` (`c2f-hf convert-original`); like transformers' `convert_*_to_hf.py` scripts, this module sits
beside the model and is not copied into exported repos.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .configuration_c2f_seg import C2FSegConfig
from .modeling_c2f_seg import C2FSegForAmodalSegmentation


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


# The entry of `vqgan_<DS>.pth` and those of `c2f_seg_<DS>.pth` that hold the weights.
VQ_SECTION = "g_model"
C2F_SECTIONS = ("model", "img_encoder", "refine")


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
    states = (vq_state, transformer_state, image_encoder_state, refiner_state)
    for section, state in zip((VQ_SECTION, *C2F_SECTIONS), states):
        for key, value in state.items():
            new_key = rename_original_key(section, key, is_video)
            if new_key is not None:
                renamed[new_key] = value
    return renamed


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


__all__ = [
    "C2F_SECTIONS",
    "ORIGINAL_KEY_MAPPING",
    "VQ_SECTION",
    "KeyRule",
    "build_converted_model",
    "check_state_dict",
    "is_video_transformer",
    "rename_original_key",
    "rename_original_state_dicts",
    "rename_with_sources",
]
