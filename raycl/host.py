"""Settings of a process that computes: a Ray worker, or the driver running a backend in-process.

glibc hands every freed block of at least its mmap threshold back to the kernel, and a fresh
one costs a page fault per 4 KiB page on its next use. The threshold starts at 128 KiB and
moves with the sizes freed so far, so the same hyper-step runs with few or with thousands of
faults depending on what the process did before: on a 2-core machine one step of a model with
10M synapse parameters took 97 ms in one process and 156 ms in another, and two workers
faulting side by side slowed each other further (`bench/worker_step.py` and
`bench/population.py` measure it). Fixing the threshold at glibc's largest (32 MiB) and not
trimming the heap keeps a step's buffers in the process for the next step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024

_kept = None


def keep_heap() -> bool:
    """Set the allocator as above, once per process; False where there is no glibc (macOS,
    musl), where nothing changes."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            except (OSError, AttributeError):  # not glibc
                _kept = False
    return _kept


def pick_device(name: str | None = None):
    """The torch device `name`, else CUDA where there is one, else the CPU."""
    import torch  # here: host.py stays importable without torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")

