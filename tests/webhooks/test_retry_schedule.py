"""The retry schedule on a fake clock: the specification's steps with jitter, Retry-After, giving up, 5 days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from extensions import db
from models.event import Event
from models.webhook import WebhookEndpoint
from services.webhooks import delivery_log, schedule
from services.webhooks.delivery import Sender
from tests.webhooks.receiver import (  # noqa: F401 - fixtures
    Clock, answer, deliveries, make_endpoint, receiver, record_event, run_until_settled,
)

pytestmark = pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_TIMEOUT_SECONDS=3.0)
STEPS = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
         timedelta(hours=10), timedelta(hours=14), timedelta(hours=20), timedelta(hours=24)]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_the_delays_are_the_specifications_within_ten_percent_of_jitter():
    assert [schedule.delay_after(n, rng=lambda: 0.5) for n in range(1, 10)] == STEPS
    assert schedule.delay_after(1, rng=lambda: 0.0) == timedelta(seconds=4.5)
    assert schedule.delay_after(9, rng=lambda: 0.999999) < timedelta(hours=26.4)
    assert schedule.delay_after(10, rng=lambda: 0.5) is None  # the tenth failure was the last attempt
    assert schedule.MAX_ATTEMPTS == 10


@pytest.mark.parametrize(("header", "expected"), [
    ("120", timedelta(seconds=120)),
    (format_datetime(NOW + timedelta(minutes=7), usegmt=True), timedelta(minutes=7)),
    (format_datetime(NOW - timedelta(minutes=7), usegmt=True), timedelta(0)),
    ("9999999", timedelta(hours=24)),  # capped at the longest step
    ("soon", None), ("", None), (None, None),
])
def test_retry_after_reads_seconds_and_http_dates(header, expected):
    assert schedule.retry_after(header, NOW) == expected


def test_retry_after_counts_only_on_429_and_503_and_only_when_later_than_the_schedule():
    later = {"retry-after": "600"}
    assert schedule.next_attempt(1, 429, later, NOW, rng=lambda: 0.5) == NOW + timedelta(minutes=10)
    assert schedule.next_attempt(1, 503, later, NOW, rng=lambda: 0.5) == NOW + timedelta(minutes=10)
    assert schedule.next_attempt(1, 500, later, NOW, rng=lambda: 0.5) == NOW + timedelta(seconds=5)
    assert schedule.next_attempt(3, 429, {"retry-after": "1"}, NOW, rng=lambda: 0.5) == NOW + timedelta(minutes=30)


def test_a_failing_receiver_is_tried_on_the_schedule_then_the_delivery_fails_for_good(app, receiver):
    receiver.respond = lambda handler, received: answer(handler, 500, b"internal error")
    make_endpoint(receiver.url)
    record_event()
    clock = Clock()
    sender = Sender(app, now=clock, rng=lambda: 0.5)
    try:
        run_until_settled(sender)
        attempt_times = [clock()]  # the first attempt: immediately
        for step in STEPS:
            clock.advance(seconds=step.total_seconds() - 1)
            run_until_settled(sender)
            assert len(receiver.requests) == len(attempt_times), "an attempt came before its time"
            clock.advance(seconds=1)
            run_until_settled(sender)
            attempt_times.append(clock())
            assert len(receiver.requests) == len(attempt_times)
        [failed] = deliveries()
        assert (failed.status, failed.attempt_count, failed.next_attempt_at) == ("failed", 10, None)
        clock.advance(days=2)
        run_until_settled(sender)
        assert len(receiver.requests) == 10
        attempts = delivery_log.attempts_of(failed)
        assert [a.started_at for a in attempts] == attempt_times
        assert {(a.status_code, a.error, a.response_excerpt) for a in attempts} == {
            (500, "answered 500", "internal error")}
        # One id across every retry; each retry signed with its own time.
        assert len(set(receiver.ids())) == 1
        assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 10
    finally:
        sender.close()


def test_jitter_spreads_retries_that_failed_together(app, receiver):
    receiver.respond = lambda handler, received: answer(handler, 503)
    make_endpoint(receiver.url)
    for n in range(8):
        record_event(subject_id=n)
    sender = Sender(app, now=Clock())
    try:
        run_until_settled(sender)
        due = {d.next_attempt_at for d in deliveries()}
        assert len(due) > 1
        assert all(timedelta(seconds=4.5) <= d - sender.now() <= timedelta(seconds=5.5) for d in due)
    finally:
        sender.close()


def test_an_endpoint_failing_for_five_days_straight_is_disabled_and_says_why(app, receiver):
    receiver.respond = lambda handler, received: answer(handler, 500)
    issued = make_endpoint(receiver.url)
    clock = Clock()
    sender = Sender(app, now=clock)
    try:
        for day in range(6):
            record_event(subject_id=day)
            run_until_settled(sender)
            endpoint = db.session.get(WebhookEndpoint, issued.endpoint.id)
            db.session.refresh(endpoint)
            assert endpoint.enabled == (day < 5), f"day {day}"
            clock.advance(days=1)
        assert "5 days" in endpoint.disabled_reason
        assert db.session.scalar(db.select(Event).where(Event.type == "webhook_endpoint.disabled")) is not None
        # What was waiting for a retry fails, saying the endpoint is disabled.
        run_until_settled(sender)
        assert {d.last_error for d in deliveries() if d.status == "failed"} >= {"the endpoint is disabled"}
        assert {d.status for d in deliveries()} == {"failed"}
    finally:
        sender.close()


def test_one_success_ends_the_failing_streak(app, receiver):
    codes = iter([500, 200])
    receiver.respond = lambda handler, received: answer(handler, next(codes))
    issued = make_endpoint(receiver.url)
    clock = Clock()
    sender = Sender(app, now=clock)
    try:
        record_event()
        run_until_settled(sender)
        endpoint = db.session.get(WebhookEndpoint, issued.endpoint.id)
        db.session.refresh(endpoint)
        assert endpoint.failing_since == clock()
        clock.advance(seconds=6)
        run_until_settled(sender)
        db.session.refresh(endpoint)
        assert endpoint.failing_since is None and endpoint.last_success_at == clock()
    finally:
        sender.close()
