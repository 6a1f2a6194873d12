"""Per-tenant quotas and the in-process ledger that enforces the stateful ones.

Row and upload limits are checked against a single request, so they need only
:class:`Quotas`. Concurrent runs and memory held are state that outlives a
request; :class:`QuotaLedger` tracks them per tenant. Exceeding any quota raises
:class:`~tenancy.errors.QuotaExceeded` (``RESOURCE_EXHAUSTED`` on the wire)
rather than letting one tenant exhaust the process for all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

from masterplan.tenancy.errors import QuotaExceeded

GiB = 1024**3

CONCURRENT_RUNS = "concurrent_runs"
"""Resource name reported by :class:`QuotaExceeded` for the run limit."""

MEMORY_BYTES = "memory_bytes"
"""Resource name reported by :class:`QuotaExceeded` for the memory limit."""

PLANS = "plans"
"""Resource name reported by :class:`QuotaExceeded` for the plan limit."""

ROWS = "rows"
"""Resource name reported by :class:`QuotaExceeded` for the row limit: of one
upload as it arrives, and of the tenant's data sets together as one is
replaced or changed."""


@dataclass(frozen=True)
class Quotas:
    """Limits applied to every tenant.

    The defaults suit one mid-sized ERP company per tenant on a server with a few
    tens of GiB of memory; operators change them at start-up.

    Attributes:
        max_rows: Rows (all tables together) a tenant may hold in memory,
            its plans' data sets together: one upload is refused as soon as
            its chunks declare more, and an upload that would bring the
            tenant's data sets past it is refused before it replaces
            anything. 50 million covers a large SKU × location × horizon
            data set.
        max_upload_bytes: Bytes in a single upload stream; bounds how much one
            request can make the server buffer before validating it.
        max_concurrent_runs: Planning runs of one tenant in progress at once.
            Two lets a scheduled run overlap an interactive one without a single
            tenant occupying the whole worker pool.
        max_memory_bytes: Bytes of planning data a tenant may hold in memory,
            its uploads in flight included: each chunk's decoded size is
            claimed before it is decoded (:meth:`QuotaLedger.reserve_memory`).
        max_planned_orders: Planned orders one run may create; a data set
            that asks for more (a huge quantity split by a tiny
            ``max_order_qty``) fails its run instead of exhausting the server.
        max_result_rows: Rows of all result tables of one run together.
        max_engine_seconds: Wall-clock seconds one run may plan before it is
            stopped.
        max_open_streams: Streaming calls (uploads, runs) one tenant may have
            open at once, so that one tenant cannot hold every server thread.
        max_plans: Plans one tenant may hold; each costs memory even empty
            (and counts a fixed overhead in the bytes it holds).
    """

    max_rows: int = 50_000_000
    max_upload_bytes: int = 4 * GiB
    max_concurrent_runs: int = 2
    max_memory_bytes: int = 8 * GiB
    max_planned_orders: int = 20_000_000
    max_result_rows: int = 200_000_000
    max_engine_seconds: int = 3_600
    max_open_streams: int = 4
    max_plans: int = 1_000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field.name} must be a positive integer, got {value!r}")


class _Usage:
    """Mutable counters of one tenant; guarded by the ledger's lock."""

    __slots__ = ("memory", "reserved", "runs")

    def __init__(self) -> None:
        self.runs = 0
        self.memory = 0
        self.reserved = 0


class MemoryReservation:
    """Bytes an upload in flight has claimed against its tenant's memory quota.

    An upload decodes chunk by chunk; each chunk's decoded size is claimed
    here *before* it is decoded, so that the memory a tenant's uploads take
    while they stream counts against the quota together with what the tenant
    already holds: three concurrent uploads cannot each see the quota free
    and together exceed it. Released when the upload ends, applied or not.
    """

    def __init__(self, ledger: QuotaLedger, tenant_id: str, usage: _Usage) -> None:
        self._ledger = ledger
        self._tenant_id = tenant_id
        self._usage = usage
        self.nbytes = 0

    def add(self, nbytes: int) -> None:
        """Claim ``nbytes`` more; refused when held plus all claims would pass the quota.

        Raises:
            QuotaExceeded: ``memory_bytes``; nothing more is claimed then.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be non-negative, got {nbytes}")
        limit = self._ledger.quotas.max_memory_bytes
        with self._ledger._lock:
            usage = self._usage
            requested = usage.memory + usage.reserved + nbytes
            if requested > limit:
                raise QuotaExceeded(MEMORY_BYTES, limit, requested)
            usage.reserved += nbytes
            self.nbytes += nbytes

    def check(self, held: int) -> None:
        """Refuse a commit after which the tenant would hold ``held`` bytes.

        Counts the other uploads' claims, not this one's: this upload's data
        is part of ``held``.

        Raises:
            QuotaExceeded: ``memory_bytes``.
        """
        limit = self._ledger.quotas.max_memory_bytes
        with self._ledger._lock:
            requested = held + self._usage.reserved - self.nbytes
        if requested > limit:
            raise QuotaExceeded(MEMORY_BYTES, limit, requested)

    def commit(self, held: int) -> None:
        """The upload replaced the tenant's data: record ``held`` and drop the claim."""
        with self._ledger._lock:
            self._usage.memory = held
            self._release_locked()

    def release(self) -> None:
        """Drop the claim (the upload failed or was applied); idempotent."""
        with self._ledger._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        self._usage.reserved -= self.nbytes
        self.nbytes = 0


class QuotaLedger:
    """Thread-safe per-tenant accounting of concurrent runs and memory held.

    Args:
        quotas: The limits to enforce.
    """

    def __init__(self, quotas: Quotas | None = None) -> None:
        self.quotas = quotas if quotas is not None else Quotas()
        self._lock = threading.Lock()
        self._usage: dict[str, _Usage] = {}

    @contextmanager
    def acquire_run(self, tenant_id: str) -> Iterator[None]:
        """Hold one of the tenant's run slots for the duration of the ``with`` block.

        Args:
            tenant_id: The tenant starting a run.

        Raises:
            QuotaExceeded: If the tenant already has ``max_concurrent_runs`` runs.
        """
        limit = self.quotas.max_concurrent_runs
        with self._lock:
            usage = self._usage.setdefault(tenant_id, _Usage())
            if usage.runs >= limit:
                raise QuotaExceeded(CONCURRENT_RUNS, limit, usage.runs + 1)
            usage.runs += 1
        try:
            yield
        finally:
            with self._lock:
                # Decrement the object we incremented: if the tenant was released
                # (uninstalled) meanwhile, this must not touch a reinstalled
                # tenant's fresh counters.
                usage.runs -= 1

    def set_memory(self, tenant_id: str, nbytes: int) -> None:
        """Record the bytes of planning data the tenant now holds.

        Called after a load replaces the tenant's data; on failure the recorded
        figure is unchanged, matching the data the caller keeps.

        Args:
            tenant_id: The tenant.
            nbytes: Total bytes held, not a delta.

        Raises:
            ValueError: If ``nbytes`` is negative.
            QuotaExceeded: If ``nbytes`` exceeds ``max_memory_bytes``.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be non-negative, got {nbytes}")
        limit = self.quotas.max_memory_bytes
        if nbytes > limit:
            raise QuotaExceeded(MEMORY_BYTES, limit, nbytes)
        with self._lock:
            self._usage.setdefault(tenant_id, _Usage()).memory = nbytes

    @contextmanager
    def reserve_memory(self, tenant_id: str) -> Iterator[MemoryReservation]:
        """A claim on the tenant's memory quota for one upload, released on exit."""
        with self._lock:
            usage = self._usage.setdefault(tenant_id, _Usage())
        reservation = MemoryReservation(self, tenant_id, usage)
        try:
            yield reservation
        finally:
            reservation.release()

    def check_plans(self, plans: int) -> None:
        """Refuse a tenant a plan beyond ``max_plans``.

        Args:
            plans: How many plans the tenant would hold with the new one.

        Raises:
            QuotaExceeded: ``plans``, when ``plans`` exceeds ``max_plans``.
        """
        limit = self.quotas.max_plans
        if plans > limit:
            raise QuotaExceeded(PLANS, limit, plans)

    def reserved(self, tenant_id: str) -> int:
        """Return the bytes the tenant's uploads in flight have claimed."""
        with self._lock:
            usage = self._usage.get(tenant_id)
            return usage.reserved if usage is not None else 0

    def running(self, tenant_id: str) -> int:
        """Return how many runs the tenant has in progress."""
        with self._lock:
            usage = self._usage.get(tenant_id)
            return usage.runs if usage is not None else 0

    def memory(self, tenant_id: str) -> int:
        """Return the bytes of planning data recorded for the tenant."""
        with self._lock:
            usage = self._usage.get(tenant_id)
            return usage.memory if usage is not None else 0

    def tenant_ids(self) -> set[str]:
        """The tenants the ledger keeps counters for (an uninstalled one must not be among them)."""
        with self._lock:
            return set(self._usage)

    def release(self, tenant_id: str) -> None:
        """Forget the tenant entirely; used at uninstall. Unknown ids are ignored."""
        with self._lock:
            self._usage.pop(tenant_id, None)
