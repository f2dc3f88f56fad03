"""Keep freed activation memory in the process instead of handing it back to the OS after each op.

A CPU update allocates and frees activations of a few MB per op (N=10 critics, batch 256:
``(10, 256, 256)`` float32 is 2.6 MB). glibc returns freed memory at the top of its heap to the
OS once more than ``M_TRIM_THRESHOLD`` is free, and serves blocks above ``M_MMAP_THRESHOLD`` with
fresh ``mmap`` pages, so the next op page-faults its output in again. Raising both thresholds once per process (the mmap
one to 4 MiB only, so large messages still go back at once) keeps that memory mapped (the learner's
peak heap stays resident, which it is anyway during training). ``benchmarks/learner_memory.py``
(N=10, 2 threads, idle 2-core VM): 604 minor faults and 2.3 ms of system time per update with
glibc's defaults, 16 / 0.30 ms at a 32 MiB mmap threshold, 13 / 0.37 ms at 4 MiB; under load
(other processes churning memory) the defaults measured ~2,700 faults and ~8 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
TRIM_THRESHOLD_BYTES = 256 << 20
"""Free memory at the heap's top kept before trimming (glibc's default rises to at most 64 MiB)."""
MMAP_THRESHOLD_BYTES = 4 << 20
"""Blocks at least this large get their own mmap, handed back to the system when freed. Above every
activation of a state update (an N=10, batch-256 hidden layer is 2.6 MB), below the frames a learner
drops for their size: at 32 MiB, ten dropped 6 MiB frames stayed in the learner's RSS even after
``malloc_trim`` (tests/robot_rl/distributed/test_learner_security.py)."""


@functools.lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Set glibc's trim and mmap thresholds for this process (once); False where the C library is not
    glibc (macOS, Windows, musl), which then keeps its own policy."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
