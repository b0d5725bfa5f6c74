"""Checks of a saved folder made before a model is built from it.

- Registered checks (`register_folder_check`) run first on every local folder: `c2f_hf.checkpoints` registers the
  shipped models' digest check, so every path that loads a shipped folder (the pipelines' default included)
  verifies it.
- The `model.safetensors` header is read only when its declared size is plausible, and the config's repeated
  blocks (transformer layers, VQ levels and residual blocks, backbone stage depths) must each be present in the
  file, so a config.json asking for a huge model is refused before anything is allocated.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

# A safetensors header is ~150 bytes per tensor: the paper-size model (~1,000 tensors) has ~150 kB. 16 MiB leaves
# room for 100,000 tensors while refusing a crafted header before it is read into memory.
MAX_HEADER_BYTES = 16 << 20
WEIGHTS_FILE = "model.safetensors"
# Keys of one repeated block; group 1 is its index.
LAYER = r"layers\.(\d+)\."
VQ_LEVEL = r"encoder\.down_blocks\.(\d+)\."
VQ_RESNET = r"encoder\.down_blocks\.\d+\.resnets\.(\d+)\."
STAGE_LAYER = r"encoder\.stages\.\d+\.layers\.(\d+)\."


FOLDER_CHECKS: list[Callable[[Path], None]] = []


def register_folder_check(check: Callable[[Path], None]) -> None:
    """Run `check(folder)` (which raises to refuse it) on every local folder a C2F-Seg model is loaded from."""
    if check not in FOLDER_CHECKS:
        FOLDER_CHECKS.append(check)


def run_folder_checks(folder: str | os.PathLike) -> None:
    """The registered checks of a local model folder, in registration order."""
    for check in FOLDER_CHECKS:
        check(Path(folder))


def read_safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a safetensors file, from its header only. Raises ValueError naming the file when the
    header's declared size is over `MAX_HEADER_BYTES` or beyond the file, or the header is not a JSON object."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path}: is not a safetensors file (shorter than its 8-byte header size)")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > MAX_HEADER_BYTES or header_bytes > size - 8:
            raise ValueError(
                f"{path}: declares a {header_bytes}-byte header (the file has {size} bytes; at most "
                f"{MAX_HEADER_BYTES} are read): the file is damaged or not a model's weights"
            )
        try:
            header = json.loads(stream.read(header_bytes))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: its header is not a JSON object")
    return [key for key in header if key != "__metadata__"]


def repeated_blocks(config) -> list[tuple[str, int, re.Pattern]]:
    """`(field, count, pattern)` per repeated block of a C2F-Seg config or sub-config: the config asks for `count`
    blocks, and a weights key matching `pattern` names block `group(1)` (0-based)."""
    model_type = getattr(config, "model_type", None)
    if model_type == "c2f_seg":
        return [
            *repeated_blocks(config.vq_config),
            *repeated_blocks(config.transformer_config),
            ("backbone_config.depths", max(config.backbone_config.depths), _pattern(r"backbone\.", STAGE_LAYER)),
        ]
    if model_type == "c2f_seg_transformer":
        return [("transformer_config.num_hidden_layers", config.num_hidden_layers, _pattern(r"transformer\.", LAYER))]
    if model_type == "c2f_seg_vq":
        return [
            ("vq_config.channel_multipliers", len(config.channel_multipliers), _pattern(r"vq_model\.", VQ_LEVEL)),
            ("vq_config.num_res_blocks", config.num_res_blocks, _pattern(r"vq_model\.", VQ_RESNET)),
        ]
    return []


def _pattern(prefix: str, block: str) -> re.Pattern:
    """A key pattern for `block` in a composite folder (keys start with `prefix`) or a sub-model's own folder."""
    return re.compile(rf"^(?:{prefix})?{block}")


def check_config_against_weights(folder: str | os.PathLike, config) -> None:
    """Raise ValueError naming the config field and the file when `config` asks for more repeated blocks than the
    folder's `model.safetensors` holds (or its header is implausible: see `read_safetensors_keys`). Folders without
    a single `model.safetensors` (sharded or on the Hub) are left to transformers' own checks."""
    weights = Path(folder) / WEIGHTS_FILE
    if not weights.is_file():
        return
    keys = read_safetensors_keys(weights)
    for field, count, pattern in repeated_blocks(config):
        indices = [int(match.group(1)) for match in map(pattern.match, keys) if match]
        stored = max(indices) + 1 if indices else 0
        if count > stored:
            raise ValueError(
                f"{Path(folder) / 'config.json'}: {field} asks for {count} blocks but {weights} holds weights for "
                f"{stored}; the config does not describe these weights"
            )


__all__ = [
    "MAX_HEADER_BYTES",
    "check_config_against_weights",
    "read_safetensors_keys",
    "register_folder_check",
    "run_folder_checks",
]
