"""What the periodic recover() job finds and repairs after a crash, a lost enqueue or a silent upstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.base import utcnow
from services import attempts

RECEIPT_GRACE = timedelta(seconds=5)
LIMIT = 500
NO_CALLBACK = ("Cronofy accepted the request but never sent its result. The mailbox may still be syncing "
               "at Cronofy, or the callback was lost; retry it.")


@dataclass
class Recovered:
    run_ids: list[int] = field(default_factory=list)
    receipt_ids: list[int] = field(default_factory=list)
    stale: int = 0


def recover() -> Recovered:
    """Requeue orphaned sends, fail stale requests, and list the pumps and exchanges to enqueue again."""
    found = Recovered()
    _requeue_expired_sends()
    found.stale = _fail_stale_requests()
    now = utcnow()
    found.run_ids = list(db.session.scalars(
        select(AuthorizationRun.id).where(
            AuthorizationRun.status == "running",
            or_(AuthorizationRun.pump_lease_until.is_(None), AuthorizationRun.pump_lease_until < now))
    ))
    found.receipt_ids = list(db.session.scalars(
        select(CallbackReceipt.id).where(CallbackReceipt.processed_at.is_(None),
                                         CallbackReceipt.received_at < now - RECEIPT_GRACE)
        .order_by(CallbackReceipt.id).limit(LIMIT)
    ))
    db.session.commit()
    return found


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
