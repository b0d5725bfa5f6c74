"""C2F-Seg models: the mask VQ-GAN, the mask-and-predict transformer, the refiner and the composite model.

The file reads top-down like a `transformers` modeling file: output dataclasses, building blocks (VQ-GAN,
transformer, refiner), the `PreTrainedModel` base, the three sub-models and the composite. Attribute names are
transformers-style (`down_blocks`, `layernorm_before`, `attention`, `visible_branch`, ...); the authors' names live
only in the key map of `convert_original_checkpoint.py`. The backbone is `transformers.ResNetBackbone`
(`C2FSegBackbone`).

It is longer than our ~700-line guideline on purpose, and only for the model itself: like every `transformers`
model it keeps the blocks, the `PreTrainedModel` classes and the composite's stages (`encode_image`, `encode_masks`,
`sample_tokens`, `decode_tokens`, `refine`, the stage-2 losses in `forward`, `generate`) in one modeling file, so a
reader follows one object from crop to mask top-down in one place. What changes how the model computes but not what
(NNPACK Winograd convolutions, the bf16 probe, the VQ chunk budget, `optimize_for_cpu`, `compile_for_inference`)
lives in `fast_inference.py`; the MaskGIT schedule and sampler in `maskgit.py`.

One deliberate extension of `PreTrainedModel`: `from_pretrained(..., strict=True)` refuses weights that do not match
the model (missing or unexpected keys), which transformers only logs; `strict=False` restores transformers'
behaviour. transformers 5 has no option for this.
"""

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassClassValidationError
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel, ResNetBackbone
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_c2f_seg import (
    C2FSegConfig,
    C2FSegRefinerConfig,
    C2FSegTransformerConfig,
    C2FSegVQConfig,
    check_amodal_output,
)
from .fast_inference import compile_for_inference, optimize_for_cpu, over_vq_batches
from .mask_policy import crops_with_pixels
from .maskgit import (
    MaskGITSampler,
    RandomSource,
    SamplingResult,
    check_num_steps,
    check_random_source,
    draw_training_mask,
    keep_top_k_logits,
    sample_from_probabilities,
)
from .saved_folder_checks import check_config_against_weights, run_folder_checks


@dataclass
class C2FSegVQEncoderOutput(ModelOutput):
    """
    Args:
        latents (`torch.FloatTensor` of shape `(batch, codebook_dim, grid, grid)`): continuous encoder latents.
        indices (`torch.LongTensor` of shape `(batch, grid * grid)`): index of the nearest code of each cell.
    """

    latents: torch.FloatTensor | None = None
    indices: torch.LongTensor | None = None


@dataclass
class C2FSegVQOutput(ModelOutput):
    """
    Args:
        reconstruction (`torch.FloatTensor` of shape `(batch, out_channels, resolution, resolution)`): raw decoder
            output; the mask is its channel mean clamped to [0, 1].
        codebook_loss (`torch.FloatTensor` of shape `()`): codebook + beta * commitment loss.
        indices (`torch.LongTensor` of shape `(batch, grid * grid)`): the codes of the input.
    """

    reconstruction: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    indices: torch.LongTensor | None = None


@dataclass
class C2FSegTransformerOutput(ModelOutput):
    """
    Args:
        logits (`torch.FloatTensor` of shape `(batch, sequence_length, vocab_size + 1)`): token logits; the last
            column is the [MASK] class.
    """

    logits: torch.FloatTensor | None = None


@dataclass
class C2FSegRefinerOutput(ModelOutput):
    """
    Args:
        visible_logits (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): refined visible mask.
        amodal_logits (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): refined amodal mask.
    """

    visible_logits: torch.FloatTensor | None = None
    amodal_logits: torch.FloatTensor | None = None


@dataclass
class C2FSegOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): token_loss + refine_loss, when targets are given.
        token_loss (`torch.FloatTensor` of shape `()`, *optional*): label-smoothed token cross-entropy.
        refine_loss (`torch.FloatTensor` of shape `()`, *optional*): BCE of the refined visible and amodal masks.
        token_logits (`torch.FloatTensor` of shape `(batch, sequence_length, vocab_size + 1)`).
        coarse_amodal_masks (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): VQ-decoded mask in
            [0, 1] that the refiner was given.
        visible_logits (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`).
        amodal_logits (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`).
        token_mask (`torch.BoolTensor` of shape `(batch, sequence_length)`, *optional*): cells replaced by [MASK]
            in training.
    """

    loss: torch.FloatTensor | None = None
    token_loss: torch.FloatTensor | None = None
    refine_loss: torch.FloatTensor | None = None
    token_logits: torch.FloatTensor | None = None
    coarse_amodal_masks: torch.FloatTensor | None = None
    visible_logits: torch.FloatTensor | None = None
    amodal_logits: torch.FloatTensor | None = None
    token_mask: torch.BoolTensor | None = None


@dataclass
class C2FSegGenerationOutput(ModelOutput):
    """
    Args:
        amodal_masks (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): amodal probabilities,
            the refined ones, the coarse mask, or the refined ones except where an object is fully hidden, as
            `config.amodal_output` says ("refined" by default).
        pred_visible_masks (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): refined
            (predicted) visible probabilities; the input visible masks are not returned.
        coarse_amodal_masks (`torch.FloatTensor` of shape `(batch, 1, image_size, image_size)`): VQ-decoded mask.
        amodal_tokens (`torch.LongTensor` of shape `(batch, sequence_length)`): the decoded codes.
        token_scores (`torch.FloatTensor` of shape `(batch, sequence_length)`): probability of each code when drawn.
        scores (`torch.FloatTensor` of shape `(batch,)`): mean token confidence per object.
    """

    amodal_masks: torch.FloatTensor | None = None
    pred_visible_masks: torch.FloatTensor | None = None
    coarse_amodal_masks: torch.FloatTensor | None = None
    amodal_tokens: torch.LongTensor | None = None
    token_scores: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None


def swish_(hidden_states: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x), as one fused `F.silu` pass (half the time of the two-op form on CPU; equal to within 1e-6),
    written over `hidden_states` (a norm's fresh output nothing else reads) unless autograd needs it. In place, a
    full-size 128-channel 256x256 map takes 4 ms instead of 15 ms on a 2-core CPU, which spends the difference
    faulting in a fresh 32 MiB output."""
    return F.silu(hidden_states, inplace=not (torch.is_grad_enabled() and hidden_states.requires_grad))


# ----- mask VQ-GAN building blocks -----


class C2FSegVQResnetBlock(nn.Module):
    """norm -> swish -> conv3x3 -> norm -> swish -> dropout -> conv3x3, plus a 1x1 `conv_shortcut` when widths
    differ. `(batch, in_channels, h, w)` -> `(batch, out_channels, h, w)`."""

    def __init__(self, config: C2FSegVQConfig, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(config.norm_num_groups, in_channels, eps=config.norm_eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(config.norm_num_groups, out_channels, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = hidden_states if self.conv_shortcut is None else self.conv_shortcut(hidden_states)
        hidden_states = self.conv1(swish_(self.norm1(hidden_states)))
        hidden_states = self.conv2(self.dropout(swish_(self.norm2(hidden_states))))
        return hidden_states.add_(residual)


class C2FSegVQDownsample(nn.Module):
    """Stride-2 3x3 conv after padding one row/column at the bottom/right (taming's asymmetric padding).
    `(batch, channels, h, w)` -> `(batch, channels, h / 2, w / 2)`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(hidden_states, (0, 1, 0, 1)))


class C2FSegVQUpsample(nn.Module):
    """Nearest 2x upsampling followed by a 3x3 conv. `(batch, channels, h, w)` -> `(batch, channels, 2h, 2w)`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(hidden_states, scale_factor=2.0, mode="nearest"))


def _resnet_stack(config: C2FSegVQConfig, in_channels: int, out_channels: int, num_blocks: int) -> nn.ModuleList:
    """`num_blocks` residual blocks, the first one changing the width from `in_channels` to `out_channels`."""
    widths = [in_channels] + [out_channels] * num_blocks
    return nn.ModuleList(
        C2FSegVQResnetBlock(config, width_in, width_out) for width_in, width_out in zip(widths, widths[1:])
    )


class C2FSegVQMidBlock(nn.Module):
    """Two residual blocks at the lowest resolution; `(batch, channels, g, g)` -> same shape."""

    def __init__(self, config: C2FSegVQConfig, channels: int):
        super().__init__()
        self.resnets = _resnet_stack(config, channels, channels, 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states)
        return hidden_states


class C2FSegVQDownBlock(nn.Module):
    """One encoder level: `num_res_blocks` residual blocks, then a `downsample` (None at the last level).
    `(batch, in_channels, h, w)` -> `(batch, out_channels, h / 2, w / 2)` (or `(h, w)` without `downsample`)."""

    def __init__(self, config: C2FSegVQConfig, in_channels: int, out_channels: int, add_downsample: bool):
        super().__init__()
        self.resnets = _resnet_stack(config, in_channels, out_channels, config.num_res_blocks)
        self.downsample = C2FSegVQDownsample(out_channels) if add_downsample else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states)
        if self.downsample is not None:
            hidden_states = self.downsample(hidden_states)
        return hidden_states


class C2FSegVQUpBlock(nn.Module):
    """One decoder level: `num_res_blocks + 1` residual blocks, then an `upsample` (None at full resolution).
    `(batch, in_channels, h, w)` -> `(batch, out_channels, 2h, 2w)` (or `(h, w)` without `upsample`)."""

    def __init__(self, config: C2FSegVQConfig, in_channels: int, out_channels: int, add_upsample: bool):
        super().__init__()
        self.resnets = _resnet_stack(config, in_channels, out_channels, config.num_res_blocks + 1)
        self.upsample = C2FSegVQUpsample(out_channels) if add_upsample else None

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            hidden_states = resnet(hidden_states)
        if self.upsample is not None:
            hidden_states = self.upsample(hidden_states)
        return hidden_states


class C2FSegVQEncoder(nn.Module):
    """(batch, in_channels, R, R) -> (batch, z_channels, R / f, R / f) with f = 2 ** (levels - 1)."""

    def __init__(self, config: C2FSegVQConfig):
        super().__init__()
        widths = [config.base_channels * m for m in config.channel_multipliers]
        self.conv_in = nn.Conv2d(config.in_channels, config.base_channels, kernel_size=3, padding=1)
        in_widths = [config.base_channels] + widths[:-1]
        self.down_blocks = nn.ModuleList(
            C2FSegVQDownBlock(config, in_width, width, add_downsample=level < len(widths) - 1)
            for level, (in_width, width) in enumerate(zip(in_widths, widths))
        )
        self.mid_block = C2FSegVQMidBlock(config, widths[-1])
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[-1], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[-1], config.z_channels, kernel_size=3, padding=1)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv_in(masks)
        for down_block in self.down_blocks:
            hidden_states = down_block(hidden_states)
        hidden_states = self.mid_block(hidden_states)
        return self.conv_out(swish_(self.norm_out(hidden_states)))


class C2FSegVQDecoder(nn.Module):
    """(batch, z_channels, R / f, R / f) -> (batch, out_channels, R, R).

    `up_blocks[level]` works at the resolution of encoder level `level` (0 = full resolution), so the blocks run
    from the last to the first; they are built in that order too (the lowest resolution first).
    """

    def __init__(self, config: C2FSegVQConfig):
        super().__init__()
        widths = [config.base_channels * m for m in config.channel_multipliers]
        self.conv_in = nn.Conv2d(config.z_channels, widths[-1], kernel_size=3, padding=1)
        self.mid_block = C2FSegVQMidBlock(config, widths[-1])
        in_widths = widths[1:] + widths[-1:]
        up_blocks = [
            C2FSegVQUpBlock(config, in_widths[level], widths[level], add_upsample=level > 0)
            for level in reversed(range(len(widths)))
        ]
        self.up_blocks = nn.ModuleList(reversed(up_blocks))
        self.norm_out = nn.GroupNorm(config.norm_num_groups, widths[0], eps=config.norm_eps)
        self.conv_out = nn.Conv2d(widths[0], config.out_channels, kernel_size=3, padding=1)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden_states = self.mid_block(self.conv_in(latents))
        for up_block in reversed(self.up_blocks):
            hidden_states = up_block(hidden_states)
        return self.conv_out(swish_(self.norm_out(hidden_states)))


class C2FSegVectorQuantizer(nn.Module):
    """Nearest-code quantiser with a straight-through gradient and the VQ-VAE codebook/commitment loss."""

    def __init__(self, config: C2FSegVQConfig):
        super().__init__()
        self.commitment_beta = config.commitment_beta
        self.embedding = nn.Embedding(config.codebook_size, config.codebook_dim)

    def nearest_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """`latents (batch, dim, h, w)` -> `(batch, h * w)` long; squared distances computed in fp32."""
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).float()
        codebook = self.embedding.weight.float()
        distances = flat.pow(2).sum(dim=1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2 * flat @ codebook.t()
        return distances.argmin(dim=1).view(latents.shape[0], -1)

    def get_codebook_entry(self, indices: torch.Tensor, grid_size: int) -> torch.Tensor:
        """`indices (batch, grid * grid)` -> code vectors `(batch, dim, grid, grid)`."""
        codes = self.embedding(indices)
        return codes.view(indices.shape[0], grid_size, grid_size, -1).permute(0, 3, 1, 2).contiguous()

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (straight-through quantized latents, indices `(batch, h * w)`, codebook loss)."""
        indices = self.nearest_codes(latents)
        quantized = self.get_codebook_entry(indices, latents.shape[-1]).to(latents.dtype)
        loss = F.mse_loss(quantized.detach(), latents) + self.commitment_beta * F.mse_loss(quantized, latents.detach())
        return latents + (quantized - latents).detach(), indices, loss


# ----- transformer building blocks -----


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T * scaling) V as the authors write it (softmax in fp32). `query`, `key`, `value`
    `(batch, heads, length, head_dim)` -> output `(batch, length, heads, head_dim)` and weights
    `(batch, heads, length, length)`."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class C2FSegSelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with separate key/query/value projections and an output projection.
    The kernel follows `config._attn_implementation`: "sdpa" (default) or "eager" (explicit softmax(QK^T / sqrt(d))
    V). `(batch, length, hidden)` -> same shape."""

    is_causal = False

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.scaling = 1.0 / math.sqrt(config.hidden_size // config.num_attention_heads)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.attention_dropout
        self.dropout = nn.Dropout(config.residual_dropout)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _split_heads(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        return hidden_states.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        query = self._split_heads(self.query(hidden_states))
        key = self._split_heads(self.key(hidden_states))
        value = self._split_heads(self.value(hidden_states))
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        attended, _ = attention(
            self,
            query,
            key,
            value,
            attention_mask=None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        attended = attended.reshape(hidden_states.shape)
        return self.dropout(self.out_proj(attended))


class C2FSegMLP(nn.Module):
    """hidden -> 4 hidden -> hidden with an exact (erf) GELU, then dropout. `(..., hidden)` -> same shape."""

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, 4 * config.hidden_size)
        self.activation = nn.GELU(approximate="none")
        self.fc2 = nn.Linear(4 * config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.residual_dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation(self.fc1(hidden_states))))


def partition_windows(hidden_states: torch.Tensor, num_frames: int, window_size: int) -> torch.Tensor:
    """Group the tokens of clips into spatial-temporal windows (the authors' `window_partition`).

    `hidden_states (clips * num_frames, grid * grid, hidden)`, frames of a clip consecutive ->
    `(clips * (grid / window_size) ** 2, num_frames * window_size ** 2, hidden)`: each row is one window of
    `num_frames` frames x `window_size` x `window_size` cells, ordered (frame, row, column).
    """
    rows, cells, width = hidden_states.shape
    grid = round(cells**0.5)
    blocks = grid // window_size
    windows = hidden_states.view(rows // num_frames, num_frames, blocks, window_size, blocks, window_size, width)
    return windows.permute(0, 2, 4, 1, 3, 5, 6).reshape(-1, num_frames * window_size**2, width)


def merge_windows(windows: torch.Tensor, num_frames: int, window_size: int, grid: int) -> torch.Tensor:
    """Inverse of `partition_windows`: `(clips * (grid / w) ** 2, num_frames * w ** 2, hidden)` ->
    `(clips * num_frames, grid * grid, hidden)`."""
    width = windows.shape[-1]
    blocks = grid // window_size
    clips = windows.shape[0] // blocks**2
    hidden_states = windows.view(clips, blocks, blocks, num_frames, window_size, window_size, width)
    return hidden_states.permute(0, 3, 1, 4, 2, 5, 6).reshape(clips * num_frames, grid * grid, width)


def roll_frames(hidden_states: torch.Tensor, shift: int, num_frames: int) -> torch.Tensor:
    """Roll the frames of every clip by `shift` (the authors' `torch.roll` along time). `hidden_states
    (clips * num_frames, ...)`, frames of a clip consecutive -> same shape; frame f moves to (f + shift) mod
    `num_frames`."""
    clips = hidden_states.view(-1, num_frames, *hidden_states.shape[1:])
    return torch.roll(clips, shift, dims=1).view(hidden_states.shape)


class C2FSegTransformerLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm image layer: x + attention(layernorm_before(x)) over the cells of each crop, then
    x + mlp(layernorm_after(x)). `(batch, cells, hidden)` -> same shape."""

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = C2FSegSelfAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = C2FSegMLP(config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.attention(self.layernorm_before(hidden_states))
        return hidden_states + self.mlp(self.layernorm_after(hidden_states))


class C2FSegVideoTransformerLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm spatial-temporal layer (`config.num_frames` = T): x + spatial_attention(spatial_layernorm(x))
    over the cells of each frame, x + temporal_attention(temporal_layernorm(x)) over each window of T frames x
    `spatial_window_size`^2 cells (`partition_windows`), then x + mlp(mlp_layernorm(x)).
    `(clips * T, cells, hidden)` with the frames of a clip consecutive -> same shape."""

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        self.num_frames = config.num_frames
        self.spatial_window_size = config.spatial_window_size
        self.spatial_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.spatial_attention = C2FSegSelfAttention(config)
        self.temporal_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.temporal_attention = C2FSegSelfAttention(config)
        self.mlp_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = C2FSegMLP(config)

    def _windowed_temporal_attention(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`temporal_attention` over the spatial-temporal windows: `(clips * T, cells, hidden)` -> same shape."""
        grid = round(hidden_states.shape[1] ** 0.5)
        windows = partition_windows(hidden_states, self.num_frames, self.spatial_window_size)
        return merge_windows(self.temporal_attention(windows), self.num_frames, self.spatial_window_size, grid)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.spatial_attention(self.spatial_layernorm(hidden_states))
        hidden_states = hidden_states + self._windowed_temporal_attention(self.temporal_layernorm(hidden_states))
        return hidden_states + self.mlp(self.mlp_layernorm(hidden_states))


class C2FSegTransformerEmbeddings(nn.Module):
    """Per grid cell: [image_projection(features) (hidden/2) | visible token (hidden/4) | amodal token (hidden/4)]
    plus a learned position embedding, then dropout. Returns `(batch, grid * grid, hidden)`."""

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        width = config.hidden_size
        num_classes = config.vocab_size + 1
        self.image_projection = nn.Conv2d(config.image_feature_channels, width // 2, kernel_size=3, padding=1)
        self.visible_token_embeddings = nn.Embedding(num_classes, width // 4)
        self.amodal_token_embeddings = nn.Embedding(num_classes, width // 4)
        self.position_embeddings = nn.Embedding(config.sequence_length, width)
        self.dropout = nn.Dropout(config.embedding_dropout)

    def project_image(self, image_features: torch.Tensor) -> torch.Tensor:
        """`(batch, image_feature_channels, grid, grid)` -> `(batch, grid * grid, hidden/2)`. It depends on the image
        only, so MaskGIT decoding computes it once for all its steps."""
        return self.image_projection(image_features).flatten(2).transpose(1, 2)

    def forward(
        self, image_embeddings: torch.Tensor, visible_tokens: torch.Tensor, amodal_tokens: torch.Tensor
    ) -> torch.Tensor:
        """`image_embeddings` from `project_image`; tokens `(batch, grid * grid)` long."""
        embeddings = torch.cat(
            [
                image_embeddings,
                self.visible_token_embeddings(visible_tokens),
                self.amodal_token_embeddings(amodal_tokens),
            ],
            dim=2,
        )
        return self.dropout(embeddings + self.position_embeddings.weight[: embeddings.shape[1]])


class C2FSegPredictionHead(nn.Module):
    """layernorm_before -> dense -> GELU -> layernorm_after, then `decoder` (no bias) + `bias`: logits
    `(batch, cells, vocab_size + 1)` from `(batch, cells, hidden)`."""

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size + 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size + 1))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.layernorm_after(F.gelu(self.dense(self.layernorm_before(hidden_states))))
        return self.decoder(hidden_states) + self.bias


# ----- refiner building blocks -----


def mask_guided_attention(features: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """The refiner's attention map. `features (batch, channels, h, w)`, `mask (batch, 1, h, w)`.

    k_c = sum_p f_c(p) m(p) / (sum_p m(p) + eps); attn(p) = softmax_p(sum_c k_c f_c(p)). Returns `(batch, 1, h, w)`
    in the dtype of `features`. Computed in fp32 (a one-channel map, so cheap) to keep bf16 models' softmax accurate.
    """
    flat_features = features.flatten(2).float()
    flat_mask = mask.flatten(2).float()
    prototype = (flat_features * flat_mask).sum(dim=-1, keepdim=True) / (flat_mask.sum(dim=-1, keepdim=True) + eps)
    attention = torch.softmax(prototype.transpose(1, 2) @ flat_features, dim=-1)
    return attention.view(mask.shape).to(features.dtype)


class C2FSegRefinerConvLayer(nn.Module):
    """3x3 conv -> BatchNorm -> ReLU. `(batch, in_channels, h, w)` -> `(batch, out_channels, h, w)`."""

    def __init__(self, in_channels: int, out_channels: int, eps: float):
        super().__init__()
        self.convolution = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.normalization = nn.BatchNorm2d(out_channels, eps=eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.relu(self.normalization(self.convolution(hidden_states)))


class C2FSegRefinerBranch(nn.Module):
    """One output branch of the refiner (visible or amodal): from the stride-8 trunk, add the stride-8 skip,
    upsample, conv layer, add the stride-4 skip, upsample, conv layer, `classifier`.
    Returns `(batch, 1, grid * 8, grid * 8)` logits."""

    def __init__(self, config: C2FSegRefinerConfig):
        super().__init__()
        stride4, stride8, _, _ = config.backbone_channels
        _, width3, width4, width5 = config.decoder_channels
        self.layer1 = C2FSegRefinerConvLayer(width3, width4, config.batch_norm_eps)
        self.layer2 = C2FSegRefinerConvLayer(width4, width5, config.batch_norm_eps)
        self.stride8_adapter = nn.Conv2d(stride8, width3, kernel_size=1)
        self.stride4_adapter = nn.Conv2d(stride4, width4, kernel_size=1)
        self.classifier = nn.Conv2d(width5, 1, kernel_size=3, padding=1)

    def forward(self, trunk: torch.Tensor, image_features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        hidden_states = F.interpolate(trunk + self.stride8_adapter(image_features[-3]), scale_factor=2.0)
        hidden_states = self.layer1(hidden_states)
        hidden_states = F.interpolate(hidden_states + self.stride4_adapter(image_features[-4]), scale_factor=2.0)
        return self.classifier(self.layer2(hidden_states))


# ----- pretrained models -----


class C2FSegBackbone(ResNetBackbone):
    """`transformers.ResNetBackbone` as the image encoder (its `embedder`/`encoder`, `feature_maps` of the
    configured `out_features`, ResNet's own initialisation). It has no attention layers, so it accepts the
    composite's default "sdpa" attention implementation: the setting only reaches the transformer."""

    _supports_sdpa = True


class C2FSegPreTrainedModel(PreTrainedModel):
    """Base of the C2F-Seg models: weight initialisation and the shared `PreTrainedModel` settings. Each sub-model's
    `base_model_prefix` is its attribute in the composite, so it also loads out of a composite folder; the
    composite is its own base model (`base_model_prefix = ""`)."""

    config: C2FSegConfig
    base_model_prefix = ""
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["C2FSegTransformerLayer", "C2FSegVideoTransformerLayer", "C2FSegVQResnetBlock"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, strict: bool = True, **kwargs):
        """`PreTrainedModel.from_pretrained`, except that weights the folder lacks (left randomly initialised) and
        weights it holds that the model has no place for are an error (ValueError naming the folder and the keys)
        unless `strict=False`; weights of another shape are one unless `ignore_mismatched_sizes=True`. A sub-model
        loaded out of a composite folder ignores the other components' weights."""
        output_loading_info = kwargs.pop("output_loading_info", False)
        if os.path.isdir(pretrained_model_name_or_path):
            cls._check_saved_folder(pretrained_model_name_or_path, kwargs.get("config"))
        try:
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise ValueError(
                f"{pretrained_model_name_or_path}: the weights do not match {cls.__name__}: some are of another shape "
                "(listed in the load report above). Pass ignore_mismatched_sizes=True to load anyway with those "
                "weights randomly initialised."
            ) from None
        problems = cls._loading_problems(loading_info)
        if strict and problems:
            raise ValueError(
                f"{pretrained_model_name_or_path}: the weights do not match {cls.__name__}: {'; '.join(problems)}. "
                "Pass strict=False to load anyway with those weights randomly initialised."
            )
        return (model, loading_info) if output_loading_info else model

    @classmethod
    def _check_saved_folder(cls, folder: str | os.PathLike, config: PreTrainedConfig | None) -> None:
        """Before building: the registered folder checks pass (the shipped models' digests), the folder's
        config.json passes validation (ValueError naming the file and field) and asks for no more blocks than its
        `model.safetensors` holds (`saved_folder_checks`)."""
        run_folder_checks(folder)
        if not isinstance(config, PreTrainedConfig):
            try:
                config = cls.config_class.from_pretrained(folder)
            except StrictDataclassClassValidationError as error:
                raise ValueError(f"{os.path.join(folder, 'config.json')}: {error}") from None
        check_config_against_weights(folder, config)

    @classmethod
    def _loading_problems(cls, loading_info: dict) -> list[str]:
        """Readable descriptions of the missing and unexpected keys of one load."""
        composite_parts = {"vq_model", "transformer", "refiner", "backbone"}
        unexpected = [
            key
            for key in loading_info["unexpected_keys"]
            if not (cls.base_model_prefix and key.split(".")[0] in composite_parts)
        ]
        found = {"missing": sorted(loading_info["missing_keys"]), "unexpected": sorted(unexpected)}
        return [
            f"{len(keys)} {kind} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for kind, keys in found.items()
            if keys
        ]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Convolutions with torch's default (Kaiming-uniform, like the authors' modules), the codebook
        ~ U(-1/n, 1/n) like the authors' quantiser, the logits bias at zero; everything else by `PreTrainedModel`:
        Linear/Embedding ~ N(0, `config.initializer_range`) with zero bias (the authors' transformer init), norms
        to identity. The backbone, a `ResNetBackbone`, keeps ResNet's own initialisation."""
        if isinstance(module, nn.Conv2d):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, C2FSegVectorQuantizer):
            size = module.embedding.num_embeddings
            init.uniform_(module.embedding.weight, -1.0 / size, 1.0 / size)
        elif isinstance(module, C2FSegPredictionHead):
            init.zeros_(module.bias)
        else:
            super()._init_weights(module)


class C2FSegVQModel(C2FSegPreTrainedModel):
    """The mask VQ-GAN: `encode` (latents and codes), `decode` (from latents), `decode_indices` (coarse mask)."""

    config: C2FSegVQConfig
    base_model_prefix = "vq_model"
    main_input_name = "masks"

    def __init__(self, config: C2FSegVQConfig):
        super().__init__(config)
        self.encoder = C2FSegVQEncoder(config)
        self.decoder = C2FSegVQDecoder(config)
        self.quantize = C2FSegVectorQuantizer(config)
        self.quant_conv = nn.Conv2d(config.z_channels, config.codebook_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(config.codebook_dim, config.z_channels, kernel_size=1)
        self.post_init()

    def encode(self, masks: torch.Tensor) -> C2FSegVQEncoderOutput:
        """`masks (batch, 1, R, R)` in [0, 1] -> latents `(batch, codebook_dim, g, g)` and indices `(batch, g*g)`."""
        latents = self.quant_conv(self.encoder(masks))
        return C2FSegVQEncoderOutput(latents=latents, indices=self.quantize.nearest_codes(latents))

    def decode(self, quantized_latents: torch.Tensor) -> torch.Tensor:
        """`(batch, codebook_dim, g, g)` -> raw decoder output `(batch, out_channels, R, R)`."""
        return self.decoder(self.post_quant_conv(quantized_latents))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """`indices (batch, g*g)` -> coarse mask `(batch, 1, R, R)`: channel mean of the decoder clamped to [0, 1]."""
        codes = self.quantize.get_codebook_entry(indices, self.config.latent_size).to(self.dtype)
        return self.decode(codes).mean(dim=1, keepdim=True).clamp(0.0, 1.0)

    def forward(self, masks: torch.Tensor, return_dict: bool | None = None) -> C2FSegVQOutput | tuple:
        """`masks (batch, 1, R, R)` in [0, 1] -> reconstruction, codebook loss and codes (`C2FSegVQOutput`)."""
        latents = self.quant_conv(self.encoder(masks))
        quantized, indices, codebook_loss = self.quantize(latents)
        output = C2FSegVQOutput(reconstruction=self.decode(quantized), codebook_loss=codebook_loss, indices=indices)
        return output if return_dict is not False else output.to_tuple()


class C2FSegMaskTransformer(C2FSegPreTrainedModel):
    """Predicts amodal codes from image features, visible-mask codes and partially masked amodal codes.

    `layers` are `C2FSegTransformerLayer`s for the image model and `C2FSegVideoTransformerLayer`s when
    `config.num_frames` is set.
    """

    config: C2FSegTransformerConfig
    base_model_prefix = "transformer"
    main_input_name = "image_features"

    def __init__(self, config: C2FSegTransformerConfig):
        super().__init__(config)
        layer_class = C2FSegVideoTransformerLayer if config.is_video else C2FSegTransformerLayer
        self.embeddings = C2FSegTransformerEmbeddings(config)
        self.layers = nn.ModuleList(layer_class(config) for _ in range(config.num_hidden_layers))
        self.prediction_head = C2FSegPredictionHead(config)
        self.post_init()

    def _run_layers(self, hidden_states: torch.Tensor, clip_length: int | None) -> torch.Tensor:
        """The layers. In the video variant the frames of every clip (`clip_length` frames, T by default) are
        rolled by T // 2 after each layer, so consecutive layers see shifted temporal windows (in a clip longer than
        T, windows that cross from one T-frame group into the next and wrap around its end), as the authors' code
        rolls the whole sequence it is given; the total shift is undone at the end."""
        window = self.config.num_frames
        clip_length = window if clip_length is None else clip_length
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if window is not None:
                hidden_states = roll_frames(hidden_states, window // 2, clip_length)
        if window is not None:
            hidden_states = roll_frames(hidden_states, -(window // 2) * len(self.layers), clip_length)
        return hidden_states

    def _check_clip_length(self, clip_length: int | None, rows: int) -> None:
        """A video clip length must be a multiple of T that divides the batch's frame rows."""
        window = self.config.num_frames
        if clip_length is None:
            return
        if window is None:
            raise ValueError("clip_length: only a video model (transformer_config.num_frames set) takes clips")
        if clip_length < window or clip_length % window or rows % clip_length:
            raise ValueError(
                f"clip_length: expected a multiple of T={window} that divides the {rows} frame rows, got {clip_length}"
            )

    def forward(
        self,
        image_features: torch.Tensor | None,
        visible_tokens: torch.Tensor,
        amodal_tokens: torch.Tensor,
        return_dict: bool | None = None,
        image_embeddings: torch.Tensor | None = None,
        clip_length: int | None = None,
    ) -> C2FSegTransformerOutput | tuple:
        """
        Args:
            image_features: `(batch, image_feature_channels, grid, grid)`, the backbone's last map; may be None when
                `image_embeddings` is given.
            visible_tokens: `(batch, grid * grid)` long, codes of the visible mask.
            amodal_tokens: `(batch, grid * grid)` long, amodal codes with [MASK] (= vocab_size) where unknown.
            image_embeddings: `(batch, grid * grid, hidden/2)`, `embeddings.project_image(image_features)` computed
                beforehand (MaskGIT decoding reuses it across its steps).
            clip_length: video variant: the frames per clip L, a multiple of T (`config.num_frames`, the default).
                A clip longer than T runs as one sequence, its frames rolled together (the authors' long clips).

        In the video variant `batch` is clips * L with the frames of a clip consecutive.
        """
        if image_embeddings is None:
            if image_features is None:
                raise ValueError("give image_features or image_embeddings")
            image_embeddings = self.embeddings.project_image(image_features)
        self._check_clip_length(clip_length, visible_tokens.shape[0])
        hidden_states = self._run_layers(self.embeddings(image_embeddings, visible_tokens, amodal_tokens), clip_length)
        output = C2FSegTransformerOutput(logits=self.prediction_head(hidden_states))
        return output if return_dict is not False else output.to_tuple()


class C2FSegRefiner(C2FSegPreTrainedModel):
    """Dual-branch refiner: a shared trunk at strides 16 and 8, then `visible_branch` and `amodal_branch` at
    strides 4 and 2 with skip adapters from the backbone; logits are upsampled (nearest) to the crop size."""

    config: C2FSegRefinerConfig
    base_model_prefix = "refiner"
    main_input_name = "image_features"

    def __init__(self, config: C2FSegRefinerConfig):
        super().__init__(config)
        _, _, stride16, last = config.backbone_channels
        trunk_width = config.hidden_size + 2
        width2, width3, _, _ = config.decoder_channels
        eps = config.batch_norm_eps
        self.feature_adapter = nn.Conv2d(last, last, kernel_size=1)
        self.feature_projection = nn.Conv2d(last, config.hidden_size, kernel_size=3, padding=1)
        self.trunk_layer1 = C2FSegRefinerConvLayer(trunk_width, trunk_width, eps)
        self.trunk_layer2 = C2FSegRefinerConvLayer(trunk_width, width2, eps)
        self.trunk_layer3 = C2FSegRefinerConvLayer(width2, width3, eps)
        self.stride16_adapter = nn.Conv2d(stride16, width2, kernel_size=1)
        self.visible_branch = C2FSegRefinerBranch(config)
        self.amodal_branch = C2FSegRefinerBranch(config)
        self.post_init()

    def _trunk(self, image_features: tuple[torch.Tensor, ...], coarse_amodal_masks: torch.Tensor) -> torch.Tensor:
        """Shared layers up to stride 8: `(batch, decoder_channels[1], grid * 2, grid * 2)`. The input of the first
        layer is [feature_projection(features) | mask-guided attention | coarse mask], `hidden_size + 2` channels."""
        features = self.feature_adapter(image_features[-1])
        coarse = F.interpolate(coarse_amodal_masks, size=features.shape[-2:], mode="nearest")
        attention = mask_guided_attention(features, coarse, self.config.attention_eps)
        hidden_states = torch.cat([self.feature_projection(features), attention, coarse], dim=1)
        hidden_states = self.trunk_layer2(self.trunk_layer1(hidden_states))
        hidden_states = F.interpolate(hidden_states + self.stride16_adapter(image_features[-2]), scale_factor=2.0)
        return self.trunk_layer3(hidden_states)

    def forward(
        self,
        image_features: tuple[torch.Tensor, ...],
        coarse_amodal_masks: torch.Tensor,
        return_dict: bool | None = None,
    ) -> C2FSegRefinerOutput | tuple:
        """
        Args:
            image_features: the four backbone maps, strides 4, 8, 16 and 16 of the crop.
            coarse_amodal_masks: `(batch, 1, S, S)` in [0, 1], S the crop size.
        """
        trunk = self._trunk(image_features, coarse_amodal_masks)
        size = coarse_amodal_masks.shape[-2:]
        visible, amodal = (
            F.interpolate(branch(trunk, image_features), size=size, mode="nearest")
            for branch in (self.visible_branch, self.amodal_branch)
        )
        output = C2FSegRefinerOutput(visible_logits=visible, amodal_logits=amodal)
        return output if return_dict is not False else output.to_tuple()


class C2FSegForAmodalSegmentation(C2FSegPreTrainedModel):
    """C2F-Seg: backbone + mask VQ-GAN + mask-and-predict transformer + refiner.

    Inputs are object crops: `pixel_values (batch, 3, S, S)` RGB in [0, 1] and `visible_masks (batch, 1, S, S)`
    in {0, 1}. `generate` runs the K-step MaskGIT decoding; `forward` is the stage-2 training step when
    `amodal_masks` are given. The VQ model is frozen in stage 2: its ops run without gradient.

    Fast inference (docs/performance.md). `from_pretrained` without a `dtype` (or with `dtype="auto"`, what
    `pipeline()` passes) returns a model on the CPU fast path, `optimize_for_cpu()`: bf16 + channels_last where the
    CPU computes bf16 natively, NNPACK Winograd convolutions elsewhere. `from_pretrained(..., dtype=torch.float32)`
    is the reference path: the checkpoint's fp32 computation, unchanged. On a GPU, load with
    `dtype=torch.bfloat16` (the VQ code search and the sampler's softmax stay fp32), convert the convolutions with
    `model.to(memory_format=torch.channels_last)` and compile with `compile_for_inference`.
    """

    config: C2FSegConfig
    _uses_cuda_graphs = False
    vq_batch_size: int | None = None

    def __init__(self, config: C2FSegConfig):
        super().__init__(config)
        self.backbone = C2FSegBackbone(config.backbone_config)
        self._set_last_stage_stride(config.backbone_last_stage_stride)
        self.vq_model = C2FSegVQModel(config.vq_config)
        self.transformer = C2FSegMaskTransformer(config.transformer_config)
        self.refiner = C2FSegRefiner(config.refiner_config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`C2FSegPreTrainedModel.from_pretrained`; without an explicit `dtype` (absent, None or "auto") a model
        loaded onto the CPU is put on the CPU fast path (`optimize_for_cpu()`). Pass `dtype=torch.float32` for the
        reference computation (training, conversion, exact comparisons)."""
        fast_path = kwargs.get("dtype", kwargs.get("torch_dtype")) in (None, "auto")
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if fast_path and model.device.type == "cpu":
            model.optimize_for_cpu()
        return loaded

    def _set_last_stage_stride(self, stride: int) -> None:
        """`ResNetConfig` has no stride option: set the stride of the last stage's first block (its strided conv and
        its shortcut conv) to `stride`, 1 by default as in the authors' backbone (no dilation), so the last two maps
        are both at stride 16."""
        for module in self.backbone.encoder.stages[-1].layers[0].modules():
            if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
                module.stride = (stride, stride)

    @property
    def mask_token_id(self) -> int:
        return self.config.transformer_config.mask_token_id

    @property
    def num_frames(self) -> int | None:
        """The video window length T, None for the image model."""
        return self.config.transformer_config.num_frames

    def clip_length_of(self, pixel_values: torch.Tensor) -> int | None:
        """The frames per clip L of a video model's input `(batch, L, 3, S, S)`, L a multiple of T (None for an
        image model). Raises ValueError when `pixel_values` does not have the layout of the configuration."""
        expected = 4 if self.num_frames is None else 5
        clip_length = pixel_values.shape[1] if self.num_frames is not None and pixel_values.ndim == 5 else None
        if pixel_values.ndim != expected or (clip_length is not None and clip_length % self.num_frames):
            layout = (
                "(batch, 3, S, S)"
                if self.num_frames is None
                else f"(batch, L, 3, S, S) with L a multiple of T={self.num_frames}"
            )
            raise ValueError(f"pixel_values: expected {layout} for this model, got {tuple(pixel_values.shape)}")
        return clip_length

    def _frames_as_batch(self, pixel_values: torch.Tensor, *masks: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Video models take clips `(batch, L, C, S, S)` (L a multiple of T, `clip_length_of`) and run the backbone,
        the VQ model and the refiner on `(batch * L, C, S, S)` frames; image models take `(batch, C, S, S)` crops
        unchanged. The callers check the layout first (`clip_length_of`)."""
        if self.num_frames is None:
            return [pixel_values, *masks]
        return [None if tensor is None else tensor.flatten(0, 1) for tensor in (pixel_values, *masks)]

    def _frames_from_batch(self, output: ModelOutput, batch_size: int) -> ModelOutput:
        """Video models: every per-frame output field `(batch * L, ...)` becomes `(batch, L, ...)`; losses stay."""
        if self.num_frames is not None:
            for name, value in output.items():
                if value.ndim > 0:
                    output[name] = value.view(batch_size, -1, *value.shape[1:])
        return output

    def compile_for_inference(
        self, mode: str | None = None, backend: str = "inductor"
    ) -> "C2FSegForAmodalSegmentation":
        """Compile the heavy stages in place for inference; see `fast_inference.compile_for_inference`."""
        return compile_for_inference(self, mode=mode, backend=backend)

    def optimize_for_cpu(self, bf16: bool | None = None) -> "C2FSegForAmodalSegmentation":
        """Convert in place for the CPU at hand (bf16 + channels_last where it computes bf16 natively, NNPACK
        Winograd convolutions elsewhere); see `fast_inference.optimize_for_cpu`."""
        return optimize_for_cpu(self, bf16=bf16)

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`(batch, 3, S, S)` -> the four backbone stage maps `(batch, C_1, S/4, S/4)`, `(batch, C_2, S/8, S/8)`,
        `(batch, C_3, S/16, S/16)`, `(batch, C_4, S/16, S/16)` (the last at S/32 with a stride-2 last stage)."""
        return self.backbone(pixel_values.to(self.dtype), return_dict=True).feature_maps

    @torch.no_grad()
    def encode_masks(self, masks: torch.Tensor) -> torch.LongTensor:
        """`(batch, 1, S, S)` in [0, 1] -> codes `(batch, sequence_length)` of the frozen VQ model."""
        return over_vq_batches(
            lambda chunk: self.vq_model.encode(chunk).indices, masks.to(self.dtype), self.vq_batch_size
        )

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.LongTensor) -> torch.FloatTensor:
        """Codes `(batch, sequence_length)` -> coarse amodal mask `(batch, 1, S, S)` in [0, 1]."""
        return over_vq_batches(self.vq_model.decode_indices, tokens, self.vq_batch_size)

    def token_logits(
        self,
        image_features: tuple[torch.Tensor, ...],
        visible_tokens: torch.Tensor,
        amodal_tokens: torch.Tensor,
        image_embeddings: torch.Tensor | None = None,
        clip_length: int | None = None,
    ) -> torch.FloatTensor:
        """Transformer logits `(batch, sequence_length, vocab_size + 1)`. `image_embeddings`, the transformer's
        projection of `image_features[-1]` (`transformer.embeddings.project_image`), skips recomputing it;
        `clip_length`: frames per clip of a video model (see `C2FSegMaskTransformer.forward`)."""
        return self.transformer(
            image_features[-1],
            visible_tokens,
            amodal_tokens,
            image_embeddings=image_embeddings,
            clip_length=clip_length,
        ).logits

    def sample_tokens(
        self,
        image_features: tuple[torch.Tensor, ...],
        visible_tokens: torch.LongTensor,
        num_steps: int | None = None,
        generator: RandomSource = None,
        greedy: bool = False,
        clip_length: int | None = None,
    ) -> SamplingResult:
        """MaskGIT decoding of the amodal codes from an all-[MASK] grid; `num_steps` at most the sequence length;
        `clip_length`: frames per clip of a video model."""
        check_num_steps(num_steps, self.config.transformer_config.sequence_length)
        sampler = MaskGITSampler(
            num_steps=self.config.num_sampling_steps if num_steps is None else num_steps,
            top_k=self.config.sampling_top_k,
            choice_temperature=self.config.choice_temperature,
        )
        initial = torch.full_like(visible_tokens, self.mask_token_id)
        image_embeddings = self.transformer.embeddings.project_image(image_features[-1])
        return sampler.sample(
            lambda tokens: self.decodable_logits(
                self.token_logits(image_features, visible_tokens, tokens, image_embeddings, clip_length)
            ),
            initial,
            self.mask_token_id,
            generator=generator,
            greedy=greedy,
        )

    def decodable_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits (..., vocab_size + 1)` with the codes the VQ codebook lacks (from `codebook_size` to `vocab_size`
        - 1, only when the transformer's vocabulary is larger, as in the authors' Fishbowl model) set to -inf, so
        sampling never draws them; where they are not among a cell's top-k, as a trained model's are not, the
        draw is the one the authors' code makes (which would fail to decode such a code)."""
        codebook_size = self.config.vq_config.codebook_size
        if codebook_size == self.mask_token_id:
            return logits
        undecodable = torch.arange(codebook_size, self.mask_token_id, device=logits.device)
        return logits.index_fill(-1, undecodable, float("-inf"))

    def refine(
        self, image_features: tuple[torch.Tensor, ...], coarse_amodal_masks: torch.Tensor
    ) -> C2FSegRefinerOutput:
        """Refined visible and amodal logits `(batch, 1, S, S)`."""
        return self.refiner(image_features, coarse_amodal_masks.to(self.dtype))

    def _coarse_from_logits(self, logits: torch.Tensor, generator: RandomSource, greedy: bool) -> torch.FloatTensor:
        """Draw one code per cell from the top-k logits (argmax when greedy) and decode it, without gradient."""
        with torch.no_grad():
            codes = self.decodable_logits(logits)[..., : self.mask_token_id].float()
            candidates = keep_top_k_logits(codes, self.config.training_top_k)
            tokens = sample_from_probabilities(torch.softmax(candidates, dim=-1), generator, greedy)
            return self.decode_tokens(tokens)

    def _stage_two_losses(
        self,
        logits: torch.Tensor,
        amodal_tokens: torch.Tensor,
        refined: C2FSegRefinerOutput,
        visible_targets: torch.Tensor,
        amodal_targets: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        token_loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            amodal_tokens.reshape(-1),
            label_smoothing=self.config.label_smoothing,
        )
        refine_loss = F.binary_cross_entropy_with_logits(
            refined.visible_logits.float(), visible_targets.float()
        ) + F.binary_cross_entropy_with_logits(refined.amodal_logits.float(), amodal_targets.float())
        return token_loss, refine_loss

    def forward(
        self,
        pixel_values: torch.Tensor,
        visible_masks: torch.Tensor,
        amodal_masks: torch.Tensor | None = None,
        visible_mask_targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool | None = None,
    ) -> C2FSegOutput | tuple:
        """
        Args:
            pixel_values: `(batch, 3, S, S)` RGB in [0, 1].
            visible_masks: `(batch, 1, S, S)` in {0, 1}, the (possibly augmented) visible-mask input.
            amodal_masks: `(batch, 1, S, S)` in {0, 1}, the amodal targets. When given, amodal codes are masked
                with the training schedule and the stage-2 losses are returned; otherwise every code is [MASK]
                and the coarse mask is decoded from the argmax codes of this single pass.
            visible_mask_targets: `(batch, 1, S, S)`, the clean visible mask the refiner is trained on; defaults to
                `visible_masks`.
            generator: RNG of the training mask and of the coarse-mask sampling.

        Video models (`config.transformer_config.num_frames` = T) take clips: `(batch, L, 3, S, S)` and
        `(batch, L, 1, S, S)` masks, L a multiple of T; every per-frame output then has shape `(batch, L, ...)`.
        """
        batch_size, clip_length = pixel_values.shape[0], self.clip_length_of(pixel_values)
        pixel_values, visible_masks, amodal_masks, visible_mask_targets = self._frames_as_batch(
            pixel_values, visible_masks, amodal_masks, visible_mask_targets
        )
        image_features = self.encode_image(pixel_values)
        visible_tokens = self.encode_masks(visible_masks)
        token_mask = None
        if amodal_masks is None:
            amodal_input = torch.full_like(visible_tokens, self.mask_token_id)
        else:
            amodal_tokens = self.encode_masks(amodal_masks)
            token_mask = draw_training_mask(
                *amodal_tokens.shape, self.config.min_mask_ratio, amodal_tokens.device, generator
            )
            amodal_input = amodal_tokens.masked_fill(token_mask, self.mask_token_id)
        logits = self.token_logits(image_features, visible_tokens, amodal_input, clip_length=clip_length)
        coarse = self._coarse_from_logits(logits, generator, greedy=amodal_masks is None)
        refined = self.refine(image_features, coarse)
        output = C2FSegOutput(
            token_logits=logits,
            coarse_amodal_masks=coarse,
            visible_logits=refined.visible_logits,
            amodal_logits=refined.amodal_logits,
            token_mask=token_mask,
        )
        if amodal_masks is not None:
            visible_targets = visible_masks if visible_mask_targets is None else visible_mask_targets
            output.token_loss, output.refine_loss = self._stage_two_losses(
                logits, amodal_tokens, refined, visible_targets, amodal_masks
            )
            output.loss = output.token_loss + output.refine_loss
        output = self._frames_from_batch(output, batch_size)
        return output if return_dict is not False else output.to_tuple()

    def _output_amodal_masks(
        self, refined: C2FSegRefinerOutput, coarse: torch.Tensor, visible_masks: torch.Tensor
    ) -> torch.FloatTensor:
        """The amodal probabilities `(batch, 1, S, S)` that `config.amodal_output` names: the refiner's, the coarse
        mask's, or ("refined_where_visible") the refiner's for crops whose visible mask `(batch, 1, S, S)` has a
        pixel above 0.5 and the coarse mask's for the others."""
        check_amodal_output(self.config.amodal_output)
        if self.config.amodal_output == "coarse":
            return coarse.float()
        refined_masks = torch.sigmoid(refined.amodal_logits.float())
        if self.config.amodal_output == "refined":
            return refined_masks
        fully_hidden = ~crops_with_pixels(visible_masks).view(-1, 1, 1, 1)
        return torch.where(fully_hidden, coarse.float(), refined_masks)

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor,
        visible_masks: torch.Tensor,
        num_steps: int | None = None,
        generator: RandomSource = None,
        greedy: bool = False,
    ) -> C2FSegGenerationOutput:
        """Predict amodal masks of object crops with K-step MaskGIT decoding, the VQ decoder and the refiner.

        Args:
            pixel_values: `(batch, 3, S, S)` RGB in [0, 1].
            visible_masks: `(batch, 1, S, S)` in {0, 1}.
            num_steps: decoding steps K (default `config.num_sampling_steps`).
            generator: RNG for reproducible sampling: one `torch.Generator` for the batch, or a list with one per
                object (`maskgit.object_generators`), which makes each object's masks independent of its batch;
                None uses the global RNG.
            greedy: argmax codes and no confidence noise (deterministic).

        Video models take clips `(batch, L, 3, S, S)` and `(batch, L, 1, S, S)`, L a multiple of T, and return
        per-frame outputs `(batch, L, ...)` (`scores (batch, L)`). MaskGIT decodes all L x grid cells of a clip
        together, with the re-masking count of each step taken per frame as in the authors' code (a frame is a row
        of the sampler). A clip longer than T is one sequence: its T-frame groups attend within themselves and the
        whole clip is rolled by T // 2 frames after each transformer block, so later blocks' windows straddle the
        groups and wrap around (the authors' test-time mode for clips of 2T frames, e.g. FISHBOWL's 32 through a
        window of 16).
        """
        if self._uses_cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        batch_size, clip_length = pixel_values.shape[0], self.clip_length_of(pixel_values)
        check_random_source(generator, batch_size)
        pixel_values, visible_masks = self._frames_as_batch(pixel_values, visible_masks)
        image_features = self.encode_image(pixel_values)
        visible_tokens = self.encode_masks(visible_masks)
        sampled = self.sample_tokens(image_features, visible_tokens, num_steps, generator, greedy, clip_length)
        coarse = self.decode_tokens(sampled.tokens)
        refined = self.refine(image_features, coarse)
        output = C2FSegGenerationOutput(
            amodal_masks=self._output_amodal_masks(refined, coarse, visible_masks),
            pred_visible_masks=torch.sigmoid(refined.visible_logits.float()),
            coarse_amodal_masks=coarse.float(),
            amodal_tokens=sampled.tokens,
            token_scores=sampled.token_scores,
            scores=sampled.token_scores.mean(dim=-1),
        )
        return self._frames_from_batch(output, batch_size)


__all__ = [
    "C2FSegForAmodalSegmentation",
    "C2FSegMaskTransformer",
    "C2FSegPreTrainedModel",
    "C2FSegRefiner",
    "C2FSegVQModel",
]
