"""Removing mailboxes: confirmation first, authorized ones revoked at Cronofy before they go, nothing lost on failure."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.mailbox import Mailbox, MailboxEvent
from services.mailboxes import mailbox_directory
from services.mailboxes.mailbox_directory import MailboxError
from services.mailboxes.mailbox_revocation import MailboxRevocationError, revoke_mailbox
from tests.contract.sandbox_support import bearer, members
from tests.helpers import authorize_mailbox, connect_sandbox, make_mailbox, seed_mailboxes

DOMAIN = "acme.example"


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


@pytest.fixture
def authorized(admin, use_sandbox):
    """A mailbox authorized through the sandbox, with its upstream tokens."""
    connection, sa_tokens = connect_sandbox(admin.organization, use_sandbox, actor=admin, domain=DOMAIN)
    email = members(use_sandbox, 1, domain=DOMAIN, kind="user", trait="none")[0]
    mailbox = make_mailbox(admin.organization, email=email, connection_id=connection.id)
    tokens = authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    return mailbox, tokens


def account_token_works(sandbox, access_token) -> bool:
    session = requests.Session()
    session.trust_env = False
    return session.get(f"{sandbox.url}/v1/userinfo", headers=bearer(access_token), timeout=10).status_code == 200


def select_for_removal(client, organization_id, ids) -> str:
    response = client.post(f"/orgs/{organization_id}/mailboxes/selection", data={"action": "remove", "mailbox_ids": ids})
    return response.headers["Location"]


def mailbox_count() -> int:
    return db.session.scalar(select(func.count(Mailbox.id)))


def test_removing_an_authorized_mailbox_revokes_it_upstream_first(client, admin, authorized, use_sandbox):
    mailbox, tokens = authorized
    plain = make_mailbox(admin.organization, email="plain@acme.example")
    assert account_token_works(use_sandbox, tokens["access_token"])
    marker = len(use_sandbox.events(path="/oauth/token/revoke", limit=1000))
    confirm_url = select_for_removal(client, admin.organization_id, [mailbox.id, plain.id])
    confirm = client.get(confirm_url).get_data(as_text=True)
    assert "Remove 2 mailboxes?" in confirm and "1 authorized mailbox will be revoked first" in confirm
    done = client.post(confirm_url, data={"confirm": "yes"}, follow_redirects=True).get_data(as_text=True)
    assert "Removed 2 mailboxes (1 revoked at Cronofy first)" in done
    revokes = use_sandbox.events(path="/oauth/token/revoke", limit=1000)
    assert len(revokes) > marker
    assert not account_token_works(use_sandbox, tokens["access_token"])
    assert mailbox_count() == 0 and db.session.scalar(select(func.count(MailboxEvent.id))) == 0
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "mailboxes.removed"))
    assert audit.details["count"] == 2 and audit.details["revoked"] == 1
    assert sorted(audit.details["emails"]) == sorted([mailbox.email, "plain@acme.example"])


def test_removal_needs_confirmation(client, admin):
    mailbox = make_mailbox(admin.organization)
    confirm_url = select_for_removal(client, admin.organization_id, [mailbox.id])
    assert client.post(confirm_url).status_code == 400
    assert client.post(f"/orgs/{admin.organization_id}/mailboxes/{mailbox.id}/remove").status_code == 400
    assert mailbox_count() == 1


def test_a_single_mailbox_is_removed_from_its_page(client, admin):
    mailbox = make_mailbox(admin.organization, email="solo@acme.example")
    response = client.post(f"/orgs/{admin.organization_id}/mailboxes/{mailbox.id}/remove", data={"confirm": "yes"},
                           follow_redirects=True)
    assert "Removed 1 mailbox." in response.get_data(as_text=True)
    assert mailbox_count() == 0


def test_upstream_down_removes_nothing_and_says_why(client, admin, authorized, use_sandbox):
    mailbox, tokens = authorized
    use_sandbox.set_faults(error_rate=1.0)
    response = client.post(f"/orgs/{admin.organization_id}/mailboxes/{mailbox.id}/remove", data={"confirm": "yes"},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"{mailbox.email} was not removed" in page and "could not be reached" in page
    use_sandbox.reset_faults()
    db.session.expire_all()
    kept = db.session.get(Mailbox, mailbox.id)
    assert kept.status == "authorized" and kept.refresh_token_encrypted
    assert account_token_works(use_sandbox, tokens["access_token"])


def test_a_failed_revocation_keeps_that_mailbox_and_removes_the_others(app, admin, authorized, use_sandbox):
    mailbox, _ = authorized
    others = [make_mailbox(admin.organization, email=f"other{n}@acme.example") for n in range(2)]
    use_sandbox.set_faults(error_rate=1.0)
    result = mailbox_directory.remove_mailboxes(admin.organization, [mailbox.id, *[o.id for o in others]], actor=admin)
    db.session.commit()
    assert (result.removed, result.revoked) == (2, 0)
    assert [email for email, _ in result.failed] == [mailbox.email]
    assert [m.email for m in db.session.scalars(select(Mailbox))] == [mailbox.email]


def test_revoke_mailbox_marks_it_revoked_on_its_timeline_and_forgets_the_tokens(app, admin, authorized):
    mailbox, _ = authorized
    revoke_mailbox(mailbox, actor=admin)
    db.session.commit()
    assert mailbox.status == "revoked"
    assert mailbox.access_token_encrypted is None and mailbox.refresh_token_encrypted is None
    last = db.session.scalars(select(MailboxEvent).where(MailboxEvent.mailbox_id == mailbox.id)
                              .order_by(MailboxEvent.id.desc())).first()
    assert (last.kind, last.from_status, last.to_status, last.actor_id) == ("revoked", "authorized", "revoked", admin.id)


def test_revoke_mailbox_refuses_a_token_it_cannot_decrypt(app, admin):
    mailbox = make_mailbox(admin.organization, status="authorized", refresh_token_encrypted="not-a-fernet-token")
    with pytest.raises(MailboxRevocationError, match="cannot be decrypted"):
        revoke_mailbox(mailbox, actor=admin)
    assert mailbox.status == "authorized"


def test_a_removal_beyond_the_synchronous_limit_is_refused_clearly(client, admin):
    seed_mailboxes(admin.organization, mailbox_directory.MAX_SYNC_REMOVAL + 1)
    response = client.post(f"/orgs/{admin.organization_id}/mailboxes/selection", data={"action": "select_all"})
    selection_id = response.headers["Location"].split("selection=")[1].split("&")[0]
    confirm_url = f"/orgs/{admin.organization_id}/mailboxes/selections/{selection_id}/remove"
    assert "more than one removal takes" in client.get(confirm_url).get_data(as_text=True)
    done = client.post(confirm_url, data={"confirm": "yes"}, follow_redirects=True).get_data(as_text=True)
    assert "more than one removal takes" in done
    assert mailbox_count() == mailbox_directory.MAX_SYNC_REMOVAL + 1
    with pytest.raises(MailboxError):
        mailbox_directory.remove_mailboxes(admin.organization, range(1, 2000), actor=admin)


def test_another_organizations_mailboxes_are_never_removed(app, admin, make_organization):
    foreign = make_mailbox(make_organization(), email="foreign@elsewhere.example")
    result = mailbox_directory.remove_mailboxes(admin.organization, [foreign.id], actor=admin)
    db.session.commit()
    assert result.removed == 0 and mailbox_count() == 1
