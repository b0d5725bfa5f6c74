"""Inference speed of C2F-Seg: the fp32 eager reference path against each fast mode (K = 3, greedy decoding).

Every measurement (one model, one mode, one batch size) runs in its own fresh process, so the peak resident memory
printed for it is that mode's alone. The reference is `C2FSegForAmodalSegmentation.from_pretrained(folder,
dtype=torch.float32)` (fp32, SDPA, NCHW, eager); `optimized` is the default `from_pretrained(folder)`; each mode
loads the same folder and converts it (see `MODES`). The script prints the machine
(`common.machine_description`: the CPU's name and ISA flags, torch's version and thread count), then per model,
mode and batch size: objects/s, ms per batch and per object (median of the timed runs), the first call's seconds
(compilation included, reported apart), peak memory, the CPU seconds per timed run spent in the kernel (page
faults of fresh allocations, mostly), and how far the mode's refined amodal probabilities and tokens
are from the reference's; all of it also goes to a JSON file (`--out`). Run it from the repository root.

Smallest run (the tiny model, batch 1, one timed run, a few seconds):

    python benchmarks/inference.py --models tiny --modes optimized --batch-sizes 1 --runs 1 --warmup 0 \
        --threads 1 --out /tmp/inference_smoke.json

Models: `tiny` and `full` (the full-size KINS architecture) with random weights (seed 0), and `shipped` (the
trained default model in `c2f_hf/checkpoints`, for agreement on trained weights).

CPU (defaults: tiny, shipped and full models, batches 1 and 8, the `optimized` mode, plus `fp32-optimized` on CPUs
with AMX / AVX512-BF16, where `optimized` is bf16; at most 30 s of warm-up and 30 s of timed runs per measurement):

    python benchmarks/inference.py --threads 2 --out /tmp/inference_cpu.json

Opt-in CPU modes: `--modes optimized compiled` adds inductor compilation (minutes of C++ code generation on 2
cores, shown as the first call's time); `--modes bf16` on an AVX2-only CPU shows why it is not chosen there (bf16
convolutions 10-200x slower than fp32); `--models shipped --modes winograd-everywhere` measures the agreement of
the Winograd convolutions on trained weights (the shipped model's maps are too small for `optimize_for_cpu` to use
them).

Huge pages: `--huge-pages` runs every measurement with `THP_MEM_ALLOC_ENABLE=1` (torch then backs allocations of
2 MiB and more with transparent huge pages, so a fresh 32 MiB activation map costs 128 page faults instead of
8192; the setting must be in the environment before the process's first large allocation, which holds for the
spawned measurement processes). The machine description prints the setting and the kernel's THP mode.

Reused memory: `--reuse-freed-memory` calls `c2f_hf.cpu_memory.reuse_freed_memory()` at the start of every
measurement process, so glibc serves the activation maps from memory freed before instead of fresh mappings.

GPU (targets on one H100: >= 700 objects/s at batch 128, <= 10 ms at batch 1, >= 99.5% agreeing pixels):

    python benchmarks/inference.py --out benchmarks/inference_h100.json
"""

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from common import (
    fill_unset_arguments,
    machine_description,
    made_gpu_fast,
    peak_memory_mib,
    print_machine,
    repeat,
    synthetic_objects,
)

from c2f_hf import C2FSegConfig, C2FSegForAmodalSegmentation
from c2f_hf.checkpoints import default_model_path
from c2f_hf.cpu_memory import reuse_freed_memory
from c2f_hf.models.c2f_seg.fast_inference import C2FSegWinogradConv2d, cpu_has_native_bf16
from c2f_hf.presets import model_config

RANDOM_MODEL_CONFIGS: dict[str, Callable[[], C2FSegConfig]] = {
    "tiny": lambda: model_config("micro"),
    "full": C2FSegConfig,
}
MODEL_NAMES = ("tiny", "shipped", "full")


def reference_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """fp32, SDPA, NCHW, eager: the path every mode is compared with."""
    return C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.float32)


def optimized_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """What `from_pretrained(folder)` gives by default on a CPU, `optimize_for_cpu()`: bf16 and channels_last only
    where the CPU computes bf16 natively, Winograd convolutions elsewhere."""
    return C2FSegForAmodalSegmentation.from_pretrained(folder)


def fp32_optimized_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """The fp32 CPU fast path whatever the CPU (`optimize_for_cpu(bf16=False)`: Winograd convolutions on the large
    maps, the VQ model one full-size object at a time)."""
    return C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.float32).eval().optimize_for_cpu(bf16=False)


def bf16_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """bf16 weights and activations plus channels_last, whatever the CPU (`optimize_for_cpu(bf16=True)`)."""
    return C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.float32).eval().optimize_for_cpu(bf16=True)


def winograd_everywhere_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """`optimize_for_cpu(bf16=False)` with every eligible convolution on NNPACK's Winograd path, whatever its size
    (`optimize_for_cpu` keeps small ones direct, where Winograd is slower): the agreement of Winograd convolutions
    on models, such as the shipped tiny one, whose maps are too small for them."""
    model = C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.float32).eval().optimize_for_cpu(bf16=False)
    for module in model.modules():
        if isinstance(module, C2FSegWinogradConv2d):
            module.min_side, module.min_channel_pixels = 1, 0
    return model


def compiled_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """`optimize_for_cpu()` then `compile_for_inference()` (inductor, no CUDA graphs)."""
    return optimized_model(folder).compile_for_inference()


def gpu_fast_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """bf16, SDPA, channels_last, compiled with CUDA graphs (`made_gpu_fast`)."""
    return made_gpu_fast(C2FSegForAmodalSegmentation.from_pretrained(folder, dtype=torch.bfloat16))


def gpu_fast_cudnn_benchmark_model(folder: Path) -> C2FSegForAmodalSegmentation:
    """`gpu-fast` in a process with `torch.backends.cudnn.benchmark = True` (cuDNN times its convolution algorithms
    for each new input shape, in the first call, and keeps the fastest)."""
    torch.backends.cudnn.benchmark = True
    return gpu_fast_model(folder)


MODES: dict[str, Callable[[Path], C2FSegForAmodalSegmentation]] = {
    "reference": reference_model,
    "optimized": optimized_model,
    "fp32-optimized": fp32_optimized_model,
    "bf16": bf16_model,
    "winograd-everywhere": winograd_everywhere_model,
    "compiled": compiled_model,
    "gpu-fast": gpu_fast_model,
    "gpu-fast-cudnn-benchmark": gpu_fast_cudnn_benchmark_model,
}


def parse_arguments() -> argparse.Namespace:
    """The command line, with the device-dependent defaults filled in (`fill_device_defaults`)."""
    on_gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if on_gpu else "cpu")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=None)
    parser.add_argument("--modes", nargs="+", choices=sorted(set(MODES) - {"reference"}), default=None)
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
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--huge-pages", action="store_true", help="measure with THP_MEM_ALLOC_ENABLE=1 (transparent huge pages)"
    )
    parser.add_argument(
        "--reuse-freed-memory",
        action="store_true",
        help="measure in processes whose allocator keeps freed memory (c2f_hf.cpu_memory.reuse_freed_memory)",
    )
    parser.add_argument("--out", type=Path, default=Path("inference_benchmark.json"))
    arguments = parser.parse_args()
    return fill_device_defaults(arguments, arguments.device.startswith("cuda"))


def fill_device_defaults(arguments: argparse.Namespace, on_gpu: bool) -> argparse.Namespace:
    """GPU defaults: the full-size model at batches 1-128 in the `gpu-fast` mode. CPU defaults: all models at
    batches 1 and 8 in the `optimized` mode, plus the fp32 path it passed over (`fp32-optimized`) where the CPU
    computes bf16 natively and `optimized` is bf16 (elsewhere bf16 is 10-200x slower than fp32: `--modes bf16`)."""
    cpu_modes = ["optimized", "fp32-optimized"] if cpu_has_native_bf16() else ["optimized"]
    defaults = {
        "models": ["full"] if on_gpu else list(MODEL_NAMES),
        "modes": ["gpu-fast"] if on_gpu else cpu_modes,
        "batch_sizes": [1, 8, 32, 128] if on_gpu else [1, 8],
        "warmup": 3 if on_gpu else 1,
        "max_seconds": None if on_gpu else 30.0,
    }
    return fill_unset_arguments(arguments, defaults)


def measure_mode(folder: Path, mode: str, batch_size: int, arguments: argparse.Namespace) -> dict:
    """In a fresh process: load `mode`'s model from `folder`, warm up, time `generate(greedy=True)` on
    `batch_size` synthetic objects. Returns the timing record and the last output's amodal probabilities
    `(batch, 1, S, S)` (fp32) and tokens `(batch, sequence_length)`."""
    reuses_freed_memory = arguments.reuse_freed_memory and reuse_freed_memory()
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    model = MODES[mode](folder).to(device).eval()
    inputs = synthetic_objects(batch_size, model.config.image_size, arguments.seed, device)

    def run() -> object:
        return model.generate(*inputs, greedy=True)

    warmup_seconds, _ = repeat(run, device, arguments.warmup, arguments.max_seconds)
    kernel_seconds_before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    seconds, output = repeat(run, device, arguments.runs, arguments.max_seconds)
    kernel_seconds = resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel_seconds_before
    median = statistics.median(seconds)
    return {
        "mode": mode,
        "batch_size": batch_size,
        "dtype": str(model.dtype),
        "warmup_runs": len(warmup_seconds),
        "first_call_s": (warmup_seconds or seconds)[0],
        "timed_runs": len(seconds),
        "ms_per_batch": 1000 * median,
        "ms_per_object": 1000 * median / batch_size,
        "objects_per_s": batch_size / median,
        "peak_memory_mib": peak_memory_mib(device),
        "kernel_s_per_run": kernel_seconds / len(seconds),
        "reuses_freed_memory": reuses_freed_memory,
        "amodal_masks": output.amodal_masks.float().cpu(),
        "amodal_tokens": output.amodal_tokens.cpu(),
    }


def measure_in_fresh_process(folder: Path, mode: str, batch_size: int, arguments: argparse.Namespace) -> dict:
    """`measure_mode` in a spawned process of its own (its peak memory is then the mode's alone)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        return executor.submit(measure_mode, folder, mode, batch_size, arguments).result()


def agreement(reference: dict, fast: dict) -> dict:
    """How far a mode's refined amodal probabilities and tokens are from the reference's (same inputs, greedy)."""
    expected, actual = reference["amodal_masks"], fast["amodal_masks"]
    max_deviation = (actual - expected).abs().max()
    return {
        "max_probability_deviation": float(max_deviation),
        "pixel_agreement": float(((actual > 0.5) == (expected > 0.5)).float().mean()),
        "reference_pixels_within_max_deviation_of_threshold": float(
            ((expected - 0.5).abs() <= max_deviation).float().mean()
        ),
        "token_agreement": float((reference["amodal_tokens"] == fast["amodal_tokens"]).float().mean()),
    }


def saved_model_folder(name: str, scratch: Path, seed: int) -> Path:
    """The shipped default model's folder, or a random-weight model of that name saved under `scratch`."""
    if name == "shipped":
        return default_model_path()
    torch.manual_seed(seed)
    folder = scratch / name
    C2FSegForAmodalSegmentation(RANDOM_MODEL_CONFIGS[name]()).save_pretrained(folder)
    return folder


def benchmark_model(name: str, scratch: Path, arguments: argparse.Namespace) -> list[dict]:
    """One row per batch size and mode: the reference's record, the mode's, and their agreement."""
    folder = saved_model_folder(name, scratch, arguments.seed)
    rows = []
    for batch_size in arguments.batch_sizes:
        reference = measure_in_fresh_process(folder, "reference", batch_size, arguments)
        print_record(name, reference)
        for mode in arguments.modes:
            fast = measure_in_fresh_process(folder, mode, batch_size, arguments)
            row = {"model": name, "batch_size": batch_size, "reference": reference, "fast": fast}
            row.update(agreement(reference, fast))
            row["speedup"] = fast["objects_per_s"] / reference["objects_per_s"]
            print_record(name, fast)
            print_agreement(row)
            rows.append(row)
    return rows


def print_record(model: str, record: dict) -> None:
    """One measurement's line: speed, peak memory, kernel time and the first call's seconds."""
    print(
        f"{model:>7} batch {record['batch_size']:>4} {record['mode']:>19} ({record['dtype']:>14}): "
        f"{record['objects_per_s']:9.3f} objects/s {record['ms_per_object']:10.1f} ms/object "
        f"{record['ms_per_batch']:10.1f} ms/batch  peak {record['peak_memory_mib']:7.0f} MiB  "
        f"kernel {record['kernel_s_per_run']:6.2f} s/run  "
        f"first call {record['first_call_s']:7.2f} s  ({record['timed_runs']} timed after "
        f"{record['warmup_runs']} warm-up)",
        flush=True,
    )


def print_agreement(row: dict) -> None:
    """The line under a fast mode's record: its speed-up over the reference and how far its outputs are from it."""
    print(
        f"{'':>30} {row['speedup']:.2f}x the reference; max |dp| {row['max_probability_deviation']:.2e}, pixels "
        f"agreeing {row['pixel_agreement']:.4%} (reference pixels within max |dp| of 0.5: "
        f"{row['reference_pixels_within_max_deviation_of_threshold']:.4%}), tokens agreeing "
        f"{row['token_agreement']:.2%}",
        flush=True,
    )


def without_tensors(row: dict) -> dict:
    """`row` with the records' output tensors left out (for the JSON file)."""
    drop = {"amodal_masks", "amodal_tokens"}
    return {
        key: ({k: v for k, v in value.items() if k not in drop} if isinstance(value, dict) else value)
        for key, value in row.items()
    }


def main() -> None:
    """Measure every model, batch size and mode asked for; print each record and write the JSON report."""
    arguments = parse_arguments()
    if arguments.huge_pages:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    machine = machine_description(device)
    settings = {key: value for key, value in vars(arguments).items() if key != "out"}
    print_machine(machine)
    print("settings:", settings, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        rows = [row for name in arguments.models for row in benchmark_model(name, Path(scratch), arguments)]
    report = {"machine": machine, "settings": settings, "results": [without_tensors(row) for row in rows]}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
