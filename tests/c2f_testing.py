"""Helpers shared by the tests: tiny configurations, synthetic object batches, and a subprocess runner in which
`c2f_hf` cannot be imported (to test Hub remote code)."""

import dataclasses
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from c2f_hf import C2FSegConfig
from c2f_hf.presets import model_config

TINY_IMAGE_SIZE = 64
# Whether this process's C library is glibc, whose allocator `c2f_hf.cpu_memory` tunes.
ON_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


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


def tiny_video_config(num_frames: int = 2, spatial_window_size: int = 2):
    """`tiny_config()` as a video model: windows of `num_frames` frames, spatial-temporal windows of 2x2 cells."""
    config = tiny_config()
    transformer = dataclasses.replace(
        config.transformer_config, num_frames=num_frames, spatial_window_size=spatial_window_size
    )
    return dataclasses.replace(config, transformer_config=transformer)


def save_tiny_video_model(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised `tiny_video_config()` model and its image processor saved in `folder`."""
    from c2f_hf import C2FSegForAmodalSegmentation, C2FSegImageProcessor

    torch.manual_seed(seed)
    C2FSegForAmodalSegmentation(tiny_video_config()).save_pretrained(folder)
    C2FSegImageProcessor(crop_resolution=TINY_IMAGE_SIZE).save_pretrained(folder)
    return folder


def run_python(script: str, working_directory, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python in `working_directory` with `environment` and no stdin (as in a script or CI
    job), capturing its output."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=working_directory,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_without_package(script: str, working_directory) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python where `import c2f_hf` fails, whatever way the package is installed, with no
    stdin (as in a script or CI job)."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(working_directory / "hf_modules"))
    environment.pop("PYTHONPATH", None)
    return run_python(_BLOCK_PACKAGE + script, working_directory, environment)


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


def save_tiny_sam(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny `SamModel` (64-pixel input) and its `SamProcessor` saved in `folder`."""
    from transformers import SamConfig, SamImageProcessorPil, SamModel, SamProcessor
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=64,
        patch_size=8,
        output_channels=16,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=8,
        mlp_dim=64,
    )
    prompt = SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16
    )
    config = SamConfig(
        vision_config=vision.to_dict(), prompt_encoder_config=prompt.to_dict(), mask_decoder_config=decoder.to_dict()
    )
    torch.manual_seed(seed)
    SamModel(config).save_pretrained(folder)
    image_processor = SamImageProcessorPil(
        size={"longest_edge": 64},
        pad_size={"height": 64, "width": 64},
        mask_size={"longest_edge": 16},
        mask_pad_size={"height": 16, "width": 16},
    )
    SamProcessor(image_processor=image_processor).save_pretrained(folder)
    return folder


def save_tiny_mask2former(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny `Mask2FormerForUniversalSegmentation` (Swin backbone, 5 queries, classes cat /
    dog / car) and its image processor saved in `folder`."""
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessorPil,
        SwinConfig,
    )

    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=2,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    labels = {0: "cat", 1: "dog", 2: "car"}
    config = Mask2FormerConfig(
        backbone_config=backbone,
        feature_size=32,
        mask_feature_size=32,
        hidden_dim=32,
        encoder_feedforward_dim=32,
        dim_feedforward=32,
        encoder_layers=1,
        decoder_layers=2,
        num_attention_heads=1,
        num_queries=5,
        num_labels=3,
        id2label=labels,
        label2id={name: index for index, name in labels.items()},
        common_stride=4,
        use_pretrained_backbone=False,
    )
    torch.manual_seed(seed)
    Mask2FormerForUniversalSegmentation(config).save_pretrained(folder)
    Mask2FormerImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder


def save_tiny_sam2(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny SAM 2 video model (`Sam2VideoModel`, model_type "sam2_video" as the Hub's
    facebook/sam2.1-hiera-* checkpoints: the image pipeline runs its `Sam2Model` part) with its `Sam2VideoProcessor`
    (64-pixel input) saved in `folder`. Widths stay at 128 (transformers' memory code breaks below it) and weights
    are drawn with a large `initializer_range` so the object score is far from zero and masks are not blank."""
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )
    from transformers.models.sam2_video.configuration_sam2_video import (
        Sam2VideoMaskDecoderConfig,
        Sam2VideoPromptEncoderConfig,
    )

    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[64, 64],
        blocks_per_stage=[1, 1, 1, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[2, 2, 2, 2],
        global_attention_blocks=[],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone.to_dict(),
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]],
        fpn_hidden_size=128,
    )
    prompt = Sam2VideoPromptEncoderConfig(hidden_size=128, image_size=64, patch_size=16, mask_input_channels=4)
    decoder = Sam2VideoMaskDecoderConfig(
        hidden_size=128, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=16
    )
    config = Sam2VideoConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
        image_size=64,
        initializer_range=0.2,
        num_maskmem=2,
        max_object_pointers_in_encoder=2,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[4, 4],
        memory_encoder_hidden_size=128,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
    )
    torch.manual_seed(seed)
    Sam2VideoModel(config).save_pretrained(folder)
    image_processor = Sam2ImageProcessor(size={"height": 64, "width": 64}, mask_size={"height": 16, "width": 16})
    video_processor = Sam2VideoVideoProcessor(size={"height": 64, "width": 64})
    Sam2VideoProcessor(image_processor=image_processor, video_processor=video_processor).save_pretrained(folder)
    return folder
