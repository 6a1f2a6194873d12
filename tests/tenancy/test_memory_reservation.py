"""The memory quota counts uploads in flight: claims of one tenant add up."""

from __future__ import annotations

import pytest

from masterplan.tenancy.errors import QuotaExceeded
from masterplan.tenancy.quotas import MEMORY_BYTES, PLANS, QuotaLedger, Quotas


def test_claims_of_concurrent_uploads_add_up_to_the_quota() -> None:
    ledger = QuotaLedger(Quotas(max_memory_bytes=100))
    ledger.set_memory("t", 30)
    with ledger.reserve_memory("t") as a, ledger.reserve_memory("t") as b:
        a.add(40)
        with pytest.raises(QuotaExceeded) as info:
            b.add(31)  # 30 held + 40 claimed + 31 > 100
        assert info.value.resource == MEMORY_BYTES and info.value.requested == 101
        b.add(30)
        assert ledger.reserved("t") == 70
    assert ledger.reserved("t") == 0  # claims end with their uploads
    assert ledger.memory("t") == 30


def test_a_commit_records_what_is_held_and_drops_the_claim() -> None:
    ledger = QuotaLedger(Quotas(max_memory_bytes=100))
    with ledger.reserve_memory("t") as a, ledger.reserve_memory("t") as b:
        a.add(50)
        b.add(40)
        a.check(55)  # 55 held after it + 40 claimed by the other
        with pytest.raises(QuotaExceeded):
            a.check(61)
        a.commit(55)
        assert ledger.memory("t") == 55 and ledger.reserved("t") == 40
    assert ledger.reserved("t") == 0


def test_other_tenants_claims_do_not_count() -> None:
    ledger = QuotaLedger(Quotas(max_memory_bytes=100))
    with ledger.reserve_memory("a") as a, ledger.reserve_memory("b") as b:
        a.add(100)
        b.add(100)


def test_plans_beyond_max_plans_are_refused() -> None:
    ledger = QuotaLedger(Quotas(max_plans=2))
    ledger.check_plans(2)
    with pytest.raises(QuotaExceeded) as info:
        ledger.check_plans(3)
    assert info.value.resource == PLANS and info.value.limit == 2
