"""Receivers that misbehave, DNS that changes, a worker killed mid-delivery, a database that stops answering.

Each fault must show in the delivery log with its reason, never hang a sender thread past the
timeout, and never lose a delivery.
"""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from extensions import db
from models.event import Event
from models.webhook import WebhookAttempt, WebhookEndpoint
from services.webhooks import delivery_log
from services.webhooks.delivery import CLAIM_MARGIN, Sender
from tests.webhooks.dns import fake_dns  # noqa: F401 - fixture
from tests.webhooks.receiver import (  # noqa: F401 - fixtures
    Clock, Receiver, answer, deliveries, make_endpoint, receiver, record_event, run_until_settled, wait_for,
)

TIMEOUT = 1.0
pytestmark = pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True, WEBHOOK_TIMEOUT_SECONDS=TIMEOUT)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sender(app, clock):
    made = Sender(app, now=clock, rng=lambda: 0.5)
    yield made
    made.close()


def _only_attempt() -> WebhookAttempt:
    db.session.rollback()
    [attempt] = db.session.scalars(select(WebhookAttempt)).all()
    return attempt


def _deliver_once(sender, receiver, respond=None) -> WebhookAttempt:
    if respond is not None:
        receiver.respond = respond
    make_endpoint(receiver.url)
    record_event()
    run_until_settled(sender)
    return _only_attempt()


def test_a_receiver_that_never_answers_times_out_and_is_retried(app, receiver, sender, clock):
    started = time.monotonic()
    attempt = _deliver_once(sender, receiver, receiver.hang)
    assert time.monotonic() - started < TIMEOUT + 2
    assert attempt.error == f"no complete answer within {TIMEOUT:g} s" and attempt.status_code is None
    assert TIMEOUT * 1000 <= attempt.latency_ms < (TIMEOUT + 1) * 1000
    [waiting] = deliveries()
    assert waiting.status == "pending" and waiting.next_attempt_at == clock() + timedelta(seconds=5)


def test_an_answer_sent_one_byte_at_a_time_is_cut_at_the_overall_deadline(app, receiver, sender):
    def trickle(handler, received):
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.1)

    started = time.monotonic()
    attempt = _deliver_once(sender, receiver, trickle)
    # Every byte came within the socket's per-read timeout; only the overall deadline ends it.
    assert time.monotonic() - started < TIMEOUT + 2
    assert attempt.error == f"no complete answer within {TIMEOUT:g} s" and not attempt.succeeded
    assert sender.in_flight == 0


def test_a_server_error_is_a_failure_with_the_start_of_its_answer(app, receiver, sender):
    attempt = _deliver_once(sender, receiver, lambda handler, received: answer(handler, 500, b"x" * 5000))
    assert (attempt.status_code, attempt.error) == (500, "answered 500")
    assert attempt.response_excerpt == "x" * 2048


def test_a_redirect_is_a_failure_and_is_not_followed(app, receiver, sender):
    elsewhere = Receiver()
    try:
        attempt = _deliver_once(sender, receiver, lambda handler, received: answer(
            handler, 301, b"", {"Location": elsewhere.url}))
        assert attempt.status_code == 301 and not attempt.succeeded
        assert attempt.error == f"answered 301: redirects are not followed (to {elsewhere.url})"
        assert elsewhere.requests == [] and len(receiver.requests) == 1
        assert deliveries()[0].status == "pending"
    finally:
        elsewhere.stop()


def test_gone_disables_the_endpoint_and_fails_what_waits_for_it(app, receiver, sender, clock):
    issued = make_endpoint(receiver.url)
    receiver.respond = lambda handler, received: answer(handler, 410, b"no longer")
    record_event()
    run_until_settled(sender)
    endpoint = db.session.get(WebhookEndpoint, issued.endpoint.id)
    assert not endpoint.enabled and "410 Gone" in endpoint.disabled_reason and endpoint.disabled_at is not None
    [gone] = deliveries()
    assert (gone.status, gone.next_attempt_at, gone.last_error) == (
        "failed", None, "answered 410 Gone: the endpoint was disabled")
    disabled = db.session.scalar(select(Event).where(Event.type == "webhook_endpoint.disabled"))
    assert disabled.subject_id == endpoint.id
    # Nothing more is sent to it; a delivery already waiting fails, saying why.
    record_event("mailbox.revoked")
    delivery_log.redeliver(gone)
    db.session.commit()
    clock.advance(seconds=1)
    run_until_settled(sender)
    assert len(receiver.requests) == 1
    assert [d.last_error for d in deliveries()][1:] == ["the endpoint is disabled"]


@pytest.mark.parametrize("status", [429, 503])
def test_too_many_requests_waits_as_long_as_retry_after_asks(app, receiver, sender, clock, status):
    attempt = _deliver_once(sender, receiver, lambda handler, received: answer(
        handler, status, b"slow down", {"Retry-After": "120"}))
    assert attempt.error == f"answered {status}, Retry-After: 120"
    [waiting] = deliveries()
    assert waiting.next_attempt_at == clock() + timedelta(seconds=120)  # later than the schedule's 5 s
    clock.advance(seconds=119)
    run_until_settled(sender)
    assert len(receiver.requests) == 1
    receiver.respond = lambda handler, received: answer(handler)
    clock.advance(seconds=1)
    run_until_settled(sender)
    assert len(receiver.requests) == 2 and deliveries()[0].status == "succeeded"


def test_a_connection_closed_without_an_answer_is_a_failure(app, receiver, sender):
    def hang_up(handler, received):
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    attempt = _deliver_once(sender, receiver, hang_up)
    assert attempt.status_code is None
    assert attempt.error in ("the connection was closed without an answer", "the connection was reset")


def test_a_receiver_that_cannot_be_reached_is_a_failure(app, sender):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    make_endpoint(f"http://127.0.0.1:{port}/hooks")
    record_event()
    run_until_settled(sender)
    assert _only_attempt().error == "connection refused"


def test_a_huge_answer_is_not_read_into_memory(app, receiver, sender):
    written = {"bytes": 0}

    def flood(handler, received):
        handler.send_response(200)
        handler.send_header("Content-Length", str(500 * 1024 * 1024))
        handler.end_headers()
        chunk = b"y" * 65536
        for _ in range(8000):
            handler.wfile.write(chunk)
            written["bytes"] += len(chunk)

    started = time.monotonic()
    attempt = _deliver_once(sender, receiver, flood)
    assert attempt.succeeded and attempt.response_excerpt == "y" * 2048
    assert "the rest was not read" in attempt.details["body"]
    assert time.monotonic() - started < TIMEOUT + 2
    assert written["bytes"] < 50 * 1024 * 1024  # the sender hung up long before the end


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
def test_dns_that_now_points_to_a_private_address_is_refused_at_delivery(app, fake_dns, sender):
    make_endpoint("https://hooks.vendor.example/ecc")  # public when created
    fake_dns.names["hooks.vendor.example"] = ["10.0.0.7"]
    record_event()
    run_until_settled(sender)
    attempt = _only_attempt()
    assert attempt.status_code is None and "10.0.0.7" in attempt.error and "private" in attempt.error
    assert deliveries()[0].status == "pending"  # DNS may be put right: the schedule goes on


def test_the_connection_goes_to_the_address_that_was_checked_under_the_urls_host(app, fake_dns, receiver, sender):
    fake_dns.names["receiver.vendor.example"] = ["127.0.0.1"]
    make_endpoint(f"http://receiver.vendor.example:{receiver.port}/hooks")
    connected = []
    real = socket.create_connection
    import services.webhooks.transport as transport

    def spy(address, *args, **kwargs):
        connected.append(address[0])
        return real(address, *args, **kwargs)

    transport.socket.create_connection = spy
    try:
        record_event()
        fake_dns.asked.clear()
        run_until_settled(sender)
    finally:
        transport.socket.create_connection = real
    assert connected == ["127.0.0.1"]  # the checked address, not a second lookup of the name
    assert fake_dns.asked.count("receiver.vendor.example") == 1
    assert receiver.requests[0].headers["host"] == f"receiver.vendor.example:{receiver.port}"
    assert deliveries()[0].status == "succeeded"


def test_a_worker_killed_mid_delivery_leaves_it_to_be_delivered_again(app, receiver, clock):
    issued = make_endpoint(receiver.url)
    record_event()
    receiver.respond = receiver.hang
    killed = Sender(app, now=clock)
    killed.tick()  # claims and posts; the receiver holds the request; this worker is "killed" now
    wait_for(lambda: receiver.requests)
    assert deliveries()[0].status == "sending"
    survivor = Sender(app, now=Clock(clock() + timedelta(seconds=TIMEOUT) + CLAIM_MARGIN + timedelta(seconds=1)))
    try:
        receiver.respond = lambda handler, received: answer(handler)
        run_until_settled(survivor)
        killed.wait_idle(TIMEOUT + 5)  # the dead worker's request ends; its late outcome changes nothing
        killed.settle()
        assert receiver.ids() == [receiver.ids()[0]] * 2  # the same webhook-id twice: receivers deduplicate
        [done] = deliveries()
        assert done.status == "succeeded"
        assert {(a.succeeded, a.error) for a in delivery_log.attempts_of(done)} == {
            (True, None), (False, f"no complete answer within {TIMEOUT:g} s")}
        assert db.session.get(WebhookEndpoint, issued.endpoint.id).last_success_at is not None
    finally:
        killed.close()
        survivor.close()


def test_outcomes_wait_while_the_database_does_not_answer_and_are_stored_once_it_does(app, receiver, sender,
                                                                                     monkeypatch):
    from services.webhooks import outcomes

    make_endpoint(receiver.url)
    record_event()
    real_store = outcomes.store
    down = {"rounds": 2}

    def store(finished, now, *, rng):
        if finished and down["rounds"]:
            down["rounds"] -= 1
            raise OperationalError("UPDATE", {}, Exception("connection refused"))
        return real_store(finished, now, rng=rng)

    monkeypatch.setattr(outcomes, "store", store)
    sender.tick()
    assert sender.wait_idle(10)
    for _ in range(2):
        with pytest.raises(OperationalError):
            sender.tick()
        assert deliveries()[0].status == "sending"  # not stored yet: still claimed, not sent again
    run_until_settled(sender)
    assert len(receiver.requests) == 1 and sender.in_flight == 0
    [done] = deliveries()
    assert done.status == "succeeded" and len(delivery_log.attempts_of(done)) == 1


def test_outcomes_lost_with_the_worker_are_sent_again_when_the_claim_lapses(app, receiver, sender, clock):
    make_endpoint(receiver.url)
    record_event()
    sender.tick()
    assert sender.wait_idle(10)
    sender._outcomes.clear()  # the worker died before it could store what the receiver answered
    run_until_settled(sender)
    assert deliveries()[0].status == "sending" and len(receiver.requests) == 1
    clock.advance(seconds=TIMEOUT + CLAIM_MARGIN.total_seconds() + 1)
    run_until_settled(sender)
    assert len(receiver.requests) == 2 and deliveries()[0].status == "succeeded"


def test_the_worker_loop_survives_a_database_outage(app, receiver, monkeypatch):
    from jobs.cli import WebhookSender

    make_endpoint(receiver.url)
    record_event()
    loop = WebhookSender(app, interval=0.05)
    real_tick = loop.sender.tick
    outage = {"rounds": 3}

    def tick():
        if outage["rounds"]:
            outage["rounds"] -= 1
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return real_tick()

    monkeypatch.setattr(loop.sender, "tick", tick)
    loop.start()
    try:
        wait_for(lambda: receiver.requests)
        wait_for(lambda: deliveries()[0].status == "succeeded")
    finally:
        loop.stop()
    assert not loop._thread.is_alive()
