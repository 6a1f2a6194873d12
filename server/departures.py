"""Dropping what the server holds of uninstalled tenants, here and in other processes.

An uninstall deletes the tenant's registry row, then drops its data sets,
results, quota counters and open streams in the process that served it.
Other server processes on the same registry learn of it from
:meth:`TenantDepartures.sweep`, which compares the tenants they hold with the
registry every ``tenant_sweep_seconds``; until then the tenant's key no longer
authenticates anywhere (after the registry's short authentication cache), so
the data is unreachable, but it still takes memory.

A call of the tenant that was in flight at the uninstall cannot put anything
back: the store refuses a dropped tenant, and the interceptor drops again
whatever such a call left and ends it ``UNAUTHENTICATED``
(:class:`~tenancy.interceptor.Departures`).
"""

from __future__ import annotations

import logging

from masterplan.server.logs import fields
from masterplan.server.store import Stores
from masterplan.tenancy.periodic import Periodic
from masterplan.tenancy.quotas import QuotaLedger
from masterplan.tenancy.registry import TenantRegistry
from masterplan.tenancy.streams import OpenStreams

__all__ = ["TenantDepartures"]

log = logging.getLogger(__name__)


class TenantDepartures:
    """Drops uninstalled tenants from the stores, the quota ledger and the open streams.

    Args:
        registry: The tenant registry, which says who is still installed.
        stores: The tenants' data sets and results.
        ledger: The tenants' quota counters.
        streams: The tenants' open streaming calls.
        sweep_seconds: How often :meth:`sweep` runs in the background.
    """

    def __init__(
        self,
        registry: TenantRegistry,
        stores: Stores,
        ledger: QuotaLedger,
        streams: OpenStreams,
        sweep_seconds: float,
    ) -> None:
        self._registry = registry
        self._stores = stores
        self._ledger = ledger
        self._streams = streams
        self._sweeper = Periodic(self.sweep, sweep_seconds, "masterplan-tenant-sweep")

    def gone(self, tenant_id: str) -> bool:
        """Whether the tenant was uninstalled (as far as this process knows)."""
        return self._stores.dropped(tenant_id)

    def evict(self, tenant_id: str) -> int:
        """Drop everything of the tenant: streams ended, runs cancelled, data and counters freed.

        Idempotent; returns the bytes of data sets and results freed.
        """
        # Runs first: a run cancelled by the uninstall says so, not that its
        # stream ended under it.
        freed = self._stores.drop(tenant_id)
        self._streams.end_tenant(tenant_id, "the tenant was uninstalled")
        self._ledger.release(tenant_id)
        return freed

    def sweep(self) -> int:
        """Drop the tenants this process holds that the registry no longer has.

        Returns:
            How many tenants were dropped.
        """
        # What is held is read before the registry: a tenant installed (and
        # first served) after the registry was read is then never taken for
        # an uninstalled one. Tenant ids are never reused.
        held = self._stores.tenant_ids() | self._ledger.tenant_ids() | self._streams.tenant_ids()
        held = {t for t in held if not t.startswith("-")}  # the admin's and health's streams
        if not held:
            return 0
        installed = self._registry.tenant_ids()
        departed = held - installed
        for tenant_id in departed:
            freed = self.evict(tenant_id)
            log.info(
                "tenant dropped: uninstalled elsewhere",
                extra=fields(tenant_id=tenant_id, bytes_freed=freed),
            )
        return len(departed)

    def start(self) -> None:
        """Sweep every ``sweep_seconds`` in a background thread (idempotent)."""
        self._sweeper.start()

    def stop(self) -> None:
        """Stop the background sweep."""
        self._sweeper.stop()
