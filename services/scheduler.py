"""The pump: sends a run's queued attempts in batches of up to 50 within the shared rate budget.

One pump per run at a time (a row lease on the run, renewed each step). It works for a bounded window
and then asks to be enqueued again, so a killed worker costs at most one lease time and memory stays
flat: it never holds more than one batch of rows. Order of precedence on the upstream budget:
exchanges first (the pump yields while callbacks wait), then new requests, capped in flight so that
every code can be exchanged well within its 10 minutes (§3.1, §5).
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from services import attempts, connections, leases, upstream
from services.cronofy import (
    AuthenticationError,
    CronofyError,
    DelegatedRequest,
    ForbiddenError,
    InvalidRequestError,
    RateLimitedError,
    RetryPolicy,
    UnavailableError,
)
from services.rate_budget import BudgetTimeoutError
from services.runs import has_later_wave, live_count

log = logging.getLogger(__name__)

BATCH = 50
IDLE_SLEEP = 0.2
# Unexchanged callbacks above this many make the pump hold new requests back.
EXCHANGE_BACKLOG = 25
_ENTRY_INDEX = re.compile(r"^service_account_authorizations\[(\d+)\]")

SENT, WAIT, MORE, STOP = "sent", "wait", "more", "stop"


def pump(run_id: int, *, window: float | None = None) -> bool:
    """Drive the run for up to `window` seconds; return whether it should be enqueued again."""
    if not leases.try_acquire(AuthorizationRun, run_id, "pump_lease_until", attempts.pump_lease_seconds()):
        db.session.rollback()
        return False  # another worker pumps it; recover() takes over if that one dies
    db.session.commit()
    window = current_app.config["PUMP_WINDOW_SECONDS"] if window is None else window
    deadline = time.monotonic() + window
    try:
        _requeue_orphans(run_id)
        renewed = time.monotonic()
        while time.monotonic() < deadline:
            outcome = _step(run_id)
            db.session.rollback()  # end the read transaction: never hold locks while idle
            if outcome == STOP:
                return False
            if time.monotonic() - renewed > attempts.step_seconds() / 4:
                _renew(run_id)
                renewed = time.monotonic()
            if outcome == WAIT:
                time.sleep(IDLE_SLEEP)
        return True
    finally:
        db.session.rollback()
        leases.release(AuthorizationRun, run_id, "pump_lease_until")
        db.session.commit()


def _renew(run_id: int) -> None:
    db.session.execute(
        update(AuthorizationRun).where(AuthorizationRun.id == run_id)
        .values(pump_lease_until=utcnow() + timedelta(seconds=attempts.pump_lease_seconds()))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _requeue_orphans(run_id: int) -> None:
    # We hold the lease: any batch still "sending" belongs to a pump that died mid-send. If its request
    # did reach the upstream, the resend yields a second callback with the same state, which is harmless.
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.run_id == run_id, AuthorizationAttempt.status == "sending")
        .values(status="queued", claimed_until=None, batch_key=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _step(run_id: int) -> str:
    run = db.session.get(AuthorizationRun, run_id, populate_existing=True)
    if run is None or run.status != "running":
        return STOP
    if run.action == "revoke":
        return _revoke_step(run)
    if _exchange_backlog() > EXCHANGE_BACKLOG or _in_flight() >= attempts.max_in_flight():
        return WAIT
    batch = _claim_batch(run, min(BATCH, attempts.max_in_flight() - _in_flight()))
    if batch:
        _send(run, batch)
        return SENT
    if live_count(run, wave=run.current_wave):
        return WAIT
    return _finish_wave(run)


def _exchange_backlog() -> int:
    return db.session.scalar(
        select(func.count(CallbackReceipt.id)).where(CallbackReceipt.processed_at.is_(None))) or 0


def _in_flight() -> int:
    """Return the requests sent whose callback has not come yet, over every run of the application."""
    return db.session.scalar(
        select(func.count(AuthorizationAttempt.id)).where(
            AuthorizationAttempt.status.in_(("sending", "requested")), AuthorizationAttempt.callback_at.is_(None))
    ) or 0


def _claim_batch(run: AuthorizationRun, size: int) -> list[AuthorizationAttempt]:
    """Take up to size due queued attempts of the current wave (conditional UPDATE, so never twice)."""
    now = utcnow()
    ids = db.session.scalars(
        select(AuthorizationAttempt.id)
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.wave == run.current_wave,
               AuthorizationAttempt.status == "queued",
               (AuthorizationAttempt.next_try_at.is_(None)) | (AuthorizationAttempt.next_try_at <= now))
        .order_by(AuthorizationAttempt.id).limit(max(size, 0))
    ).all()
    if not ids:
        return []
    key = uuid.uuid4().hex
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_(ids), AuthorizationAttempt.status == "queued")
        .values(status="sending", batch_key=key, claimed_until=now + timedelta(seconds=attempts.pump_lease_seconds()),
                send_tries=AuthorizationAttempt.send_tries + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return list(db.session.scalars(
        select(AuthorizationAttempt).where(AuthorizationAttempt.batch_key == key).order_by(AuthorizationAttempt.id)))


def _items(batch: list[AuthorizationAttempt]) -> list[DelegatedRequest]:
    emails = dict(db.session.execute(
        select(Mailbox.id, Mailbox.email).where(Mailbox.id.in_([a.mailbox_id for a in batch]))).all())
    return [DelegatedRequest(email=emails[a.mailbox_id], callback_url=attempts.callback_url_of(a), scope=a.scope,
                             state=a.state)
            for a in batch]


def _client(run: AuthorizationRun):
    data_center = db.session.get(Connection, run.connection_id).data_center
    # Retries are ours (below): a resend must go through the budget and keep the lease fresh.
    return upstream.client_for(data_center, retry=RetryPolicy(max_attempts=1))


def _send(run: AuthorizationRun, batch: list[AuthorizationAttempt]) -> None:
    """POST one batch; on 401 refresh once, on 429 wait and resend, otherwise settle it."""
    items, refreshed, limited = _items(batch), False, 0
    client = _client(run)  # kept per thread (services/upstream.py): not closed here
    while True:
        if not _acquire_budget():
            return _release(batch)
        try:
            token = connections.fresh_access_token(run.connection_id)
            client.request_delegated_access(token, items)
        except connections.ReauthorizationNeeded as exc:
            return _pause_and_release(run, batch, str(exc))
        except connections.ConnectionActionError as exc:
            return _connection_trouble(run, batch, exc)
        except AuthenticationError:
            if refreshed:
                return _pause_and_release(run, batch, _REAUTH)
            refreshed = True
            _force_refresh(run.connection_id)
            continue
        except RateLimitedError as exc:
            limited += 1
            _rest(run.id, exc.retry_after if exc.retry_after is not None else _backoff(limited))
            continue
        except CronofyError as exc:
            return _settle_error(run, batch, exc)
        return _mark_requested(batch)


_REAUTH = ("Cronofy no longer accepts the service account's token, even after a refresh. "
           "Reconnect the connection, then resume this run.")


def _acquire_budget() -> bool:
    try:
        attempts.budget().acquire(timeout=attempts.BUDGET_WAIT)
    except BudgetTimeoutError:
        return False
    return True


def _rest(run_id: int, seconds: float) -> None:
    """Sleep off a 429 in slices, keeping the run's lease alive."""
    log.info("Cronofy answered 429; resending the batch of run %s in %.1f s", run_id, seconds)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 5.0))
        _renew(run_id)


def _backoff(tries: int) -> float:
    """Return a jittered exponential delay for the given try (1-based)."""
    base = current_app.config.get("SEND_RETRY_BASE_SECONDS", 1.0)
    return min(60.0, base * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


def _force_refresh(connection_id: int) -> None:
    db.session.execute(
        update(Connection).where(Connection.id == connection_id)
        .values(access_token_expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _mark_requested(batch: list[AuthorizationAttempt]) -> None:
    attempts.mark_requested([a.id for a in batch])
    db.session.commit()


def _release(batch: list[AuthorizationAttempt], *, delay: float = 0.0, count_try: bool = False) -> None:
    """Put a batch back in the queue (due after delay); the try counts only when the upstream failed."""
    due = utcnow() + timedelta(seconds=delay) if delay else None
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_([a.id for a in batch]), AuthorizationAttempt.status == "sending")
        .values(status="queued", claimed_until=None, batch_key=None, next_try_at=due,
                send_tries=AuthorizationAttempt.send_tries - (0 if count_try else 1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _pause_and_release(run: AuthorizationRun, batch, reason: str) -> None:
    _release(batch)
    pause(run.id, reason)


def pause(run_id: int, reason: str) -> None:
    """Pause a running run with a reason shown to the admin (the engine's own pauses)."""
    db.session.execute(
        update(AuthorizationRun).where(AuthorizationRun.id == run_id, AuthorizationRun.status == "running")
        .values(status="paused", pause_reason=reason).execution_options(synchronize_session=False)
    )
    db.session.commit()


def _connection_trouble(run: AuthorizationRun, batch, exc: Exception) -> None:
    connection = db.session.get(Connection, run.connection_id, populate_existing=True)
    if connection is None or connection.status != "active":
        return _pause_and_release(run, batch, f"{exc} Reconnect it, then resume this run.")
    _retry_or_fail(batch, "connection_unavailable", str(exc))


def _settle_error(run: AuthorizationRun, batch, exc: CronofyError) -> None:
    if isinstance(exc, UnavailableError):
        return _retry_or_fail(batch, exc.error_key or "upstream_unavailable", _unavailable_words(exc))
    if isinstance(exc, ForbiddenError):
        return _pause_and_release(run, batch, f"Cronofy refused the request: {exc.description} "
                                              "Reconnect with the needed permissions, then resume.")
    if isinstance(exc, InvalidRequestError) and _fail_named_entries(batch, exc):
        return None
    for attempt in batch:
        attempts.fail(attempt, exc.error_key or f"http_{exc.status}", exc.description)
    db.session.commit()


def _unavailable_words(exc: UnavailableError) -> str:
    if exc.error_key == "timeout":
        return "Cronofy did not answer in time, several times in a row."
    return f"Cronofy was unavailable, several times in a row ({exc.description})."


def _retry_or_fail(batch: list[AuthorizationAttempt], key: str, description: str) -> None:
    """Resend later with jittered exponential backoff; after SEND_MAX_TRIES, fail with the reason."""
    limit = current_app.config["SEND_MAX_TRIES"]
    spent = [a for a in batch if a.send_tries >= limit]
    for attempt in spent:
        if _still_sending(attempt):
            attempts.fail(attempt, key, description)
    db.session.commit()
    rest = [a for a in batch if a.send_tries < limit]
    if rest:
        _release(rest, delay=_backoff(max(a.send_tries for a in rest)), count_try=True)


def _still_sending(attempt: AuthorizationAttempt) -> bool:
    db.session.refresh(attempt)
    return attempt.status == "sending"


def _fail_named_entries(batch: list[AuthorizationAttempt], exc: InvalidRequestError) -> bool:
    """For a 422 naming single entries, fail those and resend the rest; return False if none is named."""
    named: dict[int, str] = {}
    for field_name, entries in exc.errors.items():
        match = _ENTRY_INDEX.match(field_name)
        if match is None:
            return False
        described = "; ".join(str(e.get("description") or e.get("key")) for e in entries if isinstance(e, dict))
        named[int(match.group(1))] = f"{field_name}: {described}"
    if not named:
        return False
    for index, attempt in enumerate(batch):
        if index in named:
            attempts.fail(attempt, exc.error_key or "invalid_request", named[index])
    db.session.commit()
    _release([a for i, a in enumerate(batch) if i not in named])
    return True


def _finish_wave(run: AuthorizationRun) -> str:
    """The current wave has nothing live: move on, pause on its failure rate, or complete the run."""
    if not has_later_wave(run):
        run.status, run.finished_at = "completed", utcnow()
        db.session.commit()
        return STOP
    failed, counted = _wave_outcome(run)
    share = failed / counted if counted else 0.0
    label = "Canary wave" if run.current_wave == 1 and run.canary_size else f"Wave {run.current_wave}"
    summary = f"{label}: {failed} of {counted} failed ({share:.0%})"
    if share > run.failure_threshold:
        run.status = "paused"
        run.pause_reason = f"{summary}, above your {run.failure_threshold:.0%} threshold. " \
                           "Look at the failures, then resume to send the rest, or cancel."
    elif run.auto_continue:
        run.current_wave += 1
        db.session.commit()
        return MORE
    else:
        run.status = "awaiting_confirmation"
        run.pause_reason = f"{summary}. Confirm to send the rest."
    db.session.commit()
    return STOP


def _wave_outcome(run: AuthorizationRun) -> tuple[int, int]:
    rows = dict(db.session.execute(
        select(AuthorizationAttempt.status, func.count(AuthorizationAttempt.id))
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.wave == run.current_wave,
               AuthorizationAttempt.is_retried.is_(False), AuthorizationAttempt.status != "cancelled")
        .group_by(AuthorizationAttempt.status)
    ).all())
    return rows.get("failed", 0), sum(rows.values())


def _revoke_step(run: AuthorizationRun) -> str:
    from services.revoke_runs import revoke_next

    if revoke_next(run):
        return SENT
    return WAIT if live_count(run) else _finish_wave(run)
