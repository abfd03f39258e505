"""Only the newest consent of a wizard completes; a consent that replaces a service account revokes the old one.

Against the sandbox over HTTP: its service-account records say which authorizations are still active.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.connection import Connection
from models.onboarding import ConsentAttempt, WizardSession
from services.cronofy import TokenSet, UnavailableError
from services.cronofy.client import CronofyClient
from services.onboarding import consent
from tests.web.wizard_helpers import (
    connected,
    connection_state,
    decide,
    during_the_exchange,
    in_another_request,
    point_at_sandbox,
    query,
    ready_wizard,
    reconnect_wizard,
    service_accounts,
    start_consent,
    wizard_url,
)

DOMAIN = "acme.example"


@pytest.fixture
def admin(app, sandbox, client, login_as, make_org_admin):
    point_at_sandbox(app, sandbox)
    # Earlier tests shared this sandbox: start from a domain without active service accounts.
    sandbox.http.post(f"{sandbox.url}/sandbox/admin/revoke-service-account", json={"domain": DOMAIN},
                      timeout=10).raise_for_status()
    return login_as(make_org_admin())


def active_ids(sandbox) -> list[str]:
    return [sa["id"] for sa in service_accounts(sandbox, domain=DOMAIN, status="active")]


def status_of(sandbox, service_account_id: str) -> str:
    return next(sa["status"] for sa in service_accounts(sandbox, domain=DOMAIN) if sa["id"] == service_account_id)


def audit(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def actions() -> list[str]:
    return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_approving_an_older_consent_page_after_the_newer_one_connected_is_refused(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    page_a = start_consent(client, wizard)  # Connect, in one tab
    page_b = start_consent(client, wizard)  # Connect again, in another
    assert client.get(decide(sandbox, page_b)).headers["Location"].endswith(wizard_url(wizard, "verify"))
    connection = db.session.scalars(db.select(Connection)).one()
    before, audited = connection_state(connection), actions()

    response = client.get(decide(sandbox, page_a))

    text = response.get_data(as_text=True)
    assert response.status_code == 409 and 'data-kind="superseded"' in text
    assert "A newer connection attempt replaced this one" in text
    assert "only the newest attempt can finish a connection" in text and "nothing was connected or changed" in text
    assert f'href="{wizard_url(wizard, "verify")}" data-testid="back-to-wizard">' in text
    assert "Back to the wizard" in text
    assert 'data-outcome="revoked"' in text and "handed back to Cronofy (revoked)" in text
    assert connection_state(connection) == before
    assert actions() == audited and "connection.reconnected" not in audited
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    assert db.session.get(WizardSession, wizard.id).connection_id == connection.id
    assert active_ids(sandbox) == [connection.service_account_id]


def test_an_older_consent_page_approved_first_is_refused_and_the_newer_one_still_connects(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    page_a, page_b = start_consent(client, wizard), start_consent(client, wizard)

    refused = client.get(decide(sandbox, page_a))

    text = refused.get_data(as_text=True)
    assert refused.status_code == 409 and 'data-kind="superseded"' in text
    assert f'href="{wizard_url(wizard, "review")}" data-testid="back-to-wizard">' in text
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0
    assert active_ids(sandbox) == []
    assert client.get(decide(sandbox, page_b)).headers["Location"].endswith(wizard_url(wizard, "verify"))
    assert active_ids(sandbox) == [db.session.scalars(db.select(Connection)).one().service_account_id]


def test_a_newer_attempt_started_during_the_code_exchange_wins(app, client, admin, sandbox, monkeypatch):
    wizard = ready_wizard(admin.organization, admin)
    back, wizard_id = decide(sandbox, start_consent(client, wizard)), wizard.id
    during_the_exchange(monkeypatch, lambda: in_another_request(app, lambda: consent.begin_consent(
        db.session.get(WizardSession, wizard_id), redirect_uri="http://127.0.0.1:5000/connect/callback")))

    response = client.get(back)

    text = response.get_data(as_text=True)
    assert response.status_code == 409 and 'data-kind="superseded"' in text and 'data-outcome="revoked"' in text
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0
    assert "connection.connected" not in actions()
    assert active_ids(sandbox) == []


def test_a_superseded_approval_naming_the_connected_service_account_is_not_revoked(
    client, admin, sandbox, monkeypatch
):
    connection = connected(client, sandbox, admin)
    wizard = reconnect_wizard(admin, connection)
    stale = query(start_consent(client, wizard))["state"]
    start_consent(client, wizard)
    revoked = []

    def same_account(self, code, redirect_uri):
        return TokenSet(access_token="at", refresh_token="rt", expires_in=1800, expires_at=utcnow() + timedelta(1),
                        scope=None, token_type="bearer", service_account_id=connection.service_account_id)

    monkeypatch.setattr(CronofyClient, "exchange_code", same_account)
    monkeypatch.setattr(CronofyClient, "revoke", lambda self, **target: revoked.append(target))

    response = client.get(f"/connect/callback?code=c0de&state={stale}")

    assert response.status_code == 409 and 'data-outcome="kept"' in response.get_data(as_text=True)
    assert revoked == [] and active_ids(sandbox) == [connection.service_account_id]


def test_a_reconnect_that_brings_another_service_account_revokes_the_old_one_upstream(client, admin, sandbox):
    connection = connected(client, sandbox, admin)
    old = connection.service_account_id
    wizard = reconnect_wizard(admin, connection)
    back = decide(sandbox, start_consent(client, wizard))

    response = client.get(back, follow_redirects=True)

    text = response.get_data(as_text=True)
    db.session.expire_all()
    new = db.session.get(Connection, connection.id).service_account_id
    assert new != old and db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    assert f"the one it replaced ({old}) was revoked at Cronofy: only the new one is active" in text
    assert (status_of(sandbox, old), status_of(sandbox, new)) == ("revoked", "active")
    assert active_ids(sandbox) == [new]
    reconnected = audit("connection.reconnected")[-1]
    assert reconnected.details["replaced_service_account_id"] == old
    assert reconnected.details["service_account_id"] == new
    revoked = audit("connection.service_account_revoked")
    assert [(e.details["service_account_id"], e.details["replaced_by"]) for e in revoked] == [(old, new)]


def test_an_old_service_account_cronofy_would_not_revoke_is_reported_and_the_new_one_kept(
    client, admin, sandbox, monkeypatch
):
    connection = connected(client, sandbox, admin)
    old = connection.service_account_id
    back = decide(sandbox, start_consent(client, reconnect_wizard(admin, connection)))

    def unreachable(self, **target):
        raise UnavailableError(error_key="timeout")

    monkeypatch.setattr(CronofyClient, "revoke", unreachable)

    text = client.get(back, follow_redirects=True).get_data(as_text=True)

    db.session.expire_all()
    new = db.session.get(Connection, connection.id)
    assert new.status == "active" and new.service_account_id != old
    assert f"did not confirm revoking the one it replaced ({old})" in text
    assert "/enterprise_connect/authorizations" in text
    failed = audit("connection.service_account_revoke_failed")
    assert [e.details["service_account_id"] for e in failed] == [old]
    assert status_of(sandbox, old) == "active"


def test_a_disconnected_connection_reconnected_has_nothing_left_to_revoke(client, admin, sandbox):
    connection = connected(client, sandbox, admin)
    client.post(f"/orgs/{admin.organization_id}/connections/{connection.id}/disconnect", data={"confirm": "yes"})
    back = decide(sandbox, start_consent(client, reconnect_wizard(admin, connection)))

    assert client.get(back).status_code == 302

    assert not [a for a in actions() if a.startswith("connection.service_account_revoke")]
    db.session.expire_all()
    assert active_ids(sandbox) == [db.session.get(Connection, connection.id).service_account_id]
    assert db.session.scalars(db.select(ConsentAttempt.outcome).order_by(ConsentAttempt.id)).all()[-1] == "connected"


def test_a_superseded_approval_cronofy_does_not_identify_is_left_alone_and_the_admin_told_where_to_look(
    client, admin, sandbox, monkeypatch
):
    wizard = ready_wizard(admin.organization, admin)
    stale = query(start_consent(client, wizard))["state"]
    start_consent(client, wizard)
    revoked = []

    def anonymous(self, code, redirect_uri):
        return TokenSet(access_token="at", refresh_token="rt", expires_in=1800, expires_at=None, scope=None,
                        token_type="bearer")

    def no_userinfo(self, token):
        raise UnavailableError(error_key="timeout")

    monkeypatch.setattr(CronofyClient, "exchange_code", anonymous)
    monkeypatch.setattr(CronofyClient, "userinfo", no_userinfo)
    monkeypatch.setattr(CronofyClient, "revoke", lambda self, **target: revoked.append(target))

    text = client.get(f"/connect/callback?code=c0de&state={stale}").get_data(as_text=True)

    assert 'data-outcome="unidentified"' in text and "it was left alone" in text
    assert f'href="{sandbox.url}/enterprise_connect/authorizations"' in text
    assert revoked == []
