"""Domain exceptions of the tenancy package.

These carry structured fields rather than only a message, so the server's single
error funnel can map each class to a gRPC status code and fill an ``ErrorInfo``
without parsing strings. None of them ever carries an API key or a key hash.
"""

from __future__ import annotations


class TenancyError(Exception):
    """Base class for every error raised by :mod:`tenancy`."""


class TenantNotFound(TenancyError):
    """No tenant with this name is installed.

    Attributes:
        name: The tenant name that was looked up.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} not found")
        self.name = name


class TenantExists(TenancyError):
    """A tenant with this name is already installed.

    Attributes:
        name: The tenant name that is taken.
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"tenant {name!r} already exists")
        self.name = name


class InvalidTenantName(TenancyError):
    """The tenant name is not a valid resource id.

    Attributes:
        name: The rejected name.
        reason: Which rule it breaks, for the client to act on.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid tenant name {name!r}: {reason}")
        self.name = name
        self.reason = reason


class Unauthenticated(TenancyError):
    """The presented credential is malformed, unknown or revoked.

    The message deliberately does not say which of the three it was: telling a
    caller that a key prefix exists would help anyone probing for keys.
    """

    def __init__(self, message: str = "invalid or revoked API key") -> None:
        super().__init__(message)


class QuotaExceeded(TenancyError):
    """A tenant asked for more of a resource than its quota allows.

    Attributes:
        resource: The quota's name, e.g. ``"concurrent_runs"`` or ``"memory_bytes"``.
        limit: The configured limit.
        requested: The amount the tenant would have held had the request succeeded.
    """

    def __init__(self, resource: str, limit: int, requested: int) -> None:
        super().__init__(f"quota exceeded for {resource}: requested {requested}, limit {limit}")
        self.resource = resource
        self.limit = limit
        self.requested = requested
