"""After a crash or an outage each mailbox holds exactly one live authorization at Cronofy: the one whose tokens we store.

Real processes and real signals: a `flask worker` killed with SIGKILL while its exchanges are in
flight (Cronofy completes them, their answers are lost), and a PostgreSQL server of our own stopped
with `-m immediate` while exchanges are answered. The sandbox's own records say how many
authorizations each mailbox holds.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.mailbox import Mailbox
from tests.helpers import revoke_all_upstream
from tests.jobs.conftest import add_mailboxes, spawn_worker, start, wait_for, wait_status, worker_env

HEALTHY = 12
# Cronofy's answers take this long, so that exchanges are surely in flight when the process or database goes.
SLOW_ANSWERS_MS = 1500


def _healthy_mailboxes(admin, sandbox) -> list[str]:
    revoke_all_upstream(sandbox, domain="acme.example")
    emails = [m["email"] for m in sandbox.directory(domain="acme.example", trait="none", limit=HEALTHY)]
    add_mailboxes(admin.organization, emails)
    return emails


def _exchanging() -> int:
    return db.session.scalar(select(func.count(AuthorizationAttempt.id))
                             .where(AuthorizationAttempt.status == "exchanging"))


def _receipts() -> int:
    return db.session.scalar(select(func.count(CallbackReceipt.id)))


def assert_one_live_authorization_each(sandbox, emails: list[str]) -> None:
    """Every mailbox is authorized here and holds exactly one active grant at Cronofy, the one we hold."""
    db.session.expire_all()
    mailboxes = {m.email: m for m in db.session.scalars(select(Mailbox))}
    grants = {g["email"]: g["active_grants"] for g in sandbox.grants(domain="acme.example")}
    for email in emails:
        assert mailboxes[email].status == "authorized", (email, mailboxes[email].status, mailboxes[email].last_error_key)
        assert grants.get(email) == 1, (email, grants.get(email))
        assert mailboxes[email].lost_grant_suspected_at is None
    assert not [e for e, n in grants.items() if e not in emails and n]


def test_a_worker_killed_with_exchanges_in_flight_leaves_one_grant_per_mailbox(app, admin, connection, engine,
                                                                               live_server, tmp_path):
    emails = _healthy_mailboxes(admin, engine)
    env = worker_env(app, live_server, CRONOFY_READ_TIMEOUT=5)
    first = spawn_worker(env, tmp_path / "worker1.log")
    try:
        engine.set_faults(latency_ms=SLOW_ANSWERS_MS)
        run_id = start(admin, connection)
        wait_for(_exchanging, timeout=30, message="exchanges in flight")
        time.sleep(SLOW_ANSWERS_MS / 3000)  # a claimed exchange has sent its request and waits for the answer
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    time.sleep(SLOW_ANSWERS_MS / 1000 + 0.5)  # Cronofy finishes the exchanges nobody is waiting for
    engine.reset_faults()
    second = spawn_worker(env, tmp_path / "worker2.log")
    try:
        wait_status(run_id, "completed", timeout=120)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(20)
    assert_one_live_authorization_each(engine, emails)
    interrupted = db.session.scalar(select(func.count(AuthorizationAttempt.id))
                                    .where(AuthorizationAttempt.error_key == "exchange_interrupted"))
    assert interrupted >= 1  # the kill did cut exchanges short: this is the path under test



@pytest.fixture
def app_config(app_config, private_postgres):
    """This module's console runs on a PostgreSQL server of its own, so that the test may stop it."""
    url = private_postgres.create_database("console")
    migrating = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url})
    with migrating.app_context():
        upgrade()
        db.engine.dispose()
    return {**app_config, "SQLALCHEMY_DATABASE_URI": url}


OUTAGE_SECONDS = 20  # longer than any fixed retry schedule: only waiting for the database itself survives it


def test_a_database_outage_during_exchanges_leaves_one_grant_per_mailbox(app, admin, connection, engine,
                                                                         live_server, private_postgres, tmp_path):
    emails = _healthy_mailboxes(admin, engine)
    env = worker_env(app, live_server, CRONOFY_READ_TIMEOUT=5)
    worker = spawn_worker(env, tmp_path / "worker.log")
    try:
        engine.set_faults(latency_ms=SLOW_ANSWERS_MS)
        run_id = start(admin, connection)
        # Every callback is stored (none can be lost to the outage) and exchanges are in flight.
        wait_for(lambda: _receipts() >= HEALTHY and _exchanging(), timeout=30, message="exchanges in flight")
        db.session.remove()
        private_postgres.stop("immediate")
        time.sleep(OUTAGE_SECONDS)
        private_postgres.start()
        engine.reset_faults()
        db.engine.dispose()
        wait_status(run_id, "completed", timeout=180)
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(30)
    assert_one_live_authorization_each(engine, emails)
    log = (tmp_path / "worker.log").read_text()
    assert "the tokens are kept and stored as soon as it answers" in log
