"""The authors' checkpoint layout for the converter tests: our state dict in the authors' names and sections.

The renaming here is the inverse of the converter's key table, written independently of it (SAM-converter style
`re.sub` edits and the torchvision ResNet names), so a test that converts these state dicts back checks the table.
"""

import re
from pathlib import Path

import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.convert_original_checkpoint import rename_original_state_dicts

SECTION_OF_PREFIX = {"vq_model": "g_model", "transformer": "model", "refiner": "refine"}
PART_NUMBER = {"convolution": "0", "normalization": "1"}
PART_NAME = {"convolution": "conv", "normalization": "bn"}


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
    """`{section: (file, state dict)}` as read from the files: `g_model` from `vq_path`, the rest from `c2f_path`."""
    return {name: (vq_path if name == "g_model" else c2f_path, state) for name, state in state_dicts.items()}


def rename(state_dicts: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The converter's renaming of the authors' four state dicts."""
    return rename_original_state_dicts(
        state_dicts["g_model"], state_dicts["model"], state_dicts["img_encoder"], state_dicts["refine"]
    )
