"""What the periodic recover() job finds and repairs after a crash, a lost enqueue or a silent upstream.

A pump or an exchange has stalled when nobody holds its lease (a worker renews its leases every few
seconds, so a killed one's lapse within LEASE_SECONDS) and no job for it is waiting in the queue. Work
whose lease lapses before the next pass is handed back for the moment it does, so a killed worker's
run resumes one lease time after the kill. Whatever recover() hands back is marked as queued
(`pump_requeued_until`, `requeued_until`) until its job has had its chance, and the job clears the mark
when it picks the work up: a later pass neither enqueues nor reports it again unless it stalls anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.base import utcnow
from services.engine import attempts
from services.platform import leases

RECEIPT_GRACE = timedelta(seconds=5)
LIMIT = 500
# Handed back this long after the lease lapses, so that the job never finds it still held.
AFTER_LAPSE = 0.5
NO_CALLBACK = ("Cronofy accepted the request but never sent its result. The mailbox may still be syncing "
               "at Cronofy, or the callback was lost; retry it.")


@dataclass
class Recovered:
    """What one pass hands back: (id, seconds to wait) of stalled pumps and exchanges; failed stale requests."""

    runs: list[tuple[int, float]] = field(default_factory=list)
    receipts: list[tuple[int, float]] = field(default_factory=list)
    stale: int = 0


def recover() -> Recovered:
    """Requeue orphaned sends, fail stale requests, and mark the stalled pumps and exchanges to enqueue again."""
    _requeue_expired_sends()
    found = Recovered(stale=_fail_stale_requests())
    now = utcnow()
    # Looking ahead never reaches a live holder's lease: it renews to a full lease every third of one.
    horizon = now + timedelta(seconds=min(current_app.config["RECOVER_INTERVAL_SECONDS"], leases.lease_seconds() / 2))
    found.runs = _stalled_pumps(now, horizon)
    found.receipts = _stalled_exchanges(now, horizon)
    db.session.commit()
    return found


def _wait(until: datetime | None, now: datetime) -> float:
    """Return the seconds until a lease lapses (plus a margin), or 0 for one already gone."""
    return 0.0 if until is None or until <= now else (until - now).total_seconds() + AFTER_LAPSE


def _stalled_pumps(now: datetime, horizon: datetime) -> list[tuple[int, float]]:
    """Mark and return the running runs whose pump lease is gone by the horizon and whose pump is not queued."""
    lease, queued = AuthorizationRun.pump_lease_until, AuthorizationRun.pump_requeued_until
    rows = db.session.execute(
        select(AuthorizationRun.id, lease).where(AuthorizationRun.status == "running",
                                                 or_(lease.is_(None), lease < horizon),
                                                 or_(queued.is_(None), queued < now))
    ).all()
    stalled = []
    for run_id, until in rows:
        wait = _wait(until, now)
        marked = db.session.execute(  # conditional: two workers recovering at once enqueue it once
            update(AuthorizationRun).where(AuthorizationRun.id == run_id, or_(queued.is_(None), queued < now))
            .values(pump_requeued_until=now + timedelta(seconds=wait) + leases.QUEUE_GRACE)
            .execution_options(synchronize_session=False)
        ).rowcount
        if marked:
            stalled.append((run_id, wait))
    return stalled


def _stalled_exchanges(now: datetime, horizon: datetime) -> list[tuple[int, float]]:
    """Mark and return the unprocessed callbacks whose exchange nobody holds by the horizon and none is queued."""
    attempt = AuthorizationAttempt
    rows = db.session.execute(
        select(CallbackReceipt.id, CallbackReceipt.attempt_id, attempt.status, attempt.claimed_until)
        .select_from(CallbackReceipt).outerjoin(attempt, attempt.id == CallbackReceipt.attempt_id)
        .where(CallbackReceipt.processed_at.is_(None), CallbackReceipt.received_at < now - RECEIPT_GRACE,
               or_(attempt.requeued_until.is_(None), attempt.requeued_until < now),
               or_(attempt.status.is_(None), attempt.status != "exchanging", attempt.claimed_until.is_(None),
                   attempt.claimed_until < horizon))
        .order_by(CallbackReceipt.id).limit(LIMIT)
    ).all()
    marked = _mark_requeued({row.attempt_id for row in rows if row.attempt_id is not None}, now, horizon)
    return [(receipt_id, _wait(until if status == "exchanging" else None, now))
            for receipt_id, attempt_id, status, until in rows if attempt_id is None or attempt_id in marked]


def _mark_requeued(attempt_ids: set[int], now: datetime, horizon: datetime) -> set[int]:
    """Mark the attempts' exchanges as queued; return those this pass marked (another may have been first)."""
    if not attempt_ids:
        return set()
    queued = AuthorizationAttempt.requeued_until
    return set(db.session.scalars(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_(attempt_ids), or_(queued.is_(None), queued < now))
        .values(requeued_until=horizon + timedelta(seconds=AFTER_LAPSE) + leases.QUEUE_GRACE)
        .returning(AuthorizationAttempt.id)
        .execution_options(synchronize_session=False)
    ))


def _requeue_expired_sends() -> None:
    # A batch whose pump died mid-send; only the expired claim tells, so a live send is never touched.
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.status == "sending", AuthorizationAttempt.claimed_until < utcnow())
        .values(status="queued", claimed_until=None, batch_key=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _fail_stale_requests() -> int:
    """Fail the requests that waited longer than STALE_REQUEST_MINUTES for a callback (retryable)."""
    cutoff = utcnow() - timedelta(minutes=current_app.config["STALE_REQUEST_MINUTES"])
    stale = db.session.scalars(
        select(AuthorizationAttempt).where(AuthorizationAttempt.status == "requested",
                                           AuthorizationAttempt.requested_at < cutoff,
                                           AuthorizationAttempt.callback_at.is_(None))
        .limit(LIMIT)
    ).all()
    for attempt in stale:
        if attempts.claim(attempt.id, ("requested",), "exchanging", seconds=60):
            db.session.refresh(attempt)
            attempts.fail(attempt, "no_callback", NO_CALLBACK, summary="No answer from Cronofy; marked stale")
    db.session.commit()
    return len(stale)
