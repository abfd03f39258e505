"""The mailbox page's actions (issue 13, finding 4): it offered only Remove while its fix said "authorize again
with free/busy only". Now: authorize within the connection's grant, retry with the fix's suggested access,
revoke after a confirmation, and the checklist step the fix names."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

import jobs
from extensions import db
from models.audit import AuditEvent
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.mailbox import MailboxEvent
from tests.contract.sandbox_support import members
from tests.helpers import authorize_mailbox, connect_sandbox, make_connection, make_mailbox
from tests.web.test_mailbox_removal import account_token_works

FULL = "read_account list_calendars read_events create_event delete_event read_free_busy"


@pytest.fixture
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(jobs, "enqueue_pump", calls.append)
    return calls


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


@pytest.fixture
def connection(admin):
    found = make_connection(admin.organization, domain="acme.example")
    found.granted_delegated_scope = FULL
    db.session.commit()
    return found


def page_of(client, mailbox) -> str:
    response = client.get(f"/orgs/{mailbox.organization_id}/mailboxes/{mailbox.id}")
    assert response.status_code == 200
    return html.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def section(page: str, testid: str) -> str:
    return page.split(f'data-testid="{testid}"')[1].split("</form>")[0]


def failed(admin, connection, key="unable_to_grant_scope"):
    return make_mailbox(admin.organization, email="ann@acme.example", status="failed", last_error_key=key,
                        last_error_description="Cronofy could not grant the scope", connection_id=connection.id)


def action_url(mailbox, action) -> str:
    return f"/orgs/{mailbox.organization_id}/mailboxes/{mailbox.id}/{action}"


def test_a_scope_failure_offers_a_free_busy_retry_and_the_checklist_step(client, admin, connection, enqueued):
    mailbox = failed(admin, connection)
    page = page_of(client, mailbox)
    retry = section(page, "retry-form")
    assert "Retry with free/busy only" in retry and 'name="scope" value="free_busy"' in retry
    assert 'href="/checklists/google#google_marketplace_app"' in page.split('data-testid="checklist-step"')[1]
    assert 'data-testid="revoke-action"' not in page  # it holds no authorization
    response = client.post(action_url(mailbox, "authorize"), data={"scope": "free_busy"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/mailboxes/{mailbox.id}")
    run = db.session.scalar(select(AuthorizationRun))
    assert (run.scope, run.total, run.connection_id) == ("free_busy", 1, connection.id)
    assert enqueued == [run.id]
    attempt = db.session.scalar(select(AuthorizationAttempt))
    assert (attempt.mailbox_id, attempt.scope) == (mailbox.id, "free_busy")
    after = page_of(client, mailbox)
    assert f"run #{run.id}" in after.split('data-testid="in-run"')[1] and 'data-testid="retry-form"' not in after


def test_a_retryable_failure_retries_with_the_access_asked_for_before(client, admin, connection, enqueued):
    mailbox = failed(admin, connection, key="no_callback")
    retry = section(page_of(client, mailbox), "retry-form")
    assert ">Retry</button>" in retry and f'value="{FULL}"' in retry


def test_a_failure_a_retry_cannot_fix_offers_no_retry_but_authorizing_again(client, admin, connection):
    mailbox = failed(admin, connection, key="mailbox_suspended")
    page = page_of(client, mailbox)
    assert 'data-testid="retry-form"' not in page
    assert "Authorize again through acme.example" in section(page, "authorize-form")


def test_the_authorize_form_offers_only_the_connections_grant(client, admin, connection, enqueued):
    connection.granted_delegated_scope = "read_free_busy"
    db.session.commit()
    mailbox = make_mailbox(admin.organization, email="bob@acme.example")  # no connection yet: its domain's
    form = section(page_of(client, mailbox), "authorize-form")
    assert re.findall(r'name="scope" id="[^"]+" value="([^"]+)"', form) == ["read_free_busy"]
    assert client.post(action_url(mailbox, "authorize"), data={"scope": FULL}).status_code == 400
    assert db.session.scalar(select(func.count(AuthorizationRun.id))) == 0 and enqueued == []
    client.post(action_url(mailbox, "authorize"), data={"scope": "read_free_busy"})
    assert db.session.scalar(select(AuthorizationRun.scope)) == "read_free_busy"


def test_without_an_active_connection_the_page_says_why_it_cannot_authorize(client, admin):
    make_connection(admin.organization, domain="acme.example", status="needs_reauth")
    mailbox = make_mailbox(admin.organization, email="cy@globex.example")
    page = page_of(client, mailbox)
    assert 'data-testid="authorize-form"' not in page
    assert "No active connection serves globex.example" in page.split('data-testid="authorize-problem"')[1]
    assert client.post(action_url(mailbox, "authorize"), data={"scope": FULL}).status_code == 302
    assert db.session.scalar(select(func.count(AuthorizationRun.id))) == 0


def test_revoking_from_the_page_needs_a_confirmation_and_ends_the_access(client, admin, use_sandbox):
    connection, sa_tokens = connect_sandbox(admin.organization, use_sandbox, actor=admin)
    email = members(use_sandbox, 1, domain="acme.example", kind="user", trait="none")[0]
    mailbox = make_mailbox(admin.organization, email=email, connection_id=connection.id)
    tokens = authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    mailbox.granted_scope = "read_free_busy"
    db.session.commit()
    page = page_of(client, mailbox)
    assert "Revoking ends the vendor's access" in page.split('data-testid="revoke-action"')[1]
    assert 'data-testid="authorize-form"' not in page  # authorized already
    assert client.post(action_url(mailbox, "revoke")).status_code == 400
    assert account_token_works(use_sandbox, tokens["access_token"])
    done = client.post(action_url(mailbox, "revoke"), data={"confirm": "yes"}, follow_redirects=True)
    assert f"Revoked {email}" in done.get_data(as_text=True)
    db.session.refresh(mailbox)
    assert mailbox.status == "revoked" and not account_token_works(use_sandbox, tokens["access_token"])
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "mailbox.revoked"))
    shown = page_of(client, mailbox)
    assert 'data-testid="revoke-action"' not in shown and "Authorize again through acme.example" in shown


def test_another_organizations_mailbox_has_no_actions(client, admin, make_organization, enqueued):
    foreign = make_mailbox(make_organization())
    assert client.post(action_url(foreign, "authorize"), data={"scope": FULL}).status_code == 404
    assert client.post(action_url(foreign, "revoke"), data={"confirm": "yes"}).status_code == 404
    assert db.session.scalar(select(func.count(MailboxEvent.id))) == 0
