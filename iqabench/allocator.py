"""Keep freed memory in the process: glibc's defaults cost CPU runs a quarter of their time.

Why: a forward/backward pass on the CPU allocates and frees activations of
hundreds of MB.  glibc serves every block over its mmap threshold with a
fresh ``mmap`` and hands the heap's free top back to the kernel, so each
pass page-faults its activations in again, zero-filled by the kernel.
Measured on C-BAIQA's EOT PGD (5 images x 25 crops of 192 px per pass, the
default model, one thread): 11-20 s of system time per 30 s of user time.
With blocks up to 2 GiB served from the heap, the heap never trimmed and a
1 GiB top pad, the system time falls to about 1 s (``bench/allocator.py``
prints the ratio).  All three are needed; each alone changes little.

The cost: the process keeps the memory of its peak until it exits, which a
benchmark run, one process per run or worker, can afford.
``IQABENCH_MALLOC=system`` keeps glibc's defaults.  Elsewhere than glibc
(macOS, musl) nothing is changed.
"""
from __future__ import annotations

import ctypes
import os
import sys

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
#: the largest block served from the heap, the free top kept, the growth pad
KEEP = {M_MMAP_THRESHOLD: 2**31 - 1, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: 1 << 30}
ENV = "IQABENCH_MALLOC"


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says; True if it was.
    Idempotent; a no-op with ``IQABENCH_MALLOC=system`` or without glibc."""
    if os.environ.get(ENV, "").strip().lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in KEEP.items())
