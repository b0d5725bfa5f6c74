"""What a fresh output costs on this CPU: one full-size VQ activation map (128 channels at 256x256, 32 MiB fp32)
through `F.silu` into a fresh tensor, into a preallocated one, and in place, and a residual add fresh and in place.
The difference is the page faults of a new 32 MiB allocation, which torch backs with 2 MiB huge pages when
`THP_MEM_ALLOC_ENABLE=1` is in the environment at its first large allocation, and which glibc serves from memory
freed before after `c2f_hf.cpu_memory.reuse_freed_memory()` (`--reuse-freed-memory`). Run the three ways to compare:

    python benchmarks/experiments/fresh_allocation.py --threads 2
    THP_MEM_ALLOC_ENABLE=1 python benchmarks/experiments/fresh_allocation.py --threads 2
    python benchmarks/experiments/fresh_allocation.py --threads 2 --reuse-freed-memory
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks folder: common.py

import torch
from common import best_seconds, device_description
from torch.nn import functional as F

from c2f_hf.cpu_memory import reuse_freed_memory

SHAPE = (1, 128, 256, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--reuse-freed-memory", action="store_true", help="call reuse_freed_memory() first")
    arguments = parser.parse_args()
    reuses_freed_memory = arguments.reuse_freed_memory and reuse_freed_memory()
    torch.set_num_threads(arguments.threads)
    print(
        device_description(torch.device("cpu")),
        "THP_MEM_ALLOC_ENABLE =",
        os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "reuses freed memory =",
        reuses_freed_memory,
    )
    hidden_states, residual = torch.randn(SHAPE), torch.randn(SHAPE)
    output = torch.empty(SHAPE)
    timings = {
        "silu, fresh output": lambda: F.silu(hidden_states),
        "silu, preallocated output": lambda: torch.ops.aten.silu.out(hidden_states, out=output),
        "silu, in place": lambda: F.silu(output, inplace=True),
        "add, fresh output": lambda: hidden_states + residual,
        "add, in place": lambda: output.add_(residual),
    }
    for name, run in timings.items():
        print(f"{name:>26}: {1000 * best_seconds(run, arguments.repeats):6.2f} ms")


if __name__ == "__main__":
    main()
