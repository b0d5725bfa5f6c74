"""Named model configurations: the paper's image and video settings and the small models we ship.

`kins` and `cocoa` are the paper's image configuration (the authors' yml files give both the same architecture);
`fishbowl` and `movid_a` the paper's video configuration (8 spatial-temporal layers, window of 16 and 24 frames,
as the authors' `c2f_seg_Fishbowl.yml` and `c2f_seg_MOViD_A.yml`); `tiny` is a CPU-trainable model for the
synthetic benchmark (128-pixel crops, 8x8 token grid, codebook 64) and `tiny_video` its video variant (windows of
4 frames, 2x2-cell spatial-temporal windows). `micro` (64-pixel crops, 4x4 tokens, codebook 16) runs in
seconds on a CPU: for smoke tests, CI and checking benchmark scripts, not for training a useful model.
"""

import dataclasses

from transformers import ResNetConfig

from .models.c2f_seg.configuration_c2f_seg import (
    C2FSegConfig,
    C2FSegRefinerConfig,
    C2FSegTransformerConfig,
    C2FSegVQConfig,
)


def _video_config(num_frames: int) -> C2FSegConfig:
    """The paper's video configuration: the image model with 8 spatial-temporal layers over T frames."""
    transformer = C2FSegTransformerConfig(num_hidden_layers=8, num_frames=num_frames)
    return C2FSegConfig(transformer_config=transformer)


def _tiny_video_config() -> C2FSegConfig:
    config = _tiny_config()
    transformer = dataclasses.replace(config.transformer_config, num_frames=4, spatial_window_size=2)
    return dataclasses.replace(config, transformer_config=transformer)


def _tiny_config() -> C2FSegConfig:
    backbone_widths = [32, 64, 128, 256]
    return C2FSegConfig(
        image_size=128,
        vq_config=C2FSegVQConfig(
            base_channels=8,
            channel_multipliers=[1, 2, 2, 4, 4],
            num_res_blocks=1,
            z_channels=32,
            resolution=128,
            codebook_size=64,
            codebook_dim=32,
            norm_num_groups=8,
        ),
        transformer_config=C2FSegTransformerConfig(
            vocab_size=64,
            sequence_length=64,
            image_feature_channels=backbone_widths[-1],
            hidden_size=128,
            num_hidden_layers=4,
            num_attention_heads=4,
            embedding_dropout=0.0,
            attention_dropout=0.0,
            residual_dropout=0.0,
        ),
        refiner_config=C2FSegRefinerConfig(
            backbone_channels=backbone_widths, hidden_size=64, decoder_channels=[32, 16, 16, 8]
        ),
        backbone_config=ResNetConfig(embedding_size=32, hidden_sizes=backbone_widths, depths=[1, 1, 1, 1]),
    )


def _micro_config() -> C2FSegConfig:
    backbone_widths = [8, 16, 24, 32]
    return C2FSegConfig(
        image_size=64,
        vq_config=C2FSegVQConfig(
            base_channels=8,
            channel_multipliers=[1, 1, 2, 2, 2],
            num_res_blocks=1,
            z_channels=8,
            resolution=64,
            codebook_size=16,
            codebook_dim=8,
            norm_num_groups=4,
        ),
        transformer_config=C2FSegTransformerConfig(
            vocab_size=16,
            sequence_length=16,
            image_feature_channels=backbone_widths[-1],
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        refiner_config=C2FSegRefinerConfig(
            backbone_channels=backbone_widths, hidden_size=16, decoder_channels=[16, 8, 8, 4]
        ),
        backbone_config=ResNetConfig(embedding_size=8, hidden_sizes=backbone_widths, depths=[1, 1, 1, 1]),
    )


MODEL_PRESETS = {
    "micro": _micro_config,
    "kins": C2FSegConfig,
    "cocoa": C2FSegConfig,
    "tiny": _tiny_config,
    "fishbowl": lambda: _video_config(num_frames=16),
    "movid_a": lambda: _video_config(num_frames=24),
    "tiny_video": _tiny_video_config,
}


def model_config(preset: str) -> C2FSegConfig:
    """The `C2FSegConfig` of a named preset."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[preset]()
