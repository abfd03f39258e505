"""Dispatch: every event once to each endpoint that wants it, never the test event, safe to run again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookDelivery, WebhookDispatchCursor
from services.platform.event_types import TEST_EVENT
from services.webhooks import dispatch, endpoints
from tests.webhooks.receiver import deliveries, make_endpoint, record_event

pytestmark = pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
URL = "http://127.0.0.1:9/hooks"


def _pairs() -> set[tuple[int, str]]:
    return {(d.endpoint_id, d.event_type) for d in deliveries()}


def test_each_event_goes_once_to_every_endpoint_that_wants_its_type_and_organization(app, make_organization):
    acme, globex = make_organization(), make_organization()
    everything = make_endpoint(URL).endpoint
    failures = make_endpoint(URL, event_types=["mailbox.failed"]).endpoint
    acme_only = make_endpoint(URL, organization=acme).endpoint
    record_event("mailbox.authorized", organization_id=acme.id)
    record_event("mailbox.failed", organization_id=globex.id)
    assert dispatch.dispatch() == 4
    assert _pairs() == {(everything.id, "mailbox.authorized"), (everything.id, "mailbox.failed"),
                        (failures.id, "mailbox.failed"), (acme_only.id, "mailbox.authorized")}
    assert all(d.status == "pending" and d.redelivery == 0 and d.next_attempt_at is not None for d in deliveries())


def test_running_it_again_creates_nothing_more_and_new_events_follow(app):
    make_endpoint(URL)
    record_event()
    assert dispatch.dispatch() == 1
    assert dispatch.dispatch() == 0
    record_event("mailbox.revoked")
    assert dispatch.dispatch() == 1
    assert [d.event_type for d in deliveries()] == ["mailbox.authorized", "mailbox.revoked"]


def test_many_events_are_dispatched_in_batches_without_gaps(app):
    make_endpoint(URL)
    for n in range(25):
        record_event(subject_id=n)
    assert dispatch.dispatch(batch=10) == 25
    assert sorted(d.event_id for d in deliveries()) == list(db.session.scalars(select(Event.id).order_by(Event.id)))


def test_the_test_event_and_disabled_endpoints_get_nothing(app):
    issued = make_endpoint(URL)
    off = make_endpoint(URL, enabled=False).endpoint
    db.session.add(Event(type=TEST_EVENT, subject_type="webhook_endpoint", subject_id=issued.endpoint.id, data={}))
    db.session.commit()
    record_event()
    assert dispatch.dispatch() == 1
    assert _pairs() == {(issued.endpoint.id, "mailbox.authorized")}
    assert off.id not in {d.endpoint_id for d in deliveries()}


def test_an_endpoint_gets_the_events_from_its_creation_on(app):
    record_event("mailbox.created")
    assert dispatch.dispatch() == 0  # nobody listened: the cursor moved past it
    late = make_endpoint(URL).endpoint
    record_event("mailbox.authorized")
    assert dispatch.dispatch() == 1
    assert _pairs() == {(late.id, "mailbox.authorized")}


def test_an_endpoint_created_before_an_undispatched_event_still_gets_it(app):
    older = make_endpoint(URL).endpoint
    record_event()
    newer = make_endpoint(URL).endpoint  # created after the event was recorded
    assert dispatch.dispatch() == 1
    assert _pairs() == {(older.id, "mailbox.authorized")}
    assert newer.id not in {d.endpoint_id for d in deliveries()}


def test_while_another_process_holds_the_cursor_nothing_is_dispatched_twice(app):
    make_endpoint(URL)
    record_event()
    dispatch.dispatch()  # creates the cursor
    record_event("mailbox.revoked")
    held = utcnow() + timedelta(seconds=30)
    db.session.execute(update(WebhookDispatchCursor).values(claimed_until=held))
    db.session.commit()
    assert dispatch.dispatch() == 0
    assert len(deliveries()) == 1
    # A holder that dies: its lease lapses and the next dispatcher carries on from the cursor.
    assert dispatch.dispatch(now=lambda: held + timedelta(seconds=1)) == 1
    assert [d.event_type for d in deliveries()] == ["mailbox.authorized", "mailbox.revoked"]


def test_a_database_error_mid_dispatch_loses_nothing(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    make_endpoint(URL)
    record_event()
    real_insert = db.session.execute
    calls = {"n": 0}

    def failing(statement, *args, **kwargs):
        table = getattr(statement, "table", None)
        if getattr(table, "name", None) == WebhookDelivery.__tablename__ and calls["n"] == 0:
            calls["n"] += 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real_insert(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "execute", failing)
    with pytest.raises(OperationalError):
        dispatch.dispatch()
    monkeypatch.undo()
    assert deliveries() == []
    assert db.session.scalar(select(WebhookDispatchCursor.last_event_id)) == 0
    # The lease went with the rolled-back transaction, so the next round dispatches at once.
    assert dispatch.dispatch() == 1
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_wants_decides_with_the_endpoints_filters(app, make_organization):
    acme = make_organization()
    endpoint = make_endpoint(URL, event_types=["run.paused"], organization=acme).endpoint
    assert endpoints.wants(endpoint, "run.paused", acme.id)
    assert not endpoints.wants(endpoint, "run.paused", acme.id + 1)
    assert not endpoints.wants(endpoint, "run.completed", acme.id)
