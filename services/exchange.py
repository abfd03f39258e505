"""Exchanging a stored callback's code for the mailbox's tokens, exactly once (§3.3.2).

The attempt is claimed with a conditional UPDATE (requested → exchanging; sending or queued →
exchanging when the callback overtook our record of the 202), so a code is exchanged by one worker
only. A claim left by a worker that died expires; the code is then tried again. If the dead worker had
used it (or an exchange that timed out had in fact succeeded), the upstream says invalid_grant and
the tokens are out of reach: the mailbox is then requested again once, automatically, in the same run.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import OperationalError

from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from services import attempts, upstream
from services.crypto import cipher_for
from services.cronofy import (
    CronofyError,
    InvalidGrantError,
    RateLimitedError,
    RetryPolicy,
    TokenSet,
    UnavailableError,
)
from services.mailbox_states import can_transition, transition
from services.rate_budget import BudgetTimeoutError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0
KEEP_RETRY_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
REQUESTED_AGAIN = ("Requested again automatically: an earlier exchange of this mailbox's code was cut short "
                   "(a worker stopped or Cronofy answered too late), so its tokens never arrived.")
CLAIMABLE = ("queued", "sending", "requested")
EXPIRED_CODE = ("Cronofy refused the one-time code: it had expired or was already used before it could be "
                "exchanged (codes live 10 minutes). Retry this mailbox.")


def process_receipt(receipt_id: int) -> float | None:
    """Act on one stored callback; return seconds after which to try again, or None when settled."""
    receipt = db.session.get(CallbackReceipt, receipt_id, populate_existing=True)
    if receipt is None or receipt.processed_at is not None:
        return None
    attempt = db.session.get(AuthorizationAttempt, receipt.attempt_id) if receipt.attempt_id else None
    if attempt is None:
        return _settle(receipt, "unknown")
    # Taking over an expired exchange claim means a worker died holding this code.
    taken_over = attempt.status == "exchanging"
    if not _claim(attempt):
        if attempt.status == "exchanging":
            return RECHECK_SECONDS  # another worker holds the code's exchange: look again once it is done
        return _settle(receipt, "duplicate" if _answered_before(receipt) else "superseded")
    db.session.commit()
    if receipt.code_encrypted is None:
        return _record_refusal(receipt, attempt)
    return _exchange(receipt, attempt, code_may_be_used=taken_over or bool((receipt.details or {}).get("tries")))


def run_requesting_again(receipt_id: int) -> int | None:
    """Return the run whose pump must send a mailbox again after this receipt, if any."""
    receipt = db.session.get(CallbackReceipt, receipt_id)
    if receipt is None or receipt.outcome != "requested_again" or receipt.attempt_id is None:
        return None
    return db.session.scalar(select(AuthorizationAttempt.run_id).where(AuthorizationAttempt.id == receipt.attempt_id))


def _answered_before(receipt: CallbackReceipt) -> bool:
    """Tell whether another callback of the same attempt was already acted on (so this one repeats it)."""
    return db.session.scalar(
        select(func.count(CallbackReceipt.id)).where(
            CallbackReceipt.attempt_id == receipt.attempt_id, CallbackReceipt.id != receipt.id,
            CallbackReceipt.outcome.in_(("authorized", "failed")))
    ) > 0


def _claim(attempt: AuthorizationAttempt) -> bool:
    now = utcnow()
    stale_exchange = and_(AuthorizationAttempt.status == "exchanging", AuthorizationAttempt.claimed_until < now)
    result = db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id == attempt.id,
               or_(AuthorizationAttempt.status.in_(CLAIMABLE), stale_exchange))
        .values(status="exchanging", claimed_until=now + timedelta(seconds=attempts.step_seconds()), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(attempt)
    return result.rowcount == 1


def _release(attempt: AuthorizationAttempt) -> None:
    attempt.status, attempt.claimed_until = "requested", None
    attempt.requested_at = attempt.requested_at or utcnow()
    db.session.commit()


def _settle(receipt: CallbackReceipt, outcome: str, **details) -> None:
    receipt.processed_at = utcnow()
    receipt.outcome = outcome
    if details:
        receipt.details = {**(receipt.details or {}), **details}
    db.session.commit()
    return None


def _record_refusal(receipt: CallbackReceipt, attempt: AuthorizationAttempt) -> None:
    """An error callback (§3.3.1): the mailbox fails with the upstream's key and words."""
    key = receipt.error_key or receipt.error or "authorization_failed"
    description = receipt.error_description or "Cronofy could not authorize this mailbox and gave no reason."
    attempts.fail(attempt, key, description, summary=f"Cronofy refused: {description}")
    return _settle(receipt, "failed")


def _exchange(receipt: CallbackReceipt, attempt: AuthorizationAttempt, *, code_may_be_used: bool) -> float | None:
    try:
        attempts.budget().acquire(timeout=attempts.BUDGET_WAIT)
    except BudgetTimeoutError as exc:
        _release(attempt)
        return exc.retry_after
    code = cipher_for(current_app.config).decrypt(receipt.code_encrypted)
    try:
        tokens = _client(attempt).exchange_code(code, redirect_uri=attempt.callback_url)
    except InvalidGrantError:
        attempts.fail(attempt, "code_expired", EXPIRED_CODE)
        if code_may_be_used and attempts.request_again(attempt, summary=REQUESTED_AGAIN):
            return _settle(receipt, "requested_again")
        return _settle(receipt, "failed")
    except RateLimitedError as exc:
        _release(attempt)
        return exc.retry_after if exc.retry_after is not None else random.uniform(0.5, 2.0)
    except UnavailableError as exc:
        return _unavailable(receipt, attempt, exc)
    except CronofyError as exc:
        attempts.fail(attempt, exc.error_key or f"http_{exc.status}", exc.description)
        return _settle(receipt, "failed")
    return _keep(receipt.id, attempt.id, tokens)


def _keep(receipt_id: int, attempt_id: int, tokens: TokenSet) -> None:
    """Store tokens Cronofy has already issued, retrying a busy database: the code cannot be used again."""
    for wait in KEEP_RETRY_WAITS:
        try:
            attempt = db.session.get(AuthorizationAttempt, attempt_id, populate_existing=True)
            store_tokens(db.session.get(Mailbox, attempt.mailbox_id), attempt, tokens)
            return _settle(db.session.get(CallbackReceipt, receipt_id), "authorized")
        except OperationalError:
            db.session.rollback()
            log.warning("Storing the tokens of attempt %s met a busy database; retrying in %.1fs", attempt_id, wait)
            time.sleep(wait)
    attempt = db.session.get(AuthorizationAttempt, attempt_id, populate_existing=True)
    store_tokens(db.session.get(Mailbox, attempt.mailbox_id), attempt, tokens)
    return _settle(db.session.get(CallbackReceipt, receipt_id), "authorized")


def _client(attempt: AuthorizationAttempt):
    data_center = db.session.get(Connection, attempt.connection_id).data_center
    return upstream.client_for(data_center, retry=RetryPolicy(max_attempts=1))


def _unavailable(receipt: CallbackReceipt, attempt: AuthorizationAttempt, exc: UnavailableError) -> float | None:
    """Try the exchange again later; if the upstream had used the code, the retry says invalid_grant."""
    tries = int((receipt.details or {}).get("tries", 0)) + 1
    if tries >= current_app.config["SEND_MAX_TRIES"]:
        attempts.fail(attempt, exc.error_key or "exchange_unavailable",
                      "Cronofy was unavailable each time the console tried to exchange the code. Retry this mailbox.")
        return _settle(receipt, "failed", tries=tries)
    receipt.details = {**(receipt.details or {}), "tries": tries}
    _release(attempt)
    base = current_app.config.get("SEND_RETRY_BASE_SECONDS", 1.0)
    return min(60.0, base * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


def store_tokens(mailbox: Mailbox, attempt: AuthorizationAttempt, tokens: TokenSet) -> None:
    """Keep the mailbox's tokens encrypted with its account and profile, and mark it authorized."""
    cipher = cipher_for(current_app.config)
    mailbox.access_token_encrypted = cipher.encrypt(tokens.access_token)
    if tokens.refresh_token:
        mailbox.refresh_token_encrypted = cipher.encrypt(tokens.refresh_token)
    mailbox.access_token_expires_at = tokens.expires_at
    mailbox.account_id = tokens.sub or tokens.account_id
    profile = tokens.linking_profile
    mailbox.profile_id = profile.profile_id if profile else None
    mailbox.provider_name = profile.provider_name if profile else None
    mailbox.granted_scope = tokens.scope or attempt.scope
    details = {"run_id": attempt.run_id, "attempt_id": attempt.id, "provider": mailbox.provider_name,
               "scope": mailbox.granted_scope}
    if mailbox.status == "queued":
        transition(mailbox, "requested", kind="requested", state=attempt.state, details=details,
                   summary="Cronofy's callback arrived before the request was recorded")
    if can_transition(mailbox.status, "authorized"):
        transition(mailbox, "authorized", kind="authorized", state=attempt.state, details=details,
                   summary=f"Authorized through {mailbox.provider_name or 'Cronofy'}")
    attempts.end(attempt, "authorized")
    attempt.callback_at = attempt.callback_at or utcnow()
