"""Tests for tenancy.registry: provisioning, authentication, persistence, threads."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from masterplan.tenancy import (
    InvalidTenantName,
    Tenant,
    TenantExists,
    TenantNotFound,
    TenantRegistry,
    Unauthenticated,
    generate_api_key,
    key_prefix,
)


class FakeClock:
    """A settable monotonic clock, to step over the auth-cache TTL."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def db_url(kind: str, tmp_path: Path) -> str:
    return "sqlite://" if kind == "memory" else f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(params=["memory", "file"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TenantRegistry]:
    with TenantRegistry(db_url(request.param, tmp_path)) as reg:
        yield reg


def raw_rows(url: str) -> list[dict[str, object]]:
    """Read the tenants table behind the registry's back."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text("SELECT * FROM tenants")).mappings()]
    finally:
        engine.dispose()


def forged(key: str) -> str:
    """A key with the same (valid) prefix but another secret."""
    other = generate_api_key()
    return key[:12] + other[12:]


# -- install and authenticate ---------------------------------------------------


def test_install_returns_key_that_authenticates_to_that_tenant_only(
    registry: TenantRegistry,
) -> None:
    acme, acme_key = registry.install("acme")
    globex, globex_key = registry.install("globex")
    assert acme.name == "acme" and globex.name == "globex"
    assert acme.tenant_id != globex.tenant_id
    assert acme_key != globex_key
    assert registry.authenticate(acme_key) == acme
    assert registry.authenticate(globex_key) == globex
    assert acme.key_prefix == key_prefix(acme_key)
    assert acme.created_at.tzinfo is not None


def test_tenant_never_carries_key_material(registry: TenantRegistry) -> None:
    tenant, key = registry.install("acme")
    assert [f.name for f in dataclasses.fields(Tenant)] == [
        "tenant_id",
        "name",
        "created_at",
        "key_prefix",
    ]
    assert key not in repr(tenant)


def test_table_stores_no_plaintext_key(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite:///{path}"
    with TenantRegistry(url) as reg:
        _, key = reg.install("acme")
        rotated = reg.rotate_key("acme")
        _, other = reg.install("globex")
        rows = raw_rows(url)
        assert len(rows) == 2
        for secret in (key, rotated, other):
            assert all(secret not in str(v) for row in rows for v in row.values())
            assert all(secret[12:] not in str(v) for row in rows for v in row.values())
    # Nor anywhere on disk, including the WAL.
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (key, rotated, other):
        assert secret[12:].encode() not in blob


def test_wrong_key_with_valid_prefix_fails(registry: TenantRegistry) -> None:
    _, key = registry.install("acme")
    registry.authenticate(key)  # populate the cache: it must not be keyed by prefix
    with pytest.raises(Unauthenticated):
        registry.authenticate(forged(key))


def test_unknown_well_formed_key_fails(registry: TenantRegistry) -> None:
    registry.install("acme")
    with pytest.raises(Unauthenticated):
        registry.authenticate(generate_api_key())


@pytest.mark.parametrize(
    "key", ["", "mp_", "not-a-key", "mp_abcd1234_short", "Bearer x", "mp_ABCD1234_" + "A" * 43]
)
def test_malformed_keys_fail(registry: TenantRegistry, key: str) -> None:
    registry.install("acme")
    with pytest.raises(Unauthenticated):
        registry.authenticate(key)


def test_unauthenticated_message_does_not_say_why(registry: TenantRegistry) -> None:
    _, key = registry.install("acme")
    messages = set()
    for bad in ("garbage", generate_api_key(), forged(key)):
        with pytest.raises(Unauthenticated) as info:
            registry.authenticate(bad)
        messages.add(str(info.value))
    assert len(messages) == 1


# -- names ----------------------------------------------------------------------


def test_duplicate_name_is_rejected(registry: TenantRegistry) -> None:
    first, key = registry.install("acme")
    with pytest.raises(TenantExists) as info:
        registry.install("acme")
    assert info.value.name == "acme"
    assert registry.list() == [first]
    assert registry.authenticate(key) == first


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Acme",
        "1acme",
        "-acme",
        "acme-",
        "ac_me",
        "ac.me",
        "ac me",
        "acmé",
        "acme\n",
        "a" * 64,
        "tenants/acme",
    ],
)
def test_invalid_names_are_rejected(registry: TenantRegistry, name: str) -> None:
    with pytest.raises(InvalidTenantName) as info:
        registry.install(name)
    assert info.value.name == name
    assert info.value.reason
    assert registry.list() == []


@pytest.mark.parametrize("name", ["a", "acme", "acme-corp-2", "a" * 63, "x1-2-3"])
def test_valid_names_are_accepted(registry: TenantRegistry, name: str) -> None:
    tenant, _ = registry.install(name)
    assert registry.get(name) == tenant


# -- rotate and uninstall -------------------------------------------------------


def test_rotate_invalidates_old_key_and_new_one_works(registry: TenantRegistry) -> None:
    tenant, old = registry.install("acme")
    assert registry.authenticate(old) == tenant  # now cached
    new = registry.rotate_key("acme")
    assert new != old
    with pytest.raises(Unauthenticated):
        registry.authenticate(old)
    rotated = registry.authenticate(new)
    assert rotated.tenant_id == tenant.tenant_id
    assert rotated.key_prefix == key_prefix(new)
    assert registry.get("acme") == rotated


def test_rotate_unknown_tenant(registry: TenantRegistry) -> None:
    with pytest.raises(TenantNotFound):
        registry.rotate_key("nobody")


def test_uninstall_removes_row_and_key_stops_authenticating(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with TenantRegistry(url) as reg:
        tenant, key = reg.install("acme")
        _, other_key = reg.install("globex")
        assert reg.authenticate(key) == tenant  # cached
        assert reg.uninstall("acme") == tenant
        with pytest.raises(Unauthenticated):
            reg.authenticate(key)
        with pytest.raises(TenantNotFound):
            reg.get("acme")
        assert [r["name"] for r in raw_rows(url)] == ["globex"]
        assert reg.authenticate(other_key).name == "globex"


def test_uninstall_unknown_tenant(registry: TenantRegistry) -> None:
    with pytest.raises(TenantNotFound):
        registry.uninstall("nobody")


def test_reinstall_gets_new_identity_and_old_key_stays_dead(registry: TenantRegistry) -> None:
    old_tenant, old_key = registry.install("acme")
    registry.authenticate(old_key)
    registry.uninstall("acme")
    new_tenant, new_key = registry.install("acme")
    assert new_tenant.tenant_id != old_tenant.tenant_id
    with pytest.raises(Unauthenticated):
        registry.authenticate(old_key)
    assert registry.authenticate(new_key) == new_tenant


def test_get_and_list(registry: TenantRegistry) -> None:
    with pytest.raises(TenantNotFound):
        registry.get("acme")
    with pytest.raises(InvalidTenantName):
        registry.get("Not Valid")
    installed = [registry.install(n)[0] for n in ("zeta", "acme", "mid")]
    assert registry.list() == sorted(installed, key=lambda t: t.name)
    assert registry.get("mid") == installed[2]


# -- cache ----------------------------------------------------------------------


def test_revocation_by_another_process_is_bounded_by_cache_ttl(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    clock = FakeClock()
    with (
        TenantRegistry(url, cache_ttl=5.0, clock=clock) as server,
        TenantRegistry(url) as admin,
    ):
        _, key = admin.install("acme")
        server.authenticate(key)
        admin.uninstall("acme")
        clock.now += 4.9
        assert server.authenticate(key).name == "acme"  # still cached
        clock.now += 0.2
        with pytest.raises(Unauthenticated):
            server.authenticate(key)


def test_cache_can_be_disabled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with TenantRegistry(url, cache_ttl=0) as server, TenantRegistry(url) as admin:
        _, key = admin.install("acme")
        server.authenticate(key)
        admin.rotate_key("acme")
        with pytest.raises(Unauthenticated):
            server.authenticate(key)


# -- persistence ----------------------------------------------------------------


def test_sqlite_file_reopens_with_data_intact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with TenantRegistry(url) as reg:
        acme, acme_key = reg.install("acme")
        reg.install("globex")
        reg.uninstall("globex")
        initech, initech_key = reg.install("initech")
    with TenantRegistry(url) as reg:
        assert reg.list() == [acme, initech]
        assert reg.authenticate(acme_key) == acme
        assert reg.authenticate(initech_key) == initech
        assert reg.get("acme").created_at.tzinfo == UTC
        with pytest.raises(TenantExists):
            reg.install("acme")


def test_file_registry_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with TenantRegistry(url):
        pass
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# -- threads --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "file"])
@pytest.mark.parametrize("cache_ttl", [0.0, 5.0])  # the database path, and the cache path
def test_concurrent_authenticate_is_correct(tmp_path: Path, kind: str, cache_ttl: float) -> None:
    with TenantRegistry(db_url(kind, tmp_path), cache_ttl=cache_ttl) as registry:
        _check_concurrent_authenticate(registry)


def _check_concurrent_authenticate(registry: TenantRegistry) -> None:
    tenants = [registry.install(f"tenant-{i}") for i in range(8)]
    cases: list[tuple[str, str | None]] = []
    for tenant, key in tenants:
        cases += [(key, tenant.tenant_id), (forged(key), None), ("junk", None)]
    cases *= 25

    def check(case: tuple[str, str | None]) -> bool:
        key, expected = case
        try:
            return registry.authenticate(key).tenant_id == expected
        except Unauthenticated:
            return expected is None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(check, cases))
    assert all(results)


def test_concurrent_installs_of_one_name_admit_exactly_one(registry: TenantRegistry) -> None:
    barrier = threading.Barrier(8)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            registry.install("acme")
        except TenantExists:
            return "exists"
        return "installed"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert sorted(outcomes) == ["exists"] * 7 + ["installed"]
    assert [t.name for t in registry.list()] == ["acme"]


def test_rotation_racing_authentication_never_revives_old_key(registry: TenantRegistry) -> None:
    _, key = registry.install("acme")
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            with contextlib.suppress(Unauthenticated):
                registry.authenticate(key)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        new = registry.rotate_key("acme")
    finally:
        stop.set()
        for t in threads:
            t.join()
    with pytest.raises(Unauthenticated):
        registry.authenticate(key)
    assert registry.authenticate(new).name == "acme"


def test_authentication_read_before_rotation_is_not_cached(tmp_path: Path) -> None:
    # Deterministic version of the race above: the rotation commits while an
    # authentication of the old key is between its database read and caching.
    registry = TenantRegistry(f"sqlite:///{tmp_path / 'registry.db'}")
    _, old = registry.install("acme")
    fired = False

    @sa.event.listens_for(registry._engine, "after_cursor_execute")
    def rotate_midway(*args: object) -> None:
        nonlocal fired
        if not fired and "key_prefix =" in str(args[2]):
            fired = True
            worker = threading.Thread(target=registry.rotate_key, args=("acme",))
            worker.start()
            worker.join()

    with registry:
        assert registry.authenticate(old).name == "acme"  # began before the rotation
        assert fired
        with pytest.raises(Unauthenticated):
            registry.authenticate(old)
