"""Delivery to a real receiver: signed, logged, in parallel up to the bound, a slow endpoint delaying no other."""

from __future__ import annotations

import json
import threading

import pytest
from standardwebhooks import Webhook

from extensions import db
from models.webhook import WebhookEndpoint
from services.webhooks import delivery_log
from services.webhooks.delivery import share
from tests.webhooks.receiver import (  # noqa: F401 - fixtures
    answer, deliveries, make_endpoint, receiver, record_event, run_until_settled, sender, wait_for,
)
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_TIMEOUT_SECONDS=3.0,
                                WEBHOOK_MAX_PARALLEL_PER_ENDPOINT=2, WEBHOOK_SENDER_THREADS=4)


def test_an_event_arrives_signed_with_its_envelope_and_the_attempt_is_logged(app, receiver, sender,
                                                                             make_organization):
    acme = make_organization()
    issued = make_endpoint(receiver.url, organization=acme)
    record_event("mailbox.authorized", organization_id=acme.id, subject_id=1001, external_id="user_88")
    run_until_settled(sender)
    [request] = receiver.requests
    payload = Webhook(issued.secret).verify(request.body, request.headers)
    assert payload["type"] == "mailbox.authorized" and payload["organization_id"] == str(acme.id)
    assert payload["subject"] == {"type": "mailbox", "id": "1001", "external_id": "user_88"}
    assert request.headers["webhook-id"] == payload["id"] and request.path == "/hooks"
    [done] = deliveries()
    assert (done.status, done.attempt_count, done.last_status_code, done.delivered_at is not None) == (
        "succeeded", 1, 200, True)
    [attempt] = delivery_log.attempts_of(done)
    assert attempt.succeeded and attempt.status_code == 200 and attempt.response_excerpt == "ok"
    assert attempt.latency_ms is not None and attempt.error is None
    endpoint = db.session.get(WebhookEndpoint, issued.endpoint.id)
    assert endpoint.last_success_at is not None and endpoint.failing_since is None


def test_deliveries_to_one_endpoint_run_in_parallel_up_to_the_bound(app, receiver, sender):
    make_endpoint(receiver.url)
    receiver.respond = lambda handler, received: (receiver.release.wait(0.3), answer(handler))
    for n in range(6):
        record_event(subject_id=n)
    run_until_settled(sender)
    assert len(receiver.requests) == 6 and len(set(receiver.ids())) == 6
    assert receiver.most_active == 2  # WEBHOOK_MAX_PARALLEL_PER_ENDPOINT, though 4 threads were free
    assert {d.status for d in deliveries()} == {"succeeded"}


def test_a_slow_endpoint_never_delays_another(app, receiver, sender):
    fast = Receiver()
    try:
        hold = threading.Event()
        receiver.respond = lambda handler, received: (hold.wait(10), answer(handler))
        slow_endpoint = make_endpoint(receiver.url).endpoint
        fast_endpoint = make_endpoint(fast.url).endpoint
        for n in range(5):
            record_event(subject_id=n)
        # The slow receiver holds its share of the threads; the other endpoint gets all its events meanwhile.
        wait_for(lambda: sender.tick() >= 0 and len(fast.requests) == 5)
        assert receiver.active == 2
        hold.set()
        run_until_settled(sender)
        by_endpoint = {(d.endpoint_id, d.status) for d in deliveries()}
        assert by_endpoint == {(slow_endpoint.id, "succeeded"), (fast_endpoint.id, "succeeded")}
        assert len(receiver.requests) == 5
    finally:
        fast.stop()


def test_free_threads_are_shared_one_endpoint_at_a_time():
    assert share({1: 100, 2: 3, 3: 1}, {}, 5, 4) == {1: 2, 2: 2, 3: 1}
    assert share({1: 100, 2: 3}, {1: 4}, 5, 4) == {2: 3}
    assert share({1: 100}, {1: 1}, 8, 4) == {1: 3}
    assert share({1: 1, 2: 1}, {}, 1, 4, turn=1) == {2: 1}


def test_the_delivery_log_filters_and_redelivers(app, receiver, sender, make_organization):
    acme = make_organization()
    endpoint = make_endpoint(receiver.url).endpoint
    receiver.respond = lambda handler, received: answer(
        handler, 500 if json.loads(received.body)["type"] == "mailbox.failed" else 200)
    record_event("mailbox.authorized", organization_id=acme.id)
    record_event("mailbox.failed")
    sender.tick()
    assert sender.wait_idle(10)
    sender.settle()
    failed = delivery_log.list_deliveries(outcome="pending")  # failed once, waiting for its retry
    assert [d.event_type for d in failed] == ["mailbox.failed"]
    assert [d.event_type for d in delivery_log.list_deliveries(outcome="succeeded")] == ["mailbox.authorized"]
    assert [d.event_type for d in delivery_log.list_deliveries(organization_id=acme.id)] == ["mailbox.authorized"]
    assert [d.event_type for d in delivery_log.list_deliveries(event_type="mailbox.failed",
                                                               endpoint_id=endpoint.id)] == ["mailbox.failed"]
    newest, older = delivery_log.list_deliveries()
    assert newest.id > older.id
    assert delivery_log.list_deliveries(after_id=newest.id) == [older]
    [attempt] = delivery_log.attempts_of(failed[0])
    assert (attempt.status_code, attempt.succeeded, attempt.error) == (500, False, "answered 500")

    # Redelivering the one that succeeded sends the same webhook-id again, as a new delivery.
    succeeded = delivery_log.list_deliveries(outcome="succeeded")[0]
    again = delivery_log.redeliver(succeeded)
    db.session.commit()
    assert again.redelivery == 1 and again.status == "pending"
    run_until_settled(sender)
    ids = receiver.ids()
    assert ids.count(str(succeeded.event_id)) == 2


def test_redeliver_failed_since_takes_each_failed_event_once(app, receiver, sender):
    from datetime import timedelta

    from models.base import utcnow

    endpoint = make_endpoint(receiver.url).endpoint
    for n in range(3):
        record_event(subject_id=n)
    sender.tick()
    assert sender.wait_idle(10)
    sender.settle()
    first, second, third = deliveries()
    for delivery in (first, second):
        delivery.status = "failed"
    db.session.commit()
    assert delivery_log.redeliver_failed_since(endpoint, utcnow() + timedelta(minutes=1)) == 0
    assert delivery_log.redeliver_failed_since(endpoint, utcnow() - timedelta(minutes=1)) == 2
    db.session.commit()
    # Their redeliveries are pending now: asking again does not add more.
    assert delivery_log.redeliver_failed_since(endpoint, utcnow() - timedelta(minutes=1)) == 0
    db.session.commit()
    run_until_settled(sender)
    assert sorted(receiver.ids()) == sorted([str(first.event_id), str(first.event_id), str(second.event_id),
                                              str(second.event_id), str(third.event_id)])


def test_the_test_event_goes_to_its_endpoint_only(app, receiver, sender):
    issued = make_endpoint(receiver.url)
    other = Receiver()
    try:
        make_endpoint(other.url)
        delivered = delivery_log.send_test_event(issued.endpoint)
        db.session.commit()
        run_until_settled(sender)
        [request] = receiver.requests
        payload = Webhook(issued.secret).verify(request.body, request.headers)
        assert payload["type"] == "webhook.test" and payload["subject"]["id"] == str(issued.endpoint.id)
        assert other.requests == []
        assert [d.id for d in deliveries()] == [delivered.id]
    finally:
        other.stop()
