"""The fast inference paths of `C2FSegForAmodalSegmentation`, kept out of the modeling file because they change how
the model computes, never what: NNPACK Winograd convolutions, the bf16 CPU probe, the VQ chunk budget, and the two
in-place conversions the model exposes as `optimize_for_cpu` and `compile_for_inference`. Measurements:
docs/performance.md.

Part of the model bundle (remote code copies it beside the modeling file), so it imports only torch and its
siblings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from .configuration_c2f_seg import C2FSegVQConfig

if TYPE_CHECKING:
    from .modeling_c2f_seg import C2FSegForAmodalSegmentation


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has AMX tiles or AVX512-BF16, the instructions that make bf16 faster than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


# `optimize_for_cpu` chooses bf16 on a CPU that computes it natively only for models whose largest VQ activation per
# object has at least this many elements (the 128-pixel `tiny` preset and the shipped models: 8 x 128 x 128; the
# full-size presets: 128 x 256 x 256). Below it the casts cost more than bf16 saves: on a Zen 5 CPU with
# AVX512-BF16 the 64-pixel `micro` model took 8.7-9.2 ms per object in bf16 against 5.7 in fp32 at batch 1
# (docs/performance.md).
BF16_MIN_VQ_ACTIVATION = 8 * 128 * 128


def bf16_pays_off(config: C2FSegVQConfig) -> bool:
    """Whether the model is large enough for the bf16 CPU path (`BF16_MIN_VQ_ACTIVATION`)."""
    return config.base_channels * config.resolution**2 >= BF16_MIN_VQ_ACTIVATION


# `optimize_for_cpu` runs the VQ model on chunks of objects whose largest activation stays below this many bytes:
# glibc serves smaller blocks from its heap, reusing freed memory, but gives every block at or above its mmap
# threshold (at most 32 MiB on 64-bit) a fresh mapping, whose pages fault in one by one.
VQ_CHUNK_BYTES = 32 * 2**20


def vq_objects_within(config: C2FSegVQConfig, budget_bytes: int, dtype: torch.dtype = torch.float32) -> int:
    """How many objects' largest VQ activation (`base_channels` maps of `dtype` at the VQ resolution) stay below
    `budget_bytes`, at least 1."""
    return max(1, (budget_bytes - 1) // (config.base_channels * config.resolution**2 * dtype.itemsize))


class C2FSegWinogradConv2d(nn.Conv2d):
    """A 3x3, stride-1, undilated, ungrouped `nn.Conv2d` that, for fp32 CPU inference on large enough maps
    (`uses_winograd`), is computed by NNPACK's Winograd transform (`torch._nnpack_spatial_convolution`), one image
    at a time. On a 2-core AVX2 CPU that is 2-2.9x faster than oneDNN's direct convolution for 128-256 channels at
    64x64 to 256x256 and 1.2-1.3x at 32x32, but 2x slower at 16x16 and slower for few channels
    (`benchmarks/experiments/winograd_convolutions.py`); it equals the direct convolution to about 1.6e-5 of the
    output's scale. Everywhere else (smaller maps, autograd, other dtypes or devices, `torch.compile`) it is the
    plain convolution. Same parameters and state-dict keys as `nn.Conv2d`. NNPACK's thread pool keeps the number of
    threads torch had when it first ran (a later `torch.set_num_threads` does not change it).
    `(batch, in_channels, h, w)` ->
    `(batch, out_channels, h, w)`."""

    min_side = 32
    min_channel_pixels = 64 * 64 * 64 * 64

    @staticmethod
    def can_compute(convolution: nn.Module) -> bool:
        """Whether `convolution` is a plain 3x3 convolution NNPACK computes exactly as `nn.Conv2d` does."""
        return (
            type(convolution) is nn.Conv2d
            and convolution.kernel_size == (3, 3)
            and convolution.stride == (1, 1)
            and convolution.dilation == (1, 1)
            and convolution.groups == 1
            and convolution.padding_mode == "zeros"
            and not isinstance(convolution.padding, str)
        )

    def uses_winograd(self, hidden_states: torch.Tensor) -> bool:
        """Eager fp32 CPU inference on a map of at least `min_side` pixels a side whose in_channels x
        out_channels x height x width is at least `min_channel_pixels` (under `torch.compile` the compiler's own
        convolution is used)."""
        height, width = hidden_states.shape[-2:]
        return (
            not torch.compiler.is_compiling()
            and hidden_states.device.type == "cpu"
            and hidden_states.dtype == torch.float32
            and not torch.is_grad_enabled()
            and min(height, width) >= self.min_side
            and self.in_channels * self.out_channels * height * width >= self.min_channel_pixels
            and torch._nnpack_available()
        )

    def winograd(self, sample: torch.Tensor) -> torch.Tensor:
        """NNPACK's single-image Winograd convolution, `(1, in_channels, h, w)` -> `(1, out_channels, h, w)`."""
        return torch._nnpack_spatial_convolution(
            sample.contiguous(), self.weight, self.bias, list(self.padding), list(self.stride)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if not self.uses_winograd(hidden_states):
            return super().forward(hidden_states)
        if hidden_states.shape[0] == 1:
            return self.winograd(hidden_states)
        # One image at a time: NNPACK's batched algorithm is 1.5-1.8x slower per image than its single-image one.
        return torch.cat([self.winograd(sample) for sample in hidden_states.split(1)])


def use_winograd_convolutions(module: nn.Module) -> int:
    """Turn, in place, every convolution inside `module` that `C2FSegWinogradConv2d.can_compute` into one (the
    parameters stay the same objects). Returns how many were turned; 0 where this torch has no NNPACK."""
    if not torch._nnpack_available():
        return 0
    convolutions = [child for child in module.modules() if C2FSegWinogradConv2d.can_compute(child)]
    for convolution in convolutions:
        convolution.__class__ = C2FSegWinogradConv2d
    return len(convolutions)


def over_vq_batches(
    function: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, vq_batch_size: int | None
) -> torch.Tensor:
    """`function(inputs)` over the object axis, computed `vq_batch_size` objects at a time when that is set and
    `inputs` are on the CPU (the chunks are for the CPU's caches and allocator; a GPU takes the whole batch)."""
    if vq_batch_size is None or inputs.device.type != "cpu" or inputs.shape[0] <= vq_batch_size:
        return function(inputs)
    return torch.cat([function(chunk) for chunk in inputs.split(vq_batch_size)])


def compile_for_inference(
    model: C2FSegForAmodalSegmentation, mode: str | None = None, backend: str = "inductor"
) -> C2FSegForAmodalSegmentation:
    """Compile the heavy stages with `torch.compile(dynamic=False, fullgraph=True)`: the backbone, the VQ encoder
    and decoder, the transformer (called once per MaskGIT step) and the refiner. The sampler, the code search and
    the glue between stages stay eager, so seeded generators keep working. Each new batch size compiles once
    (up to `torch._dynamo.config.recompile_limit` sizes).

    Args:
        model: the model to compile in place.
        mode: `torch.compile` mode. "reduce-overhead" and "max-autotune" capture CUDA graphs on CUDA; `generate`
            then marks the start of each call (`torch.compiler.cudagraph_mark_step_begin`) so the backbone
            features stay valid across the K transformer calls. Callers that chain the stages themselves must
            do the same.
        backend: `torch.compile` backend ("inductor"; "aot_eager" or "eager" to check graphs without codegen).

    Returns:
        `model`, compiled in place.
    """
    stages = (model.backbone, model.vq_model.encoder, model.vq_model.decoder, model.transformer, model.refiner)
    for stage in stages:
        stage.compile(mode=mode, backend=backend, dynamic=False, fullgraph=True)
    model._uses_cuda_graphs = mode in ("reduce-overhead", "max-autotune")
    return model


def optimize_for_cpu(model: C2FSegForAmodalSegmentation, bf16: bool | None = None) -> C2FSegForAmodalSegmentation:
    """The CPU fast path in one call, chosen by what the CPU computes fast (measurements: docs/performance.md).

    - bf16 (by default where the CPU has AMX or AVX512-BF16, `cpu_has_native_bf16()`, for models of the 128-pixel
      `tiny` preset's size and up, `bf16_pays_off`): bf16 weights and activations, channels_last convolutions.
    - fp32 (elsewhere, where bf16 convolutions are 10-200x slower than fp32): the 3x3 convolutions on maps of
      32x32 pixels or more with enough channels are computed by NNPACK's Winograd transform
      (`C2FSegWinogradConv2d.uses_winograd`; equal to the direct convolution to about 1.6e-5 of its scale),
      and the layout stays NCHW.

    Either way the VQ model encodes and decodes as many objects at a time as keep its largest activation below
    32 MiB (`model.vq_batch_size`, `VQ_CHUNK_BYTES`): one object of the full-size model, whose 128-channel 256x256
    maps of a whole batch neither fit in the caches nor stay below glibc's threshold for fresh mappings; the
    whole batch of a tiny model.

    Discrete choices (code search, sampler) stay fp32 either way. The state-dict keys are unchanged; on the fp32
    path the parameters are too, so `save_pretrained` writes the same checkpoint (on the bf16 path it writes bf16
    tensors: save from a `from_pretrained(..., dtype=torch.float32)` load).

    Args:
        model: the model to convert in place.
        bf16: force the bf16 path (True) or the fp32 path (False); None chooses by `cpu_has_native_bf16()` and
            `bf16_pays_off`.

    Returns:
        `model`, converted in place.
    """
    use_bf16 = cpu_has_native_bf16() and bf16_pays_off(model.config.vq_config) if bf16 is None else bf16
    if use_bf16:
        model.to(torch.bfloat16).to(memory_format=torch.channels_last)
    else:
        use_winograd_convolutions(model)
    model.vq_batch_size = vq_objects_within(model.config.vq_config, VQ_CHUNK_BYTES, model.dtype)
    return model


__all__ = [
    "BF16_MIN_VQ_ACTIVATION",
    "C2FSegWinogradConv2d",
    "bf16_pays_off",
    "compile_for_inference",
    "cpu_has_native_bf16",
    "optimize_for_cpu",
    "over_vq_batches",
    "use_winograd_convolutions",
    "vq_objects_within",
]
