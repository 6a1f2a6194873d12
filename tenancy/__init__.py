"""Tenancy for masterplan: tenant registry, API keys, quotas.

The gRPC auth interceptor lives in this package too but is imported from its
own module, so this package stays importable without grpc.
"""

from masterplan.tenancy.errors import (
    InvalidTenantName,
    QuotaExceeded,
    TenancyError,
    TenantExists,
    TenantNotFound,
    Unauthenticated,
)
from masterplan.tenancy.keys import (
    AdminCredential,
    generate_api_key,
    hash_key,
    key_prefix,
    verify_key,
)
from masterplan.tenancy.quotas import QuotaLedger, Quotas
from masterplan.tenancy.registry import (
    DEFAULT_REGISTRY_URL,
    Tenant,
    TenantRegistry,
    validate_tenant_name,
)

__all__ = [
    "DEFAULT_REGISTRY_URL",
    "AdminCredential",
    "InvalidTenantName",
    "QuotaExceeded",
    "QuotaLedger",
    "Quotas",
    "TenancyError",
    "Tenant",
    "TenantExists",
    "TenantNotFound",
    "TenantRegistry",
    "Unauthenticated",
    "generate_api_key",
    "hash_key",
    "key_prefix",
    "validate_tenant_name",
    "verify_key",
]
