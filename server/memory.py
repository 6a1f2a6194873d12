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
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["HeapWarmer", "keep_freed_memory", "release_freed_memory", "warm_heap"]

log = logging.getLogger(__name__)

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

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
    - no trimming (``M_TRIM_THRESHOLD=-1``). The heap grows by what is
      asked of it (glibc's top pad of 128 KB): memory it holds free is then
      memory a run touched, which :class:`HeapWarmer` counts on (a pad of
      256 MB, untouched, was counted as faulted in).

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
    )
    kept = all(libc.mallopt(param, value) == 1 for param, value in settings)
    global _warmer
    _warmer = HeapWarmer(libc) if kept and HeapWarmer.usable(libc) else None
    return kept


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
    global _warmer
    _warmer = None  # freed pages go back: faulting them in ahead is wasted
    libc = _glibc()
    if libc is None:
        log.info("not glibc: the allocator keeps its own policy for freed memory")
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _RELEASE_MMAP_BYTES) == 1)


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33 and later)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes the heap took from the kernel (sbrk)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",  # free bytes inside the heap
            "keepcost",  # free bytes at its top
        )
    ]


#: The size of the pages a touch faults in (the kernel's base page).
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HeapWarmer:
    """While runs are in progress, faults in the heap's next pages on
    another core, ahead of the runs' own growth.

    With freed memory kept (:func:`keep_freed_memory`), a server's first run
    of a large data set grows the heap to its peak, and each fresh page
    costs the engine a fault: on this project's VMs, about 5 s of a 22 s
    first 1M-SKU plan (``docs/performance.md``). The engine uses one core
    for most of a run. This thread keeps some free memory in the heap while
    a run is in progress, scaled to the run's data set (its arrays' bytes,
    between :data:`MIN_AHEAD` and :data:`MAX_AHEAD`): when there is less,
    it takes a block that much larger than the heap's free top (so that the
    heap grows), writes one byte per page, and frees it. The block goes
    back to the top of the heap, where the run's next arrays are carved
    from pages already faulted in.

    The heap ends at most about twice the amount kept ahead above the
    largest run's peak, which the server keeps anyway; a run that does not
    grow the heap (every run after the largest) makes it wait. It stops
    growing the heap while the machine has less than twice the block it
    would take available, and runs at the lowest CPU priority.
    """

    #: The least and the most free memory kept ahead of a run (and the
    #: least and the most the heap grows by at a time).
    MIN_AHEAD = 16 * 1024 * 1024
    MAX_AHEAD = 256 * 1024 * 1024

    def __init__(self, libc: ctypes.CDLL, poll: float = 0.01) -> None:
        self._mallinfo2 = libc.mallinfo2
        self._mallinfo2.restype = _MallInfo2
        self.poll = poll
        self._lock = threading.Lock()
        #: The amount kept ahead for each run in progress.
        self._runs: list[int] = []
        self._stop: threading.Event | None = None
        #: Bytes the heap grew by the warmer's blocks (for tests and logs).
        self.grown = 0

    @staticmethod
    def usable(libc: ctypes.CDLL) -> bool:
        """Whether warming pays here: glibc tells its heap's state
        (``mallinfo2``), and the process may use a second core."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        return hasattr(libc, "mallinfo2") and cores >= 2

    @contextmanager
    def while_running(self, data_bytes: int) -> Iterator[None]:
        """Warm the heap for a run whose data set's arrays hold
        ``data_bytes``, until the last run inside such a block ends."""
        ahead = min(max(data_bytes, self.MIN_AHEAD), self.MAX_AHEAD)
        with self._lock:
            self._runs.append(ahead)
            if len(self._runs) == 1:
                self._stop = threading.Event()
                threading.Thread(
                    target=self._warm,
                    args=(self._stop,),
                    name="masterplan-heap-warmer",
                    daemon=True,
                ).start()
        try:
            yield
        finally:
            with self._lock:
                self._runs.remove(ahead)
                if not self._runs and self._stop is not None:
                    self._stop.set()  # ends after its current block: not waited for
                    self._stop = None

    def _warm(self, stop: threading.Event) -> None:
        _lowest_priority()
        while not stop.is_set():
            ahead = max(self._runs, default=0)
            heap = self._mallinfo2()
            if not ahead or heap.fordblks >= ahead:
                stop.wait(self.poll)
                continue
            # What is missing (at least MIN_AHEAD, at most MAX_AHEAD), and
            # larger than every free block together: only the heap's top,
            # grown, can hold it.
            step = min(max(ahead - heap.fordblks, self.MIN_AHEAD), self.MAX_AHEAD)
            size = max(heap.keepcost + step, heap.fordblks + _PAGE)
            if _available_bytes() < 2 * (size - heap.keepcost):
                stop.wait(self.poll)
                continue
            try:
                block = np.empty(size, dtype=np.uint8)
            except MemoryError:
                log.info("heap warming stopped: the heap cannot grow")
                return  # the run itself may still fit; warming it is not worth an error
            # Writing a byte per page faults each one in (numpy fills it
            # without the interpreter's lock).
            block[::_PAGE] = 0
            del block
            grown = self._mallinfo2().arena - heap.arena
            self.grown += max(grown, 0)
            if grown <= 0:
                stop.wait(self.poll)


def _lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux: a thread's own
    nice value). The warmer's work is ahead of need: another tenant's run,
    upload or stream on the other core goes first, and the warmer takes
    what they leave idle (during a lone run, the whole core)."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError:
        log.info("the heap warmer runs at the process's priority")


def _available_bytes() -> int:
    """The memory the kernel says is available to new allocations
    (``MemAvailable``); unbounded where it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


#: The process's warmer, where :func:`keep_freed_memory` set one up.
_warmer: HeapWarmer | None = None


@contextmanager
def warm_heap(data: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
    """Around a planning run of ``data`` (tables of arrays): the heap is
    faulted in ahead of the run's growth (:class:`HeapWarmer`) where freed
    memory is kept, glibc tells the heap's state and a second core is
    there; else nothing."""
    warmer = _warmer
    if warmer is None:
        yield
        return
    data_bytes = sum(
        int(getattr(column, "nbytes", 0)) for table in data.values() for column in table.values()
    )
    with warmer.while_running(data_bytes):
        yield
