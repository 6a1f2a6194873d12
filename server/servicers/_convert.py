"""Conversions between domain records and protobuf messages (the servicers' boundary)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

from masterplan.server.names import plan_name, run_name
from masterplan.server.pegging import PegTree
from masterplan.server.store import PlanInfo, RunRecord
from masterplan.tenancy.registry import Tenant
from masterplan.v1 import planning_pb2, tenant_admin_pb2

MODES = {
    planning_pb2.RUN_MODE_UNSPECIFIED: "regeneration",
    planning_pb2.RUN_MODE_REGENERATION: "regeneration",
    planning_pb2.RUN_MODE_NET_CHANGE: "net_change",
}
MODE_ENUM = {
    "regeneration": planning_pb2.RUN_MODE_REGENERATION,
    "net_change": planning_pb2.RUN_MODE_NET_CHANGE,
}


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A protobuf timestamp, or None so that an unset time stays unset on the wire."""
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def tenant_to_proto(t: Tenant) -> tenant_admin_pb2.Tenant:
    """The Tenant resource; it carries the key's prefix only, never the key or its hash."""
    return tenant_admin_pb2.Tenant(
        name=f"tenants/{t.name}",
        tenant_id=t.name,
        create_time=timestamp(t.created_at),
        key_prefix=t.key_prefix,
    )


def run_to_proto(tenant: str, r: RunRecord) -> planning_pb2.PlanRun:
    """The PlanRun resource of a run record, named under the caller's tenant."""
    return planning_pb2.PlanRun(
        name=run_name(tenant, r.plan_id, r.run_id),
        run_id=r.run_id,
        state=planning_pb2.PlanRun.State.Value(r.state),
        mode=MODE_ENUM[r.mode],
        plan_date=r.plan_date.isoformat(),
        create_time=timestamp(r.create_time),
        end_time=timestamp(r.end_time),
        row_counts=r.row_counts,
        phase_seconds=r.phase_seconds,
        error=r.error,
        dataset_version=r.dataset_version,
        base_run_id=r.base_run_id,
        rows_added=r.rows_added,
        rows_removed=r.rows_removed,
        fallback_reason=r.fallback_reason,
        skus_planned=r.skus_planned,
        skus_total=r.skus_total,
        results_kept=r.results is not None,
    )


def pegging_to_proto(tree: PegTree, flat: bool) -> planning_pb2.GetPeggingResponse:
    """GetPegging's answer: the flat ``nodes``, or the deprecated nested ``root``.

    The nested form is built parent first, one ``children.add()`` per node,
    without recursion: the tree it comes from is already cut above
    protobuf's nesting limit.
    """
    if flat:
        return planning_pb2.GetPeggingResponse(
            nodes=[
                planning_pb2.PeggingTreeNode(
                    kind=n.kind,
                    ref=n.ref,
                    item_id=n.item_id,
                    warehouse_id=n.warehouse_id,
                    date=n.date,
                    qty=n.qty,
                    parent=n.parent,
                    supply=n.supply,
                    same_as=n.same_as if n.same_as >= 0 else None,
                    continuation=n.continuation,
                )
                for n in tree.nodes
            ],
            truncated=tree.truncated,
        )
    out = planning_pb2.GetPeggingResponse(truncated=tree.truncated)
    built: list[planning_pb2.PeggingNode] = []
    for n in tree.nodes:
        msg = out.root if n.parent < 0 else built[n.parent].children.add()
        msg.kind, msg.ref, msg.item_id = n.kind, n.ref, n.item_id
        msg.warehouse_id, msg.date, msg.qty = n.warehouse_id, n.date, n.qty
        built.append(msg)
    return out


def plan_to_proto(tenant: str, info: PlanInfo) -> planning_pb2.Plan:
    """The Plan resource of what a plan holds, named under the caller's tenant."""
    ds = info.dataset
    return planning_pb2.Plan(
        name=plan_name(tenant, info.plan_id),
        dataset_version=ds.version if ds is not None else 0,
        dataset_etag=ds.etag if ds is not None else "",
        upload_time=timestamp(ds.uploaded_at) if ds is not None else None,
        input_rows=ds.rows if ds is not None else 0,
        result_rows=info.result_rows,
        bytes_held=info.bytes_held,
        run_count=info.run_count,
        last_run=run_to_proto(tenant, info.last_run) if info.last_run is not None else None,
    )
