"""Lazy per-mailbox token refresh: rotated refresh tokens kept, one refresh at a time, refusal handled."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox
from services.mailboxes.mailbox_tokens import MailboxTokenError, fresh_mailbox_token
from services.platform import upstream
from services.platform.crypto import cipher_for
from tests.helpers import authorize_mailbox, connect_sandbox, make_mailbox
from tests.jobs.conftest import directory_emails, events_since, latest_event_id


@pytest.fixture
def authorized(app, engine, admin):
    _, sa_tokens = connect_sandbox(admin.organization, engine, actor=admin)
    mailbox = make_mailbox(admin.organization, email=directory_emails(engine, trait="none")[0])
    tokens = authorize_mailbox(mailbox, engine, sa_tokens.access_token)
    mailbox.access_token_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    return mailbox.id, tokens


def test_an_expired_token_is_refreshed_once_and_the_rotated_refresh_token_kept(app, engine, authorized):
    mailbox_id, tokens = authorized
    since = latest_event_id(engine)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_in_context(app, mailbox_id))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(set(results)) == 1 and results[0] != tokens["access_token"]
    assert len(events_since(engine, since, path="/oauth/token", method="POST")) == 1
    db.session.expire_all()
    stored = cipher_for(app.config).decrypt(db.session.get(Mailbox, mailbox_id).refresh_token_encrypted)
    assert stored != tokens["refresh_token"]  # the sandbox rotates refresh tokens
    assert fresh_mailbox_token(mailbox_id) == results[0]  # fresh now: no second refresh


def _in_context(app, mailbox_id):
    with app.app_context():
        try:
            return fresh_mailbox_token(mailbox_id)
        finally:
            db.session.remove()


def test_a_refused_refresh_marks_the_mailbox_needs_attention(app, engine, authorized):
    mailbox_id, tokens = authorized
    upstream.client_for("us").revoke(token=tokens["refresh_token"])
    with pytest.raises(MailboxTokenError, match="authorize it again"):
        fresh_mailbox_token(mailbox_id)
    mailbox = db.session.get(Mailbox, mailbox_id)
    assert (mailbox.status, mailbox.last_error_key) == ("needs_attention", "invalid_grant")
