"""A compact functional re-implementation of the authors' C2F-Seg image computations, for numerical tests.

Written from the semantics of the authors' code (amazon-science/c2f-seg: `taming_src/taming_layers.py`,
`src/quantize.py`, `src/image_component.py`, torchvision's ResNet-50), applied directly to tensors named as in
the authors' state dicts (`g_model`, `model`, `img_encoder`, `refine`). Pure torch.nn.functional, inference only
(dropout off, BatchNorm with running statistics). The authors hard-code 32 GroupNorm groups and refiner sizes for
256 crops (32, 64, 128); here the groups are an argument and the sizes are 2x, 4x, 8x the token grid.
"""

import math

import torch
import torch.nn.functional as F

State = dict[str, torch.Tensor]


def _conv(state: State, name: str, inputs: torch.Tensor, stride: int = 1, padding: int | None = None):
    weight = state[f"{name}.weight"]
    padding = weight.shape[-1] // 2 if padding is None else padding
    return F.conv2d(inputs, weight, state.get(f"{name}.bias"), stride=stride, padding=padding)


def _swish(inputs: torch.Tensor) -> torch.Tensor:
    return inputs * torch.sigmoid(inputs)


def _group_norm(state: State, name: str, inputs: torch.Tensor, groups: int) -> torch.Tensor:
    return F.group_norm(inputs, groups, state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-6)


def _batch_norm(state: State, name: str, inputs: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(
        inputs,
        state[f"{name}.running_mean"],
        state[f"{name}.running_var"],
        state[f"{name}.weight"],
        state[f"{name}.bias"],
        training=False,
        eps=1e-5,
    )


def _count(state: State, prefix: str) -> int:
    """Number of consecutive indices `i` with keys starting with `prefix{i}.`."""
    count = 0
    while any(key.startswith(f"{prefix}{count}.") for key in state):
        count += 1
    return count


# ----- taming VQ-GAN (no attention blocks) -----


def _taming_resnet_block(state: State, name: str, inputs: torch.Tensor, groups: int) -> torch.Tensor:
    hidden = _conv(state, f"{name}.conv1", _swish(_group_norm(state, f"{name}.norm1", inputs, groups)))
    hidden = _conv(state, f"{name}.conv2", _swish(_group_norm(state, f"{name}.norm2", hidden, groups)))
    shortcut = _conv(state, f"{name}.nin_shortcut", inputs) if f"{name}.nin_shortcut.weight" in state else inputs
    return shortcut + hidden


def _taming_end(state: State, name: str, hidden: torch.Tensor, groups: int) -> torch.Tensor:
    hidden = _taming_resnet_block(state, f"{name}.mid.block_1", hidden, groups)
    return _taming_resnet_block(state, f"{name}.mid.block_2", hidden, groups)


def vq_encode(g_model: State, masks: torch.Tensor, groups: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder + quant_conv + nearest code by squared distance. Returns (latents, indices `(batch, h*w)`)."""
    hidden = _conv(g_model, "encoder.conv_in", masks)
    for level in range(_count(g_model, "encoder.down.")):
        for block in range(_count(g_model, f"encoder.down.{level}.block.")):
            hidden = _taming_resnet_block(g_model, f"encoder.down.{level}.block.{block}", hidden, groups)
        if f"encoder.down.{level}.downsample.conv.weight" in g_model:
            # asymmetric padding: one zero row/column at the bottom/right, then a stride-2 3x3 conv
            padded = F.pad(hidden, (0, 1, 0, 1), mode="constant", value=0.0)
            hidden = _conv(g_model, f"encoder.down.{level}.downsample.conv", padded, stride=2, padding=0)
    hidden = _taming_end(g_model, "encoder", hidden, groups)
    hidden = _conv(g_model, "encoder.conv_out", _swish(_group_norm(g_model, "encoder.norm_out", hidden, groups)))
    latents = _conv(g_model, "quant_conv", hidden)
    flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    codebook = g_model["quantize.embedding.weight"]
    distances = (flat**2).sum(dim=1, keepdim=True) + (codebook**2).sum(dim=1) - 2 * flat @ codebook.t()
    return latents, distances.argmin(dim=1).view(latents.shape[0], -1)


def get_codebook_entry(g_model: State, indices: torch.Tensor, grid: int) -> torch.Tensor:
    """One-hot @ codebook, viewed as (batch, grid, grid, dim) and permuted to (batch, dim, grid, grid)."""
    codebook = g_model["quantize.embedding.weight"]
    one_hot = torch.zeros(indices.numel(), codebook.shape[0])
    one_hot.scatter_(1, indices.reshape(-1, 1), 1)
    codes = one_hot @ codebook
    return codes.view(indices.shape[0], grid, grid, -1).permute(0, 3, 1, 2).contiguous()


def vq_decode(g_model: State, indices: torch.Tensor, grid: int, groups: int = 32) -> torch.Tensor:
    """Codes -> post_quant_conv -> decoder -> channel mean clamped to [0, 1] (the coarse mask)."""
    hidden = _conv(g_model, "post_quant_conv", get_codebook_entry(g_model, indices, grid))
    hidden = _taming_end(g_model, "decoder", _conv(g_model, "decoder.conv_in", hidden), groups)
    for level in reversed(range(_count(g_model, "decoder.up."))):
        for block in range(_count(g_model, f"decoder.up.{level}.block.")):
            hidden = _taming_resnet_block(g_model, f"decoder.up.{level}.block.{block}", hidden, groups)
        if f"decoder.up.{level}.upsample.conv.weight" in g_model:
            upsampled = F.interpolate(hidden, scale_factor=2.0, mode="nearest")
            hidden = _conv(g_model, f"decoder.up.{level}.upsample.conv", upsampled)
    hidden = _conv(g_model, "decoder.conv_out", _swish(_group_norm(g_model, "decoder.norm_out", hidden, groups)))
    return hidden.mean(dim=1, keepdim=True).clamp(0.0, 1.0)


# ----- torchvision ResNet-50 with layer4 at stride 1 -----


def _bottleneck(state: State, name: str, inputs: torch.Tensor, stride: int) -> torch.Tensor:
    hidden = F.relu(_batch_norm(state, f"{name}.bn1", _conv(state, f"{name}.conv1", inputs)))
    hidden = F.relu(_batch_norm(state, f"{name}.bn2", _conv(state, f"{name}.conv2", hidden, stride=stride)))
    hidden = _batch_norm(state, f"{name}.bn3", _conv(state, f"{name}.conv3", hidden))
    if f"{name}.downsample.0.weight" in state:
        inputs = _batch_norm(state, f"{name}.downsample.1", _conv(state, f"{name}.downsample.0", inputs, stride))
    return F.relu(hidden + inputs)


def resnet_features(img_encoder: State, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """The four stage outputs of the authors' `base_resnet` (tensors named `encoder.model.*`)."""
    state = {key.removeprefix("encoder.model."): value for key, value in img_encoder.items()}
    hidden = F.relu(_batch_norm(state, "bn1", _conv(state, "conv1", pixel_values, stride=2)))
    hidden = F.max_pool2d(hidden, kernel_size=3, stride=2, padding=1)
    features = []
    for stage, first_stride in zip((1, 2, 3, 4), (1, 2, 2, 1)):
        for block in range(_count(state, f"layer{stage}.")):
            hidden = _bottleneck(state, f"layer{stage}.{block}", hidden, first_stride if block == 0 else 1)
        features.append(hidden)
    return features


# ----- mask-and-predict transformer -----


def _layer_norm(state: State, name: str, inputs: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(inputs, inputs.shape[-1:], state[f"{name}.weight"], state[f"{name}.bias"], eps=1e-5)


def _linear(state: State, name: str, inputs: torch.Tensor) -> torch.Tensor:
    return F.linear(inputs, state[f"{name}.weight"], state.get(f"{name}.bias"))


def _erf_gelu(inputs: torch.Tensor) -> torch.Tensor:
    return inputs * 0.5 * (1.0 + torch.erf(inputs / math.sqrt(2.0)))


def _attention(state: State, name: str, inputs: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, length, width = inputs.shape

    def heads(projection: str) -> torch.Tensor:
        projected = _linear(state, f"{name}.{projection}", inputs)
        return projected.view(batch, length, num_heads, width // num_heads).transpose(1, 2)

    key, query, value = heads("key"), heads("query"), heads("value")
    weights = torch.softmax((query @ key.transpose(-2, -1)) * (1.0 / math.sqrt(key.shape[-1])), dim=-1)
    attended = (weights @ value).transpose(1, 2).contiguous().view(batch, length, width)
    return _linear(state, f"{name}.proj", attended)


def _input_embeddings(
    model: State, image_features: torch.Tensor, visible_tokens: torch.Tensor, amodal_tokens: torch.Tensor
) -> torch.Tensor:
    """[conv_in(features) | c_emb(visible) | z_emb(amodal)] + pos_emb: `(batch, cells, n_embd)`."""
    image_embeddings = _conv(model, "conv_in", image_features).flatten(2).transpose(-2, -1)
    embeddings = torch.cat(
        [
            image_embeddings,
            F.embedding(visible_tokens, model["c_emb.weight"]),
            F.embedding(amodal_tokens, model["z_emb.weight"]),
        ],
        dim=2,
    )
    positions = torch.arange(embeddings.shape[1]).unsqueeze(0).repeat(embeddings.shape[0], 1)
    return embeddings + F.embedding(positions, model["pos_emb.weight"])


def _prediction_head(model: State, hidden: torch.Tensor) -> torch.Tensor:
    """`Transformer_Prediction` then `m_dec` + `m_bias`: logits `(batch, cells, vocab + 1)`."""
    hidden = _erf_gelu(_linear(model, "dec.dense", _layer_norm(model, "dec.ln1", hidden)))
    hidden = _layer_norm(model, "dec.ln2", hidden)
    return _linear(model, "m_dec", hidden) + model["m_bias"]


def transformer_logits(
    model: State,
    image_features: torch.Tensor,
    visible_tokens: torch.Tensor,
    amodal_tokens: torch.Tensor,
    num_heads: int,
) -> torch.Tensor:
    """`MaskedTransformer.forward` at inference: logits `(batch, cells, vocab + 1)`."""
    hidden = _input_embeddings(model, image_features, visible_tokens, amodal_tokens)
    for block in range(_count(model, "blocks.")):
        name = f"blocks.{block}"
        hidden = hidden + _attention(model, f"{name}.attn", _layer_norm(model, f"{name}.ln1", hidden), num_heads)
        inner = _erf_gelu(_linear(model, f"{name}.mlp.0", _layer_norm(model, f"{name}.ln2", hidden)))
        hidden = hidden + _linear(model, f"{name}.mlp.2", inner)
    return _prediction_head(model, hidden)


def video_transformer_logits(
    model: State,
    image_features: torch.Tensor,
    visible_tokens: torch.Tensor,
    amodal_tokens: torch.Tensor,
    num_heads: int,
    window_length: int,
    window_size: int = 4,
) -> torch.Tensor:
    """The video `MaskedTransformer.forward` at inference for one clip whose frames are the batch rows: logits
    `(frames, cells, vocab + 1)`. Per block: spatial `attn1` over the cells of each frame, `attn2` over each window
    of `window_length` frames x `window_size`^2 cells (gathered here with explicit index lists), `mlp` after `ln3`;
    then `torch.roll` by `window_length // 2` along the frames; at the end the total shift is undone."""
    hidden = _input_embeddings(model, image_features, visible_tokens, amodal_tokens)
    frames, cells, width = hidden.shape
    grid = round(cells**0.5)
    windows = [
        [
            (start + t, (row + i) * grid + column + j)
            for t in range(window_length)
            for i in range(window_size)
            for j in range(window_size)
        ]
        for start in range(0, frames, window_length)
        for row in range(0, grid, window_size)
        for column in range(0, grid, window_size)
    ]
    num_blocks = _count(model, "blocks.")
    for block in range(num_blocks):
        name = f"blocks.{block}"
        hidden = hidden + _attention(model, f"{name}.attn1", _layer_norm(model, f"{name}.ln1", hidden), num_heads)
        normed = _layer_norm(model, f"{name}.ln2", hidden)
        update = torch.zeros_like(hidden)
        for window in windows:
            frame_index = torch.tensor([frame for frame, _ in window])
            cell_index = torch.tensor([cell for _, cell in window])
            attended = _attention(model, f"{name}.attn2", normed[frame_index, cell_index][None], num_heads)[0]
            update[frame_index, cell_index] = attended
        hidden = hidden + update
        inner = _erf_gelu(_linear(model, f"{name}.mlp.0", _layer_norm(model, f"{name}.ln3", hidden)))
        hidden = hidden + _linear(model, f"{name}.mlp.2", inner)
        hidden = torch.roll(hidden, window_length // 2, 0)
    hidden = torch.roll(hidden, frames - (window_length // 2 * num_blocks) % frames, 0)
    return _prediction_head(model, hidden)


# ----- refiner -----


def _attention_map(features: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = guidance.shape
    query, value = guidance.flatten(2), features.flatten(2)
    prototype = (value * query).sum(dim=-1, keepdim=True) / (query.sum(dim=-1, keepdim=True) + 1e-6)
    return torch.softmax(prototype.transpose(-2, -1) @ value, dim=-1).reshape(batch, channels, height, width)


def _refiner_branch(refine: State, branch: str, trunk: torch.Tensor, features: list[torch.Tensor], grid: int):
    hidden = _conv(refine, f"adapter2_{branch}", features[-3]) + trunk
    hidden = F.interpolate(hidden, size=(4 * grid, 4 * grid), mode="nearest")
    hidden = F.relu(_batch_norm(refine, f"bn4_{branch}", _conv(refine, f"lay4_{branch}", hidden)))
    hidden = _conv(refine, f"adapter3_{branch}", features[-4]) + hidden
    hidden = F.interpolate(hidden, size=(8 * grid, 8 * grid), mode="nearest")
    hidden = F.relu(_batch_norm(refine, f"bn5_{branch}", _conv(refine, f"lay5_{branch}", hidden)))
    return _conv(refine, f"out_lay_{branch}", hidden)


def refiner_logits(
    refine: State, features: list[torch.Tensor], coarse_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Refine_Module.forward`, then nearest upsampling to the crop size (as in `batch_predict_maskgit`).
    Returns (visible logits, amodal logits), each `(batch, 1, S, S)`."""
    feature = _conv(refine, "conv_adapter", features[-1])
    grid = feature.shape[-1]
    guidance = F.interpolate(coarse_mask, scale_factor=(1 / 16))
    hidden = torch.cat((_conv(refine, "conv_in", feature), _attention_map(feature, guidance), guidance), dim=1)
    hidden = F.relu(_batch_norm(refine, "bn1", _conv(refine, "lay1", hidden)))
    hidden = F.relu(_batch_norm(refine, "bn2", _conv(refine, "lay2", hidden)))
    hidden = _conv(refine, "adapter1", features[-2]) + hidden
    hidden = F.interpolate(hidden, size=(2 * grid, 2 * grid), mode="nearest")
    trunk = F.relu(_batch_norm(refine, "bn3", _conv(refine, "lay3", hidden)))
    size = coarse_mask.shape[-2:]
    visible, amodal = (
        F.interpolate(_refiner_branch(refine, branch, trunk, features, grid), size=size, mode="nearest")
        for branch in ("vm", "am")
    )
    return visible, amodal
