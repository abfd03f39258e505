"""Recovery hands stalled work back once and says so once, however many passes find it still waiting."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from extensions import db
from jobs import tasks
from jobs.queue import bind
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.base import utcnow
from services.engine import exchange
from services.platform.crypto import cipher_for
from tests.jobs.conftest import add_mailboxes, directory_emails, start

STALLED = 7


def _a_worker_died_mid_run(app, run_id: int) -> list[int]:
    """Leave the run as a killed worker does: its pump lease and exchange claims lapsed, callbacks unexchanged."""
    lapsed, now = utcnow() - timedelta(seconds=1), utcnow()
    db.session.execute(update(AuthorizationRun).where(AuthorizationRun.id == run_id)
                       .values(pump_lease_until=lapsed, pump_holder="killed-worker"))
    attempts = db.session.execute(select(AuthorizationAttempt.id, AuthorizationAttempt.state)
                                  .where(AuthorizationAttempt.run_id == run_id)).all()
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.run_id == run_id)
                       .values(status="exchanging", claimed_until=lapsed, requested_at=now - timedelta(seconds=20),
                               callback_at=now - timedelta(seconds=10)))
    code = cipher_for(app.config).encrypt("a-code-the-dead-worker-held")
    db.session.execute(insert(CallbackReceipt), [
        {"attempt_id": attempt_id, "state": state, "received_at": now - timedelta(seconds=10), "code_encrypted": code,
         "hmac_status": "valid", "details": {}} for attempt_id, state in attempts])
    db.session.commit()
    return [attempt_id for attempt_id, _ in attempts]


def _recovery_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "jobs.tasks" and "re-enqueued" in r.getMessage()]


def _queued_tasks(app) -> Counter:
    huey = bind(app.config)
    return Counter(task.name for task in huey.pending())


@pytest.fixture
def stalled_run(app, admin, connection, engine):
    add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:STALLED])
    run_id = start(admin, connection, enqueue=False)
    tasks.set_app(app)
    bind(app.config)  # this test's own queue, with no worker taking from it
    return run_id, _a_worker_died_mid_run(app, run_id)


def test_stalled_exchanges_and_pumps_are_re_enqueued_and_reported_once(app, stalled_run, caplog):
    with caplog.at_level(logging.INFO, logger="jobs.tasks"):
        for _ in range(3):  # the jobs wait in the queue (no worker here) while later passes look again
            tasks.recover.call_local()

    assert _recovery_lines(caplog) == [f"Recovery: re-enqueued {STALLED} callbacks whose exchange stalled (worker gone)",
                                       "Recovery: re-enqueued 1 run whose pump stalled (worker gone)"]
    assert _queued_tasks(app) == {"exchange_callback": STALLED, "pump_run": 1}


def test_an_exchange_that_stalls_again_after_it_was_picked_up_is_reported_again(app, stalled_run, caplog):
    _, attempt_ids = stalled_run
    tasks.recover.call_local()
    # A worker picks one exchange up and dies with it in turn: its claim lapses.
    assert exchange._claim(attempt_ids[0])
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="jobs.tasks"):
        tasks.recover.call_local()  # the claim is live: nothing to say
        db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.id == attempt_ids[0])
                           .values(claimed_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        tasks.recover.call_local()
        tasks.recover.call_local()

    assert _recovery_lines(caplog) == ["Recovery: re-enqueued 1 callback whose exchange stalled (worker gone)"]
    assert _queued_tasks(app)["exchange_callback"] == STALLED + 1
