"""Leases: a holder that lost its lease can neither renew nor release it, and a pump that lost it stops."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.base import utcnow
from services.engine import scheduler
from services.platform import leases
from tests.jobs.conftest import (
    add_mailboxes,
    attempt_counts,
    directory_emails,
    events_since,
    fresh,
    latest_event_id,
    start,
    wait_status,
)

ANOTHER_WORKER = "another-worker"


def _take(run_id: int) -> leases.Lease | None:
    lease = leases.acquire(AuthorizationRun, run_id, "pump_lease_until", "pump_holder")
    db.session.commit()
    return lease


def _lapse(run_id: int) -> None:
    """Play a holder paused (a GC pause, a stopped VM) past the end of its lease."""
    db.session.execute(update(AuthorizationRun).where(AuthorizationRun.id == run_id)
                       .values(pump_lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()


@pytest.fixture
def run_id(admin, connection, engine):
    add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:3])
    return start(admin, connection, enqueue=False)


def test_a_holder_whose_lease_was_taken_over_can_neither_renew_nor_release_it(app, run_id):
    first = leases.hold(_take(run_id))
    assert _take(run_id) is None  # held: nobody else gets it

    _lapse(run_id)
    second = leases.hold(_take(run_id))
    assert second is not None

    assert leases.renew_held() == 1  # the heartbeat finds the first holder's lease gone
    assert first.lost and not first.renew()
    first.release()
    db.session.commit()
    run = fresh(AuthorizationRun, run_id)
    assert (run.pump_holder, run.pump_lease_until) == (second.match["pump_holder"], second.until)
    assert second.renew() and not second.lost
    leases.let_go(second)


def test_the_heartbeat_keeps_a_lease_fresh_and_a_released_one_free(app, run_id):
    lease = leases.hold(_take(run_id))
    taken_until = lease.until
    assert leases.renew_held() == 0
    assert fresh(AuthorizationRun, run_id).pump_lease_until == lease.until > taken_until

    lease.release()
    db.session.commit()
    assert leases.renew_held() == 0  # let go of: not renewed any more
    assert fresh(AuthorizationRun, run_id).pump_lease_until is None
    assert _take(run_id) is not None


def _another_worker_takes_over(run_id: int) -> None:
    """What a second worker does once the lease lapsed: it holds the run now, under its own token."""
    with db.engine.begin() as connection:
        connection.execute(update(AuthorizationRun.__table__).where(AuthorizationRun.__table__.c.id == run_id)
                           .values(pump_lease_until=utcnow() + timedelta(seconds=10), pump_holder=ANOTHER_WORKER))


def test_a_pump_that_lost_its_lease_stops_without_sending_another_batch(app, run_id, engine, monkeypatch, caplog):
    real_in_flight, taken_over = scheduler._in_flight, []

    def paused_while_another_worker_took_over() -> int:
        if not taken_over:
            _another_worker_takes_over(run_id)
            taken_over.append(True)
        return real_in_flight()

    monkeypatch.setattr(scheduler, "_in_flight", paused_while_another_worker_took_over)
    since = latest_event_id(engine)
    with caplog.at_level(logging.WARNING, logger="services.engine.scheduler"):
        assert scheduler.pump(run_id, window=3) is False  # stopped, and it does not ask to be enqueued again

    assert events_since(engine, since, path="/v1/service_account_authorizations") == []
    assert attempt_counts(run_id) == {"queued": 3}
    run = fresh(AuthorizationRun, run_id)
    assert run.pump_holder == ANOTHER_WORKER and run.pump_lease_until > utcnow()  # the new holder's, untouched
    assert "lost its lease" in caplog.text


@pytest.fixture
def slow_cronofy(app, engine):
    """Cronofy answers in twice the lease time: only renewing keeps the batch's and the exchanges' claims."""
    app.config.update(LEASE_SECONDS=2.0, UPSTREAM_READ_TIMEOUT=10.0)
    engine.set_faults(latency_ms=4000)
    yield engine
    engine.reset_faults()


def test_a_step_longer_than_the_lease_keeps_its_claims_and_nothing_is_done_twice(app, admin, connection, slow_cronofy,
                                                                                 worker):
    add_mailboxes(admin.organization, directory_emails(slow_cronofy, trait="none")[:5])
    since = latest_event_id(slow_cronofy)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=90)

    requests = events_since(slow_cronofy, since, path="/v1/service_account_authorizations")
    assert [e["status"] for e in requests] == [202]  # one batch, sent once
    exchanges = Counter(e["status"] for e in events_since(slow_cronofy, since, path="/oauth/token", method="POST"))
    assert exchanges == {200: 5}  # each code exchanged once, none taken over by another thread
    assert attempt_counts(run_id) == {"authorized": 5}
    receipts = db.session.scalar(select(func.count(CallbackReceipt.id)))
    assert receipts == 5 == db.session.scalar(select(func.count(AuthorizationAttempt.id)))
