"""The server keeps memory a run frees for the next run, or gives it back (server.memory).

Each case runs in its own interpreter: allocator settings are process-wide.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from masterplan.server.memory import _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc's mallopt is needed")

# Allocates 400 MB (in a worker thread, as the engine runs, or as many
# mid-sized arrays), frees it, and prints how much of it the process still
# holds.
_PROBE = """
import sys, threading
import numpy as np
from masterplan.server.memory import keep_freed_memory, release_freed_memory

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024

if sys.argv[1] == "keep":
    assert keep_freed_memory()
if sys.argv[1] == "release":
    assert release_freed_memory()
before = rss_mb()

def work():
    if sys.argv[2] == "one":
        a = np.ones(50_000_000)  # 400 MB, touched
        del a
        return
    # A run's shape: a large block freed (glibc's own threshold then grows
    # to its size), then many mid-sized arrays, each with a small one that
    # lives on allocated after it (so that no free space is at the heap's top).
    big = np.ones(3_000_000)  # 24 MB
    del big
    parts = []
    global pinned
    pinned = []
    for _ in range(100):
        parts.append(np.ones(500_000))  # 4 MB each, 400 MB
        pinned.append(np.ones(20_000))  # 160 KB each, 16 MB
    del parts

if sys.argv[2] == "one":
    t = threading.Thread(target=work)
    t.start()
    t.join()
else:
    # On the main thread: its heap, whichever arena a new thread would get
    # (a thread's own heaps are given back whole once empty).
    work()
print(rss_mb() - before)
"""


def _held_after_free(mode: str, shape: str = "one") -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, shape], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_freed_memory_stays_in_the_process_for_the_next_run() -> None:
    assert _held_after_free("keep") >= 350


def test_default_allocator_gives_large_blocks_back() -> None:
    # The contrast that makes the setting matter (and shows the probe measures it).
    assert _held_after_free("default") < 50


def test_released_memory_goes_back_after_many_mid_sized_arrays() -> None:
    assert _held_after_free("release", "many") < 50
    assert _held_after_free("release", "one") < 50


# A run's growth (768 MB in 16 MB arrays, touched, at a run's pace) in a
# worker thread, with the heap warmed ahead of it or not; prints the run
# thread's own page faults, what the warmer grew the heap by, and whether
# its thread is still alive after the run.
_WARM_PROBE = """
import resource, sys, threading, time
import numpy as np
from masterplan.server import memory

assert memory.keep_freed_memory()
if sys.argv[1] == "off":
    memory._warmer = None
warmer = memory._warmer
if sys.argv[1] == "on" and warmer is None:
    print("unusable")
    raise SystemExit
faults = []

def run():
    # A data set whose arrays hold 256 MB: the most the warmer keeps ahead.
    data = {"items": {"qty": np.zeros(32 * 1024 * 1024)}}
    with memory.warm_heap(data):
        time.sleep(0.2)
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        held = []
        for _ in range(48):
            held.append(np.ones(2_000_000))
            time.sleep(0.05)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

t = threading.Thread(target=run)
t.start()
t.join()
# It ends after the block it is on (at the lowest priority: on a busy
# machine, that may take a while).
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    alive = any(th.name == "masterplan-heap-warmer" for th in threading.enumerate())
    if not alive:
        break
    time.sleep(0.05)
print(faults[0], warmer.grown if warmer else 0, int(alive))
"""


def _warm_probe(mode: str) -> list[int] | None:
    out = subprocess.run(
        [sys.executable, "-c", _WARM_PROBE, mode], capture_output=True, text=True, check=True
    )
    if out.stdout.strip() == "unusable":
        return None
    return [int(v) for v in out.stdout.split()]


def test_a_run_finds_the_heap_faulted_in_ahead_of_it_and_the_warmer_stops_after() -> None:
    warmed = _warm_probe("on")
    if warmed is None:
        pytest.skip("one core, or no mallinfo2: the heap is not warmed")
    cold = _warm_probe("off")
    assert cold is not None
    run_faults, grown, alive = warmed
    assert grown >= 256 * 1024 * 1024
    # The run's own thread takes far fewer faults: its arrays are carved from
    # pages the warmer faulted in.
    assert run_faults < cold[0] / 2, (warmed, cold)
    assert not alive


def test_released_memory_is_not_warmed() -> None:
    probe = """
from masterplan.server import memory
assert memory.keep_freed_memory()
memory.release_freed_memory()
print(memory._warmer is None)
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# The warmer asked to keep 256 MB ahead of a run that allocates nothing;
# prints how much the process's resident size grew and what the warmer
# says it grew the heap by.
_RESIDENT_PROBE = """
import time
from masterplan.server import memory

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

assert memory.keep_freed_memory()
warmer = memory._warmer
if warmer is None:
    print("unusable")
    raise SystemExit
before = rss()
column = type("Column", (), {"nbytes": 256 * 1024 * 1024})()
with memory.warm_heap({"items": {"qty": column}}):
    deadline = time.monotonic() + 30
    while warmer.grown < 200 * 1024 * 1024:
        assert time.monotonic() < deadline, "the heap was not warmed"
        time.sleep(0.02)
    time.sleep(0.2)
print(rss() - before, warmer.grown)
"""


def test_what_the_warmer_grows_the_heap_by_is_faulted_in() -> None:
    """The free memory the warmer keeps ahead is memory it touched: a heap
    that grew by more than it asked (glibc's top pad, untouched) would let
    it count pages as faulted in that the run then faults itself."""
    out = subprocess.run(
        [sys.executable, "-c", _RESIDENT_PROBE], capture_output=True, text=True, check=True
    )
    if out.stdout.strip() == "unusable":
        pytest.skip("one core, or no mallinfo2: the heap is not warmed")
    resident, grown = (int(v) for v in out.stdout.split())
    assert grown >= 200 * 1024 * 1024
    assert resident >= 0.9 * grown, (resident, grown)
