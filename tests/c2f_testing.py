"""Helpers shared by the tests: tiny configurations, synthetic object batches, and a subprocess runner in which
`c2f_hf` cannot be imported (to test Hub remote code)."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import torch

from c2f_hf import C2FSegConfig
from c2f_hf.presets import model_config

TINY_IMAGE_SIZE = 64


def tiny_config(**overrides) -> C2FSegConfig:
    """The `micro` preset (64-pixel crops, 4x4 tokens), with `C2FSegConfig` field overrides."""
    return dataclasses.replace(model_config("micro"), **overrides)


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
    """Run `script` in a fresh Python where `import c2f_hf` fails, whatever way the package is installed, with no
    stdin (as in a script or CI job)."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(working_directory / "hf_modules"))
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-c", _BLOCK_PACKAGE + script],
        cwd=working_directory,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def synthetic_video_folder(folder: Path) -> Path:
    """Two 4-frame synthetic test clips of 64 pixels (`c2f-hf data synthetic --video`) written to `folder`."""
    from c2f_hf.cli import main

    arguments = ["--num-train", "0", "--num-test", "2", "--size", "64", "--video", "--num-frames", "4"]
    main(["data", "synthetic", "--out", str(folder), *arguments])
    return folder


def visible_track_frames(clips) -> tuple[int, int]:
    """(number of (track, frame) pairs with a non-empty visible mask, number of all pairs) of a video dataset."""
    from c2f_hf.data.transforms import decode_mask

    visible = [
        decode_mask(mask).any()
        for clip in clips.with_format("arrow")[:].to_pylist()
        for track in clip["objects"]
        for mask in track["visible_masks"]
    ]
    return sum(visible), len(visible)
