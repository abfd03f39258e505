"""A code whose exchange was cut short (a worker died holding it) leads to a fresh request, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.base import utcnow
from models.mailbox import Mailbox, MailboxEvent
from services import attempts, exchange, scheduler, upstream
from services.crypto import cipher_for
from tests.jobs.conftest import add_mailboxes, directory_emails, fresh, start, wait_for


def _next_receipt(after_id: int = 0) -> CallbackReceipt:
    return wait_for(lambda: db.session.scalar(select(CallbackReceipt).where(CallbackReceipt.id > after_id)),
                    timeout=30, message="Cronofy's callback")


def _die_after_exchanging(app, receipt: CallbackReceipt) -> None:
    """Play a worker that exchanged the code at Cronofy, then died before storing the tokens."""
    attempt = db.session.get(AuthorizationAttempt, receipt.attempt_id)
    code = cipher_for(app.config).decrypt(receipt.code_encrypted)
    upstream.client_for("us").exchange_code(code, attempts.callback_url_of(attempt))
    attempt.status, attempt.claimed_until = "exchanging", utcnow() - timedelta(seconds=1)
    db.session.commit()


def test_a_code_used_by_a_dead_worker_is_requested_again_and_then_authorized(app, admin, connection, engine):
    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    first = _next_receipt()
    _die_after_exchanging(app, first)

    assert exchange.process_receipt(first.id) == exchange.Step(pump_run=run_id)
    assert fresh(Mailbox, mailbox_id).status == "queued"
    summaries = db.session.scalars(select(MailboxEvent.summary).where(MailboxEvent.mailbox_id == mailbox_id)).all()
    assert any(s.startswith("Requested again automatically") for s in summaries)

    scheduler.pump(run_id, window=3)
    second = _next_receipt(first.id)
    assert second.attempt_id != first.attempt_id
    assert exchange.process_receipt(second.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    assert mailbox.status == "authorized" and mailbox.refresh_token_encrypted


def test_the_automatic_request_happens_once_per_mailbox_and_run(app, admin, connection, engine):
    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    first = _next_receipt()
    _die_after_exchanging(app, first)
    exchange.process_receipt(first.id)

    scheduler.pump(run_id, window=3)
    second = _next_receipt(first.id)
    _die_after_exchanging(app, second)
    assert exchange.process_receipt(second.id) == exchange.SETTLED

    mailbox = fresh(Mailbox, mailbox_id)
    assert (mailbox.status, mailbox.last_error_key) == ("failed", "code_expired")


def test_a_plain_expired_code_is_not_requested_again(app, admin, connection, engine):
    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    attempt = db.session.get(AuthorizationAttempt, receipt.attempt_id)
    # Someone else used the code first, but no exchange of ours was under way: a real failure to show.
    upstream.client_for("us").exchange_code(cipher_for(app.config).decrypt(receipt.code_encrypted), attempts.callback_url_of(attempt))
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    assert fresh(Mailbox, mailbox_id).status == "failed"


def test_tokens_already_issued_survive_a_busy_database(app, admin, connection, engine, monkeypatch):
    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    real_store, failures = exchange.store_tokens, []

    def busy_twice(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            from sqlalchemy.exc import OperationalError

            raise OperationalError("UPDATE mailboxes", {}, Exception("database is locked"))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(exchange, "store_tokens", busy_twice)
    monkeypatch.setattr(exchange, "KEEP_RETRY_WAITS", (0.01, 0.01, 0.01))
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    assert len(failures) == 2 and mailbox.status == "authorized" and mailbox.refresh_token_encrypted


def test_a_callback_that_overtakes_our_record_of_the_202_still_leaves_a_full_timeline(app, admin, connection, engine):
    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    # Play the race: the callback is stored while the pump has not yet recorded Cronofy's 202.
    attempt = db.session.get(AuthorizationAttempt, receipt.attempt_id)
    attempt.status, attempt.requested_at = "sending", None
    mailbox = db.session.get(Mailbox, mailbox_id)
    mailbox.status, mailbox.requested_at = "queued", None
    db.session.commit()

    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    assert mailbox.status == "authorized" and mailbox.requested_at and mailbox.authorized_at
    latest = db.session.scalars(select(MailboxEvent).where(MailboxEvent.mailbox_id == mailbox_id)
                                .order_by(MailboxEvent.id.desc()).limit(2)).all()[::-1]
    assert [(e.from_status, e.to_status) for e in latest] == [("queued", "requested"), ("requested", "authorized")]
    assert latest[0].summary == "Cronofy's callback arrived before the request was recorded"
    assert {e.state for e in latest} == {attempt.state}
    assert fresh(AuthorizationAttempt, attempt.id).status == "authorized"
