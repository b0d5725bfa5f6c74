"""Process-wide reuse of freed memory on CPU (glibc's allocator), for inference servers such as the Space.

torch's CPU tensors come from `malloc`. glibc serves every request above 32 MiB, and smaller ones until its adaptive
threshold has grown, with a fresh `mmap` that it unmaps again on `free`. So each full-size activation map (one
object's 128 channels at 256x256 are 32 MiB) is faulted in page by page, and zeroed by the kernel, every time it is
allocated: on a 2-core CPU a `F.silu` into a fresh 32 MiB map takes 14 ms, in place 4 ms
(`benchmarks/experiments/fresh_allocation.py`). `reuse_freed_memory()` makes glibc serve all requests from its heap
and keep freed memory there, so the next map of the same size reuses pages that are already mapped. Measured in
docs/performance.md.
"""

import ctypes
import ctypes.util

# glibc's `mallopt` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# The largest trim threshold `mallopt` accepts (an `int`): free memory at the top of the heap stays mapped up to it.
KEPT_FREE_BYTES = 2**31 - 1


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has `gnu_get_libc_version` and `mallopt`), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(library, "gnu_get_libc_version") and hasattr(library, "mallopt")):
        return None
    return library


def reuse_freed_memory() -> bool:
    """Make this process's allocator keep freed memory for reuse instead of returning it to the system.

    After the call glibc serves large requests from its heap instead of from fresh `mmap`s (`M_MMAP_MAX` = 0), and
    keeps up to 2 GiB of free memory at the top of the heap (`M_TRIM_THRESHOLD`). Tensors allocated afterwards are
    then backed by pages that are already mapped whenever a freed block fits, so they cost no page faults (other
    allocations can take part of a freed block, and the heap then grows once more). Results are unchanged. The
    price is memory: the process's resident size stays near its peak between calls.

    It acts on the whole process (every library that allocates with `malloc`), so call it once, early, in a
    process that serves predictions (the Space does); a library never calls it on a user's behalf. Blocks mapped
    before the call are not affected.

    Returns:
        True when the settings were applied; False where the C library is not glibc (macOS, Windows, musl), which
        changes nothing.
    """
    library = _glibc()
    if library is None:
        return False
    return bool(library.mallopt(M_MMAP_MAX, 0)) and bool(library.mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))
