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
"""

import re
from collections.abc import Mapping

import torch

RESNET_PREFIX = "encoder.model."
DROPPED_RESNET_PREFIX = "fc."

_STEM_PATTERN = re.compile(r"^(conv1|bn1)\.(.+)$")
_BLOCK_PATTERN = re.compile(r"^layer(\d+)\.(\d+)\.(conv|bn)(\d+)\.(.+)$")
_SHORTCUT_PATTERN = re.compile(r"^layer(\d+)\.(\d+)\.downsample\.([01])\.(.+)$")
_PART_NAMES = {"conv": "convolution", "bn": "normalization", "0": "convolution", "1": "normalization"}


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
