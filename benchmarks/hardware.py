"""What the benchmarks ran on: the GPU's name, or the CPU's model name and the ISA flags that decide its speed."""

import platform
from pathlib import Path

import torch

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


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
