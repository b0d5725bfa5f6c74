"""Grow a trained model's transformer without changing what it predicts: wider (every unit repeated) and deeper.

A small model that underfits can continue training at a larger size from where it stands instead of from scratch:

- **Wider** (`width_factor` f): every hidden unit, MLP unit and attention head of the transformer is repeated f
  times (Net2Net's function-preserving widening). Weights that read repeated units are divided by f, so every
  layer computes the same values, each f times; LayerNorm over repeated values gives the same statistics, and the
  heads (f times as many, of the same size) attend exactly as before. The cell embedding keeps its layout,
  [image (hidden/2) | visible token (hidden/4) | amodal token (hidden/4)], so each part's units are repeated inside
  it; heads must then not straddle two parts (hidden/4 a multiple of the head size).
- **Deeper** (`num_layers`): new layers go after the old ones with the output projections of their residual
  branches (attention and MLP) at zero, so each new layer starts as the identity. In the video variant the frames
  are rolled after every layer and the total roll undone at the end, so the old layers still see what they saw.

Small noise (`noise` times each weight matrix's standard deviation) breaks the symmetry between the repeated units,
which would otherwise receive equal gradients forever. The backbone, VQ model and refiner are copied unchanged.

    python -m c2f_hf.training.grow_transformer --model FOLDER --width-factor 2 --num-layers 6 --out OUT
"""

import argparse
import dataclasses
import logging
import math
from pathlib import Path

import torch

from ..hub.export import check_new_folder
from ..models.c2f_seg.configuration_c2f_seg import C2FSegConfig
from ..models.c2f_seg.image_processing_c2f_seg import C2FSegImageProcessor
from ..models.c2f_seg.modeling_c2f_seg import C2FSegForAmodalSegmentation

logger = logging.getLogger(__name__)

TRANSFORMER_PREFIX = "transformer."
RESIDUAL_OUTPUTS = ("attention.out_proj.", "mlp.fc2.")


def grown_config(config: C2FSegConfig, width_factor: int, num_layers: int) -> C2FSegConfig:
    """`config` with the transformer `width_factor` times as wide (as many more heads, same head size) and
    `num_layers` deep.

    Raises:
        ValueError: a factor below 1, fewer layers than the model has, or heads that straddle the parts of the
            cell embedding (hidden/4 not a multiple of the head size).
    """
    transformer = config.transformer_config
    if width_factor < 1:
        raise ValueError(f"width_factor: expected an integer >= 1, got {width_factor}")
    if num_layers < transformer.num_hidden_layers:
        raise ValueError(
            f"num_layers: expected at least the model's {transformer.num_hidden_layers} layers, got {num_layers}"
        )
    head_size = transformer.hidden_size // transformer.num_attention_heads
    if width_factor > 1 and (transformer.hidden_size // 4) % head_size:
        raise ValueError(
            f"cannot widen: attention heads of size {head_size} straddle the embedding's parts of "
            f"{transformer.hidden_size // 4} units (hidden_size / 4 must be a multiple of the head size)"
        )
    grown = dataclasses.replace(
        transformer,
        hidden_size=width_factor * transformer.hidden_size,
        num_attention_heads=width_factor * transformer.num_attention_heads,
        num_hidden_layers=num_layers,
    )
    return dataclasses.replace(config, transformer_config=grown)


def repeated_hidden_units(hidden_size: int, width_factor: int) -> torch.Tensor:
    """For each unit of the widened hidden state, the old unit it repeats: `(width_factor * hidden_size,)` long.
    Each part of the cell embedding ([image | visible | amodal], hidden/2, /4, /4) is repeated in place."""
    parts = [(0, hidden_size // 2), (hidden_size // 2, hidden_size // 4), (3 * hidden_size // 4, hidden_size // 4)]
    return torch.cat([start + repeated_units(size, width_factor) for start, size in parts])


def repeated_units(size: int, width_factor: int) -> torch.Tensor:
    """`[0, 1, ..., size - 1]` repeated `width_factor` times: the old unit of each unit of a widened axis."""
    return torch.arange(width_factor * size) % size


# How each axis of a transformer weight widens: "hidden" (the hidden state, `repeated_hidden_units`), "units" (the
# MLP's or an embedding part's own units, `repeated_units`) or "fixed"; an axis that *reads* repeated units
# ("hidden_in", "units_in") also divides the weight by the width factor, so the sum over the copies is unchanged.
AXES_BY_NAME = {
    "embeddings.image_projection.weight": ("units", "fixed"),
    "embeddings.image_projection.bias": ("units",),
    "embeddings.visible_token_embeddings.weight": ("fixed", "units"),
    "embeddings.amodal_token_embeddings.weight": ("fixed", "units"),
    "embeddings.position_embeddings.weight": ("fixed", "hidden"),
    "prediction_head.decoder.weight": ("fixed", "hidden_in"),
    "prediction_head.bias": ("fixed",),
}
AXES_BY_SUFFIX = {
    "mlp.fc1.weight": ("units", "hidden_in"),
    "mlp.fc1.bias": ("units",),
    "mlp.fc2.weight": ("hidden", "units_in"),
}


def weight_axes(name: str, dims: int) -> tuple[str, ...]:
    """How the axes of the transformer weight `name` (without the "transformer." prefix) widen: `AXES_BY_NAME`,
    `AXES_BY_SUFFIX`, else a hidden -> hidden linear map (2-D) or a per-hidden-unit vector (norms, biases)."""
    if name in AXES_BY_NAME:
        return AXES_BY_NAME[name]
    for suffix, axes in AXES_BY_SUFFIX.items():
        if name.endswith(suffix):
            return axes
    return ("hidden", "hidden_in") if dims == 2 else ("hidden",)


def widened_weight(
    old: torch.Tensor, axes: tuple[str, ...], hidden_units: torch.Tensor, width_factor: int
) -> torch.Tensor:
    """`old` with each axis in `axes` widened (`weight_axes`); `hidden_units` from `repeated_hidden_units`."""
    widened = old
    for axis, kind in enumerate(axes):
        if kind.startswith("hidden"):
            widened = widened.index_select(axis, hidden_units)
        elif kind.startswith("units"):
            widened = widened.index_select(axis, repeated_units(old.shape[axis], width_factor))
        if kind.endswith("_in"):
            widened = widened / width_factor
    return widened


def grown_transformer_state(
    old_state: dict[str, torch.Tensor],
    new_state: dict[str, torch.Tensor],
    old_hidden_size: int,
    old_num_layers: int,
    width_factor: int,
) -> dict[str, torch.Tensor]:
    """`new_state` (a grown model's freshly initialised weights) with every old weight widened into place and the
    new layers' residual outputs zeroed. Weights outside the transformer are copied as they are."""
    hidden_units = repeated_hidden_units(old_hidden_size, width_factor)
    state = {}
    for key, value in new_state.items():
        name = key.removeprefix(TRANSFORMER_PREFIX)
        if name == key:
            state[key] = old_state[key].clone()
        elif name.startswith("layers.") and int(name.split(".")[1]) >= old_num_layers:
            zeroed = any(output in name for output in RESIDUAL_OUTPUTS)
            state[key] = torch.zeros_like(value) if zeroed else value.clone()
        else:
            old = old_state[key]
            state[key] = widened_weight(old, weight_axes(name, old.dim()), hidden_units, width_factor).contiguous()
    return state


def add_symmetry_breaking_noise(model: C2FSegForAmodalSegmentation, noise: float, seed: int) -> None:
    """Add N(0, (noise * std)^2) to every transformer weight matrix (std: the matrix's own), in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.transformer.parameters():
            if parameter.dim() >= 2 and parameter.std() > 0:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * noise * parameter.std())


def grow_model(
    model: C2FSegForAmodalSegmentation, width_factor: int, num_layers: int, noise: float = 1e-3, seed: int = 0
) -> C2FSegForAmodalSegmentation:
    """A new model whose transformer is `width_factor` times as wide and `num_layers` deep and which, before the
    `noise`, predicts exactly what `model` predicts (float32). The new layers' fresh weights are drawn from `seed`
    without touching torch's global random state.

    Raises:
        ValueError: an impossible growth (`grown_config`) or a `noise` that is negative or not finite.
    """
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise: expected a finite number >= 0, got {noise}")
    config = grown_config(model.config, width_factor, num_layers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = C2FSegForAmodalSegmentation(config).to(torch.float32).eval()
    transformer = model.config.transformer_config
    state = grown_transformer_state(
        {key: value.float() for key, value in model.state_dict().items()},
        grown.state_dict(),
        transformer.hidden_size,
        transformer.num_hidden_layers,
        width_factor,
    )
    grown.load_state_dict(state)
    add_symmetry_breaking_noise(grown, noise, seed)
    return grown


def main(argv: list[str] | None = None) -> int:
    """`python -m c2f_hf.training.grow_transformer --model DIR --width-factor F --num-layers N --out DIR`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained model folder")
    parser.add_argument("--width-factor", type=int, default=2, help="the transformer's new width / its width")
    parser.add_argument("--num-layers", type=int, required=True, help="the transformer's new number of layers")
    parser.add_argument("--noise", type=float, default=1e-3, help="symmetry-breaking noise, relative to each weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="folder for the grown model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        check_new_folder(args.out)
        model = C2FSegForAmodalSegmentation.from_pretrained(args.model, dtype=torch.float32)
        grown = grow_model(model, args.width_factor, args.num_layers, args.noise, args.seed)
    except (ValueError, OSError) as error:
        raise SystemExit(f"grow_transformer: {error}") from error
    grown.save_pretrained(args.out)
    C2FSegImageProcessor.from_pretrained(args.model).save_pretrained(args.out)
    logger.info("wrote %s (%.2f M parameters)", args.out, sum(p.numel() for p in grown.parameters()) / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
