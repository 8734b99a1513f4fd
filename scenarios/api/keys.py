"""API keys: ``twk_<id>.<secret>``, stored as a salted hash, with one scope each.

The id (12 hex digits) is public: it names the key in the database, the access log and ``twin keys revoke``.
The secret (43 URL-safe characters, 256 random bits) is shown once, when the key is created; the database holds
only ``sha256(salt ‖ secret)`` with a random salt.  A slow password hash (scrypt) would add nothing for a
256-bit random secret and would cost every request milliseconds.  Secrets are compared in constant time.

Scopes are levels: ``read`` (GET everything), ``run`` (read + execute processes, post measurements, dismiss
its own jobs), ``admin`` (run + every key's jobs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from .store import Store

__all__ = ["SCOPES", "Principal", "create_key", "verify_key", "parse_key", "scope_allows", "KeyError_"]

SCOPES = ("read", "run", "admin")
_KEY = re.compile(r"^twk_([0-9a-f]{12})\.([A-Za-z0-9_-]{20,128})$")


class KeyError_(ValueError):  # noqa: N801 - not the builtin KeyError
    """A key that cannot be created or revoked (bad scope, unknown id)."""


@dataclass(frozen=True)
class Principal:
    """The caller of a request: its key id and scope."""

    key_id: str
    scope: str

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def scope_allows(have: str, need: str) -> bool:
    """Whether a key of scope ``have`` may do what needs ``need`` (levels: read < run < admin)."""
    return SCOPES.index(have) >= SCOPES.index(need)


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def create_key(store: Store, scope: str, label: str = "") -> tuple[str, str]:
    """Create a key of ``scope``; return (key id, the full key ``twk_<id>.<secret>`` — shown once)."""
    if scope not in SCOPES:
        raise KeyError_(f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    store.add_key(key_id, salt, _hash(salt, secret), scope, label[:200])
    return key_id, f"twk_{key_id}.{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, or None."""
    m = _KEY.match(key.strip())
    return (m.group(1), m.group(2)) if m else None


def verify_key(store: Store, key: str) -> tuple[Principal | None, str]:
    """The key's principal, or None with the reason (malformed, unknown, wrong secret, revoked).  The reason
    never contains the secret."""
    parsed = parse_key(key)
    if parsed is None:
        return None, "malformed API key (expected twk_<id>.<secret>)"
    key_id, secret = parsed
    row = store.get_key(key_id)
    if row is None:
        hmac.compare_digest("0" * 64, _hash("00" * 16, secret))  # the same work as a known id
        return None, "unknown API key"
    if not hmac.compare_digest(row["secret_hash"], _hash(row["salt"], secret)):
        return None, "invalid API key"
    if row["revoked"]:
        return None, f"API key {key_id} was revoked"
    return Principal(key_id=key_id, scope=row["scope"]), ""
