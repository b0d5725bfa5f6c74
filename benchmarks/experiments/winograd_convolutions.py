"""Where NNPACK's Winograd convolution beats oneDNN's direct one: every 3x3, stride-1 convolution of one
`generate` of the full-size model (random weights), at the input shape it gets there, timed both ways.

    python benchmarks/experiments/winograd_convolutions.py --threads 2 --batch-size 1

Prints one line per distinct (input shape, output channels) with the number of such layers, the best of
`--repeats` calls of each kernel, their ratio and the largest deviation relative to the output's scale, then the
totals over all layers, and over the layers `C2FSegWinogradConv2d` computes with NNPACK by default
(`C2FSegWinogradConv2d.uses_winograd`: large enough maps and channel counts).
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks folder: common.py

import torch
import torch.nn.functional as F
from common import best_seconds, device_description, synthetic_objects
from torch import nn

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.fast_inference import C2FSegWinogradConv2d


def convolution_inputs(model: C2FSegForAmodalSegmentation, batch_size: int) -> Counter:
    """How many times each eligible convolution `(convolution module, input shape)` runs in one `generate`."""
    seen: Counter = Counter()

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], _: torch.Tensor) -> None:
        seen[(module, tuple(inputs[0].shape))] += 1

    handles = [
        module.register_forward_hook(record) for module in model.modules() if C2FSegWinogradConv2d.can_compute(module)
    ]
    with torch.no_grad():
        model.generate(*synthetic_objects(batch_size, model.config.image_size, seed=0), greedy=True)
    for handle in handles:
        handle.remove()
    return seen


def time_both_kernels(convolution: nn.Conv2d, shape: tuple[int, ...], repeats: int) -> dict[str, float]:
    """oneDNN's direct convolution against NNPACK's Winograd one (image by image, as `C2FSegWinogradConv2d`
    computes it, forced on whatever the size) on a random input of `shape`, and whether `C2FSegWinogradConv2d`
    chooses Winograd there by default."""
    inputs = torch.randn(shape)
    winograd = C2FSegWinogradConv2d(
        convolution.in_channels, convolution.out_channels, 3, padding=1, bias=convolution.bias is not None
    )
    winograd.load_state_dict(convolution.state_dict())
    with torch.no_grad():
        chosen = winograd.uses_winograd(inputs)
        winograd.min_side, winograd.min_channel_pixels = 1, 0
        expected, actual = F.conv2d(inputs, convolution.weight, convolution.bias, padding=1), winograd(inputs)
        return {
            "chosen": chosen,
            "direct_s": best_seconds(
                lambda: F.conv2d(inputs, convolution.weight, convolution.bias, padding=1), repeats
            ),
            "winograd_s": best_seconds(lambda: winograd(inputs), repeats),
            "relative_deviation": float((actual - expected).abs().max() / expected.abs().max()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if not torch._nnpack_available():
        raise SystemExit("this torch build has no NNPACK")
    print(f"CPU: {device_description(torch.device('cpu'))}, torch {torch.__version__}")
    torch.manual_seed(0)
    model = C2FSegForAmodalSegmentation(C2FSegConfig()).eval()
    layers: Counter = Counter()
    examples: dict[tuple, nn.Conv2d] = {}
    for (convolution, shape), calls in convolution_inputs(model, arguments.batch_size).items():
        key = (shape, convolution.out_channels)
        layers[key] += calls
        examples.setdefault(key, convolution)
    totals = {"all": [0.0, 0.0], "chosen": [0.0, 0.0]}
    print(
        f"{'input shape':>22} {'out':>5} {'calls':>5} {'direct ms':>10} {'winograd ms':>12} {'ratio':>6} {'rel dev':>8}"
    )
    for key in sorted(layers, key=lambda key: -key[0][-1]):
        shape, out_channels = key
        times = time_both_kernels(examples[key], shape, arguments.repeats)
        calls = layers[key]
        for name in ("all",) + (("chosen",) if times["chosen"] else ()):
            totals[name][0] += calls * times["direct_s"]
            totals[name][1] += calls * times["winograd_s"]
        print(
            f"{str(shape):>22} {out_channels:>5} {calls:>5} {1000 * times['direct_s']:>10.1f} "
            f"{1000 * times['winograd_s']:>12.1f} {times['direct_s'] / times['winograd_s']:>6.2f} "
            f"{times['relative_deviation']:>8.1e}"
        )
    for name, (direct, winograd) in totals.items():
        print(f"{name} layers: direct {direct:.3f} s, winograd {winograd:.3f} s, ratio {direct / winograd:.2f}")


if __name__ == "__main__":
    main()
