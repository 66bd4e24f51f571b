"""glibc's allocator set back to its own adaptive behaviour in a Dask worker.

Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``, to hand memory back to the OS sooner). Setting any
malloc threshold also switches off glibc's *dynamic* mmap threshold, so every allocation over
128 KB is then a fresh ``mmap`` whose pages fault in one by one and are unmapped on free: the
mix's one-second blocks, the decoder's frames, every FFT slice. An 8 users × 20 min mix with
verify's reference took 47.1 s and 14.0 s of system time with that variable, 37.6 s and 2.5 s
without (2026-12-02). :func:`adaptive_malloc` puts back what glibc does by default after its
first large frees (an mmap threshold of 32 MB, trim at twice that), for this process and the
ffmpeg it starts. Memory stays bounded: the mix's own allocations are bounded by design.
Only Dask's own value is undone: a threshold set to anything else was someone's choice, and stays.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

VARIABLE = "MALLOC_TRIM_THRESHOLD_"
DASK_VALUE = "65536"       # distributed.nanny.pre-spawn-environ's default
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_MAX = 32 << 20       # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
_done = False


def adaptive_malloc() -> bool:
    """Undo the fixed malloc trim threshold a Dask nanny puts in the environment (once per
    process); True when something was changed. A no-op off glibc, or for any other value."""
    global _done
    if _done or os.environ.get(VARIABLE, "").strip() != DASK_VALUE:
        return False
    _done = True
    os.environ.pop(VARIABLE, None)          # the ffmpeg this process starts gets glibc's default
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) and libc.mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_MAX)
    except (OSError, AttributeError):       # not glibc
        return False
    log.debug("malloc thresholds set back to glibc's adaptive steady state: %s", bool(ok))
    return bool(ok)
