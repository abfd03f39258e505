"""Receiving Cronofy's delegated-access callbacks: verify, store, nothing else (§3.3.1, §3.11).

The request must be cheap (the upstream wants a quick 2xx): one indexed lookup, one insert. The
exchange happens in a worker. Whatever is refused here leaves no row behind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, insert, select, update

from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.base import utcnow
from services.cronofy import verify_hmac
from services.engine import attempts
from services.platform import statements, upstream
from services.platform.crypto import cipher_for

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


# Built once: this endpoint answers every mailbox of every bulk run (services/platform/statements.py).
_attempts = AuthorizationAttempt.__table__
_FIND_ATTEMPT = select(_attempts.c.id, _attempts.c.state).where(_attempts.c.callback_token_hash == bindparam("p_hash"))
_INSERT_RECEIPT = insert(CallbackReceipt.__table__).returning(CallbackReceipt.__table__.c.id)
_MARK_ARRIVED = (update(_attempts).where(_attempts.c.id == bindparam("p_attempt"), _attempts.c.callback_at.is_(None))
                 .values(callback_at=bindparam("p_now")))


class CallbackRejected(Exception):
    """A callback that is not stored; carries the HTTP status and a short reason for the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Parsed:
    state: str | None
    code: str | None
    error: str | None
    error_key: str | None
    error_description: str | None


def _text(value, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parse(body: bytes) -> Parsed:
    """Read both documented shapes of the callback body (§3.3.1).

    :raises CallbackRejected: 400 when the body is not JSON or carries neither a code nor an error.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        raise CallbackRejected(400, "The body is not JSON.") from None
    except RecursionError:
        # Arrays or objects nested thousands deep: no callback looks like that.
        raise CallbackRejected(400, "The body is nested too deeply.") from None
    auth = payload.get("authorization") if isinstance(payload, dict) else None
    if not isinstance(auth, dict):
        raise CallbackRejected(400, "The body lacks the authorization object.")
    parsed = Parsed(
        state=_text(auth.get("state"), 128), code=_text(auth.get("code"), 512), error=_text(auth.get("error"), 80),
        error_key=_text(auth.get("error_key"), 80), error_description=_text(auth.get("error_description"), 2000),
    )
    if not parsed.code and not (parsed.error or parsed.error_key):
        raise CallbackRejected(400, "The authorization carries neither a code nor an error.")
    return parsed


def receive(token: str, body: bytes, signature: str | None) -> int:
    """Check a callback against its attempt and store it; return the receipt's id.

    The caller commits, then enqueues the exchange.

    :raises CallbackRejected: 404 unknown URL, 413 too large, 401 unsigned or bad signature, 400 bad body or state.
    """
    if len(body) > MAX_BODY_BYTES:
        raise CallbackRejected(413, "The body is too large.")
    attempt = statements.execute(_FIND_ATTEMPT, {"p_hash": attempts.hash_token(token)}).one_or_none()
    if attempt is None:
        log.warning("Callback to an unknown delegated-access URL refused (%d bytes)", len(body))
        raise CallbackRejected(404, "Unknown callback URL.")
    hmac_status = _check_signature(body, signature)
    parsed = parse(body)
    # A missing state is tolerated (its presence on failures is inferred, §3.3.1): the URL's secret
    # already names the attempt. A present one must be the attempt's.
    if parsed.state is not None and parsed.state != attempt.state:
        log.warning("Callback for attempt %s refused: its state does not match", attempt.id)
        raise CallbackRejected(400, "The state does not match this request.")
    return _store(attempt.id, parsed, hmac_status)


def _check_signature(body: bytes, signature: str | None) -> str:
    """Return how the callback was signed; :raises CallbackRejected: 401 unsigned (unless allowed) or bad."""
    if not signature:
        if current_app.config.get("CALLBACKS_ALLOW_UNSIGNED"):
            return "absent"
        log.warning("Callback without Cronofy-HMAC-SHA256 refused (CALLBACKS_ALLOW_UNSIGNED is off)")
        raise CallbackRejected(401, "The callback is not signed (Cronofy-HMAC-SHA256 is missing).")
    if not verify_hmac(body, signature, upstream.client_secrets()):
        log.warning("Callback with an invalid Cronofy-HMAC-SHA256 refused")
        raise CallbackRejected(401, "The signature does not match.")
    return "valid"


def _store(attempt_id: int, parsed: Parsed, hmac_status: str) -> int:
    now = utcnow()
    code = cipher_for(current_app.config).encrypt(parsed.code) if parsed.code else None
    receipt_id = statements.execute(_INSERT_RECEIPT, {
        "attempt_id": attempt_id, "received_at": now, "state": parsed.state, "code_encrypted": code,
        "error": parsed.error, "error_key": parsed.error_key, "error_description": parsed.error_description,
        "hmac_status": hmac_status, "details": {},
    }).scalar_one()
    # The first callback stops the attempt counting as "in flight" for the scheduler's cap.
    statements.execute(_MARK_ARRIVED, {"p_attempt": attempt_id, "p_now": now})
    return receipt_id
