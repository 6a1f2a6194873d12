"""TenantAdmin: provisioning with the admin credential."""

from __future__ import annotations

import base64
import binascii
import logging

import grpc
from google.protobuf import empty_pb2

from masterplan.server.departures import TenantDepartures
from masterplan.server.errors import InvalidArgument, funnel
from masterplan.server.logs import bind, fields, scoped
from masterplan.server.servicers._convert import tenant_to_proto
from masterplan.tenancy.registry import TenantRegistry
from masterplan.v1 import tenant_admin_pb2 as pb
from masterplan.v1 import tenant_admin_pb2_grpc

log = logging.getLogger(__name__)


def _tenant_of(name: str) -> str:
    prefix = "tenants/"
    if not name.startswith(prefix) or "/" in name[len(prefix) :]:
        raise InvalidArgument(f"name must be tenants/{{tenant}}, got {name!r}", field="name")
    return name[len(prefix) :]


class TenantAdminServicer(tenant_admin_pb2_grpc.TenantAdminServicer):
    """Provisioning; its log lines name the tenant, never any part of a key."""

    def __init__(self, registry: TenantRegistry, departures: TenantDepartures) -> None:
        self._registry = registry
        self._departures = departures

    @scoped
    @funnel
    def InstallTenant(
        self, request: pb.InstallTenantRequest, context: grpc.ServicerContext
    ) -> pb.InstallTenantResponse:
        tenant, key = self._registry.install(request.tenant_id)
        bind(tenant=tenant.name)
        log.info("tenant installed")
        return pb.InstallTenantResponse(tenant=tenant_to_proto(tenant), api_key=key)

    @scoped
    @funnel
    def UninstallTenant(
        self, request: pb.UninstallTenantRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        tenant = self._registry.uninstall(_tenant_of(request.name))
        bind(tenant=tenant.name)
        # After the registry: a call that authenticates from now on is refused,
        # and calls in flight are ended, so nothing can put the data back.
        freed = self._departures.evict(tenant.tenant_id)
        log.info("tenant uninstalled", extra=fields(bytes_freed=freed))
        return empty_pb2.Empty()

    @scoped
    @funnel
    def RotateApiKey(
        self, request: pb.RotateApiKeyRequest, context: grpc.ServicerContext
    ) -> pb.RotateApiKeyResponse:
        name = _tenant_of(request.name)
        bind(tenant=name)
        key = self._registry.rotate_key(name)
        log.info("api key rotated")
        return pb.RotateApiKeyResponse(
            tenant=tenant_to_proto(self._registry.get(name)), api_key=key
        )

    @scoped
    @funnel
    def ListTenants(
        self, request: pb.ListTenantsRequest, context: grpc.ServicerContext
    ) -> pb.ListTenantsResponse:
        size = min(request.page_size if request.page_size > 0 else 100, 1000)
        after = ""
        if request.page_token:
            try:
                after = base64.b64decode(
                    request.page_token.encode(), altchars=b"-_", validate=True
                ).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument(
                    "page_token is not one this server issued", field="page_token"
                ) from None
        tenants, more = self._registry.list_page(after, size)
        token = base64.urlsafe_b64encode(tenants[-1].name.encode()).decode() if more else ""
        return pb.ListTenantsResponse(
            tenants=[tenant_to_proto(t) for t in tenants], next_page_token=token
        )
