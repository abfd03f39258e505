"""Connections: storing consent results encrypted, refreshing once at a time, reauth, disconnect."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.connection import Connection
from services.connections import connections
from services.platform import leases, upstream
from services.platform.crypto import cipher_for
from tests.contract.sandbox_support import SA_SCOPE, approve

REDIRECT_URI = "http://127.0.0.1:5000/connect/callback"
DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"


def consent(sandbox, domain="acme.example"):
    """Approve the sandbox's consent page and return the code."""
    query, _ = approve(sandbox, REDIRECT_URI, domain=domain)
    return query["code"]


def connect(organization, sandbox, actor=None, domain="acme.example", reconnect=None):
    client = upstream.client_for(organization.data_center)
    tokens = client.exchange_code(consent(sandbox, domain), REDIRECT_URI)
    info = client.userinfo(tokens.access_token)
    outcome = connections.record_connection(
        organization=organization, tokens=tokens, info=info, provider="google", data_center="us",
        requested_scope=SA_SCOPE, requested_delegated_scope=DELEGATED, actor=actor, reconnect=reconnect,
    )
    db.session.commit()
    return outcome, tokens


def expire(connection):
    connection.access_token_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def test_consent_result_is_stored_active_with_domain_and_encrypted_tokens(use_sandbox, make_org_admin):
    admin = make_org_admin()
    outcome, tokens = connect(admin.organization, use_sandbox, actor=admin)
    connection = outcome.connection
    assert outcome.created and connection.status == "active"
    assert connection.domain == "acme.example"
    assert connection.service_account_id.startswith("ser_")
    raw = db.session.execute(text("SELECT * FROM connections")).mappings().one()
    stored = " ".join(str(v) for v in raw.values())
    assert tokens.access_token not in stored and tokens.refresh_token not in stored
    assert db.session.scalar(db.select(AuditEvent.action)) == "connection.connected"


def test_connecting_the_same_service_account_twice_keeps_one_row(use_sandbox, make_org_admin):
    admin = make_org_admin()
    first, _ = connect(admin.organization, use_sandbox)
    second, _ = connect(admin.organization, use_sandbox)
    assert not second.created and second.connection.id == first.connection.id
    assert db.session.scalar(db.select(db.func.count(Connection.id))) == 1


def test_expired_token_is_refreshed_and_rotated_refresh_token_persisted(use_sandbox, make_org_admin):
    admin = make_org_admin()
    outcome, tokens = connect(admin.organization, use_sandbox)
    expire(outcome.connection)
    new_access = connections.fresh_access_token(outcome.connection.id)
    assert new_access != tokens.access_token
    # The stored refresh token is the rotated one: refreshing again works.
    expire(db.session.get(Connection, outcome.connection.id))
    assert connections.fresh_access_token(outcome.connection.id) not in (new_access, tokens.access_token)


def test_fresh_token_is_returned_without_an_upstream_call(use_sandbox, make_org_admin):
    admin = make_org_admin()
    outcome, tokens = connect(admin.organization, use_sandbox)
    before = len(use_sandbox.events(path="/oauth/token", limit=500))
    assert connections.fresh_access_token(outcome.connection.id) == tokens.access_token
    assert len(use_sandbox.events(path="/oauth/token", limit=500)) == before


def test_concurrent_refreshes_make_one_upstream_refresh(app, use_sandbox, make_org_admin):
    admin = make_org_admin()
    outcome, _ = connect(admin.organization, use_sandbox)
    expire(outcome.connection)
    connection_id = outcome.connection.id
    token_calls_before = len(use_sandbox.events(path="/oauth/token", limit=5000))
    results, errors = [], []

    def worker():
        with app.app_context():
            try:
                results.append(connections.fresh_access_token(connection_id))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 4 and len(set(results)) == 1
    assert len(use_sandbox.events(path="/oauth/token", limit=5000)) - token_calls_before == 1


def test_a_refresh_finished_elsewhere_just_before_our_lease_is_used_not_repeated(
        app, use_sandbox, make_org_admin, monkeypatch):
    admin = make_org_admin()
    outcome, _ = connect(admin.organization, use_sandbox)
    expire(outcome.connection)
    connection_id = outcome.connection.id
    token_calls_before = len(use_sandbox.events(path="/oauth/token", limit=5000))
    real_try_acquire = leases.try_acquire

    def another_process_refreshes_first(*args, **kwargs):
        # Between our look (stale) and our lease, another process stores a fresh token and lets go.
        cipher = cipher_for(app.config)
        db.session.execute(text("UPDATE connections SET access_token_encrypted = :token, "
                                "access_token_expires_at = :until WHERE id = :id"),
                           {"token": cipher.encrypt("fresh-from-elsewhere"), "id": connection_id,
                            "until": utcnow() + timedelta(minutes=30)})
        return real_try_acquire(*args, **kwargs)

    monkeypatch.setattr(leases, "try_acquire", another_process_refreshes_first)
    assert connections.fresh_access_token(connection_id) == "fresh-from-elsewhere"
    assert len(use_sandbox.events(path="/oauth/token", limit=5000)) == token_calls_before
    assert db.session.get(Connection, connection_id, populate_existing=True).refresh_lease_until is None


def test_refused_refresh_marks_needs_reauth_and_says_what_to_do(use_sandbox, make_org_admin, client, login_as):
    admin = login_as(make_org_admin())
    outcome, tokens = connect(admin.organization, use_sandbox)
    upstream.client_for("us").revoke(token=tokens.refresh_token)
    expire(outcome.connection)
    with pytest.raises(connections.ReauthorizationNeeded, match="Reconnect"):
        connections.fresh_access_token(outcome.connection.id)
    connection = db.session.get(Connection, outcome.connection.id, populate_existing=True)
    assert connection.status == "needs_reauth"
    page = client.get(f"/orgs/{admin.organization_id}/connections/{connection.id}").get_data(as_text=True)
    assert "Reconnection needed" in page and "Reconnect" in page


def test_disconnect_revokes_upstream_and_keeps_the_record(use_sandbox, make_org_admin, client, login_as):
    admin = login_as(make_org_admin())
    outcome, tokens = connect(admin.organization, use_sandbox)
    url = f"/orgs/{admin.organization_id}/connections/{outcome.connection.id}/disconnect"
    assert client.post(url).status_code == 400  # no confirmation: nothing happens
    assert db.session.get(Connection, outcome.connection.id, populate_existing=True).status == "active"
    response = client.post(url, data={"confirm": "yes"}, follow_redirects=True)
    assert "is disconnected" in response.get_data(as_text=True)
    connection = db.session.get(Connection, outcome.connection.id, populate_existing=True)
    assert connection.status == "revoked" and connection.refresh_token_encrypted is None
    assert any(e.get("path") == "/oauth/token/revoke" for e in use_sandbox.events(limit=50))
    # The revoked authorization is dead upstream.
    from services.cronofy import InvalidGrantError

    with pytest.raises(InvalidGrantError):
        upstream.client_for("us").refresh_access_token(tokens.refresh_token)


def test_disconnect_with_upstream_down_changes_nothing(app, use_sandbox, make_org_admin, client, login_as):
    admin = login_as(make_org_admin())
    outcome, _ = connect(admin.organization, use_sandbox)
    app.config["SANDBOX_URL"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    app.config["UPSTREAM_CONNECT_TIMEOUT"] = 1.0
    url = f"/orgs/{admin.organization_id}/connections/{outcome.connection.id}/disconnect"
    response = client.post(url, data={"confirm": "yes"}, follow_redirects=True)
    assert "Nothing was changed" in response.get_data(as_text=True)
    connection = db.session.get(Connection, outcome.connection.id, populate_existing=True)
    assert connection.status == "active" and connection.refresh_token_encrypted


def test_connection_pages_never_render_tokens(use_sandbox, make_org_admin, client, login_as):
    admin = login_as(make_org_admin())
    outcome, tokens = connect(admin.organization, use_sandbox)
    for path in (f"/orgs/{admin.organization_id}/connections",
                 f"/orgs/{admin.organization_id}/connections/{outcome.connection.id}"):
        body = client.get(path).get_data(as_text=True)
        assert "acme.example" in body
        assert tokens.access_token not in body and tokens.refresh_token not in body


def test_connection_list_empty_state_points_to_the_wizard(make_org_admin, client, login_as):
    admin = login_as(make_org_admin())
    body = client.get(f"/orgs/{admin.organization_id}/connections").get_data(as_text=True)
    assert "No connections yet" in body and "Start the connection wizard" in body


def test_a_token_no_key_opens_gives_a_clear_error_and_frees_the_lease(app, use_sandbox, make_org_admin):
    from cryptography.fernet import Fernet

    admin = make_org_admin()
    outcome, _ = connect(admin.organization, use_sandbox)
    expire(outcome.connection)
    app.config["TOKEN_ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    with pytest.raises(connections.ConnectionActionError, match="flask keys rotate"):
        connections.fresh_access_token(outcome.connection.id)
    assert db.session.get(Connection, outcome.connection.id, populate_existing=True).refresh_lease_until is None
