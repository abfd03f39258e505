"""Retention: the worker prunes events older than EVENT_RETENTION_DAYS, in chunks, with their deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from extensions import db
from jobs import tasks
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookDelivery, WebhookEndpoint
from services.platform import event_retention


def _add_events(organization, *, days_old: float, count: int) -> None:
    at = utcnow() - timedelta(days=days_old)
    db.session.execute(insert(Event), [
        {"type": "mailbox.created", "organization_id": organization.id, "subject_type": "mailbox", "subject_id": n,
         "data": {"id": str(n)}, "created_at": at} for n in range(count)])
    db.session.commit()


def _ages() -> list[int]:
    db.session.expire_all()
    now = utcnow()
    return sorted({(now - at).days for at in db.session.scalars(select(Event.created_at))})


@pytest.mark.config(EVENT_RETENTION_DAYS=30)
def test_the_worker_prunes_events_past_retention_and_their_deliveries(app, make_organization, monkeypatch):
    organization = make_organization()
    _add_events(organization, days_old=31, count=7)
    _add_events(organization, days_old=29, count=3)
    endpoint = WebhookEndpoint(url="https://hooks.vendor.example/x")
    db.session.add(endpoint)
    db.session.flush()
    old_event = db.session.scalar(select(Event.id).order_by(Event.id).limit(1))
    db.session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=old_event, event_type="mailbox.created"))
    db.session.commit()
    monkeypatch.setattr(event_retention, "CHUNK", 3)  # several chunks, each its own commit
    tasks.set_app(app)

    assert tasks.prune_events.call_local() == 7

    assert _ages() == [29] and db.session.scalar(select(func.count(Event.id))) == 3
    assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 0
    assert tasks.prune_events.call_local() == 0


@pytest.mark.config(EVENT_RETENTION_DAYS=2)
def test_the_retention_is_configurable_and_recover_enqueues_the_pruning_hourly(app, make_organization, monkeypatch):
    organization = make_organization()
    _add_events(organization, days_old=3, count=2)
    _add_events(organization, days_old=1, count=1)
    enqueued = []
    monkeypatch.setattr(tasks, "_next_prune", 0.0)
    pruning = tasks.prune_events
    monkeypatch.setattr(tasks, "prune_events", lambda: enqueued.append(pruning.call_local()))
    tasks.set_app(app)
    tasks.recover.call_local()
    tasks.recover.call_local()  # within the hour: not again
    assert enqueued == [2] and _ages() == [1]
