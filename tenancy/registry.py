"""The tenant registry: provisioning and API-key authentication over SQLAlchemy Core.

The registry is the only persistent state of the tenancy layer. It holds one
row per tenant with the *hash* of its current API key (see :mod:`tenancy.keys`);
the plaintext key is returned once by :meth:`TenantRegistry.install` or
:meth:`TenantRegistry.rotate_key` and never stored.

It is called from the gRPC server's thread pool, so every method is
thread-safe: each call runs one short transaction on a pooled connection, and
the authentication cache sits behind its own lock.
"""

from __future__ import annotations

import builtins
import hmac
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from masterplan.tenancy.errors import (
    InvalidTenantName,
    TenantExists,
    TenantNotFound,
    Unauthenticated,
)
from masterplan.tenancy.keys import PREFIX_LENGTH, generate_api_key, hash_key, key_prefix

DEFAULT_REGISTRY_URL = "sqlite:///masterplan-registry.db"
"""SQLite file in the working directory; any SQLAlchemy URL works."""

DEFAULT_AUTH_CACHE_TTL = 5.0
"""Seconds a successful authentication is remembered.

This bounds how long a key revoked by *another* process (e.g. an admin CLI on the
same database) keeps working here; revocations in this process take effect at once.
"""

NAME_MAX_LENGTH = 63

_NAME_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")

# Compared against when no row matches a prefix, so an unknown prefix costs the
# same comparison as a known one.
_DUMMY_HASH = b"0" * 64

metadata = MetaData()

tenants_table = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(32), primary_key=True, comment="uuid4 hex"),
    Column("name", String(NAME_MAX_LENGTH), nullable=False, unique=True),
    Column("key_prefix", String(PREFIX_LENGTH), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, comment="SHA-256 hex of the API key"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Tenant:
    """A provisioned tenant, as the rest of the service sees it.

    Deliberately carries no key hash, so it can be logged, cached and returned to
    an admin without exposing credential material.

    Attributes:
        tenant_id: Stable internal id (uuid4 hex); keys for in-memory data and
            files, so a reinstalled name never inherits old data.
        name: The AIP resource id, as in ``tenants/{name}``.
        created_at: When the tenant was installed (UTC).
        key_prefix: Clear-text prefix of the current key, to let operators tell
            keys apart without seeing them.
    """

    tenant_id: str
    name: str
    created_at: datetime
    key_prefix: str


def validate_tenant_name(name: str) -> str:
    """Check that ``name`` is a valid AIP resource id and return it.

    The rule (1–63 characters of ``[a-z0-9-]``, starting with a letter and not
    ending with a hyphen) is AIP-122's, which keeps names safe in resource
    names, URLs, file names and DNS labels alike.

    Args:
        name: The proposed tenant name.

    Raises:
        InvalidTenantName: With the rule that is broken.
    """
    if _NAME_RE.fullmatch(name):
        return name
    if not name:
        reason = "must not be empty"
    elif len(name) > NAME_MAX_LENGTH:
        reason = f"must be at most {NAME_MAX_LENGTH} characters, got {len(name)}"
    elif not ("a" <= name[0] <= "z"):
        reason = "must start with a lowercase letter"
    elif name.endswith("-"):
        reason = "must end with a lowercase letter or digit"
    else:
        reason = "may contain only lowercase letters, digits and hyphens"
    raise InvalidTenantName(name, reason)


def _make_engine(url: str) -> tuple[Engine, bool]:
    """Create the engine with settings fit for concurrent use.

    Returns:
        The engine, and whether all access must be serialised (in-memory SQLite,
        where every thread shares one connection).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True), False
    # The gRPC thread pool hands connections between threads; the pool, not
    # sqlite3's same-thread check, guarantees one user at a time.
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if parsed.database in (None, "", ":memory:"):
        # Each connection to :memory: is a new empty database: share one.
        return create_engine(parsed, connect_args=connect_args, poolclass=StaticPool), True
    # Wait for another writer (e.g. an admin CLI process) rather than failing.
    connect_args["timeout"] = 30.0
    engine = create_engine(parsed, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _set_wal(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers (authentication) proceed while a writer commits.
        # secure_delete zeroes a deleted row's bytes instead of leaving them
        # in free space: an uninstalled tenant's name and key hash must not
        # stay readable in the file (the WAL is truncated after an uninstall).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine, False


def _as_utc(value: datetime) -> datetime:
    # SQLite has no time-zone type and returns naive datetimes; we only ever store UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _tenant(row: RowMapping) -> Tenant:
    return Tenant(
        tenant_id=row["tenant_id"],
        name=row["name"],
        created_at=_as_utc(row["created_at"]),
        key_prefix=row["key_prefix"],
    )


_TENANT_COLUMNS = (
    tenants_table.c.tenant_id,
    tenants_table.c.name,
    tenants_table.c.created_at,
    tenants_table.c.key_prefix,
)


class TenantRegistry:
    """Tenants and their API keys, stored in a SQL database.

    Args:
        url: SQLAlchemy database URL. The default is a SQLite file in the working
            directory; ``sqlite://`` gives a private in-memory registry (tests).
        cache_ttl: Seconds a successful authentication is cached, keyed by key
            hash, so every RPC does not hit the database. ``0`` disables it.
        clock: Monotonic clock for cache expiry; injectable for tests.
    """

    def __init__(
        self,
        url: str = DEFAULT_REGISTRY_URL,
        *,
        cache_ttl: float = DEFAULT_AUTH_CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine, serialise = _make_engine(url)
        self._db_lock: AbstractContextManager[Any] = (
            threading.Lock() if serialise else nullcontext()
        )
        metadata.create_all(self._engine)
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._wal = self._engine.dialect.name == "sqlite" and not serialise
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[Tenant, float]] = {}
        # Bumped by every invalidation; an authentication that read the database
        # before a rotate/uninstall committed must not cache its stale answer.
        self._generation = 0

    # -- provisioning ---------------------------------------------------------

    def install(self, name: str) -> tuple[Tenant, str]:
        """Create a tenant and its first API key.

        Args:
            name: The tenant's resource id (see :func:`validate_tenant_name`).

        Returns:
            The new tenant and its API key. The key is not stored and cannot be
            shown again; a lost key is replaced with :meth:`rotate_key`.

        Raises:
            InvalidTenantName: If the name is not a valid resource id.
            TenantExists: If the name is taken.
        """
        validate_tenant_name(name)
        api_key = generate_api_key()
        tenant = Tenant(
            tenant_id=uuid.uuid4().hex,
            name=name,
            created_at=datetime.now(UTC),
            key_prefix=_prefix(api_key),
        )
        try:
            with self._db_lock, self._engine.begin() as conn:
                conn.execute(
                    insert(tenants_table).values(
                        tenant_id=tenant.tenant_id,
                        name=tenant.name,
                        key_prefix=tenant.key_prefix,
                        key_hash=hash_key(api_key),
                        created_at=tenant.created_at,
                        rotated_at=None,
                    )
                )
        except IntegrityError:
            # The unique constraint, not a prior SELECT, decides races between
            # concurrent installs; anything else is a genuine fault.
            if self._find(name) is None:
                raise
            raise TenantExists(name) from None
        return tenant, api_key

    def uninstall(self, name: str) -> Tenant:
        """Delete a tenant's registry row; its key stops working at once.

        The caller removes the tenant's in-memory data and files, keyed by the
        returned ``tenant_id``.

        Args:
            name: The tenant's name.

        Returns:
            The tenant as it was before deletion.

        Raises:
            InvalidTenantName: If the name is not a valid resource id.
            TenantNotFound: If no such tenant is installed.
        """
        validate_tenant_name(name)
        with self._db_lock, self._engine.begin() as conn:
            row = (
                conn.execute(select(*_TENANT_COLUMNS).where(tenants_table.c.name == name))
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise TenantNotFound(name)
            deleted = conn.execute(
                delete(tenants_table).where(tenants_table.c.tenant_id == row["tenant_id"])
            )
            if deleted.rowcount == 0:  # removed concurrently by another process
                raise TenantNotFound(name)
        tenant = _tenant(row)
        self._invalidate(tenant.tenant_id)
        self._checkpoint()
        return tenant

    def rotate_key(self, name: str) -> str:
        """Replace a tenant's API key; the old key stops working at once.

        Args:
            name: The tenant's name.

        Returns:
            The new API key, shown once.

        Raises:
            InvalidTenantName: If the name is not a valid resource id.
            TenantNotFound: If no such tenant is installed.
        """
        validate_tenant_name(name)
        api_key = generate_api_key()
        with self._db_lock, self._engine.begin() as conn:
            tenant_id = conn.execute(
                select(tenants_table.c.tenant_id).where(tenants_table.c.name == name)
            ).scalar_one_or_none()
            if tenant_id is None:
                raise TenantNotFound(name)
            updated = conn.execute(
                update(tenants_table)
                .where(tenants_table.c.tenant_id == tenant_id)
                .values(
                    key_prefix=_prefix(api_key),
                    key_hash=hash_key(api_key),
                    rotated_at=datetime.now(UTC),
                )
            )
            if updated.rowcount == 0:
                raise TenantNotFound(name)
        self._invalidate(tenant_id)
        return api_key

    # -- queries --------------------------------------------------------------

    def list(self) -> builtins.list[Tenant]:
        """Return every installed tenant, ordered by name."""
        with self._db_lock, self._engine.connect() as conn:
            rows = (
                conn.execute(select(*_TENANT_COLUMNS).order_by(tenants_table.c.name))
                .mappings()
                .all()
            )
        return [_tenant(row) for row in rows]

    def list_page(self, after: str, limit: int) -> tuple[builtins.list[Tenant], bool]:
        """Up to ``limit`` tenants named after ``after``, ordered by name, and
        whether more follow. Paging by name keeps a page stable while tenants
        come and go."""
        with self._db_lock, self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(*_TENANT_COLUMNS)
                    .where(tenants_table.c.name > after)
                    .order_by(tenants_table.c.name)
                    .limit(limit + 1)
                )
                .mappings()
                .all()
            )
        return [_tenant(row) for row in rows[:limit]], len(rows) > limit

    def tenant_ids(self) -> set[str]:
        """The ids of every installed tenant (a server compares those it holds with them)."""
        with self._db_lock, self._engine.connect() as conn:
            return set(conn.execute(select(tenants_table.c.tenant_id)).scalars())

    def get(self, name: str) -> Tenant:
        """Return the tenant called ``name``.

        Raises:
            InvalidTenantName: If the name is not a valid resource id.
            TenantNotFound: If no such tenant is installed.
        """
        validate_tenant_name(name)
        tenant = self._find(name)
        if tenant is None:
            raise TenantNotFound(name)
        return tenant

    def authenticate(self, api_key: str) -> Tenant:
        """Return the tenant whose current key is ``api_key``.

        The key's clear prefix selects candidate rows through an index; the hash
        is then compared in constant time. A comparison happens even when no row
        has the prefix, so response time does not reveal which prefixes exist.

        Args:
            api_key: The key presented by the caller.

        Raises:
            Unauthenticated: If the key is malformed, unknown or revoked.
        """
        prefix = key_prefix(api_key)
        if prefix is None:
            raise Unauthenticated()
        digest = hash_key(api_key)
        with self._cache_lock:
            # A dict lookup is not constant-time, but it is keyed by the SHA-256
            # of the key, whose bytes a caller cannot steer towards a stored one.
            cached = self._cache.get(digest)
            if cached is not None:
                tenant, expires = cached
                if self._clock() < expires:
                    return tenant
                del self._cache[digest]
            generation = self._generation
        with self._db_lock, self._engine.connect() as conn:
            query = select(*_TENANT_COLUMNS, tenants_table.c.key_hash).where(
                tenants_table.c.key_prefix == prefix
            )
            rows = conn.execute(query).mappings().all()
        presented = digest.encode("ascii")
        found: RowMapping | None = None
        for row in rows:  # almost always exactly one
            if hmac.compare_digest(presented, row["key_hash"].encode("ascii")):
                found = row
        if not rows:
            hmac.compare_digest(presented, _DUMMY_HASH)
        if found is None:
            raise Unauthenticated()
        tenant = _tenant(found)
        if self._cache_ttl > 0:
            with self._cache_lock:
                if self._generation == generation:
                    self._cache[digest] = (tenant, self._clock() + self._cache_ttl)
        return tenant

    # -- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Release the database connections and forget cached authentications."""
        with self._cache_lock:
            self._cache.clear()
            self._generation += 1
        self._engine.dispose()

    def __enter__(self) -> TenantRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------

    def _find(self, name: str) -> Tenant | None:
        with self._db_lock, self._engine.connect() as conn:
            row = (
                conn.execute(select(*_TENANT_COLUMNS).where(tenants_table.c.name == name))
                .mappings()
                .one_or_none()
            )
        return None if row is None else _tenant(row)

    def _checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it (SQLite files only).

        The WAL keeps every page version written since the last checkpoint,
        the deleted row's among them; with ``secure_delete`` the checkpoint
        leaves only zeroed bytes of it in the database file. A reader of
        another process can hold the checkpoint back for a moment: retried
        briefly, then left to SQLite's next automatic checkpoint.
        """
        if not self._wal:
            return
        for attempt in range(5):
            with self._engine.connect() as conn:
                busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
            if not busy:
                return
            time.sleep(0.05 * (attempt + 1))

    def _invalidate(self, tenant_id: str) -> None:
        """Drop cached authentications of one tenant after its key changed."""
        with self._cache_lock:
            self._generation += 1
            stale = [d for d, (t, _) in self._cache.items() if t.tenant_id == tenant_id]
            for digest in stale:
                del self._cache[digest]


def _prefix(api_key: str) -> str:
    prefix = key_prefix(api_key)
    if prefix is None:  # generate_api_key and key_prefix disagree: a bug here
        raise AssertionError("generated API key does not parse")
    return prefix
