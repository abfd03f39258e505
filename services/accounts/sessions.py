"""Server-side session records: started at sign-in, checked on every request, ended for good.

The browser's cookie holds only a random token; the record (found by the token's SHA-256) says
whether the session still counts. Signing out, a password change and deactivation end records, so a
copied cookie stops working at once, and every session has an absolute lifetime and an idle limit.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from extensions import db
from models.base import utcnow
from models.session import UserSession
from models.user import User
from services.platform.crypto import TokenDecryptionError, cipher_for

# Recording every request's time would be a write per page view; once a minute is precise enough
# for an idle limit counted in hours.
TOUCH_EVERY = timedelta(seconds=60)
MAX_USER_AGENT = 200


@dataclass(frozen=True)
class StartedSession:
    """A new session: the token goes into the cookie, the record stays on the server."""

    token: str
    record: UserSession


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a session token is recorded."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"])


def _idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])


def start_session(user: User, *, user_agent: str = "", ip_address: str = "") -> StartedSession:
    """Record a new session of user and return it with its token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = UserSession(
        user_id=user.id, token_hash=hash_token(token), created_at=now, last_seen_at=now,
        expires_at=now + _lifetime(), user_agent=(user_agent or "")[:MAX_USER_AGENT],
        ip_address=(ip_address or "")[:45],
    )
    db.session.add(record)
    db.session.flush()
    return StartedSession(token=token, record=record)


def resolve_session(token: str | None, user_id: int) -> int | None:
    """Return the id of user_id's live session for token, noting the activity; None if it ended, expired or idled out.

    The activity and an expiry are written in a transaction of their own: the request's transaction
    may be rolled back, and a page view that changes nothing must still count as activity.
    """
    if not token:
        return None
    row = db.session.execute(
        select(UserSession.id, UserSession.user_id, UserSession.ended_at, UserSession.expires_at,
               UserSession.last_seen_at).where(UserSession.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at >= _idle_limit():
        _write_apart(_live(row.id).values(ended_at=now, end_reason="expired"))
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        _write_apart(_live(row.id).values(last_seen_at=now))
    return row.id


def _live(session_id: int):
    return update(UserSession).where(UserSession.id == session_id, UserSession.ended_at.is_(None))


def _write_apart(statement) -> None:
    with db.engine.begin() as connection:
        connection.execute(statement)


def end_session(token: str | None, reason: str = "signed_out") -> None:
    """End the session recorded for token, if it is still live."""
    if not token:
        return
    db.session.execute(
        update(UserSession)
        .where(UserSession.token_hash == hash_token(token), UserSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
        .execution_options(synchronize_session="fetch")
    )


def end_user_sessions(user: User, reason: str, *, keep_id: int | None = None) -> int:
    """End every live session of user but the one whose id is keep_id; return how many ended."""
    statement = update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    if keep_id is not None:
        statement = statement.where(UserSession.id != keep_id)
    result = db.session.execute(
        statement.values(ended_at=utcnow(), end_reason=reason).execution_options(synchronize_session="fetch")
    )
    return result.rowcount


def stash_put(session_id: int, key: str, value) -> None:
    """Keep a JSON value under key on the server, encrypted, until `stash_pop` takes it."""
    stash = _read_stash(session_id)
    stash[key] = value
    _write_stash(session_id, stash)


def stash_pop(session_id: int, key: str, default=None):
    """Return and forget the value kept under key (default when there is none)."""
    stash = _read_stash(session_id)
    if key not in stash:
        return default
    value = stash.pop(key)
    _write_stash(session_id, stash)
    return value


def stash_peek(session_id: int, key: str, default=None):
    """Return the value kept under key without forgetting it."""
    return _read_stash(session_id).get(key, default)


def _write_stash(session_id: int, stash: dict) -> None:
    encrypted = cipher_for(current_app.config).encrypt(json.dumps(stash)) if stash else None
    _write_apart(update(UserSession).where(UserSession.id == session_id).values(stash_encrypted=encrypted))


def _read_stash(session_id: int) -> dict:
    encrypted = db.session.scalar(select(UserSession.stash_encrypted).where(UserSession.id == session_id))
    if not encrypted:
        return {}
    try:
        return json.loads(cipher_for(current_app.config).decrypt(encrypted))
    except (TokenDecryptionError, ValueError):
        # A value under a key no longer configured is only a convenience lost, never a reason to fail a page.
        return {}
