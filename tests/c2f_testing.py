"""Helpers shared by the tests: tiny configurations, synthetic object batches, and a subprocess runner in which
`c2f_hf` cannot be imported (to test Hub remote code)."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from transformers import ResNetConfig

from c2f_hf import C2FSegConfig, C2FSegRefinerConfig, C2FSegTransformerConfig, C2FSegVQConfig

TINY_IMAGE_SIZE = 64


def tiny_vq_config() -> C2FSegVQConfig:
    return C2FSegVQConfig(
        base_channels=8,
        channel_multipliers=[1, 1, 2, 2, 2],
        num_res_blocks=1,
        z_channels=8,
        resolution=TINY_IMAGE_SIZE,
        codebook_size=16,
        codebook_dim=8,
        norm_num_groups=4,
    )


def tiny_config(**overrides) -> C2FSegConfig:
    backbone = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    return C2FSegConfig(
        vq_config=tiny_vq_config(),
        transformer_config=C2FSegTransformerConfig(
            vocab_size=16,
            sequence_length=16,
            image_feature_channels=32,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        refiner_config=C2FSegRefinerConfig(
            backbone_channels=[8, 16, 24, 32], hidden_size=16, decoder_channels=[16, 8, 8, 4]
        ),
        backbone_config=backbone,
        image_size=TINY_IMAGE_SIZE,
        **overrides,
    )


def random_object_batch(batch_size: int, seed: int = 0, size: int = TINY_IMAGE_SIZE):
    """(pixel_values, visible_masks, amodal_masks) with square-ish objects partly covered by a bar."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.rand(batch_size, 3, size, size, generator=generator)
    amodal = torch.zeros(batch_size, 1, size, size)
    visible = torch.zeros(batch_size, 1, size, size)
    for index in range(batch_size):
        top, left = torch.randint(4, size // 3, (2,), generator=generator).tolist()
        extent = int(torch.randint(size // 3, size // 2, (1,), generator=generator))
        amodal[index, :, top : top + extent, left : left + extent] = 1
        visible[index] = amodal[index]
        visible[index, :, top + extent // 2 :, :] = 0
    return pixel_values, visible, amodal


_BLOCK_PACKAGE = """
import importlib.abc
import sys


class _BlockC2FHF(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "c2f_hf" or name.startswith("c2f_hf."):
            raise ModuleNotFoundError(f"c2f_hf is blocked in this process: {name}")
        return None


sys.meta_path.insert(0, _BlockC2FHF())
try:
    import c2f_hf  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("c2f_hf must not be importable here")
"""


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised `tiny_config()` model and its image processor (64-pixel crops) saved in `folder`."""
    from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor

    torch.manual_seed(seed)
    C2FSegForAmodalSegmentation(tiny_config()).save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=TINY_IMAGE_SIZE).save_pretrained(folder)
    return folder


def run_without_package(script: str, working_directory) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python where `import c2f_hf` fails, whatever way the package is installed."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(working_directory / "hf_modules"))
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_PACKAGE + script],
        cwd=working_directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
