"""A code whose exchange was cut short (a worker died holding it) leads to a fresh request, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from extensions import db
from models.authorization import AuthorizationAttempt, CallbackReceipt
from models.base import utcnow
from models.mailbox import Mailbox, MailboxEvent
from services.engine import attempts, exchange, scheduler
from services.platform import upstream
from services.platform.crypto import cipher_for
from tests.helpers import revoke_all_upstream
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


@pytest.fixture(autouse=True)
def no_authorizations_left_by_earlier_tests(engine):
    revoke_all_upstream(engine, domain="acme.example")


def _active_grants(sandbox, email: str) -> int:
    return sum(g["active_grants"] for g in sandbox.grants(email=email))


def _summaries(mailbox_id: int) -> list[str]:
    return db.session.scalars(select(MailboxEvent.summary).where(MailboxEvent.mailbox_id == mailbox_id)
                              .order_by(MailboxEvent.id)).all()


def test_a_code_used_by_a_dead_worker_leaves_exactly_one_authorization_at_cronofy(app, admin, connection, engine):
    email = directory_emails(engine, trait="none")[0]
    mailbox_id = add_mailboxes(admin.organization, [email])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    first = _next_receipt()
    _die_after_exchanging(app, first)
    assert _active_grants(engine, email) == 1  # issued by Cronofy, its tokens lost with the worker

    assert exchange.process_receipt(first.id) == exchange.Step(pump_run=run_id)
    mailbox = fresh(Mailbox, mailbox_id)
    assert mailbox.status == "queued" and mailbox.lost_grant_suspected_at is not None
    interrupted = db.session.scalar(select(MailboxEvent).where(
        MailboxEvent.mailbox_id == mailbox_id, MailboxEvent.to_status == "failed"))
    assert fresh(AuthorizationAttempt, first.attempt_id).error_key == "exchange_interrupted"
    assert "cut short" in interrupted.summary and "expired" not in interrupted.summary

    scheduler.pump(run_id, window=3)
    second = _next_receipt(first.id)
    # Its exchange names the account: every authorization of it is revoked, and the mailbox asked once more.
    assert exchange.process_receipt(second.id) == exchange.Step(pump_run=run_id)
    assert _active_grants(engine, email) == 0
    assert fresh(Mailbox, mailbox_id).lost_grant_suspected_at is None

    scheduler.pump(run_id, window=3)
    third = _next_receipt(second.id)
    assert exchange.process_receipt(third.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    assert mailbox.status == "authorized" and mailbox.last_error_key is None
    assert _active_grants(engine, email) == 1
    # The one left is the one whose tokens the console holds.
    stored = cipher_for(app.config).decrypt(mailbox.refresh_token_encrypted)
    assert upstream.client_for("us").refresh_access_token(stored).access_token
    summaries = _summaries(mailbox_id)
    assert any(s.startswith("Requested again automatically after an interrupted exchange") for s in summaries)
    assert any("every authorization of its account was revoked" in s for s in summaries)
    assert not any("expired" in s for s in summaries)


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
    assert (mailbox.status, mailbox.last_error_key) == ("failed", "exchange_interrupted")
    assert mailbox.lost_grant_suspected_at is not None  # a retry of the mailbox cleans up what Cronofy holds


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


def test_issued_tokens_wait_out_a_database_outage_however_many_tries_it_takes(app, admin, connection, engine,
                                                                              monkeypatch):
    email = directory_emails(engine, trait="none")[0]
    mailbox_id = add_mailboxes(admin.organization, [email])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    real_store, failures = exchange.store_tokens, []

    def down_for_a_while(*args, **kwargs):
        if len(failures) < 3 * len(exchange.KEEP_RETRY_WAITS):
            failures.append(1)
            from sqlalchemy.exc import OperationalError

            raise OperationalError("UPDATE mailboxes", {}, ConnectionRefusedError("connection refused"))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(exchange, "store_tokens", down_for_a_while)
    monkeypatch.setattr(exchange, "KEEP_RETRY_WAITS", (0.01, 0.01))
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    assert len(failures) == 6 and mailbox.status == "authorized" and mailbox.refresh_token_encrypted
    assert _active_grants(engine, email) == 1


def test_tokens_of_an_attempt_taken_over_meanwhile_are_revoked(app, admin, connection, engine, monkeypatch):
    email = directory_emails(engine, trait="none")[0]
    add_mailboxes(admin.organization, [email])
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    real_store = exchange.store_tokens

    def taken_over_first(work, tokens):
        # Another worker took the exchange over (its claim lapsed) while these tokens waited for the database.
        db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.id == work.attempt_id)
                           .values(status="exchanging", claim_token="another-worker",
                                   claimed_until=utcnow() + timedelta(seconds=10)))
        db.session.commit()
        return real_store(work, tokens)

    monkeypatch.setattr(exchange, "store_tokens", taken_over_first)
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    assert fresh(CallbackReceipt, receipt.id).outcome == "superseded"
    assert _active_grants(engine, email) == 0
    assert fresh(AuthorizationAttempt, receipt.attempt_id).claim_token == "another-worker"  # left to its holder


def test_issued_tokens_also_wait_out_a_pool_that_cannot_hand_out_connections(app, admin, connection, engine,
                                                                             monkeypatch):
    email = directory_emails(engine, trait="none")[0]
    mailbox_id = add_mailboxes(admin.organization, [email])[0]
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()
    real_store, failures = exchange.store_tokens, []

    def pool_exhausted_twice(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            from sqlalchemy.exc import TimeoutError as PoolTimeoutError

            raise PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(exchange, "store_tokens", pool_exhausted_twice)
    monkeypatch.setattr(exchange, "KEEP_RETRY_WAITS", (0.01,))
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    assert len(failures) == 2 and fresh(Mailbox, mailbox_id).status == "authorized"
    assert _active_grants(engine, email) == 1


def test_a_last_exchange_try_that_timed_out_marks_the_mailbox_for_clean_up(app, admin, connection, engine,
                                                                         monkeypatch):
    from services.cronofy import UnavailableError

    mailbox_id = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:1])[0]
    app.config["SEND_MAX_TRIES"] = 1
    run_id = start(admin, connection, enqueue=False)
    scheduler.pump(run_id, window=3)
    receipt = _next_receipt()

    def timed_out(self, code, redirect_uri):
        raise UnavailableError("Cronofy did not answer in time", error_key="timeout")

    monkeypatch.setattr(type(upstream.client_for("us")), "exchange_code", timed_out)
    assert exchange.process_receipt(receipt.id) == exchange.SETTLED
    mailbox = fresh(Mailbox, mailbox_id)
    # Cronofy may have issued the tokens before the answer was lost: the next exchange revokes them first.
    assert mailbox.status == "failed" and mailbox.lost_grant_suspected_at is not None
