"""Without MAIL_SERVER, mail goes to the instance folder's outbox, which support staff read on the Outbox page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from extensions import db
from models.audit import AuditEvent
from models.outgoing_email import OutgoingEmail
from services.accounts import invitations
from models.user import ROLE_ORG_ADMIN

REASON = "Ticket 5120: the first admin never got the invitation"


@pytest.fixture
def support(login_as, make_support_user):
    return login_as(make_support_user(password=None))


def _issue(organization, email="first.admin@initech.example"):
    issued = invitations.create_invitation(email=email, role=ROLE_ORG_ADMIN, organization=organization, invited_by=None)
    db.session.commit()
    return issued


def test_without_a_mail_server_the_message_lands_in_the_outbox_folder_and_page(
    app, client, support, make_organization, deliver_mail, tmp_path
):
    app.config["MAIL_FILE_PATH"] = str(tmp_path / "outbox")
    issued = _issue(make_organization(name="Initech"))
    assert deliver_mail() == 1

    [written] = list(Path(tmp_path / "outbox").iterdir())
    assert "first.admin@initech.example" in written.read_text() and issued.url in written.read_text()
    email = db.session.scalars(db.select(OutgoingEmail)).one()
    assert (email.status, email.transport) == ("sent", "outbox")

    response = client.get("/support/outbox")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Referrer-Policy"] == "no-referrer"
    assert "No mail server is configured" in page
    message = page.split('data-testid="outbox-message"', 1)[1]
    assert "first.admin@initech.example" in message and "You are invited to administer Initech" in message
    assert 'data-status="sent"' in message and email.queued_at.strftime("%Y-%m-%d %H:%M UTC") in message
    assert f'<a href="{issued.url}" rel="noreferrer">{issued.url}</a>' in message


def test_the_outbox_lists_newest_first_and_pages(client, support, make_organization, deliver_mail):
    organization = make_organization()
    for number in range(27):
        _issue(organization, f"person{number}@initech.example")
    first = client.get("/support/outbox").get_data(as_text=True)
    addresses = re.findall(r'data-testid="outbox-to">([^<]+)<', first)
    assert addresses[:2] == ["person26@initech.example", "person25@initech.example"] and len(addresses) == 25
    assert "27 messages, newest first" in first and "Page 1 of 2" in first
    second = client.get("/support/outbox?page=2").get_data(as_text=True)
    assert re.findall(r'data-testid="outbox-to">([^<]+)<', second) == ["person1@initech.example", "person0@initech.example"]


def test_messages_for_a_mail_server_do_not_show_their_link(app, client, support, make_organization, mail_over_smtp,
                                                           deliver_mail):
    issued = _issue(make_organization())
    deliver_mail()
    page = client.get("/support/outbox").get_data(as_text=True)
    assert issued.url not in page and "The text is not shown: its link belongs to first.admin@initech.example." in page


def test_the_outbox_is_for_support_staff_only(client, login_as, make_org_admin):
    login_as(make_org_admin())
    assert client.get("/support/outbox").status_code == 404


def test_the_support_organizations_page_links_to_the_outbox(client, support):
    assert 'href="/support/outbox"' in client.get("/support/").get_data(as_text=True)


def test_retry_from_the_outbox_needs_a_recorded_reason_then_sends(
    app, client, support, make_organization, mail_over_smtp, deliver_mail
):
    organization = make_organization(name="Initech")
    mail_over_smtp.refuse_recipients = True
    issued = _issue(organization)
    deliver_mail()
    page = client.get("/support/outbox").get_data(as_text=True)
    assert "refused the recipient" in page and "Retry" in page
    email = db.session.scalars(db.select(OutgoingEmail)).one()

    mail_over_smtp.refuse_recipients = False
    without_reason = client.post(f"/support/outbox/{email.id}/retry")
    assert without_reason.status_code == 302 and f"/support/orgs/{organization.id}/access" in without_reason.location
    db.session.expire_all()
    assert db.session.get(OutgoingEmail, email.id).status == "failed" and deliver_mail() == 0

    client.post(f"/support/orgs/{organization.id}/access", data={"reason": REASON})
    retried = client.post(f"/support/outbox/{email.id}/retry", follow_redirects=True)
    assert "Sending the email to first.admin@initech.example again." in retried.get_data(as_text=True)
    deliver_mail()
    assert issued.url in mail_over_smtp.wait_for(1)[0].body
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "email.retried"))
    assert (event.reason, event.organization_id) == (REASON, organization.id)


def test_no_admins_yet_does_not_sit_above_a_pending_invitation(client, support, make_organization):
    organization = make_organization()
    page = client.get(f"/orgs/{organization.id}/admins").get_data(as_text=True)
    assert "No admins yet" in page
    _issue(organization)
    page = client.get(f"/orgs/{organization.id}/admins").get_data(as_text=True)
    assert "No admins yet" not in page
    assert re.search(r"No admins have signed in yet —\s+1 invitation pending.", page)
    _issue(organization, "second@initech.example")
    assert re.search(r"2 invitations pending", client.get(f"/orgs/{organization.id}/admins").get_data(as_text=True))
