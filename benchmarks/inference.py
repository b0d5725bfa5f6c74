"""Inference speed of C2F-Seg: the fp32 eager reference path against the fast path (random weights, K = 3).

The reference is `C2FSegForAmodalSegmentation.from_pretrained(folder)` (fp32, SDPA, eager). The fast path is
`from_pretrained(folder, dtype=..., attn_implementation=...)`, then `model.to(memory_format=torch.channels_last)` and
`model.compile_for_inference(mode=...)`. Both run `generate(..., greedy=True)` on the same synthetic objects; the
script prints objects/s, ms per batch (median of the timed runs), peak memory, and how far the fast path's refined
amodal probabilities are from the reference's, and writes everything to a JSON file.

GPU (issue 9 targets on one H100: >= 700 objects/s at batch 128, <= 10 ms at batch 1, >= 99.5% agreeing pixels):

    python benchmarks/inference.py --out benchmarks/inference_h100.json

CPU (defaults: tiny and full-size models, batches 1 and 8, fp32 fast path without compile, at most 30 s of warm-up
and 30 s of timed runs per measurement, so the full-size model at batch 8 gets one warm-up and one timed run):

    python benchmarks/inference.py --threads 1 --out /tmp/inference_cpu.json
    python benchmarks/inference.py --threads 1 --fast-dtype bfloat16 --batch-sizes 1 --warmup 0 --max-seconds 1 \
        --out /tmp/inference_cpu_bf16.json

(bf16 is not the CPU default: without AVX512-BF16/AMX, bf16 convolutions are 10x (channels_last) to 200x (NCHW)
slower than fp32. Results and caveats: docs/performance.md.)
"""

import argparse
import json
import math
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from c2f_hf import (
    C2FSegConfig,
    C2FSegForAmodalSegmentation,
)
from c2f_hf.modeling_c2f_seg import C2FSegGenerationOutput
from c2f_hf.presets import model_config

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


MODEL_CONFIGS: dict[str, Callable[[], C2FSegConfig]] = {"tiny": lambda: model_config("micro"), "full": C2FSegConfig}


def parse_arguments() -> argparse.Namespace:
    on_gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if on_gpu else "cpu")
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_CONFIGS), default=None)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up runs (default 3 on GPU, 1 on CPU)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop warming up / timing a measurement after this many seconds, keeping at least one run "
        "(default: no limit on GPU, 30 on CPU)",
    )
    parser.add_argument("--fast-dtype", choices=sorted(DTYPES), default=None, help="bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--attn-implementation", choices=["sdpa", "eager"], default="sdpa")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on GPU only")
    parser.add_argument("--compile-mode", default=None, help='default "reduce-overhead" (CUDA graphs) on GPU')
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("inference_benchmark.json"))
    arguments = parser.parse_args()
    return fill_device_defaults(arguments, arguments.device.startswith("cuda"))


def fill_device_defaults(arguments: argparse.Namespace, on_gpu: bool) -> argparse.Namespace:
    """GPU defaults: the full-size model at batches 1-128, bf16, compiled with CUDA graphs. CPU defaults: both
    models at batches 1 and 8, fp32 (a CPU without AVX512-BF16/AMX runs bf16 convolutions 10-200x slower than
    fp32) and no compile (inductor's C++ codegen takes minutes on 2 cores)."""
    defaults = {
        "models": ["full"] if on_gpu else ["tiny", "full"],
        "batch_sizes": [1, 8, 32, 128] if on_gpu else [1, 8],
        "warmup": 3 if on_gpu else 1,
        "max_seconds": None if on_gpu else 30.0,
        "fast_dtype": "bfloat16" if on_gpu else "float32",
        "compile": on_gpu,
        "compile_mode": "reduce-overhead" if on_gpu else None,
    }
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    return arguments


def synthetic_objects(batch_size: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random RGB crops `(batch, 3, size, size)` in [0, 1] and rectangular visible masks `(batch, 1, size, size)`."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.rand(batch_size, 3, size, size, generator=generator)
    visible_masks = torch.zeros(batch_size, 1, size, size)
    for index in range(batch_size):
        top, left = torch.randint(size // 8, size // 3, (2,), generator=generator).tolist()
        height, width = torch.randint(size // 4, size // 2, (2,), generator=generator).tolist()
        visible_masks[index, :, top : top + height, left : left + width] = 1
    return pixel_values, visible_masks


def load_models(
    folder: Path, arguments: argparse.Namespace
) -> tuple[C2FSegForAmodalSegmentation, C2FSegForAmodalSegmentation]:
    """The fp32 eager reference and the fast model, both loaded from the same saved folder."""
    device = torch.device(arguments.device)
    reference = C2FSegForAmodalSegmentation.from_pretrained(folder).to(device).eval()
    fast = C2FSegForAmodalSegmentation.from_pretrained(
        folder, dtype=DTYPES[arguments.fast_dtype], attn_implementation=arguments.attn_implementation
    )
    fast = fast.to(device).eval()
    if not arguments.no_channels_last:
        fast.to(memory_format=torch.channels_last)
    if arguments.compile:
        fast.compile_for_inference(mode=arguments.compile_mode)
    return reference, fast


def run_once(run: Callable[[], C2FSegGenerationOutput], device: torch.device) -> tuple[float, C2FSegGenerationOutput]:
    """Seconds of one call (CUDA events on GPU, perf_counter on CPU) and its output."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        output = run()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1000.0, output
    start_time = time.perf_counter()
    output = run()
    return time.perf_counter() - start_time, output


def repeat(
    run: Callable[[], C2FSegGenerationOutput], device: torch.device, count: int, max_seconds: float | None
) -> tuple[list[float], C2FSegGenerationOutput | None]:
    """Up to `count` calls, stopping once `max_seconds` (None: no limit) have been spent, after at least one call
    when count > 0."""
    limit = math.inf if max_seconds is None else max_seconds
    seconds, output = [], None
    while len(seconds) < count and sum(seconds) <= limit:
        elapsed, output = run_once(run, device)
        seconds.append(elapsed)
    return seconds, output


def peak_memory_mib(device: torch.device) -> float:
    """GPU: peak allocated since the last reset. CPU: the process's peak resident set so far (never resets)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    model: C2FSegForAmodalSegmentation, inputs: tuple[torch.Tensor, torch.Tensor], arguments: argparse.Namespace
) -> tuple[dict, C2FSegGenerationOutput]:
    """Warm up, time `generate(greedy=True)`, and return the timing record and the last output."""
    device = torch.device(arguments.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    run = lambda: model.generate(*inputs, greedy=True)  # noqa: E731
    warmup_seconds, _ = repeat(run, device, arguments.warmup, arguments.max_seconds)
    seconds, output = repeat(run, device, arguments.runs, arguments.max_seconds)
    batch_size = inputs[0].shape[0]
    median = statistics.median(seconds)
    record = {
        "warmup_runs": len(warmup_seconds),
        "first_warmup_s": warmup_seconds[0] if warmup_seconds else None,
        "timed_runs": len(seconds),
        "ms_per_batch": 1000 * median,
        "objects_per_s": batch_size / median,
        "peak_memory_mib": peak_memory_mib(device),
    }
    return record, output


def agreement(reference: C2FSegGenerationOutput, fast: C2FSegGenerationOutput) -> dict:
    """How far the fast path's refined amodal probabilities are from the reference's (same inputs, greedy)."""
    expected, actual = reference.amodal_masks.float(), fast.amodal_masks.float()
    max_deviation = (actual - expected).abs().max()
    return {
        "max_probability_deviation": float(max_deviation),
        "pixel_agreement": float(((actual > 0.5) == (expected > 0.5)).float().mean()),
        "reference_pixels_within_max_deviation_of_threshold": float(
            ((expected - 0.5).abs() <= max_deviation).float().mean()
        ),
        "token_agreement": float((reference.amodal_tokens == fast.amodal_tokens).float().mean()),
    }


def benchmark_model(name: str, arguments: argparse.Namespace) -> list[dict]:
    config = MODEL_CONFIGS[name]()
    torch.manual_seed(arguments.seed)
    with tempfile.TemporaryDirectory() as folder:
        C2FSegForAmodalSegmentation(config).save_pretrained(folder)
        reference, fast = load_models(Path(folder), arguments)
    rows = []
    for batch_size in arguments.batch_sizes:
        inputs = tuple(
            tensor.to(arguments.device) for tensor in synthetic_objects(batch_size, config.image_size, arguments.seed)
        )
        reference_record, reference_output = measure(reference, inputs, arguments)
        fast_record, fast_output = measure(fast, inputs, arguments)
        row = {"model": name, "batch_size": batch_size, "reference": reference_record, "fast": fast_record}
        row.update(agreement(reference_output, fast_output))
        print_row(row)
        rows.append(row)
    return rows


def print_row(row: dict) -> None:
    for path in ("reference", "fast"):
        record = row[path]
        print(
            f"{row['model']:>5} batch {row['batch_size']:>4} {path:>9}: {record['objects_per_s']:9.2f} objects/s "
            f"{record['ms_per_batch']:11.2f} ms/batch  peak {record['peak_memory_mib']:9.1f} MiB  "
            f"({record['timed_runs']} timed runs after {record['warmup_runs']} warm-up)",
            flush=True,
        )
    print(
        f"{'':>16} fast vs reference: max |dp| {row['max_probability_deviation']:.2e}, pixels agreeing "
        f"{row['pixel_agreement']:.4%} (reference pixels within max |dp| of 0.5: "
        f"{row['reference_pixels_within_max_deviation_of_threshold']:.4%}), tokens agreeing "
        f"{row['token_agreement']:.2%}",
        flush=True,
    )


def machine_description(device: torch.device) -> dict:
    description = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        description["gpu"] = torch.cuda.get_device_name(device)
        description["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        description["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return description


def main() -> None:
    arguments = parse_arguments()
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    settings = {key: value for key, value in vars(arguments).items() if key != "out"}
    print("machine:", machine_description(device))
    print("settings:", settings)
    rows = [row for name in arguments.models for row in benchmark_model(name, arguments)]
    report = {"machine": machine_description(device), "settings": settings, "results": rows}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
