"""The pump: sends a run's queued attempts in batches of up to 50 within the shared rate budget.

One pump per run at a time: it holds the run's lease (`services.platform.leases`, renewed by the worker's
heartbeat) and checks it in the transaction that claims each batch or ends a wave, so a pump that lost
it (paused while another worker took over) stops instead of sending beside the new one; before each
POST it checks its claim on the batch. It works for a bounded window and then asks to be enqueued
again, so a killed worker costs one lease time and memory stays flat: it never holds more than one
batch of rows. Order of precedence on the upstream budget: exchanges first (the pump yields while
callbacks wait), then new requests, capped in flight so that every code can be exchanged well within
its 10 minutes (§3.1, §5).
"""

from __future__ import annotations

import logging
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
from services.connections import connections
from services.cronofy import AuthenticationError, CronofyError, DelegatedRequest, RateLimitedError, RetryPolicy
from services.engine import attempts, run_clock
from services.engine import batch_outcomes as outcomes
from services.engine.runs import has_later_wave, live_count
from services.platform import leases, rate_budget, upstream
from services.platform.rate_budget import BudgetTimeoutError

log = logging.getLogger(__name__)

BATCH = 50
IDLE_SLEEP = 0.2
# Unexchanged callbacks above this many make the pump hold new requests back.
EXCHANGE_BACKLOG = 25

SENT, WAIT, MORE, STOP = "sent", "wait", "more", "stop"


def pump(run_id: int, *, window: float | None = None) -> bool:
    """Drive the run for up to `window` seconds; return whether it should be enqueued again."""
    lease = _take_lease(run_id)
    if lease is None:
        return False  # another worker pumps it; recover() takes over if that one dies
    again = False
    try:
        again = _drive(run_id, lease, current_app.config["PUMP_WINDOW_SECONDS"] if window is None else window)
        return again
    finally:
        db.session.rollback()
        # Handing over to the next pump job: recover() leaves the run to it for a while.
        lease.release({"pump_requeued_until": utcnow() + leases.QUEUE_GRACE if again else None})
        db.session.commit()


def _take_lease(run_id: int) -> leases.Lease | None:
    """Take the run's pump lease for this worker's heartbeat to renew; either way this job had its turn."""
    lease = leases.acquire(AuthorizationRun, run_id, "pump_lease_until", "pump_holder",
                           values={"pump_requeued_until": None})
    if lease is None:
        db.session.execute(update(AuthorizationRun).where(AuthorizationRun.id == run_id)
                           .values(pump_requeued_until=None).execution_options(synchronize_session=False))
    db.session.commit()
    return lease and leases.hold(lease)


def _drive(run_id: int, lease: leases.Lease, window: float) -> bool:
    """Step the run until the window closes (True: enqueue again), it stops, or the lease is lost."""
    deadline, swept = time.monotonic() + window, None
    while time.monotonic() < deadline:
        if swept is None or time.monotonic() - swept > leases.renew_every():
            _requeue_orphans(run_id)
            swept = time.monotonic()
        outcome = _step(run_id, lease)
        db.session.rollback()  # end the read transaction: never hold locks while idle
        if lease.lost:
            log.warning("The pump of run %s lost its lease to another worker; it stops here", run_id)
            return False
        if outcome == STOP:
            return False
        if outcome == WAIT:
            time.sleep(IDLE_SLEEP)
    return True


def _requeue_orphans(run_id: int) -> None:
    # A batch whose claim lapsed belongs to a pump that died mid-send (a live sender renews its claim). If
    # its request did reach the upstream, the resend yields a second callback with the same state: harmless.
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.run_id == run_id, AuthorizationAttempt.status == "sending",
               AuthorizationAttempt.claimed_until < utcnow())
        .values(status="queued", claimed_until=None, batch_key=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _step(run_id: int, lease: leases.Lease) -> str:
    run = db.session.get(AuthorizationRun, run_id, populate_existing=True)
    if run is None or run.status != "running":
        return STOP
    if run.action == "revoke":
        return _revoke_step(run, lease)
    if _exchange_backlog() > EXCHANGE_BACKLOG or _in_flight() >= attempts.max_in_flight():
        return WAIT
    batch = _claim_batch(run, min(BATCH, attempts.max_in_flight() - _in_flight()), lease)
    if batch:
        _send(run, batch, lease)
        return SENT
    if lease.lost:
        return STOP
    if live_count(run, wave=run.current_wave):
        return WAIT
    return _finish_wave(run, lease)


def _exchange_backlog() -> int:
    return db.session.scalar(
        select(func.count(CallbackReceipt.id)).where(CallbackReceipt.processed_at.is_(None))) or 0


def _in_flight() -> int:
    """Return the requests sent whose callback has not come yet, over every run of the application."""
    return db.session.scalar(
        select(func.count(AuthorizationAttempt.id)).where(
            AuthorizationAttempt.status.in_(("sending", "requested")), AuthorizationAttempt.callback_at.is_(None))
    ) or 0


def _claim_batch(run: AuthorizationRun, size: int, lease: leases.Lease) -> list[AuthorizationAttempt]:
    """Take up to size due queued attempts of the current wave (conditional UPDATE, so never twice).

    Only while this pump holds the run's lease: the renewal and the claim commit together.
    """
    now = utcnow()
    ids = db.session.scalars(
        select(AuthorizationAttempt.id)
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.wave == run.current_wave,
               AuthorizationAttempt.status == "queued",
               (AuthorizationAttempt.next_try_at.is_(None)) | (AuthorizationAttempt.next_try_at <= now))
        .order_by(AuthorizationAttempt.id).limit(max(size, 0))
    ).all()
    if not ids or not lease.renew():
        db.session.rollback()
        return []
    key = uuid.uuid4().hex
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_(ids), AuthorizationAttempt.status == "queued")
        .values(status="sending", batch_key=key, claimed_until=lease.until,
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


def _send(run: AuthorizationRun, batch: list[AuthorizationAttempt], lease: leases.Lease) -> None:
    """POST one batch under a claim the heartbeat renews (the POST may take a read timeout), then settle it."""
    claim = leases.hold(leases.Lease(AuthorizationAttempt, {"batch_key": batch[0].batch_key, "status": "sending"},
                                     "claimed_until", lease.until, lease.seconds))
    try:
        _post(run, batch, lease, claim)
    finally:
        leases.let_go(claim)


def _still_ours(claim: leases.Lease, ids: list[int]) -> bool:
    """Renew the batch's claim; False when recovery or another pump requeued it (then it is theirs to send)."""
    kept = claim.renew()
    db.session.commit()
    if kept:  # one read brings the batch's rows back after the commit, rather than one read per attempt
        db.session.scalars(select(AuthorizationAttempt).where(AuthorizationAttempt.id.in_(ids))).all()
    return kept


def _post(run: AuthorizationRun, batch: list[AuthorizationAttempt], lease: leases.Lease, claim: leases.Lease) -> None:
    """POST the batch; on 401 refresh once, on 429 wait and resend, otherwise settle it."""
    items, ids, refreshed, limited = _items(batch), [a.id for a in batch], False, 0
    client = _client(run)  # kept per thread (services/platform/upstream.py): not closed here
    while True:
        if lease.lost or not _acquire_budget():
            return outcomes.release(batch)
        if not _still_ours(claim, ids):
            return None
        try:
            token = connections.fresh_access_token(run.connection_id)
            client.request_delegated_access(token, items)
        except connections.ReauthorizationNeeded as exc:
            return outcomes.pause_and_release(run, batch, str(exc))
        except connections.ConnectionActionError as exc:
            return outcomes.connection_trouble(run, batch, exc)
        except AuthenticationError:
            if refreshed:
                return outcomes.pause_and_release(run, batch, _REAUTH)
            refreshed = True
            _force_refresh(run.connection_id)
            continue
        except RateLimitedError as exc:
            limited += 1
            _rest(run.id, exc.retry_after if exc.retry_after is not None else outcomes.backoff(limited), lease)
            continue
        except CronofyError as exc:
            return outcomes.settle_error(run, batch, exc)
        return outcomes.mark_requested(batch)


_REAUTH = ("Cronofy no longer accepts the service account's token, even after a refresh. "
           "Reconnect the connection, then resume this run.")


def _acquire_budget() -> bool:
    try:
        rate_budget.budget().acquire(timeout=rate_budget.BUDGET_WAIT)
    except BudgetTimeoutError:
        return False
    return True


def _rest(run_id: int, seconds: float, lease: leases.Lease) -> None:
    """Sleep off a 429 in slices (the heartbeat keeps the leases), waking early if the run's lease is lost."""
    log.info("Cronofy answered 429; resending the batch of run %s in %.1f s", run_id, seconds)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not lease.lost:
        time.sleep(min(left, 1.0))


def _force_refresh(connection_id: int) -> None:
    db.session.execute(
        update(Connection).where(Connection.id == connection_id)
        .values(access_token_expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _finish_wave(run: AuthorizationRun, lease: leases.Lease) -> str:
    """The current wave has nothing live: move on, pause on its failure rate, or complete the run."""
    if not has_later_wave(run):
        run.finished_at = utcnow()
        run_clock.set_status(run, "completed")
        return _commit_holding(lease, STOP)
    failed, counted = _wave_outcome(run)
    share = failed / counted if counted else 0.0
    label = "Canary wave" if run.current_wave == 1 and run.canary_size else f"Wave {run.current_wave}"
    summary = f"{label}: {failed} of {counted} failed ({share:.0%})"
    if share > run.failure_threshold:
        # The reason states what happened; the run page's banner says what to do next, once.
        run.pause_reason = f"{summary}, above your {run.failure_threshold:.0%} threshold."
        run_clock.set_status(run, "paused")
    elif run.auto_continue:
        run.current_wave += 1
        run_clock.start_wave(run)
        return _commit_holding(lease, MORE)
    else:
        run.pause_reason = f"{summary}."
        run_clock.set_status(run, "awaiting_confirmation")
    return _commit_holding(lease, STOP)


def _commit_holding(lease: leases.Lease, outcome: str) -> str:
    """Commit the run's change only while this pump holds its lease (else the new holder decides)."""
    if not lease.renew():
        db.session.rollback()
        return STOP
    db.session.commit()
    return outcome


def _wave_outcome(run: AuthorizationRun) -> tuple[int, int]:
    rows = dict(db.session.execute(
        select(AuthorizationAttempt.status, func.count(AuthorizationAttempt.id))
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.wave == run.current_wave,
               AuthorizationAttempt.is_retried.is_(False), AuthorizationAttempt.status != "cancelled")
        .group_by(AuthorizationAttempt.status)
    ).all())
    return rows.get("failed", 0), sum(rows.values())


def _revoke_step(run: AuthorizationRun, lease: leases.Lease) -> str:
    from services.engine.revoke_runs import revoke_next

    if revoke_next(run):
        return SENT
    return WAIT if live_count(run) else _finish_wave(run, lease)
