"""API keys: generation, parsing, hashing and constant-time verification.

A tenant key looks like ``mp_<prefix>_<secret>``:

* ``mp_`` marks it as a masterplan key, so secret scanners and humans recognise it;
* ``<prefix>`` is 8 characters of ``[a-z0-9]``, stored in clear and indexed, so the
  registry finds the candidate row without scanning every hash;
* ``<secret>`` is ``secrets.token_urlsafe(32)`` (256 random bits, 43 characters).

Only :func:`hash_key` of the whole key is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

KEY_SCHEME = "mp"
"""Literal first field of every tenant key."""

PREFIX_LENGTH = 8
"""Length of the clear-text lookup prefix."""

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_BYTES = 32
# token_urlsafe(32) is base64url without padding: ceil(32 * 4 / 3) = 43 characters.
_SECRET_LENGTH = 43
_KEY_RE = re.compile(
    rf"{KEY_SCHEME}_([a-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{{_SECRET_LENGTH}}}"
)

ADMIN_KEY_MIN_LENGTH = 16
"""Shortest admin key accepted; shorter ones are too easy to guess."""


def generate_api_key() -> str:
    """Return a fresh random tenant API key.

    Returns:
        A key of the form ``mp_<8-char prefix>_<secret>``. It is shown to the
        operator once; the service keeps only its hash.
    """
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def key_prefix(key: str) -> str | None:
    """Return the lookup prefix of a well-formed key, or ``None`` for a malformed one.

    Parsing is strict (exact lengths and alphabets) so garbage is rejected before
    any database work.

    Args:
        key: The presented key.
    """
    match = _KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """Return the SHA-256 hex digest of the whole key.

    A fast hash is the right choice here, unlike for passwords: slow KDFs
    (bcrypt, scrypt, argon2) exist to make guessing *low-entropy* secrets
    expensive, but a generated key carries 256 random bits, so brute-forcing a
    stolen hash is infeasible at any hash speed. A slow KDF would only add
    latency to every authentication (and a denial-of-service lever).

    Args:
        key: The key to hash (tenant or admin key).
    """
    # surrogatepass: never raise on odd input, whatever a client sends.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def verify_key(key: str, stored_hash: str) -> bool:
    """Tell whether ``key`` hashes to ``stored_hash``, in constant time.

    Args:
        key: The presented key.
        stored_hash: A hex digest from :func:`hash_key`.
    """
    presented = hash_key(key).encode("ascii")
    return hmac.compare_digest(presented, stored_hash.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class AdminCredential:
    """The admin credential, held only as a hash.

    The admin key manages tenants (install, uninstall, rotate) but reads no
    tenant's plan. Holding the hash rather than the key keeps the plaintext out
    of reprs, logs and core dumps once start-up has read it.

    Attributes:
        key_hash: SHA-256 hex digest of the admin key.
    """

    key_hash: str

    @classmethod
    def from_key(cls, key: str) -> AdminCredential:
        """Build the credential from the operator-supplied admin key.

        Args:
            key: The admin key, any string of at least 16 characters.

        Raises:
            ValueError: If the key is empty or shorter than 16 characters.
        """
        if not key:
            raise ValueError("admin key must not be empty")
        if len(key) < ADMIN_KEY_MIN_LENGTH:
            raise ValueError(
                f"admin key is too short: {len(key)} characters, "
                f"need at least {ADMIN_KEY_MIN_LENGTH}"
            )
        return cls(key_hash=hash_key(key))

    def matches(self, key: str) -> bool:
        """Tell whether ``key`` is the admin key, in constant time.

        Args:
            key: The presented key.
        """
        return verify_key(key, self.key_hash)
