"""API keys of the vendor's services: issue (shown once), look up by bearer value, list, revoke.

A key reads `ecc_live_<43 random url-safe characters>`. Only its SHA-256 is stored, and its first
17 characters (the prefix) to tell keys apart in lists and to revoke one. Keys are random with 256
bits of entropy, so a fast hash is enough: nothing can be guessed from it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update

from extensions import db
from models.api_key import API_SCOPES, ApiKey  # noqa: F401 - API_SCOPES is part of this module's interface
from models.base import utcnow
from models.organization import Organization
from models.user import User
from services.platform import audit

KEY_PREFIX = "ecc_live_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
MAX_NAME_LENGTH = 120
# last_used_at is written at most this often per key, so busy keys do not turn every request into a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Built once: every API request looks its key up, and building the statement cost more than running it.
# The row is read on every request, so revoking a key takes effect on the next one, in every process.
_BY_HASH = select(ApiKey).where(ApiKey.key_hash == bindparam("p_hash"))


class ApiKeyError(ValueError):
    """A key could not be created or revoked; the message says why, for a form or the command line."""


@dataclass(frozen=True)
class IssuedKey:
    """A new key and the only moment its secret value exists outside the caller's hands."""

    key: ApiKey
    secret: str


def hash_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def clean_scopes(scopes) -> list[str]:
    """Return the scopes in their documented order; raise ApiKeyError for unknown or missing ones."""
    wanted = {scope.strip() for scope in scopes if scope and scope.strip()}
    unknown = sorted(wanted - set(API_SCOPES))
    if unknown:
        raise ApiKeyError(f"Unknown scope {', '.join(unknown)}. Scopes are: {', '.join(API_SCOPES)}.")
    if not wanted:
        raise ApiKeyError("Give the key at least one scope.")
    return [scope for scope in API_SCOPES if scope in wanted]


def create_key(name: str, scopes, *, organization: Organization | None = None,
               created_by: User | None = None) -> IssuedKey:
    """Create a key; its secret is in the result only (flushes, the caller commits)."""
    name = (name or "").strip()
    if not name:
        raise ApiKeyError("Give the key a name, such as the service that will use it.")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"A key's name has at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.")
    scope_list = clean_scopes(scopes)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[:PREFIX_LENGTH], key_hash=hash_key(secret), scopes=" ".join(scope_list),
                 organization=organization, created_by=created_by)
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", actor=created_by, organization=organization, target=key,
                 details={"name": name, "prefix": key.prefix, "scopes": scope_list})
    return IssuedKey(key=key, secret=secret)


def authenticate(value: str | None) -> ApiKey | None:
    """Return the active key whose secret is value, or None; notes when it was last used (flushes a write at
    most once a minute: `key.last_used_at` then equals the current request's time)."""
    if not value or not value.startswith(KEY_PREFIX) or len(value) > 200:
        return None
    key = db.session.scalars(_BY_HASH, {"p_hash": hash_key(value)}).first()
    if key is None or not key.is_active:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_GRANULARITY:
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        key.last_used_at = now
        db.session.info["api_key_used_written"] = True
    return key


def list_keys(*, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(db.session.scalars(query))


def find_by_prefix(prefix: str) -> ApiKey | None:
    return db.session.scalar(select(ApiKey).where(ApiKey.prefix == (prefix or "").strip()))


def revoke_key(key: ApiKey, *, revoked_by: User | None = None) -> ApiKey:
    """Revoke a key at once; revoking a revoked key is refused so that the caller can say so."""
    if key.revoked_at is not None:
        raise ApiKeyError(f"The key {key.prefix}… was already revoked.")
    key.revoked_at = utcnow()
    db.session.flush()
    audit.record("api_key.revoked", actor=revoked_by, organization=key.organization, target=key,
                 details={"name": key.name, "prefix": key.prefix})
    return key
