"""Exchanging a stored callback's code for the mailbox's tokens, exactly once (§3.3.2).

The attempt is claimed with a conditional UPDATE (requested → exchanging; sending or queued →
exchanging when the callback overtook our record of the 202), so a code is exchanged by one worker
only. A claim left by a worker that died expires; the code is then tried again. If the dead worker had
used it (or an exchange that timed out had in fact succeeded), the upstream says invalid_grant and
the tokens are out of reach: the mailbox is then requested again once, automatically, in the same run,
and the authorization Cronofy may have issued unseen is revoked when the next exchange names the
account (`services.engine.lost_grants`). Tokens Cronofy has issued are kept in memory and stored as soon as
the database answers again, however long its outage.

This runs once per mailbox of every bulk run, so the usual path is a handful of plain statements: one
read of the receipt with its attempt, the claim, and one transaction that stores the tokens. The rare
paths (refusals, expired codes, upstream trouble) load ORM objects and reuse `services.engine.attempts`.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox, MailboxEvent
from services.engine import attempts, lost_grants
from services.platform import events as platform_events
from services.platform import leases, outages, rate_budget, statements, upstream
from services.platform.crypto import cipher_for
from services.cronofy import (
    CronofyError,
    InvalidGrantError,
    RateLimitedError,
    RetryPolicy,
    TokenSet,
    UnavailableError,
)
from services.mailboxes.mailbox_states import can_transition, event_row, status_values
from services.platform.rate_budget import BudgetTimeoutError

log = logging.getLogger(__name__)

RECHECK_SECONDS = 2.0
# Waits between tries to store issued tokens while the database does not answer: they grow to the
# last one and stay there until the database is back (an outage, not a count, decides how long).
KEEP_RETRY_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0, 5.0)
KEEP_LOG_EVERY = 60.0
CLAIMABLE = ("queued", "sending", "requested")
EXPIRED_CODE = ("Cronofy refused the one-time code: it had expired or was already used before it could be "
                "exchanged (codes live 10 minutes). Retry this mailbox.")
# Retries are ours: a resent exchange must go through the budget again (and a code is single-use).
_NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Step:
    """What the job does next: try again after `retry_in` seconds, and/or pump `pump_run` again."""

    retry_in: float | None = None
    pump_run: int | None = None


SETTLED = Step()


@dataclass(frozen=True)
class Work:
    """One unprocessed receipt with what its exchange needs, read in a single query."""

    receipt_id: int
    attempt_id: int | None
    attempt_status: str | None
    mailbox_id: int | None
    run_id: int | None
    connection_id: int | None  # the connection the attempt goes through; the mailbox records it when authorized
    data_center: str | None
    callback_url_encrypted: str | None
    scope: str | None
    state: str | None
    lost_grant_suspected_at: object | None
    code_encrypted: str | None
    details: dict = field(default_factory=dict)
    claim_token: str | None = None  # set once this worker holds the exchange's claim


def process_receipt(receipt_id: int) -> Step:
    """Act on one stored callback; return when to try again, or SETTLED."""
    work = _load(receipt_id)
    if work is None:
        return SETTLED
    if work.attempt_status is None:
        return _settle(work, "unknown")
    token = _claim(work.attempt_id)
    if token is None:
        return _not_claimed(work)
    work = replace(work, claim_token=token)
    db.session.commit()
    if work.code_encrypted is None:
        return _record_refusal(work)
    # Taking over an expired exchange claim means a worker died holding this code.
    may_be_used = work.attempt_status == "exchanging" or bool(work.details.get("tries"))
    return _exchange(work, code_may_be_used=may_be_used)


_receipts, _attempts, _connections = CallbackReceipt.__table__, AuthorizationAttempt.__table__, Connection.__table__
_mailboxes = Mailbox.__table__
_LOAD = (
    select(_receipts.c.id, _receipts.c.attempt_id, _attempts.c.status, _attempts.c.mailbox_id, _attempts.c.run_id,
           _attempts.c.connection_id, _connections.c.data_center, _attempts.c.callback_url_encrypted,
           _attempts.c.scope, _attempts.c.state,
           _mailboxes.c.lost_grant_suspected_at, _receipts.c.code_encrypted, _receipts.c.details)
    .select_from(_receipts)
    .outerjoin(_attempts, _attempts.c.id == _receipts.c.attempt_id)
    .outerjoin(_connections, _connections.c.id == _attempts.c.connection_id)
    .outerjoin(_mailboxes, _mailboxes.c.id == _attempts.c.mailbox_id)
    .where(_receipts.c.id == bindparam("p_receipt"), _receipts.c.processed_at.is_(None))
)
_CLAIM = (
    update(_attempts)
    .where(_attempts.c.id == bindparam("p_attempt"),
           or_(_attempts.c.status.in_(CLAIMABLE),
               and_(_attempts.c.status == "exchanging", _attempts.c.claimed_until < bindparam("p_now"))))
    .values(status="exchanging", claimed_until=bindparam("p_until"), updated_at=bindparam("p_changed"),
            requeued_until=None, claim_token=bindparam("p_token"))
)
_INSERT_EVENTS = insert(MailboxEvent.__table__)
_LOCK_MAILBOX = (select(Mailbox.__table__.c.status, Mailbox.__table__.c.organization_id)
                 .where(Mailbox.__table__.c.id == bindparam("p_mailbox")).with_for_update())


def _load(receipt_id: int) -> Work | None:
    row = statements.execute(_LOAD, {"p_receipt": receipt_id}).one_or_none()
    return None if row is None else Work(*row[:-1], details=dict(row[-1] or {}))


def _claim(attempt_id: int) -> str | None:
    """Claim the attempt's exchange under a fresh token; return the token, or None if another worker has it."""
    now, seconds, token = utcnow(), leases.lease_seconds(), uuid.uuid4().hex
    until = now + timedelta(seconds=seconds)
    result = statements.execute(_CLAIM, {"p_attempt": attempt_id, "p_now": now, "p_until": until, "p_changed": now,
                                         "p_token": token})
    if result.rowcount != 1:
        return None
    # The worker's heartbeat keeps the claim while the exchange waits for the budget and for Cronofy.
    leases.hold(leases.Lease(AuthorizationAttempt, {"id": attempt_id, "claim_token": token}, "claimed_until",
                             until, seconds, token_column="claim_token"))
    return token


def _not_claimed(work: Work) -> Step:
    status = db.session.scalar(select(AuthorizationAttempt.status).where(AuthorizationAttempt.id == work.attempt_id))
    if status == "exchanging":
        return Step(retry_in=RECHECK_SECONDS)  # another worker holds the code's exchange: look again later
    return _settle(work, "duplicate" if _answered_before(work) else "superseded")


def _answered_before(work: Work) -> bool:
    """Tell whether another callback of the same attempt was already acted on (so this one repeats it)."""
    return db.session.scalar(
        select(func.count(CallbackReceipt.id)).where(
            CallbackReceipt.attempt_id == work.attempt_id, CallbackReceipt.id != work.receipt_id,
            CallbackReceipt.outcome.in_(("authorized", "failed")))
    ) > 0


def _settle(work: Work, outcome: str, *, details: dict | None = None) -> Step:
    values = {"processed_at": utcnow(), "outcome": outcome}
    if details is not None:
        values["details"] = details
    statements.set_by_id(CallbackReceipt, work.receipt_id, values)
    db.session.commit()
    return SETTLED


def _release(work: Work, *, details: dict | None = None) -> None:
    """Give the claim back (the attempt waits for its exchange again) and commit.

    The caller schedules the retry, so recover() leaves the attempt to it for a while.
    """
    if details is not None:
        db.session.execute(update(CallbackReceipt).where(CallbackReceipt.id == work.receipt_id)
                           .values(details=details).execution_options(synchronize_session=False))
    db.session.execute(
        update(AuthorizationAttempt).where(AuthorizationAttempt.id == work.attempt_id)
        .values(status="requested", claimed_until=None, claim_token=None,
                requeued_until=utcnow() + leases.QUEUE_GRACE,
                requested_at=func.coalesce(AuthorizationAttempt.requested_at, utcnow()))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _attempt(work: Work) -> AuthorizationAttempt:
    return db.session.get(AuthorizationAttempt, work.attempt_id, populate_existing=True)


def _record_refusal(work: Work) -> Step:
    """An error callback (§3.3.1): the mailbox fails with the upstream's key and words."""
    receipt = db.session.get(CallbackReceipt, work.receipt_id)
    key = receipt.error_key or receipt.error or "authorization_failed"
    description = receipt.error_description or "Cronofy could not authorize this mailbox and gave no reason."
    attempts.fail(_attempt(work), key, description, summary=f"Cronofy refused: {description}")
    return _settle(work, "failed")


def _exchange(work: Work, *, code_may_be_used: bool) -> Step:
    try:
        rate_budget.budget().acquire(timeout=rate_budget.BUDGET_WAIT)
    except BudgetTimeoutError as exc:
        _release(work)
        return Step(retry_in=exc.retry_after)
    code = cipher_for(current_app.config).decrypt(work.code_encrypted)
    try:
        tokens = upstream.client_for(work.data_center, retry=_NO_RETRY).exchange_code(
            code, redirect_uri=attempts.callback_url_of(work))
    except InvalidGrantError:
        return _expired_code(work, code_may_be_used)
    except RateLimitedError as exc:
        _release(work)
        return Step(retry_in=exc.retry_after if exc.retry_after is not None else random.uniform(0.5, 2.0))
    except UnavailableError as exc:
        return _unavailable(work, exc)
    except CronofyError as exc:
        attempts.fail(_attempt(work), exc.error_key or f"http_{exc.status}", exc.description)
        return _settle(work, "failed")
    if work.lost_grant_suspected_at is not None and (tokens.sub or tokens.account_id):
        return _replace_lost_grant(work, tokens)
    return _keep(work, tokens)


def _expired_code(work: Work, code_may_be_used: bool) -> Step:
    """A refused code: plainly expired, or used by an exchange of ours that was cut short (never "expired")."""
    attempt = _attempt(work)
    if not code_may_be_used:
        attempts.fail(attempt, "code_expired", EXPIRED_CODE)
        return _settle(work, "failed")
    lost_grants.suspect(work.mailbox_id)
    attempts.fail(attempt, lost_grants.INTERRUPTED_KEY, lost_grants.INTERRUPTED)
    if attempts.request_again(attempt, summary=lost_grants.REQUESTED_AGAIN):
        _settle(work, "requested_again")
        return Step(pump_run=work.run_id)
    return _settle(work, "failed")


def _replace_lost_grant(work: Work, tokens: TokenSet) -> Step:
    """Revoke every authorization of the account (the lost one and this one), then request once more.

    If Cronofy does not confirm the revocation, these tokens are kept (the mailbox works) and the mark
    stays, so the next exchange of the mailbox tries again.
    """
    if not lost_grants.revoke_account(work.data_center, tokens.sub or tokens.account_id):
        return _keep(work, tokens)
    lost_grants.clear(work.mailbox_id)
    attempt = _attempt(work)
    attempts.fail(attempt, lost_grants.REPLACED_KEY, lost_grants.REPLACED)
    if attempts.request_again(attempt, summary=lost_grants.REQUESTED_ONCE_MORE, once_per_run=False):
        _settle(work, "replaced_lost_grant")
        return Step(pump_run=work.run_id)
    return _settle(work, "failed")


def _unavailable(work: Work, exc: UnavailableError) -> Step:
    """Try the exchange again later; if the upstream had used the code, the retry says invalid_grant."""
    tries = int(work.details.get("tries", 0)) + 1
    details = {**work.details, "tries": tries}
    if tries >= current_app.config["SEND_MAX_TRIES"]:
        # The last try may have timed out after Cronofy issued the tokens: the mailbox's next exchange
        # then revokes whatever Cronofy holds for its account first.
        lost_grants.suspect(work.mailbox_id)
        attempts.fail(_attempt(work), exc.error_key or "exchange_unavailable",
                      "Cronofy was unavailable each time the console tried to exchange the code. Retry this mailbox.")
        return _settle(work, "failed", details=details)
    _release(work, details=details)
    base = current_app.config.get("SEND_RETRY_BASE_SECONDS", 1.0)
    return Step(retry_in=min(60.0, base * 2 ** (tries - 1)) * random.uniform(0.5, 1.0))


class ClaimLost(Exception):
    """The attempt is no longer ours to finish: another worker took it over while we waited."""


def _keep(work: Work, tokens: TokenSet) -> Step:
    """Store tokens Cronofy has already issued, however long the database is busy or down.

    The code cannot be used again, so giving up would leave an authorization at Cronofy that nobody
    holds. If another worker took the attempt over meanwhile, these tokens are revoked instead.
    """
    started, logged, tries = time.monotonic(), None, 0
    while True:
        try:
            store_tokens(work, tokens)
            return _settle(work, "authorized")
        except ClaimLost:
            _rollback_quietly()
            return _give_back(work, tokens)
        except SQLAlchemyError as exc:
            if not outages.database_unreachable(exc):
                raise
            _rollback_quietly()
            waited = time.monotonic() - started
            if logged is None or waited - logged >= KEEP_LOG_EVERY:
                logged = waited
                log.warning("Storing the tokens of attempt %s: the database is unavailable (%s) for %.0fs; the "
                            "tokens are kept and stored as soon as it answers", work.attempt_id,
                            outages.reason(exc), waited)
            time.sleep(KEEP_RETRY_WAITS[min(tries, len(KEEP_RETRY_WAITS) - 1)])
            tries += 1


def _rollback_quietly() -> None:
    """Roll back; a connection that died with the database may refuse even that (the pool replaces it)."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        outages.give_back_session()


def _give_back(work: Work, tokens: TokenSet) -> Step:
    """Another worker finishes this attempt: revoke the tokens in hand so that no stray authorization stays."""
    log.warning("Attempt %s was taken over while its tokens waited for the database; revoking them", work.attempt_id)
    if not lost_grants.revoke_token(work.data_center, tokens.refresh_token or tokens.access_token):
        lost_grants.suspect(work.mailbox_id)
    return _settle(work, "superseded")


def store_tokens(work: Work, tokens: TokenSet) -> None:
    """Keep the mailbox's tokens encrypted with its account and profile, mark it and the attempt authorized."""
    cipher, now = cipher_for(current_app.config), utcnow()
    profile = tokens.linking_profile
    provider = profile.provider_name if profile else None
    values = {"access_token_encrypted": cipher.encrypt(tokens.access_token),
              "access_token_expires_at": tokens.expires_at, "account_id": tokens.sub or tokens.account_id,
              "profile_id": profile.profile_id if profile else None, "provider_name": provider,
              "granted_scope": tokens.scope or work.scope, "updated_at": now}
    if tokens.refresh_token:
        values["refresh_token_encrypted"] = cipher.encrypt(tokens.refresh_token)
    # Locked, so the pump recording the batch's 202 cannot move the mailbox between our read and write.
    mailbox = statements.execute(_LOCK_MAILBOX, {"p_mailbox": work.mailbox_id}).one_or_none()
    if mailbox is not None:
        details = {"run_id": work.run_id, "attempt_id": work.attempt_id, "provider": provider,
                   "scope": values["granted_scope"]}
        events = _authorized_events(work, mailbox, now, details, provider)
        if events:
            values.update(status_values("authorized", now))
            if work.connection_id is not None:
                values["connection_id"] = work.connection_id
            if events[0]["kind"] == "requested":
                values["requested_at"] = now
        statements.set_by_id(Mailbox, work.mailbox_id, values)
        if events:
            statements.execute(_INSERT_EVENTS, events)
        if events and events[-1]["kind"] == "authorized":
            platform_events.record("mailbox.authorized", organization_id=mailbox.organization_id,
                                   subject_type="mailbox", subject_id=work.mailbox_id)
    if not attempts.end_authorized(work.attempt_id, now, work.claim_token):
        raise ClaimLost(work.attempt_id)


def _authorized_events(work: Work, mailbox, now, details: dict, provider: str | None) -> list[dict]:
    """Return the timeline rows of the move to authorized (through requested if the 202 is not recorded yet)."""
    events, status = [], mailbox.status
    if status == "queued":
        events.append(event_row(work.mailbox_id, mailbox.organization_id, "requested", now, from_status="queued",
                                to_status="requested", state=work.state, details=details,
                                summary="Cronofy's callback arrived before the request was recorded"))
        status = "requested"
    if can_transition(status, "authorized"):
        events.append(event_row(work.mailbox_id, mailbox.organization_id, "authorized", now, from_status=status,
                                to_status="authorized", state=work.state, details=details,
                                summary=f"Authorized through {provider or 'Cronofy'}"))
    return events
