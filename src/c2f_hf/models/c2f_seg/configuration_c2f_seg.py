"""Configurations of C2F-Seg: the mask VQ-GAN, the mask-and-predict transformer, the refiner and the composite.

Defaults are the paper's KINS image configuration (256x256 object crops, 16x16 token grid, codebook 256,
transformer width 768 with 12 layers and 12 heads, ResNet-50 backbone with a stride-1 last stage).
"""

from __future__ import annotations

import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, ResNetConfig
from transformers.configuration_utils import SubConfigSpec


def _check_positive(config: PreTrainedConfig, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {value}.")


def _check_finite(config: PreTrainedConfig, *names: str, positive: bool = False) -> None:
    """Raise ValueError naming the field unless each is a finite number (and > 0 when `positive`): a saved
    negative or infinite epsilon would make every norm return NaN."""
    for name in names:
        value = getattr(config, name)
        if not math.isfinite(value) or (positive and value <= 0):
            expected = "a finite positive number" if positive else "a finite number"
            raise ValueError(f"{type(config).__name__}.{name} must be {expected}, got {value}.")


AMODAL_OUTPUTS = ("refined", "coarse", "refined_where_visible")


def check_amodal_output(amodal_output: object) -> None:
    """Refuse an `amodal_output` outside `AMODAL_OUTPUTS`, naming it."""
    if amodal_output not in AMODAL_OUTPUTS:
        raise ValueError(f"C2FSegConfig.amodal_output must be one of {AMODAL_OUTPUTS}, got {amodal_output!r}.")


def _check_probability(config: PreTrainedConfig, *names: str, allow_one: bool = False) -> None:
    for name in names:
        value = getattr(config, name)
        if not (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0):
            interval = "[0, 1]" if allow_one else "[0, 1)"
            raise ValueError(f"{type(config).__name__}.{name} must be in {interval}, got {value}.")


@strict
class C2FSegVQConfig(PreTrainedConfig):
    r"""
    The mask VQ-GAN (taming-transformers layout without attention blocks) that turns `resolution`-sized binary
    masks into a grid of `resolution / 2 ** (len(channel_multipliers) - 1)` codebook indices per side.

    Args:
        in_channels (`int`, defaults to 1): channels of the input mask.
        out_channels (`int`, defaults to 1): channels of the decoded mask.
        base_channels (`int`, defaults to 128): the authors' `ch`.
        channel_multipliers (`list[int]`, defaults to `[1, 1, 2, 2, 4]`): the authors' `ch_mult`; one level each,
            with a 2x downsampling between consecutive levels.
        num_res_blocks (`int`, defaults to 2): residual blocks per encoder level (the decoder uses one more).
        z_channels (`int`, defaults to 256): channels of the encoder output.
        resolution (`int`, defaults to 256): side of the square masks.
        codebook_size (`int`, defaults to 256): number of codes (`n_embed`).
        codebook_dim (`int`, defaults to 256): dimension of a code (`embed_dim`).
        commitment_beta (`float`, defaults to 0.25): weight of the commitment term of the codebook loss.
        dropout (`float`, defaults to 0.0): dropout inside the residual blocks.
        norm_num_groups (`int`, defaults to 32): groups of every GroupNorm.
        norm_eps (`float`, defaults to 1e-6): epsilon of every GroupNorm.
        initializer_range (`float`, defaults to 0.02): std of the normal init of Linear and Embedding weights (the
            VQ model has none besides the codebook, which is initialised U(-1/n, 1/n)).
    """

    model_type = "c2f_seg_vq"
    base_config_key = "vq_config"

    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 128
    channel_multipliers: list[int] | tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    resolution: int = 256
    codebook_size: int = 256
    codebook_dim: int = 256
    commitment_beta: float = 0.25
    dropout: float = 0.0
    norm_num_groups: int = 32
    norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.channel_multipliers = list(self.channel_multipliers)
        super().__post_init__(**kwargs)

    @property
    def downsampling_factor(self) -> int:
        return 2 ** (len(self.channel_multipliers) - 1)

    @property
    def latent_size(self) -> int:
        """Side of the token grid."""
        return self.resolution // self.downsampling_factor

    def validate_architecture(self):
        _check_positive(self, "base_channels", "num_res_blocks", "z_channels", "resolution", "codebook_size")
        _check_positive(self, "codebook_dim", "norm_num_groups")
        _check_finite(self, "norm_eps", positive=True)
        _check_finite(self, "commitment_beta", "initializer_range")
        if not self.channel_multipliers:
            raise ValueError("C2FSegVQConfig.channel_multipliers must name at least one level.")
        if self.resolution % self.downsampling_factor:
            raise ValueError(
                f"C2FSegVQConfig.resolution ({self.resolution}) must be divisible by the downsampling factor "
                f"{self.downsampling_factor} of channel_multipliers={self.channel_multipliers}."
            )
        for width in {self.base_channels * m for m in self.channel_multipliers}:
            if width % self.norm_num_groups:
                raise ValueError(
                    f"C2FSegVQConfig: every level width (base_channels * multiplier, here {width}) must be "
                    f"divisible by norm_num_groups={self.norm_num_groups}."
                )
        _check_probability(self, "dropout")


@strict
class C2FSegTransformerConfig(PreTrainedConfig):
    r"""
    The bidirectional mask-and-predict transformer. Each of the `sequence_length` grid cells is embedded as
    [image feature (hidden_size/2) | visible-mask token (hidden_size/4) | amodal token (hidden_size/4)].

    Args:
        vocab_size (`int`, defaults to 256): codes the transformer embeds and predicts; index `vocab_size` is the
            [MASK] token. At least the VQ codebook size, usually equal to it; the authors' Fishbowl model has 256
            for a codebook of 32: the codes from `codebook_size` up are never sampled (their logits are cut before
            the top-k, `C2FSegForAmodalSegmentation.decodable_logits`) and never occur among the inputs.
        sequence_length (`int`, defaults to 256): number of grid cells (a square grid).
        image_feature_channels (`int`, defaults to 2048): channels of the backbone's last feature map.
        hidden_size (`int`, defaults to 768): the authors' `n_embd`.
        num_hidden_layers (`int`, defaults to 12): the authors' `n_layer`.
        num_attention_heads (`int`, defaults to 12): the authors' `n_head`.
        embedding_dropout (`float`, defaults to 0.01): the authors' `embd_pdrop`.
        attention_dropout (`float`, defaults to 0.01): the authors' `attn_pdrop`.
        residual_dropout (`float`, defaults to 0.01): the authors' `resid_pdrop`.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of every LayerNorm.
        initializer_range (`float`, defaults to 0.02): std of the normal init of Linear and Embedding weights.
        num_frames (`int`, *optional*): the video variant's window length T (the authors' `window_length`: 16 on
            Fishbowl, 24 on MOViD-A). None (default) is the image model. When set, every block is spatial-temporal
            (an attention over the cells of each frame, then one over windows of T frames x `spatial_window_size`^2
            cells) and the features are rolled by T // 2 frames after each block; a clip is exactly T frames.
        spatial_window_size (`int`, defaults to 4): side, in cells, of the spatial-temporal attention windows of
            the video variant (the authors' 4); 1 attends over the frames of each cell only.
    """

    model_type = "c2f_seg_transformer"
    base_config_key = "transformer_config"

    vocab_size: int = 256
    sequence_length: int = 256
    image_feature_channels: int = 2048
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    embedding_dropout: float = 0.01
    attention_dropout: float = 0.01
    residual_dropout: float = 0.01
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    num_frames: int | None = None
    spatial_window_size: int = 4

    @property
    def is_video(self) -> bool:
        return self.num_frames is not None

    @property
    def mask_token_id(self) -> int:
        return self.vocab_size

    @property
    def grid_size(self) -> int:
        return round(self.sequence_length**0.5)

    def validate_architecture(self):
        _check_positive(self, "vocab_size", "sequence_length", "image_feature_channels", "hidden_size")
        _check_positive(self, "num_hidden_layers", "num_attention_heads")
        _check_finite(self, "layer_norm_eps", positive=True)
        _check_finite(self, "initializer_range")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"C2FSegTransformerConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})."
            )
        if self.hidden_size % 4:
            raise ValueError(
                f"C2FSegTransformerConfig.hidden_size ({self.hidden_size}) must be divisible by 4: a cell is "
                "embedded as image (1/2), visible token (1/4) and amodal token (1/4)."
            )
        if self.grid_size**2 != self.sequence_length:
            raise ValueError(
                f"C2FSegTransformerConfig.sequence_length ({self.sequence_length}) must be a square number "
                "(the token grid is square)."
            )
        _check_probability(self, "embedding_dropout", "attention_dropout", "residual_dropout")
        if self.is_video:
            _check_positive(self, "num_frames", "spatial_window_size")
            if self.grid_size % self.spatial_window_size:
                raise ValueError(
                    f"C2FSegTransformerConfig.spatial_window_size ({self.spatial_window_size}) must divide the "
                    f"token grid side ({self.grid_size})."
                )


@strict
class C2FSegRefinerConfig(PreTrainedConfig):
    r"""
    The dual-branch convolutional refiner. It reads the four backbone feature maps (strides 4, 8, 16, 16), the
    coarse amodal mask and a mask-guided attention map, and predicts visible and amodal logits at half the crop
    resolution.

    Args:
        backbone_channels (`list[int]`, defaults to `[256, 512, 1024, 2048]`): channels of the four feature maps.
        hidden_size (`int`, defaults to 256): channels of the projected last feature map (`feature_projection`).
        decoder_channels (`list[int]`, defaults to `[128, 64, 32, 16]`): channels after `trunk_layer2`,
            `trunk_layer3` and each branch's `layer1` and `layer2` (the authors' `lay2`, `lay3`, `lay4_*`, `lay5_*`).
        batch_norm_eps (`float`, defaults to 1e-5): epsilon of every BatchNorm.
        attention_eps (`float`, defaults to 1e-6): added to the mask area in the mask-guided attention.
        initializer_range (`float`, defaults to 0.02): std of the normal init of Linear and Embedding weights (the
            refiner has none: its convolutions keep torch's default init).
    """

    model_type = "c2f_seg_refiner"
    base_config_key = "refiner_config"

    backbone_channels: list[int] | tuple[int, ...] = (256, 512, 1024, 2048)
    hidden_size: int = 256
    decoder_channels: list[int] | tuple[int, ...] = (128, 64, 32, 16)
    batch_norm_eps: float = 1e-5
    attention_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.backbone_channels = list(self.backbone_channels)
        self.decoder_channels = list(self.decoder_channels)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        _check_positive(self, "hidden_size")
        _check_finite(self, "batch_norm_eps", "attention_eps", positive=True)
        _check_finite(self, "initializer_range")
        if len(self.backbone_channels) != 4:
            raise ValueError(
                f"C2FSegRefinerConfig.backbone_channels must list 4 feature maps, got {self.backbone_channels}."
            )
        if len(self.decoder_channels) != 4:
            raise ValueError(f"C2FSegRefinerConfig.decoder_channels must list 4 widths, got {self.decoder_channels}.")


@strict
class C2FSegConfig(PreTrainedConfig):
    r"""
    The composite C2F-Seg model: ResNet backbone, mask VQ-GAN, mask-and-predict transformer and refiner.

    Args:
        vq_config (`dict` or `C2FSegVQConfig`, *optional*): the mask VQ-GAN.
        transformer_config (`dict` or `C2FSegTransformerConfig`, *optional*): the transformer.
        refiner_config (`dict` or `C2FSegRefinerConfig`, *optional*): the refiner.
        backbone_config (`dict` or `ResNetConfig`, *optional*): the image backbone (ResNet-50 by default), run as a
            `transformers.ResNetBackbone`; its `out_features` are set to its four stages.
        backbone_last_stage_stride (`int`, defaults to 1): stride of the backbone's last stage (of its first
            block's strided and shortcut convolutions, which `ResNetConfig` cannot express). 1, as in the authors'
            backbone, keeps the last map at stride 16, next to the third one; 2 is the stock ResNet (output stride
            32) and then needs `image_size` divisible by 32.
        image_size (`int`, defaults to 256): side of the square object crops.
        num_sampling_steps (`int`, defaults to 3): MaskGIT decoding steps K.
        sampling_top_k (`int`, defaults to 3): codes kept per cell when sampling at inference.
        training_top_k (`int`, defaults to 5): codes kept per cell when sampling the coarse mask in training.
        choice_temperature (`float`, defaults to 4.5): scale of the Gumbel noise on the confidences.
        min_mask_ratio (`float`, defaults to 0.5): lower bound of the training mask ratio; 1.0 masks every cell, which
            trains only the single-pass (K = 1) prediction.
        label_smoothing (`float`, defaults to 0.1): label smoothing of the token cross-entropy.
        amodal_output (`str`, defaults to "refined"): which mask `generate` returns as `amodal_masks`: the refiner's
            ("refined", the paper's output), the VQ-decoded coarse mask ("coarse"), or the refiner's where the
            crop's visible mask has a pixel and the coarse mask where it is empty ("refined_where_visible": a video
            frame where the object is fully hidden, which the refiner tends to erase); a decoding default chosen on
            validation data like `num_sampling_steps` (`c2f_hf.training.choose_defaults`). The coarse mask is
            returned as `coarse_amodal_masks` either way.
        initializer_range (`float`, defaults to 0.02): std of the normal init of Linear and Embedding weights; each
            sub-model reads the field of its own config.
    """

    model_type = "c2f_seg"
    sub_configs_defaults = {
        "vq_config": C2FSegVQConfig,
        "transformer_config": C2FSegTransformerConfig,
        "refiner_config": C2FSegRefinerConfig,
        "backbone_config": SubConfigSpec(config_class=ResNetConfig, model_type="resnet"),
    }

    vq_config: dict | PreTrainedConfig | None = None
    transformer_config: dict | PreTrainedConfig | None = None
    refiner_config: dict | PreTrainedConfig | None = None
    backbone_config: dict | PreTrainedConfig | None = None
    image_size: int = 256
    num_sampling_steps: int = 3
    sampling_top_k: int = 3
    training_top_k: int = 5
    choice_temperature: float = 4.5
    min_mask_ratio: float = 0.5
    label_smoothing: float = 0.1
    backbone_last_stage_stride: int = 1
    amodal_output: str = "refined"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # The refiner and the transformer read all four stage outputs of the backbone.
        self.backbone_config.out_features = list(self.backbone_config.stage_names[1:])

    @property
    def backbone_output_stride(self) -> int:
        """Stride of the backbone's last map: 16 with a stride-1 last stage, 32 with the stock stride 2."""
        return 16 * self.backbone_last_stage_stride

    def validate_architecture(self):
        _check_positive(self, "image_size", "num_sampling_steps", "sampling_top_k", "training_top_k")
        check_amodal_output(self.amodal_output)
        if self.backbone_last_stage_stride not in (1, 2):
            raise ValueError(
                f"C2FSegConfig.backbone_last_stage_stride must be 1 or 2, got {self.backbone_last_stage_stride}."
            )
        vq, transformer, refiner, backbone = (
            self.vq_config,
            self.transformer_config,
            self.refiner_config,
            self.backbone_config,
        )
        if len(backbone.hidden_sizes) != 4:
            raise ValueError(
                f"C2FSegConfig.backbone_config must have 4 stages, got hidden_sizes={backbone.hidden_sizes}."
            )
        if self.image_size % self.backbone_output_stride:
            raise ValueError(
                f"C2FSegConfig.image_size ({self.image_size}) must be divisible by the backbone's output "
                f"stride {self.backbone_output_stride}."
            )
        if vq.resolution != self.image_size:
            raise ValueError(
                f"C2FSegConfig: vq_config.resolution ({vq.resolution}) must equal image_size ({self.image_size})."
            )
        feature_grid = self.image_size // self.backbone_output_stride
        if vq.latent_size != feature_grid or transformer.sequence_length != feature_grid**2:
            raise ValueError(
                "C2FSegConfig: the token grid must match the image feature grid: the backbone gives "
                f"{feature_grid}x{feature_grid} features, the VQ model a {vq.latent_size}x{vq.latent_size} token "
                f"grid, and transformer_config.sequence_length is {transformer.sequence_length}."
            )
        if transformer.vocab_size < vq.codebook_size:
            raise ValueError(
                f"C2FSegConfig: transformer_config.vocab_size ({transformer.vocab_size}) must be at least "
                f"vq_config.codebook_size ({vq.codebook_size}): the transformer predicts every code of the codebook."
            )
        if transformer.image_feature_channels != backbone.hidden_sizes[-1]:
            raise ValueError(
                f"C2FSegConfig: transformer_config.image_feature_channels ({transformer.image_feature_channels}) "
                f"must equal the backbone's last width ({backbone.hidden_sizes[-1]})."
            )
        if list(refiner.backbone_channels) != list(backbone.hidden_sizes):
            raise ValueError(
                f"C2FSegConfig: refiner_config.backbone_channels ({refiner.backbone_channels}) must equal "
                f"backbone_config.hidden_sizes ({backbone.hidden_sizes})."
            )
        if self.num_sampling_steps > transformer.sequence_length:
            raise ValueError(
                f"C2FSegConfig.num_sampling_steps ({self.num_sampling_steps}) must be at most "
                f"transformer_config.sequence_length ({transformer.sequence_length}): each decoding step fixes at "
                "least one token."
            )
        _check_finite(self, "choice_temperature", "initializer_range")
        if self.sampling_top_k > vq.codebook_size or self.training_top_k > vq.codebook_size:
            raise ValueError("C2FSegConfig: sampling_top_k and training_top_k cannot exceed the codebook size.")
        _check_probability(self, "label_smoothing")
        _check_probability(self, "min_mask_ratio", allow_one=True)


__all__ = ["AMODAL_OUTPUTS", "C2FSegConfig", "C2FSegRefinerConfig", "C2FSegTransformerConfig", "C2FSegVQConfig"]
