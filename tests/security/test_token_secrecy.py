"""Tokens from a full connect are never stored in plaintext, never logged and never rendered."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from extensions import db
from models.connection import Connection
from services.platform.crypto import cipher_for
from tests.web.wizard_helpers import decide, point_at_sandbox, ready_wizard, start_consent, wizard_url


@pytest.fixture
def connected(app, client, login_as, make_org_admin, sandbox, caplog):
    """Connect through the sandbox with every logger at DEBUG; return (wizard, pages seen, plaintext tokens)."""
    point_at_sandbox(app, sandbox)
    admin = login_as(make_org_admin())
    caplog.set_level(logging.DEBUG)
    wizard = ready_wizard(admin.organization, admin)
    pages = [client.get(wizard_url(wizard, step)) for step in ("provider", "checklist", "scopes", "review")]
    consent_url = start_consent(client, wizard)
    back = decide(sandbox, consent_url)
    pages.append(client.get(back))
    pages += [client.get(wizard_url(wizard, "verify")), client.get(f"/orgs/{admin.organization_id}"),
              client.get(f"/orgs/{admin.organization_id}/wizard"), client.get(back)]
    connection = db.session.scalars(db.select(Connection)).one()
    cipher = cipher_for(app.config)
    tokens = (cipher.decrypt(connection.access_token_encrypted), cipher.decrypt(connection.refresh_token_encrypted))
    return connection, pages, tokens


def test_the_connect_stored_real_tokens(connected):
    connection, _pages, (access, refresh) = connected
    assert connection.status == "active" and len(access) > 10 and len(refresh) > 10 and access != refresh


def test_the_raw_table_holds_no_plaintext_token(connected):
    _connection, _pages, tokens = connected
    rows = db.session.execute(text("SELECT * FROM connections")).all()
    raw = " ".join(str(value) for row in rows for value in row)
    for token in tokens:
        assert token not in raw
    for table in ("consent_attempts", "wizard_sessions", "audit_events", "setup_links"):
        dump = " ".join(str(v) for row in db.session.execute(text(f"SELECT * FROM {table}")).all() for v in row)
        assert all(token not in dump for token in tokens), table


def test_no_token_reaches_the_logs_of_a_full_connect(connected, caplog):
    _connection, _pages, tokens = connected
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert any("/oauth/token" in r.getMessage() for r in records), "the exchange itself was logged"
    logged = " ".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)
    for token in tokens:
        assert token not in logged


def test_no_page_renders_a_token(connected):
    _connection, pages, tokens = connected
    assert len(pages) >= 8
    for response in pages:
        body = response.get_data(as_text=True) + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        for token in tokens:
            assert token not in body
