"""Keeping the memory a planning run frees inside the server process.

A regeneration allocates and frees gigabytes of short-lived arrays. With
glibc's defaults, every array over 32 MB is its own ``mmap`` and goes back to
the kernel when freed, and the top of the heap is trimmed. The next array then
faults in fresh pages. On a virtual machine that reports free pages to its
host (balloon free page reporting, as on this project's Firecracker VMs), a
fresh page costs a host fault: 0.2-1.1 s per 400 MB here, against 0.02 s to
rewrite memory the process already holds. A 1M-SKU run pays ~10 s of its
~33 s that way (``docs/performance.md``).

:func:`keep_freed_memory` tells glibc to serve every allocation from one heap
and never give it back: after the first large run the server holds its peak
working set and later runs reuse it. The price is that the server's resident
size stays at the peak of its largest run; ``masterplan serve
--release-memory`` keeps glibc's defaults instead.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["keep_freed_memory", "release_freed_memory"]

log = logging.getLogger(__name__)

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_TOP_PAD_BYTES = 256 * 1024 * 1024
_RELEASE_MMAP_BYTES = 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version  # glibc only: musl has no such symbol
        version.restype = ctypes.c_char_p
        version()
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse; True when it took effect.

    - one arena (``M_ARENA_MAX=1``): the engine runs in worker threads, and a
      thread's own arena hands large blocks to ``mmap`` regardless of the
      settings below;
    - no ``mmap`` for large blocks (``M_MMAP_MAX=0``): they come from the heap,
      where a freed block stays for the next run;
    - no trimming (``M_TRIM_THRESHOLD=-1``), and the heap grows 256 MB at a time.

    Call it once at start-up, before threads allocate. A no-op (False) where
    the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        log.info("not glibc: the allocator keeps its own policy for freed memory")
        return False
    settings = (
        (_M_ARENA_MAX, 1),
        (_M_MMAP_MAX, 0),
        (_M_TRIM_THRESHOLD, -1),
        (_M_TOP_PAD, _TOP_PAD_BYTES),
    )
    return all(libc.mallopt(param, value) == 1 for param, value in settings)


def release_freed_memory() -> bool:
    """Make glibc give memory a run frees back to the kernel; True when it took effect.

    glibc's own threshold for mapping a block on its own is dynamic: once a
    mapped block of X bytes is freed, blocks up to X (at most 32 MB) come
    from the heap, which is given back only from its top. A run's arrays of
    a few MB then stay in the process, scattered between live ones, and the
    resident size grows past what the run holds. Here every block of 1 MB
    or more is its own mapping, unmapped when freed, so the resident size
    follows the live arrays: 1M SKUs planned with the previous plan held
    peaked at 4.66 GB against 5.34 GB with glibc's defaults, each run
    taking 20-21 s against 15-18 s for the fresh pages
    (``docs/performance.md``). What ``masterplan serve --release-memory``
    sets; a no-op (False) where the C library is not glibc.
    """
    libc = _glibc()
    if libc is None:
        log.info("not glibc: the allocator keeps its own policy for freed memory")
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _RELEASE_MMAP_BYTES) == 1)
