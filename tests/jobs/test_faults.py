"""The engine under the sandbox's fault switches: nothing lost, nothing done twice, clear reasons."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.mailbox import Mailbox, MailboxEvent
from services.cronofy import HMAC_HEADER, sign
from services.engine import attempts, runs
from tests.jobs.conftest import (
    add_mailboxes,
    attempt_counts,
    directory_emails,
    events_since,
    latest_event_id,
    start,
    wait_for,
    wait_status,
)
from jobs import enqueue_pump


@pytest.fixture
def healthy(admin, engine):
    """Ten mailboxes the sandbox authorizes; returns their ids."""
    return add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:10])


def statuses():
    db.session.expire_all()
    return dict(db.session.execute(select(Mailbox.status, func.count()).group_by(Mailbox.status)).all())


def successful_exchanges(sandbox, since):
    return [e for e in events_since(sandbox, since, path="/oauth/token", method="POST") if e["status"] == 200]


@pytest.mark.parametrize("retry_after", [1, 0])
def test_429_bursts_are_waited_out_and_the_batch_resent(admin, connection, healthy, worker, engine, retry_after):
    engine.set_faults(burst_429=3, retry_after=retry_after)
    since = latest_event_id(engine)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 10}
    sent = events_since(engine, since, path="/v1/service_account_authorizations")
    assert [e["status"] for e in sent] == [429, 429, 429, 202]
    assert len(successful_exchanges(engine, since)) == 10


def test_server_errors_are_retried_then_fail_the_mailboxes_with_the_reason(admin, connection, healthy, worker,
                                                                          engine, app):
    engine.set_faults(error_rate=1.0)
    since = latest_event_id(engine)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"failed": 10}
    mailbox = db.session.scalars(select(Mailbox)).first()
    assert "unavailable" in mailbox.last_error_description
    sent = events_since(engine, since, path="/v1/service_account_authorizations")
    assert len(sent) == app.config["SEND_MAX_TRIES"] and {e["status"] for e in sent} <= {500, 503}


def test_a_hung_upstream_times_out_instead_of_hanging_the_run(admin, connection, healthy, worker, engine, app):
    app.config["UPSTREAM_READ_TIMEOUT"] = 0.3
    engine.set_faults(hang_seconds=1.0)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"failed": 10}
    assert db.session.scalars(select(Mailbox)).first().last_error_key == "timeout"


def test_duplicate_callbacks_are_exchanged_once(admin, connection, healthy, worker, engine):
    engine.set_faults(duplicate_callbacks=True)
    since = latest_event_id(engine)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 10}
    # The second copies may land after the run completed; each is stored and settled as a duplicate.
    wait_for(lambda: db.session.scalar(select(func.count(CallbackReceipt.id))
                                       .where(CallbackReceipt.processed_at.is_not(None))) == 20,
             message="both copies of every callback to be settled")
    outcomes = dict(db.session.execute(select(CallbackReceipt.outcome, func.count()).group_by(CallbackReceipt.outcome)).all())
    assert outcomes == {"authorized": 10, "duplicate": 10}
    assert len(successful_exchanges(engine, since)) == 10


def test_out_of_order_callbacks_still_authorize_every_mailbox(admin, connection, healthy, worker, engine):
    engine.set_faults(out_of_order_callbacks=True)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 10}


def test_silent_upstream_marks_requests_stale_and_a_late_callback_changes_nothing(admin, connection, healthy, worker,
                                                                                  engine, app, client):
    app.config["STALE_REQUEST_MINUTES"] = 0.02
    engine.set_faults(callback_failure_rate=1.0)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"failed": 10}
    attempt = db.session.scalars(select(AuthorizationAttempt)).first()
    assert attempt.error_key == "no_callback"
    # The callback turns up after all (with the real URL, signed): stored, answered, not acted on.
    body = json.dumps({"authorization": {"code": "L" * 32, "state": attempt.state}}).encode()
    response = client.post(urlsplit(attempts.callback_url_of(attempt)).path, data=body, headers={HMAC_HEADER: sign(body, app.config["CRONOFY_CLIENT_SECRET"])})
    assert response.status_code == 200
    receipt = wait_for_receipt()
    assert receipt.outcome == "superseded" and statuses() == {"failed": 10}
    assert runs.retry_failed(db.session.get(AuthorizationRun, run_id), actor=admin) == 10


def wait_for_receipt():
    return wait_for(lambda: db.session.scalar(select(CallbackReceipt).where(CallbackReceipt.processed_at.is_not(None))),
                    message="the late callback to be processed")


def test_expired_codes_fail_with_a_clear_reason_and_a_retry_succeeds(admin, connection, healthy, worker, engine):
    engine.set_limits(code_ttl=0.05)
    engine.set_faults(latency_ms=150)
    run_id = start(admin, connection)
    run = wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"failed": 10}
    mailbox = db.session.scalars(select(Mailbox)).first()
    assert mailbox.last_error_key == "code_expired" and "Retry" in mailbox.last_error_description
    engine.reset_limits()
    engine.reset_faults()
    assert runs.retry_failed(run, actor=admin) == 10
    db.session.commit()
    enqueue_pump(run_id)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 10}
    progress = runs.run_progress(db.session.get(AuthorizationRun, run_id))
    assert progress.counts["authorized"] == 10 and progress.counts["failed"] == 0


def test_service_account_revoked_mid_run_pauses_with_a_reconnect_reason(admin, connection, healthy, worker, engine):
    run_id = start(admin, connection, canary_size=2, auto_continue=False)
    run = wait_status(run_id, "awaiting_confirmation", timeout=60)
    engine._admin("POST", "revoke-service-account", json={"domain": "acme.example"})
    runs.confirm_next_wave(run, actor=admin)
    db.session.commit()
    enqueue_pump(run_id)
    run = wait_status(run_id, "paused", timeout=60)
    assert "Reconnect" in run.pause_reason
    assert attempt_counts(run_id) == {"authorized": 2, "queued": 8}


def test_canary_above_the_threshold_pauses_with_the_numbers(admin, connection, worker, engine):
    failing = directory_emails(engine, trait="suspended")[:2] + directory_emails(engine, trait="outside_policy")[:2]
    add_mailboxes(admin.organization, failing + directory_emails(engine, trait="none")[:12])
    run_id = start(admin, connection, canary_size=10, failure_threshold=0.2)
    run = wait_status(run_id, "paused", timeout=60)
    assert run.pause_reason == "Canary wave: 4 of 10 failed (40%), above your 20% threshold."  # the banner says what next
    assert attempt_counts(run_id)["queued"] == 6
    runs.resume_run(run, actor=admin)
    db.session.commit()
    enqueue_pump(run_id)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 12, "failed": 4}


def test_pause_resume_and_cancel(admin, connection, healthy, worker, engine):
    run_id = start(admin, connection, enqueue=False)
    run = db.session.get(AuthorizationRun, run_id)
    runs.pause_run(run, actor=admin)
    db.session.commit()
    enqueue_pump(run_id)
    assert attempt_counts(run_id) == {"queued": 10}
    runs.resume_run(run, actor=admin)
    db.session.commit()
    enqueue_pump(run_id)
    wait_status(run_id, "completed", timeout=60)
    assert statuses() == {"authorized": 10}


def test_cancel_puts_unsent_mailboxes_back_where_they_were(admin, connection, engine):
    ids = add_mailboxes(admin.organization, ["a@acme.example", "b@acme.example", "c@acme.example"])
    db.session.get(Mailbox, ids[1]).status = "failed"
    db.session.get(Mailbox, ids[2]).status = "needs_attention"
    db.session.commit()
    run_id = start(admin, connection, enqueue=False)
    assert runs.cancel_run(db.session.get(AuthorizationRun, run_id), actor=admin) == 3
    db.session.commit()
    assert [db.session.get(Mailbox, i).status for i in ids] == ["new", "failed", "needs_attention"]
    assert attempt_counts(run_id) == {"cancelled": 3}
    assert db.session.scalar(select(func.count(MailboxEvent.id)).where(MailboxEvent.kind == "cancelled")) == 3
