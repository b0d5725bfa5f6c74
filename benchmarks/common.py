"""What every benchmark shares: the machine it ran on, synthetic objects, timing, peak memory and the GPU fast mode.

The product benchmarks next to this file import it as `common` (Python puts a script's own folder first on
`sys.path`); the experiments in `experiments/` put this folder on `sys.path` first (see `experiments/README.md`).
"""

import argparse
import math
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from c2f_hf import C2FSegForAmodalSegmentation
from c2f_hf.models.c2f_seg.fast_inference import cpu_has_native_bf16

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
Output = TypeVar("Output")


# ----- the machine -----


def cpu_name_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and which of `ISA_FLAGS` it has (from /proc/cpuinfo; the platform's name elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return platform.processor() or platform.machine(), []
    fields = dict(
        line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line and not line.startswith(" ")
    )
    name = fields.get("model name\t", fields.get("model name", platform.machine())).strip()
    flags = set(fields.get("flags\t\t", fields.get("flags", "")).split())
    return name, [flag for flag in ISA_FLAGS if flag in flags]


def device_description(device: torch.device) -> str:
    """One line naming the device: the GPU, or the CPU with its ISA flags and torch's thread count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name, flags = cpu_name_and_flags()
    return f"{name} [{' '.join(flags) or 'no AVX2'}], {torch.get_num_threads()} threads"


def transparent_hugepage_mode() -> str:
    """The kernel's transparent huge page policy (the bracketed word of its sysfs file), "unknown" elsewhere."""
    policy = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not policy.is_file():
        return "unknown"
    words = policy.read_text().split()
    return next((word.strip("[]") for word in words if word.startswith("[")), "unknown")


def machine_description(device: torch.device) -> dict[str, object]:
    """What decides the speed measured on `device`: the device, the CPU's name and ISA flags, whether it computes
    bf16 natively, torch's CPU capability, version and threads, the huge-page settings, and TF32 on a GPU."""
    cpu_name, isa_flags = cpu_name_and_flags()
    description: dict[str, object] = {
        "device": device_description(device),
        "cpu": cpu_name,
        "isa_flags": isa_flags,
        "cpu_has_native_bf16": cpu_has_native_bf16(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "thp_mem_alloc_enable": os.environ.get("THP_MEM_ALLOC_ENABLE", "unset"),
        "kernel_transparent_hugepage": transparent_hugepage_mode(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        description["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        description["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return description


def print_machine(machine: dict[str, object]) -> None:
    """`machine` (see `machine_description`) as one `name: value` line per entry."""
    for name, value in machine.items():
        print(f"{name}: {value}", flush=True)


# ----- arguments and inputs -----


def fill_unset_arguments(arguments: argparse.Namespace, defaults: dict[str, object]) -> argparse.Namespace:
    """`arguments` with each of `defaults` set where the command line left it None (device-dependent defaults)."""
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    return arguments


def synthetic_objects(
    batch_size: int, size: int, seed: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random RGB crops `(batch, 3, size, size)` in [0, 1] and rectangular visible masks `(batch, 1, size, size)`,
    drawn on the CPU (the same objects whatever the device) and moved to `device`."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.rand(batch_size, 3, size, size, generator=generator)
    visible_masks = torch.zeros(batch_size, 1, size, size)
    for index in range(batch_size):
        top, left = torch.randint(size // 8, size // 3, (2,), generator=generator).tolist()
        height, width = torch.randint(size // 4, size // 2, (2,), generator=generator).tolist()
        visible_masks[index, :, top : top + height, left : left + width] = 1
    return pixel_values.to(device), visible_masks.to(device)


def made_gpu_fast(model: C2FSegForAmodalSegmentation) -> C2FSegForAmodalSegmentation:
    """`model` in bf16 (SDPA, as loaded), channels_last, compiled with CUDA graphs
    (`compile_for_inference(mode="reduce-overhead")`); converted in place. The `gpu-fast` mode of both
    `inference.py` and `versus_authors.py`."""
    model = model.eval().to(torch.bfloat16).to(memory_format=torch.channels_last)
    return model.compile_for_inference(mode="reduce-overhead")


# ----- timing -----


def run_once(run: Callable[[], Output], device: torch.device) -> tuple[float, Output]:
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
    run: Callable[[], Output], device: torch.device, count: int, max_seconds: float | None
) -> tuple[list[float], Output | None]:
    """Up to `count` calls, stopping once `max_seconds` (None: no limit) have been spent, after at least one call
    when count > 0."""
    limit = math.inf if max_seconds is None else max_seconds
    seconds, output = [], None
    while len(seconds) < count and sum(seconds) <= limit:
        elapsed, output = run_once(run, device)
        seconds.append(elapsed)
    return seconds, output


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` calls on the CPU after one warm-up call."""
    run()
    seconds, _ = repeat(run, torch.device("cpu"), repeats, max_seconds=None)
    return min(seconds)


# ----- memory -----


def reset_peak_memory(device: torch.device) -> str:
    """Reset the peak-memory counter that `peak_memory_mib` reads: the GPU's peak allocation, or the kernel's
    peak-RSS counter (VmHWM, reset to the current RSS). Returns what the peak then covers."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "allocated on the GPU during the measurement"
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return "RSS of the whole process"
    return "RSS during the measurement"


def peak_memory_mib(device: torch.device) -> float:
    """The GPU's peak allocation; on the CPU, VmHWM of /proc/self/status (the peak resident set since the process
    started or since `reset_peak_memory`), or the process's ru_maxrss where there is none."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
