"""`c2f_hf.cpu_memory.reuse_freed_memory`: glibc keeps freed blocks mapped, so a re-allocated tensor costs no
page faults. It changes the whole process, so the measurements run in a subprocess of their own."""

import ctypes.util
import json
import subprocess
import sys

import pytest

from c2f_hf import cpu_memory
from c2f_testing import ON_GLIBC

# Prints the page faults of eight 64 MiB allocations before the call, its result, then eight after.
FAULTS_SCRIPT = """
import json, resource, torch
from c2f_hf.cpu_memory import reuse_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

before = [faults() for _ in range(8)]
applied = reuse_freed_memory()
after = [faults() for _ in range(8)]
print(json.dumps({"before": before, "applied": applied, "after": after}))
"""


@pytest.mark.skipif(not ON_GLIBC, reason="glibc's allocator only")
def test_reallocated_tensor_costs_no_page_faults_after_the_call():
    completed = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True)
    faults = json.loads(completed.stdout.strip().splitlines()[-1])
    assert faults["applied"] is True
    # Without the call every 64 MiB tensor is a fresh mapping, faulted in again (16384 pages of 4 KiB, fewer
    # with huge pages). After it a freed block is reused as it is; small allocations in between sometimes take
    # part of it, and the heap then grows once more, so only most of the later tensors are fault-free.
    fresh = min(faults["before"])
    assert fresh > 0
    reused = [count for count in faults["after"][1:] if count <= fresh // 100]
    assert len(reused) >= 3, faults


def test_elsewhere_than_glibc_it_changes_nothing_and_says_so(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert cpu_memory.reuse_freed_memory() is False
