"""Pruning the event log: events older than EVENT_RETENTION_DAYS go, a chunk per transaction.

A chunk at a time keeps each transaction short (the event writer's commits wait on none of them for
long) and lets the worker stop between chunks. The deliveries of a pruned event and their attempts go
with it: PostgreSQL cascades the foreign key, SQLite (which does not enforce it here) needs the
statements, so both are written out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookAttempt, WebhookDelivery

CHUNK = 5_000


def cutoff(now: datetime | None = None) -> datetime:
    """Return the moment before which events are pruned."""
    return (now or utcnow()) - timedelta(days=current_app.config["EVENT_RETENTION_DAYS"])


def prune_chunk(now: datetime | None = None, *, chunk: int = CHUNK) -> int:
    """Delete up to `chunk` of the oldest events past retention (flushes; the caller commits); return how many."""
    ids = list(db.session.scalars(select(Event.id).where(Event.created_at < cutoff(now))
                                  .order_by(Event.id).limit(chunk)))
    if not ids:
        return 0
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(ids))
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids)),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(Event).where(Event.id.in_(ids)), execution_options={"synchronize_session": False})
    return len(ids)
