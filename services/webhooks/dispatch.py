"""Turn new events into deliveries: one row per event and endpoint that wants it, each event once.

A single cursor row (`webhook_dispatch_cursor`) remembers the last event id dispatched. Event ids grow
in commit order (services/platform/events.py), so reading `id > cursor` never passes over an event
that commits later: every event is seen exactly once. One process at a time walks the cursor, under a
lease on the row, taken, used and given back in one transaction per batch: the batch's deliveries,
the cursor's move and the lease commit together or not at all, so a dispatcher killed mid-batch leaves
nothing behind, and while it works the row's lock holds any other dispatcher back. The unique
(endpoint, event, redelivery) key backs that up: no event is ever delivered twice to an endpoint by
dispatching alone.

An endpoint receives the events recorded from its creation on, of the types and organization it
asks for (`endpoints.wants`), while it is enabled. The test event is never dispatched: it is
delivered to the one endpoint it was asked for (delivery_log.send_test_event).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookDelivery, WebhookDispatchCursor, WebhookEndpoint
from services.platform.event_types import TEST_EVENT
from services.webhooks import endpoints

CURSOR_ID = 1
BATCH = 1000


def dispatch(*, now: Callable[[], datetime] = utcnow, batch: int = BATCH, max_batches: int = 20) -> int:
    """Create the deliveries of events recorded since the last call; return how many (one commit per batch).

    Returns 0 at once when another process holds the cursor.
    """
    created = 0
    for _ in range(max_batches):
        if not _news():
            break
        count, more = _dispatch_batch(now(), batch)
        created += count
        if not more:
            break
    return created


def _news() -> bool:
    """Whether any event was written past the cursor: an idle worker reads once per round and writes nothing."""
    last = db.session.scalar(select(WebhookDispatchCursor.last_event_id).where(WebhookDispatchCursor.id == CURSOR_ID))
    newer = db.session.scalar(select(Event.id).where(Event.id > (last or 0)).limit(1))
    db.session.rollback()
    return newer is not None


def _ensure_cursor() -> None:
    if db.session.get(WebhookDispatchCursor, CURSOR_ID) is not None:
        return
    try:
        db.session.add(WebhookDispatchCursor(id=CURSOR_ID, last_event_id=0))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another process created it first


def _take_cursor(now: datetime) -> datetime | None:
    """Lease the cursor row in this transaction; return the lease's end, or None if another process holds it.

    The conditional UPDATE also locks the row until the commit (PostgreSQL; SQLite has one writer), so
    a second dispatcher waits there and then finds the cursor moved and the lease given back.
    """
    until = now + timedelta(seconds=current_app.config["LEASE_SECONDS"])
    taken = db.session.execute(
        update(WebhookDispatchCursor)
        .where(WebhookDispatchCursor.id == CURSOR_ID,
               or_(WebhookDispatchCursor.claimed_until.is_(None), WebhookDispatchCursor.claimed_until < now))
        .values(claimed_until=until).execution_options(synchronize_session=False)
    ).rowcount == 1
    return until if taken else None


def _dispatch_batch(now: datetime, batch: int) -> tuple[int, bool]:
    """Dispatch up to `batch` events after the cursor and move it past them; return (deliveries, more to do)."""
    _ensure_cursor()
    try:
        until = _take_cursor(now)
        if until is None:
            db.session.rollback()
            return 0, False
        count, newest, more = _deliveries_after(_last_dispatched(), now, batch)
        db.session.execute(update(WebhookDispatchCursor)
                           .where(WebhookDispatchCursor.id == CURSOR_ID, WebhookDispatchCursor.claimed_until == until)
                           .values({"claimed_until": None, **({"last_event_id": newest} if newest else {})})
                           .execution_options(synchronize_session=False))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return count, more


def _last_dispatched() -> int:
    return db.session.scalar(select(WebhookDispatchCursor.last_event_id).where(WebhookDispatchCursor.id == CURSOR_ID))


def _deliveries_after(last: int, now: datetime, batch: int) -> tuple[int, int | None, bool]:
    """Insert the deliveries of up to `batch` events after `last`; return (deliveries, newest event id, more)."""
    listeners = list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))))
    if not listeners:
        # Nobody listens: skip what has been written so far without reading it.
        return 0, db.session.scalar(select(func.max(Event.id)).where(Event.id > last)), False
    rows = db.session.execute(select(Event.id, Event.type, Event.organization_id, Event.created_at)
                              .where(Event.id > last).order_by(Event.id).limit(batch)).all()
    if not rows:
        return 0, None, False
    deliveries = [
        {"endpoint_id": endpoint.id, "event_id": row.id, "event_type": row.type, "redelivery": 0,
         "status": "pending", "attempt_count": 0, "next_attempt_at": now, "created_at": now}
        for row in rows if row.type != TEST_EVENT
        for endpoint in listeners
        if row.created_at >= endpoint.created_at and endpoints.wants(endpoint, row.type, row.organization_id)
    ]
    if deliveries:
        db.session.execute(insert(WebhookDelivery), deliveries)
    return len(deliveries), rows[-1].id, len(rows) == batch
