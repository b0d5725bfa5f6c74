"""Would int8 make the MaskGIT sampling of the full-size model faster on this CPU, and at what agreement? The
fp32 transformer against dynamically quantised int8 linear layers (int8 weights, activations quantised per call).

For one batch of synthetic objects (random full-size weights, seed 0, `optimize_for_cpu()`, greedy, K = 3) it
prints, per variant: seconds per object of `sample_tokens` (best of `--repeats` after one warm-up), the fraction
of amodal tokens equal to fp32's, and the fraction of pixels of the thresholded coarse (VQ-decoded) and refined
amodal masks equal to fp32's. Variants:

- `fbgemm`: `torch.ao.quantization.quantize_dynamic` (fbgemm kernels; per-tensor activations with 7-bit range),
  with per-tensor or per-channel weights, on the MLPs only or on every linear layer of the transformer's layers
  (the prediction head stays fp32). That API is deprecated in favour of torchao.
- `torchao`: torchao's `Int8DynamicActivationInt8WeightConfig` (per-token activations, per-channel weights) on the
  same layers, when torchao is installed (`pip install torchao`, not a dependency of c2f_hf).

    python benchmarks/experiments/int8_transformer.py --threads 2 --batch-size 4
"""

import argparse
import copy
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks folder: common.py

import torch
from common import best_seconds, device_description, synthetic_objects
from torch import nn

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation

LAYER_GROUPS = {"mlp": ("mlp",), "all layers": ("mlp", "attention")}


def quantisable_linears(transformer: nn.Module, group: tuple[str, ...]) -> list[str]:
    """Names of the linear layers of `transformer.layers` whose name contains one of `group`."""
    return [
        name
        for name, module in transformer.named_modules()
        if isinstance(module, nn.Linear) and name.startswith("layers.") and any(part in name for part in group)
    ]


def fbgemm_transformer(transformer: nn.Module, names: list[str], per_channel: bool) -> nn.Module:
    """A copy of `transformer` with the linear layers `names` dynamically quantised by `torch.ao`."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(transformer), dict.fromkeys(names, qconfig))


def torchao_transformer(transformer: nn.Module, names: list[str]) -> nn.Module:
    """A copy of `transformer` with the linear layers `names` quantised by torchao (int8 x int8, dynamic)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantised = copy.deepcopy(transformer)
    chosen = set(names)
    quantize_(quantised, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda _, fqn: fqn in chosen)
    return quantised


def variants(transformer: nn.Module) -> dict[str, Callable[[], nn.Module]]:
    """Each int8 variant's name and a function building its transformer."""
    built = {}
    for group_name, group in LAYER_GROUPS.items():
        names = quantisable_linears(transformer, group)
        for per_channel in (False, True):
            weights = "per-channel" if per_channel else "per-tensor"
            built[f"fbgemm, {weights} weights, {group_name}"] = lambda names=names, per_channel=per_channel: (
                fbgemm_transformer(transformer, names, per_channel)
            )
        built[f"torchao, {group_name}"] = lambda names=names: torchao_transformer(transformer, names)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print(device_description(torch.device("cpu")), flush=True)
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(C2FSegConfig()).eval().optimize_for_cpu()
    pixel_values, visible_masks = synthetic_objects(arguments.batch_size, model.config.image_size, seed=0)
    fp32_transformer = model.transformer
    with torch.no_grad():
        features = model.encode_image(pixel_values)
        visible_tokens = model.encode_masks(visible_masks)

        def sample() -> torch.Tensor:
            return model.sample_tokens(features, visible_tokens, 3, greedy=True).tokens

        def sample_and_decode() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            tokens = sample()
            coarse = model.decode_tokens(tokens)
            return tokens, coarse, torch.sigmoid(model.refine(features, coarse).amodal_logits)

        seconds = best_seconds(sample, arguments.repeats)
        expected = sample_and_decode()
        print(f"fp32: {seconds / arguments.batch_size:.3f} s/object of sampling", flush=True)
        for name, build in variants(fp32_transformer).items():
            try:
                model.transformer = build()
            except ImportError as error:
                print(f"{name}: skipped ({error})", flush=True)
                continue
            seconds = best_seconds(sample, arguments.repeats)
            tokens, coarse, refined = sample_and_decode()
            print(
                f"{name}: {seconds / arguments.batch_size:.3f} s/object of sampling, "
                f"tokens {(tokens == expected[0]).float().mean():.2%}, "
                f"coarse pixels {((coarse > 0.5) == (expected[1] > 0.5)).float().mean():.2%}, "
                f"refined pixels {((refined > 0.5) == (expected[2] > 0.5)).float().mean():.2%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
