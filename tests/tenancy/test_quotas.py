"""Tests for tenancy.quotas: quota defaults and the per-tenant ledger."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from masterplan.tenancy import QuotaExceeded, QuotaLedger, Quotas
from masterplan.tenancy.quotas import CONCURRENT_RUNS, MEMORY_BYTES, GiB


def test_documented_defaults() -> None:
    q = Quotas()
    assert q.max_rows == 50_000_000
    assert q.max_upload_bytes == 4 * GiB
    assert q.max_concurrent_runs == 2
    assert q.max_memory_bytes == 8 * GiB


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rows": 0},
        {"max_upload_bytes": -1},
        {"max_concurrent_runs": 1.5},
        {"max_memory_bytes": True},
    ],
)
def test_quotas_reject_non_positive_integers(kwargs: dict[str, object]) -> None:
    field = next(iter(kwargs))
    with pytest.raises(ValueError, match=field):
        Quotas(**kwargs)  # type: ignore[arg-type]


def test_run_limit_is_enforced_and_slots_come_back() -> None:
    ledger = QuotaLedger(Quotas(max_concurrent_runs=2))
    with ledger.acquire_run("t1"), ledger.acquire_run("t1"):
        assert ledger.running("t1") == 2
        with pytest.raises(QuotaExceeded) as info, ledger.acquire_run("t1"):
            pass
        assert (info.value.resource, info.value.limit, info.value.requested) == (
            CONCURRENT_RUNS,
            2,
            3,
        )
        assert ledger.running("t1") == 2  # the refused attempt took nothing
        with ledger.acquire_run("t2"):  # other tenants are unaffected
            assert ledger.running("t2") == 1
    assert ledger.running("t1") == 0
    with ledger.acquire_run("t1"):
        pass


def test_run_slot_is_returned_when_the_run_fails() -> None:
    ledger = QuotaLedger(Quotas(max_concurrent_runs=1))
    with pytest.raises(RuntimeError), ledger.acquire_run("t1"):
        raise RuntimeError("engine failed")
    assert ledger.running("t1") == 0
    with ledger.acquire_run("t1"):
        pass


def test_memory_limit() -> None:
    ledger = QuotaLedger(Quotas(max_memory_bytes=1000))
    ledger.set_memory("t1", 1000)
    assert ledger.memory("t1") == 1000
    with pytest.raises(QuotaExceeded) as info:
        ledger.set_memory("t1", 1001)
    assert (info.value.resource, info.value.limit, info.value.requested) == (
        MEMORY_BYTES,
        1000,
        1001,
    )
    assert ledger.memory("t1") == 1000  # unchanged, like the tenant's data
    ledger.set_memory("t1", 10)
    assert ledger.memory("t1") == 10
    assert ledger.memory("t2") == 0
    with pytest.raises(ValueError, match="non-negative"):
        ledger.set_memory("t1", -1)


def test_release_forgets_the_tenant() -> None:
    ledger = QuotaLedger(Quotas(max_concurrent_runs=1))
    ledger.set_memory("t1", 123)
    ledger.set_memory("t2", 456)
    ledger.release("t1")
    ledger.release("unknown")  # harmless
    assert ledger.memory("t1") == 0
    assert ledger.memory("t2") == 456
    assert ledger.running("t1") == 0


def test_release_during_a_run_does_not_corrupt_a_reinstalled_tenant() -> None:
    ledger = QuotaLedger(Quotas(max_concurrent_runs=1))
    with ledger.acquire_run("t1"):
        ledger.release("t1")  # uninstalled while its run is in flight
        with ledger.acquire_run("t1"):  # same id again: a fresh slate
            assert ledger.running("t1") == 1
        with ledger.acquire_run("t1"):
            pass
    # The old run's exit must not have freed a slot it never held in the new state.
    with ledger.acquire_run("t1"), pytest.raises(QuotaExceeded), ledger.acquire_run("t1"):
        pass
    assert ledger.running("t1") == 0


def test_concurrent_acquires_never_exceed_the_limit() -> None:
    ledger = QuotaLedger(Quotas(max_concurrent_runs=3))
    lock = threading.Lock()
    active = peak = refused = 0

    def run(_: int) -> None:
        nonlocal active, peak, refused
        try:
            with ledger.acquire_run("t1"):
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.002)
                with lock:
                    active -= 1
        except QuotaExceeded:
            with lock:
                refused += 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(run, range(400)))
    assert 1 <= peak <= 3
    assert refused > 0
    assert ledger.running("t1") == 0
