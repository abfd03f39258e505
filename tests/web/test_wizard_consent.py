"""Connect and the return from the consent page, against the sandbox: success and every bad input."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.connection import Connection
from models.onboarding import ConsentAttempt, WizardSession
from services.cronofy import TokenSet, UserInfo
from services.onboarding import consent
from services.onboarding import wizard as wizards
from tests.web.wizard_helpers import (
    connect_through_sandbox,
    connected,
    connection_state,
    decide,
    during_the_exchange,
    in_another_request,
    other_browser,
    point_at_sandbox,
    query,
    ready_wizard,
    reconnect_wizard,
    start_consent,
    wizard_url,
)


@pytest.fixture
def admin(app, sandbox, client, login_as, make_org_admin):
    point_at_sandbox(app, sandbox)
    return login_as(make_org_admin())


def second_wizard(wizard: WizardSession) -> WizardSession:
    """Return another open wizard of the same organization with the same choices (as a colleague's would be)."""
    other = WizardSession(organization_id=wizard.organization_id, provider=wizard.provider, data_center=wizard.data_center,
                          scope=wizard.scope, delegated_scope=wizard.delegated_scope, checklist_done=[], step="review")
    db.session.add(other)
    db.session.commit()
    return other


def actions() -> list[str]:
    return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_connect_redirects_to_the_data_centers_consent_page_with_a_fresh_state(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    url = start_consent(client, wizard)
    params = query(url)
    assert url.startswith(f"{sandbox.url}/enterprise_connect/oauth/authorize?")
    assert params["response_type"] == "code" and params["client_id"] == sandbox.client_id
    assert params["redirect_uri"] == "http://127.0.0.1:5000/connect/callback"
    assert params["scope"] == "service_account/accounts/manage service_account/resources/manage"
    assert params["delegated_scope"] == "read_write" and params["provider_name"] == "google"
    attempt = db.session.scalars(db.select(ConsentAttempt)).one()
    assert attempt.state_hash == consent.hash_state(params["state"]) and params["state"] not in attempt.state_hash
    db.session.refresh(wizard)
    assert wizard.status == "connecting"


def test_real_cronofy_hosts_are_used_outside_sandbox_mode(app, client, login_as, make_org_admin, make_organization):
    app.config.update(SANDBOX_MODE=False, CRONOFY_CLIENT_ID="cli_live", CRONOFY_CLIENT_SECRET="sec_live")
    admin = login_as(make_org_admin(make_organization(data_center="de")))
    wizard = ready_wizard(admin.organization, admin)
    url = start_consent(client, wizard)
    assert url.startswith("https://app-de.cronofy.com/enterprise_connect/oauth/authorize?")
    assert "provider_name" not in query(url) and "sec_live" not in url


def test_approving_connects_and_the_verify_step_shows_the_domain(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    response = connect_through_sandbox(client, sandbox, wizard, domain="acme.example")
    assert response.status_code == 302 and response.headers["Location"].endswith(wizard_url(wizard, "verify"))
    connection = db.session.scalars(db.select(Connection)).one()
    assert (connection.status, connection.domain, connection.provider) == ("active", "acme.example", "google")
    assert connection.service_account_id.startswith("ser_")
    assert connection.granted_scope == "service_account/accounts/manage service_account/resources/manage"
    assert connection.granted_delegated_scope == "read_write"
    db.session.refresh(wizard)
    assert (wizard.status, wizard.connection_id) == ("completed", connection.id)
    page = client.get(wizard_url(wizard, "verify")).get_data(as_text=True)
    assert 'data-testid="connection-domain">acme.example' in page and 'data-testid="connected"' in page
    assert "connection.connected" in actions()


def test_denying_consent_explains_what_to_do_next_and_reopens_the_wizard(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    response = connect_through_sandbox(client, sandbox, wizard, decision="deny")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "The connection was declined" in text and 'data-kind="denied"' in text
    assert wizard_url(wizard, "review") in text
    db.session.refresh(wizard)
    assert wizard.status == "draft"
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0
    attempt = db.session.scalars(db.select(ConsentAttempt)).one()
    assert (attempt.outcome, attempt.error_key, attempt.used_at is not None) == ("denied", "access_denied", True)
    assert "connection.consent_failed" in actions()


def test_invalid_scope_sends_the_admin_back_to_the_permissions(client, admin):
    wizard = ready_wizard(admin.organization, admin)
    state = query(start_consent(client, wizard))["state"]
    response = client.get(f"/connect/callback?error=invalid_scope&state={state}")
    text = response.get_data(as_text=True)
    assert "Cronofy refused the requested permissions" in text and wizard_url(wizard, "scopes") in text


def test_a_missing_state_is_refused(client, admin):
    response = client.get("/connect/callback?code=abc")
    assert response.status_code == 400 and 'data-kind="missing_state"' in response.get_data(as_text=True)


def test_a_forged_state_is_refused_and_changes_nothing(client, admin):
    wizard = ready_wizard(admin.organization, admin)
    start_consent(client, wizard)
    response = client.get("/connect/callback?code=abc&state=forged-state-value")
    assert response.status_code == 400 and 'data-kind="unknown_state"' in response.get_data(as_text=True)
    assert db.session.scalars(db.select(ConsentAttempt)).one().used_at is None


def test_a_state_from_another_browser_session_is_refused_and_the_owner_can_still_finish(
    app, client, admin, sandbox, make_org_admin
):
    wizard = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, wizard))
    other = other_browser(app, make_org_admin(admin.organization))
    response = other.get(back)
    assert response.status_code == 400 and 'data-kind="other_session"' in response.get_data(as_text=True)
    assert client.get(back).headers["Location"].endswith(wizard_url(wizard, "verify"))


def test_a_replayed_return_shows_the_result_instead_of_connecting_twice(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, wizard))
    assert client.get(back).status_code == 302
    replay = client.get(back)
    assert replay.status_code == 302 and replay.headers["Location"].endswith(wizard_url(wizard, "verify"))
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    assert actions().count("connection.connected") == 1


def test_a_replayed_return_after_a_failure_is_refused(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, wizard), decision="deny")
    client.get(back)
    replay = client.get(back)
    assert replay.status_code == 409 and 'data-kind="used_state"' in replay.get_data(as_text=True)


def test_an_expired_state_is_refused(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, wizard))
    attempt = db.session.scalars(db.select(ConsentAttempt)).one()
    attempt.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get(back)
    assert response.status_code == 410 and "The connection attempt expired" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0


def test_a_code_used_twice_is_refused_by_cronofy_and_explained(client, admin, sandbox):
    first = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, first))
    assert client.get(back).status_code == 302
    second = ready_wizard(admin.organization, admin, provider="microsoft_graph")
    state = query(start_consent(client, second))["state"]
    response = client.get(f"/connect/callback?code={query(back)['code']}&state={state}")
    assert response.status_code == 400
    assert "The approval could not be completed" in response.get_data(as_text=True)
    attempt = db.session.scalars(db.select(ConsentAttempt).where(ConsentAttempt.wizard_session_id == second.id)).one()
    assert (attempt.outcome, attempt.error_key) == ("failed", "invalid_grant")
    db.session.refresh(second)
    assert second.status == "draft"


@pytest.mark.config(UPSTREAM_READ_TIMEOUT=0.5)
def test_a_hanging_upstream_during_the_exchange_ends_in_a_timeout_page_not_a_hang(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    back = decide(sandbox, start_consent(client, wizard))
    sandbox.set_faults(hang_seconds=3)
    started = time.monotonic()
    response = client.get(back)
    assert time.monotonic() - started < 2.5
    assert response.status_code == 504 and "Cronofy did not answer in time" in response.get_data(as_text=True)
    assert wizard_url(wizard, "review") in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0
    db.session.refresh(wizard)
    assert wizard.status == "draft"


def test_a_double_clicked_connect_leaves_the_newest_attempt_usable_and_one_connection(client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    first, second = start_consent(client, wizard), start_consent(client, wizard)
    assert query(first)["state"] != query(second)["state"]
    outcomes = db.session.scalars(db.select(ConsentAttempt.outcome).order_by(ConsentAttempt.id)).all()
    assert outcomes == ["superseded", "pending"]
    assert client.get(decide(sandbox, second)).status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    again = client.post(wizard_url(wizard, "connect"))
    assert again.status_code == 302 and again.headers["Location"].endswith(wizard_url(wizard, "verify"))


def test_an_unknown_data_center_stops_before_leaving_the_console(client, admin):
    wizard = ready_wizard(admin.organization, admin)
    admin.organization.data_center = "eu"
    db.session.commit()
    response = client.post(wizard_url(wizard, "connect"))
    assert response.status_code == 302 and response.headers["Location"].endswith(wizard_url(wizard, "provider"))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "data center is not one Cronofy has" in page and "Ask the vendor&#39;s support to correct it." in page
    assert db.session.scalar(db.select(db.func.count()).select_from(ConsentAttempt)) == 0


def test_two_admins_connecting_at_once_the_newer_attempt_connects_and_the_older_is_told_why(
    app, client, admin, sandbox, make_org_admin
):
    wizard = ready_wizard(admin.organization, admin)
    colleague = other_browser(app, make_org_admin(admin.organization))
    mine, theirs = start_consent(client, wizard), start_consent(colleague, wizard)
    my_back, their_back = decide(sandbox, mine), decide(sandbox, theirs)
    refused = client.get(my_back)
    assert refused.status_code == 409 and 'data-kind="superseded"' in refused.get_data(as_text=True)
    assert colleague.get(their_back).headers["Location"].endswith(wizard_url(wizard, "verify"))
    attempts = db.session.scalars(db.select(ConsentAttempt).order_by(ConsentAttempt.id)).all()
    assert [a.outcome for a in attempts] == ["superseded", "connected"]
    db.session.refresh(wizard)
    assert wizard.status == "completed" and wizard.connection_id == attempts[1].connection_id


def test_the_same_service_account_connected_twice_at_once_ends_in_one_connection(
    app, client, admin, make_org_admin, monkeypatch
):
    class SameServiceAccount:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def exchange_code(self, code, redirect_uri):
            return TokenSet(access_token=f"at-{code}", refresh_token=f"rt-{code}", expires_in=1800,
                            expires_at=utcnow() + timedelta(seconds=1800), scope=None, token_type="bearer",
                            service_account_id="ser_shared")

        def userinfo(self, token):
            return UserInfo(sub="ser_shared", type="service_account", email="svc@acme.example", name=None,
                            domain="acme.example", provider_name="google", scope="service_account/accounts/manage "
                            "service_account/resources/manage", delegated_scope="read_write", status="active")

    monkeypatch.setattr("services.platform.upstream.client_for", lambda *a, **k: SameServiceAccount())
    wizard = ready_wizard(admin.organization, admin)
    theirs_wizard = second_wizard(wizard)  # a colleague's own wizard for the same domain
    colleague = other_browser(app, make_org_admin(admin.organization))
    mine = query(start_consent(client, wizard))["state"]
    theirs = query(start_consent(colleague, theirs_wizard))["state"]
    assert client.get(f"/connect/callback?code=one&state={mine}").status_code == 302
    assert colleague.get(f"/connect/callback?code=two&state={theirs}").status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    assert actions().count("connection.connected") == 1 and actions().count("connection.reconnected") == 1
    # The same service account came back: nothing is revoked, it is the one the connection holds.
    assert not [a for a in actions() if a.startswith("connection.service_account_revoke")]


def test_a_narrower_grant_is_shown_with_an_offer_to_reconnect(app, client, admin, monkeypatch):
    class Narrow:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def exchange_code(self, code, redirect_uri):
            return TokenSet(access_token="at-narrow", refresh_token="rt-narrow", expires_in=1800, expires_at=None,
                            scope="service_account/accounts/manage", token_type="bearer", service_account_id="ser_n")

        def userinfo(self, token):
            return UserInfo(sub="ser_n", type="service_account", email=None, name=None, domain="acme.example",
                            provider_name="google", scope="service_account/accounts/manage",
                            delegated_scope="read_only", status="active")

    monkeypatch.setattr("services.platform.upstream.client_for", lambda *a, **k: Narrow())
    wizard = ready_wizard(admin.organization, admin)
    state = query(start_consent(client, wizard))["state"]
    client.get(f"/connect/callback?code=c&state={state}")
    page = client.get(wizard_url(wizard, "verify")).get_data(as_text=True)
    assert 'data-testid="narrower-grant"' in page and 'data-testid="reconnect"' in page
    assert "Rooms and equipment" in page and "Read and write" in page
    connection = db.session.scalars(db.select(Connection)).one()
    response = client.post(f"/orgs/{admin.organization_id}/wizard", data={"reconnect": str(connection.id)})
    follow = response.headers["Location"]
    assert follow.endswith("/review")
    new_wizard = db.session.scalars(db.select(type(wizard)).where(type(wizard).id != wizard.id)).one()
    assert new_wizard.reconnect_connection_id == connection.id and new_wizard.delegated_scope == "read_write"


def test_a_wizard_discarded_while_its_admin_is_on_the_consent_page_stays_discarded(client, admin, sandbox):
    connection = connected(client, sandbox, admin)
    wizard = reconnect_wizard(admin, connection)
    back = decide(sandbox, start_consent(client, wizard), domain="globex.example")
    client.post(wizard_url(wizard, "discard"), data={"confirm": "yes"})
    before, audited = connection_state(connection), actions()

    response = client.get(back)

    text = response.get_data(as_text=True)
    assert response.status_code == 410 and 'data-kind="wizard_discarded"' in text
    assert "This setup was discarded" in text and "Nothing was connected or changed." in text
    assert f'href="/orgs/{admin.organization_id}/wizard" data-testid="back-to-wizard">' in text
    assert connection_state(connection) == before and before["domain"] == "acme.example"
    assert actions() == audited and "connection.reconnected" not in audited
    discarded = db.session.get(WizardSession, wizard.id)
    assert (discarded.status, discarded.connection_id) == ("abandoned", None)
    start = client.get(f"/orgs/{admin.organization_id}/wizard?reconnect={connection.id}").get_data(as_text=True)
    assert 'data-testid="resume-wizard"' not in start


def test_a_discard_during_the_code_exchange_wins_over_the_approval(app, client, admin, sandbox, monkeypatch):
    connection = connected(client, sandbox, admin)
    wizard = reconnect_wizard(admin, connection)
    back = decide(sandbox, start_consent(client, wizard), domain="globex.example")
    before, wizard_id = connection_state(connection), wizard.id
    during_the_exchange(monkeypatch, lambda: in_another_request(
        app, lambda: wizards.discard(db.session.get(WizardSession, wizard_id))))

    response = client.get(back)

    assert response.status_code == 410 and 'data-kind="wizard_discarded"' in response.get_data(as_text=True)
    assert connection_state(connection) == before
    assert "connection.reconnected" not in actions()
    assert db.session.get(WizardSession, wizard.id).status == "abandoned"
    assert db.session.get(ConsentAttempt, db.session.scalars(
        db.select(ConsentAttempt.id).where(ConsentAttempt.wizard_session_id == wizard.id)).one()).outcome == "discarded"


def test_connecting_a_wizard_discarded_by_another_request_does_not_reopen_it(app, admin):
    wizard = ready_wizard(admin.organization, admin)
    wizard_id, read_before = wizard.id, wizard.status
    in_another_request(app, lambda: wizards.discard(db.session.get(WizardSession, wizard_id)))
    assert (read_before, wizard.status) == ("draft", "draft")  # this request still holds what it read before

    with pytest.raises(consent.ConsentProblem) as refused:
        consent.begin_consent(wizard, redirect_uri="http://127.0.0.1:5000/connect/callback", actor=admin)

    assert refused.value.kind == "wizard_closed"
    db.session.rollback()
    assert db.session.get(WizardSession, wizard.id).status == "abandoned"
