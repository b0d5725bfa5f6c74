"""Would int8 make the VQ model faster on this CPU? One full-size VQ residual block (GroupNorm -> SiLU -> 3x3 conv,
twice, plus the skip; 128 channels at 256x256, as in the VQ model's heaviest level), in fp32 and int8.

Prints, for batch 1, the best of `--repeats` calls:

- a lone 3x3 convolution in fp32 and bf16 (oneDNN, channels_last) and in int8 (`torch.ops.quantized.conv2d`, the
  x86 engine), with the rate each reaches: the kernels' own speed ratios;
- the block in fp32 eager (the path the model runs), fp32 compiled by inductor with freezing, and int8 through
  torchao's PT2E flow (`X86InductorQuantizer`, static per-tensor activations calibrated on two random inputs,
  per-channel weights) compiled by inductor with freezing, with compile seconds and the int8 block's largest
  deviation from fp32.

The block needs `pip install torchao` (not a dependency of c2f_hf); `--lone-only` measures the convolutions alone:

    python benchmarks/experiments/int8_vq_block.py --threads 2
    python benchmarks/experiments/int8_vq_block.py --threads 2 --lone-only
"""

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks folder: common.py

import torch
import torch._inductor.config as inductor_config
from common import best_seconds, device_description
from torch import nn
from torch.nn import functional as F

from c2f_hf import C2FSegVQConfig
from c2f_hf.models.c2f_seg.modeling_c2f_seg import C2FSegVQResnetBlock

CHANNELS, SIZE = 128, 256


LONE_CONVOLUTION_FLOP = 2 * 9 * CHANNELS * CHANNELS * SIZE * SIZE


def lone_convolution_seconds(repeats: int) -> dict[str, float]:
    """A 3x3, 128 -> 128 convolution at 256x256, fp32 and bf16 (channels_last) against int8 (x86 quantized
    engine)."""
    inputs = torch.randn(1, CHANNELS, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    convolution = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1).eval().to(memory_format=torch.channels_last)
    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        quantized_inputs = torch.quantize_per_tensor(inputs, 0.05, 128, torch.quint8)
        weight = torch.quantize_per_channel(
            convolution.weight.detach(),
            torch.full((CHANNELS,), 0.01, dtype=torch.double),
            torch.zeros(CHANNELS, dtype=torch.long),
            0,
            torch.qint8,
        )
    packed = torch.ops.quantized.conv2d_prepack(weight, None, [1, 1], [1, 1], [1, 1], 1)
    bf16_convolution, bf16_inputs = copy.deepcopy(convolution).bfloat16(), inputs.bfloat16()
    return {
        "conv fp32": best_seconds(lambda: convolution(inputs), repeats),
        "conv bf16": best_seconds(lambda: bf16_convolution(bf16_inputs), repeats),
        "conv int8": best_seconds(lambda: torch.ops.quantized.conv2d(quantized_inputs, packed, 0.1, 128), repeats),
    }


def quantized_int8_block(block: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """`block` through torchao's PT2E flow: export, X86InductorQuantizer, calibration on `inputs` and one more
    random batch, conversion to quantize/dequantize pairs around int8 convolutions."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer

    quantizer = x86_inductor_quantizer.X86InductorQuantizer()
    quantizer.set_global(x86_inductor_quantizer.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(torch.export.export(block, (inputs,)).module(), quantizer)
    prepared(inputs)
    prepared(torch.randn_like(inputs))
    return convert_pt2e(prepared)


def compiled_with_seconds(module: nn.Module, inputs: torch.Tensor) -> tuple[Callable, float]:
    """`torch.compile(module)` (inductor) and the seconds of its first call, which compiles."""
    compiled = torch.compile(module)
    start = time.perf_counter()
    compiled(inputs)
    return compiled, time.perf_counter() - start


def block_seconds(repeats: int) -> dict[str, float]:
    """The VQ residual block in fp32 eager, fp32 inductor and int8 PT2E + inductor (channels_last input)."""
    torch.manual_seed(0)
    block = C2FSegVQResnetBlock(C2FSegVQConfig(), CHANNELS, CHANNELS).eval()
    block = block.to(memory_format=torch.channels_last)
    inputs = torch.randn(1, CHANNELS, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    inductor_config.freezing = True
    expected = block(inputs)
    fp32_compiled, fp32_compile_seconds = compiled_with_seconds(block, inputs)
    int8_compiled, int8_compile_seconds = compiled_with_seconds(quantized_int8_block(block, inputs), inputs)
    return {
        "block fp32 eager": best_seconds(lambda: block(inputs), repeats),
        "block fp32 inductor": best_seconds(lambda: fp32_compiled(inputs), repeats),
        "block int8 inductor": best_seconds(lambda: int8_compiled(inputs), repeats),
        "fp32 compile (first call)": fp32_compile_seconds,
        "int8 quantize + compile (first call)": int8_compile_seconds,
        "int8 max |deviation|": float((int8_compiled(inputs) - expected).abs().max()),
        "fp32 max |output|": float(expected.abs().max()),
        "int8 mean |deviation| / mean |output|": float(
            F.l1_loss(int8_compiled(inputs), expected) / expected.abs().mean()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lone-only", action="store_true", help="only the lone convolutions (no torchao needed)")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print(f"CPU: {device_description(torch.device('cpu'))}, torch {torch.__version__}")
    with torch.no_grad():
        lone = lone_convolution_seconds(arguments.repeats)
        results = lone if arguments.lone_only else {**lone, **block_seconds(arguments.repeats)}
    for name, value in results.items():
        print(f"  {name:>38}: {value:9.4f}")
    for name, seconds in lone.items():
        print(f"  {name + ' rate':>38}: {LONE_CONVOLUTION_FLOP / seconds / 1e9:9.0f} GFLOP/s")


if __name__ == "__main__":
    main()
