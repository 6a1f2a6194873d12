"""Tests for tenancy.keys: key format, parsing, hashing, the admin credential."""

from __future__ import annotations

import dataclasses
import re

import pytest

from masterplan.tenancy.keys import (
    AdminCredential,
    generate_api_key,
    hash_key,
    key_prefix,
    verify_key,
)

KEY_RE = re.compile(r"mp_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")
VALID = "mp_abcd1234_" + "A" * 43


def test_generated_key_has_documented_format() -> None:
    key = generate_api_key()
    match = KEY_RE.fullmatch(key)
    assert match is not None, key
    assert key_prefix(key) == match.group(1)


def test_generated_keys_are_unique() -> None:
    keys = {generate_api_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert len({key_prefix(k) for k in keys}) > 990


def test_key_prefix_of_valid_key() -> None:
    assert key_prefix(VALID) == "abcd1234"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "mp_",
        "mp_abcd1234_",
        "mp_abcd1234",
        "xx_abcd1234_" + "A" * 43,  # wrong scheme
        "mp_abcd123_" + "A" * 43,  # prefix too short
        "mp_abcd12345_" + "A" * 43,  # prefix too long
        "mp_ABCD1234_" + "A" * 43,  # upper-case prefix
        "mp_abcd1234_" + "A" * 42,  # secret too short
        "mp_abcd1234_" + "A" * 44,  # secret too long
        "mp_abcd1234_" + "A" * 42 + "=",  # padding is not urlsafe-token output
        VALID + "\n",
        " " + VALID,
        "Bearer " + VALID,
        "mp_abcd1234_" + "é" * 43,
    ],
)
def test_key_prefix_rejects_malformed(key: str) -> None:
    assert key_prefix(key) is None


def test_hash_key_is_sha256_hex_and_hides_the_key() -> None:
    key = generate_api_key()
    digest = hash_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hash_key(key)
    assert digest != hash_key(generate_api_key())
    assert key not in digest


def test_hash_key_accepts_any_string() -> None:
    assert len(hash_key("\udcff odd")) == 64


def test_verify_key() -> None:
    key = generate_api_key()
    stored = hash_key(key)
    assert verify_key(key, stored)
    assert not verify_key(generate_api_key(), stored)
    assert not verify_key(key, "")
    assert not verify_key(key, stored.upper())
    assert not verify_key(key, "é" * 64)


def test_admin_credential_matches_only_its_key() -> None:
    admin = AdminCredential.from_key("correct horse battery staple")
    assert admin.matches("correct horse battery staple")
    assert not admin.matches("correct horse battery stapl")
    assert not admin.matches("")
    assert not admin.matches(generate_api_key())


def test_admin_credential_holds_only_the_hash() -> None:
    key = "s3cret-admin-key-0123456789"
    admin = AdminCredential.from_key(key)
    assert [f.name for f in dataclasses.fields(admin)] == ["key_hash"]
    assert admin.key_hash == hash_key(key)
    assert key not in repr(admin)
    with pytest.raises(dataclasses.FrozenInstanceError):
        admin.key_hash = "x"  # type: ignore[misc]


@pytest.mark.parametrize("key", ["", "short", "x" * 15])
def test_admin_credential_rejects_short_keys(key: str) -> None:
    with pytest.raises(ValueError, match="admin key"):
        AdminCredential.from_key(key)


def test_admin_credential_accepts_sixteen_characters() -> None:
    assert AdminCredential.from_key("x" * 16).matches("x" * 16)
