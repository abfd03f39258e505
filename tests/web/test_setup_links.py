"""Setup links: the connect step handed to a colleague — once, expiring, revocable, no account, that step only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.connection import Connection
from models.onboarding import ConsentAttempt, SetupLink, WizardSession
from services.onboarding import setup_links
from services.onboarding import wizard as wizards
from tests.web.wizard_helpers import (
    connected,
    connection_state,
    decide,
    during_the_exchange,
    in_another_request,
    other_browser,
    point_at_sandbox,
    ready_wizard,
    reconnect_wizard,
    wizard_url,
)


@pytest.fixture
def admin(app, sandbox, login_as, make_org_admin):
    point_at_sandbox(app, sandbox)
    return login_as(make_org_admin())


def create_link(client, wizard, label="Sam, Google admin") -> str:
    response = client.post(wizard_url(wizard, "setup-links"), data={"label": label})
    assert response.status_code == 200
    match = re.search(r'value="(http[^"]+/setup/[^"]+)" data-testid="setup-link-url"', response.get_data(as_text=True))
    assert match, "the page shows the link"
    return match.group(1).split("127.0.0.1:5000", 1)[1]


def anonymous(app):
    return other_browser(app)


def actions() -> list[str]:
    return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_creating_a_link_shows_it_once_stores_only_a_hash_and_audits(client, admin):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    token = path.rsplit("/", 1)[1]
    link = db.session.scalars(db.select(SetupLink)).one()
    assert link.token_hash != token and token not in link.token_hash and len(link.token_hash) == 64
    assert timedelta(hours=71, minutes=59) < link.expires_at - utcnow() <= timedelta(hours=72)
    assert link.label == "Sam, Google admin" and link.created_by_id == admin.id
    assert "setup_link.created" in actions()
    review = client.get(wizard_url(wizard, "review")).get_data(as_text=True)
    assert 'data-testid="setup-links"' in review and token not in review


@pytest.mark.config(SETUP_LINK_TTL_HOURS=2)
def test_the_lifetime_comes_from_the_configuration(client, admin):
    create_link(client, ready_wizard(admin.organization, admin))
    link = db.session.scalars(db.select(SetupLink)).one()
    assert timedelta(hours=1, minutes=59) < link.expires_at - utcnow() <= timedelta(hours=2)


def test_a_link_needs_a_wizard_ready_for_review(client, admin):
    wizard = ready_wizard(admin.organization, admin)
    wizard.scope = ""
    db.session.commit()
    response = client.post(wizard_url(wizard, "setup-links"), data={"label": ""})
    assert response.status_code == 302
    assert db.session.scalar(db.select(db.func.count()).select_from(SetupLink)) == 0


def test_the_link_opens_only_the_connect_step_without_an_account(app, client, admin):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    page = anonymous(app).get(path)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="summary-provider">Google Workspace' in text and 'data-testid="connect"' in text
    assert "/wizard/" not in text and "Wizard steps" not in text and "Sign out" not in text
    assert f"/orgs/{admin.organization_id}" not in text


def test_a_colleague_connects_through_the_link_which_then_stops_working(app, client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    colleague = anonymous(app)
    response = colleague.post(f"{path}/connect")
    assert response.status_code == 302
    done = colleague.get(decide(sandbox, response.headers["Location"], domain="globex.example"))
    assert done.status_code == 302 and done.headers["Location"].endswith("/setup/done")
    page = colleague.get("/setup/done").get_data(as_text=True)
    assert 'data-testid="connection-domain">globex.example' in page
    connection = db.session.scalars(db.select(Connection)).one()
    assert (connection.status, connection.domain, connection.connected_by_id) == ("active", "globex.example", None)
    link = db.session.scalars(db.select(SetupLink)).one()
    assert link.status == "used"
    assert {"connection.connected", "setup_link.used"} <= set(actions())
    again = colleague.get(path)
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    db.session.refresh(wizard)
    assert wizard.status == "completed"


def test_the_result_page_is_only_for_the_browser_that_connected(app, client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    colleague = anonymous(app)
    colleague.get(decide(sandbox, colleague.post(f"{path}/connect").headers["Location"]))
    assert anonymous(app).get("/setup/done").status_code == 404


def test_a_denial_through_the_link_leads_back_to_it_and_the_link_still_works(app, client, admin, sandbox):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    colleague = anonymous(app)
    back = decide(sandbox, colleague.post(f"{path}/connect").headers["Location"], decision="deny")
    page = colleague.get(back).get_data(as_text=True)
    assert "The connection was declined" in page and f'href="{path}"' in page
    assert db.session.scalars(db.select(SetupLink)).one().status == "pending"
    assert colleague.get(path).status_code == 200


def test_a_revoked_link_stops_working(app, client, admin):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    link = db.session.scalars(db.select(SetupLink)).one()
    refused = client.post(wizard_url(wizard, f"setup-links/{link.id}/revoke"))
    assert refused.status_code == 400
    client.post(wizard_url(wizard, f"setup-links/{link.id}/revoke"), data={"confirm": "yes"})
    db.session.refresh(link)
    assert link.status == "revoked" and link.revoked_by_id == admin.id
    response = anonymous(app).get(path)
    assert response.status_code == 410 and "withdrawn" in response.get_data(as_text=True)
    assert anonymous(app).post(f"{path}/connect").status_code == 410
    assert "setup_link.revoked" in actions()


def test_an_expired_link_stops_working(app, client, admin):
    path = create_link(client, ready_wizard(admin.organization, admin))
    link = db.session.scalars(db.select(SetupLink)).one()
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = anonymous(app).get(path)
    assert response.status_code == 410 and "expired" in response.get_data(as_text=True)


def test_a_discarded_wizard_takes_its_links_with_it(app, client, admin):
    wizard = ready_wizard(admin.organization, admin)
    path = create_link(client, wizard)
    client.post(wizard_url(wizard, "discard"), data={"confirm": "yes"})
    assert anonymous(app).get(path).status_code == 410


@pytest.mark.parametrize("token", ["nope", "x" * 43, ""])
def test_an_unknown_link_is_not_found(app, admin, token):
    assert anonymous(app).get(f"/setup/{token}").status_code == 404
    with pytest.raises(setup_links.SetupLinkError):
        setup_links.resolve_setup_link(token)


def colleague_back_from_consent(app, client, admin, sandbox):
    """The report's set-up: an active connection, a setup link to reconnect it, and a colleague who approved
    another domain on the consent page and is about to come back. Return (connection, wizard, link path,
    the colleague's browser, the return address)."""
    connection = connected(client, sandbox, admin)
    wizard = reconnect_wizard(admin, connection)
    path = create_link(client, wizard)
    colleague = anonymous(app)
    back = decide(sandbox, colleague.post(f"{path}/connect").headers["Location"], domain="globex.example")
    return connection, wizard, path, colleague, back


def only_attempt_of(wizard) -> ConsentAttempt:
    return db.session.scalars(db.select(ConsentAttempt).where(ConsentAttempt.wizard_session_id == wizard.id)).one()


def assert_refused(response, kind: str, title: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 410, text
    assert f'data-kind="{kind}"' in text and title in text and "Nothing was connected or changed." in text
    assert 'data-testid="back-to-wizard"' not in text and "open it again" not in text


def test_a_link_revoked_while_its_consent_is_under_way_changes_nothing_when_the_colleague_returns(
    app, client, admin, sandbox
):
    connection, wizard, path, colleague, back = colleague_back_from_consent(app, client, admin, sandbox)
    link = db.session.scalars(db.select(SetupLink)).one()
    client.post(wizard_url(wizard, f"setup-links/{link.id}/revoke"), data={"confirm": "yes"})
    before, audited = connection_state(connection), actions()
    assert audited[-1] == "setup_link.revoked"

    assert_refused(colleague.get(back), "link_withdrawn", "This setup link was withdrawn")
    assert_refused(colleague.get(back), "link_withdrawn", "This setup link was withdrawn")  # a reload too

    assert connection_state(connection) == before and before["domain"] == "acme.example"
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 1
    assert actions() == audited  # no connection.reconnected, no setup_link.used after the revoke
    assert (only_attempt_of(wizard).outcome, db.session.get(SetupLink, link.id).status) == ("withdrawn", "revoked")
    assert db.session.get(WizardSession, wizard.id).connection_id is None
    assert colleague.get(path).status_code == 410


def test_a_wizard_discarded_while_its_consent_is_under_way_stays_discarded_when_the_colleague_returns(
    app, client, admin, sandbox
):
    connection, wizard, path, colleague, back = colleague_back_from_consent(app, client, admin, sandbox)
    client.post(wizard_url(wizard, "discard"), data={"confirm": "yes"})
    before, audited = connection_state(connection), actions()

    assert_refused(colleague.get(back), "wizard_discarded", "This setup was discarded")

    assert connection_state(connection) == before and before["domain"] == "acme.example"
    assert actions() == audited
    discarded = db.session.get(WizardSession, wizard.id)
    assert (discarded.status, discarded.connection_id) == ("abandoned", None)
    assert only_attempt_of(wizard).outcome == "discarded"
    assert db.session.scalars(db.select(SetupLink)).one().used_at is None
    assert colleague.get(path).status_code == 410
    assert client.get(wizard_url(wizard, "review")).get_data(as_text=True).count("This wizard was discarded") == 1


@pytest.mark.parametrize(
    ("interrupt", "kind", "title", "outcome"),
    [
        (lambda link: setup_links.revoke_setup_link(db.session.get(SetupLink, link), actor=None),
         "link_withdrawn", "This setup link was withdrawn", "withdrawn"),
        (lambda link: wizards.discard(db.session.get(SetupLink, link).wizard_session),
         "wizard_discarded", "This setup was discarded", "discarded"),
        (lambda link: setattr(db.session.get(SetupLink, link), "expires_at", utcnow() - timedelta(seconds=1)),
         "link_expired", "This setup link has expired", "failed"),
    ],
    ids=["revoked", "discarded", "expired"],
)
def test_a_link_or_wizard_that_ends_during_the_code_exchange_still_changes_nothing(
    app, client, admin, sandbox, monkeypatch, interrupt, kind, title, outcome
):
    connection, wizard, _path, colleague, back = colleague_back_from_consent(app, client, admin, sandbox)
    link_id = db.session.scalars(db.select(SetupLink.id)).one()
    before = connection_state(connection)
    during_the_exchange(monkeypatch, lambda: in_another_request(app, lambda: interrupt(link_id)))

    assert_refused(colleague.get(back), kind, title)

    assert connection_state(connection) == before
    assert "connection.reconnected" not in actions() and "setup_link.used" not in actions()
    attempt = only_attempt_of(wizard)
    assert (attempt.outcome, attempt.connection_id) == (outcome, None)
    assert db.session.get(WizardSession, wizard.id).status != "completed"
