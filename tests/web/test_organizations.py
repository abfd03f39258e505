"""An organization's admins page and overview: inviting, revoking, deactivating and reactivating admins."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

from flask import g

from extensions import db
from models.audit import AuditEvent
from models.invitation import Invitation
from models.session import UserSession
from models.user import User
from services.accounts import sessions
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import put_signed_in


def _invitation_link(page: str) -> str | None:
    found = re.search(r'<input id="invitation-link"[^>]*value="([^"]+)"', page)
    return unescape(found.group(1)) if found else None


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_admin_invites_a_colleague_and_sees_the_link_once(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    response = client.post(f"/orgs/{admin.organization_id}/admins", data={"email": "Colleague@Customer.Example"})
    assert response.status_code == 302 and response.location.endswith(f"/orgs/{admin.organization_id}/admins")

    page = client.get(response.location).get_data(as_text=True)
    link = _invitation_link(page)
    assert link and "/invitations/" in link
    assert "colleague@customer.example" in page and "shown only once" in page
    assert client.get(urlsplit(link).path).status_code == 200  # the link opens the accept page

    again = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    assert _invitation_link(again) is None
    assert 'data-testid="invitation-row"' in again and "colleague@customer.example" in again
    invitation = db.session.scalar(db.select(Invitation))
    assert invitation.organization_id == admin.organization_id and invitation.invited_by_id == admin.id


def test_invitation_link_of_one_organization_is_not_shown_on_another(client, login_as, make_support_user, make_organization):
    first, second = make_organization(), make_organization()
    support_user = login_as(make_support_user(password=None))
    record = db.session.scalar(db.select(UserSession).where(UserSession.user_id == support_user.id))
    sessions.stash_put(record.id, "issued_invitation",
                       {"organization_id": first.id, "email": "a@b.example", "url": "http://x/invitations/t"})
    assert _invitation_link(client.get(f"/orgs/{second.id}/admins").get_data(as_text=True)) is None
    assert _invitation_link(client.get(f"/orgs/{first.id}/admins").get_data(as_text=True)) == "http://x/invitations/t"


def test_inviting_a_bad_or_taken_email_shows_why_and_creates_nothing(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    bad = client.post(f"/orgs/{admin.organization_id}/admins", data={"email": "not an address"})
    assert bad.status_code == 400 and "not a valid email address" in bad.get_data(as_text=True)
    taken = client.post(f"/orgs/{admin.organization_id}/admins", data={"email": admin.email})
    assert taken.status_code == 400 and "already has an account" in taken.get_data(as_text=True)
    empty = client.post(f"/orgs/{admin.organization_id}/admins", data={"email": ""})
    assert empty.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Invitation.id))) == 0


def test_revoking_needs_confirmation_and_then_kills_the_link(client, login_as, make_org_admin, make_invitation):
    admin = login_as(make_org_admin(password=None))
    invitation = make_invitation(organization=admin.organization)
    url = f"/orgs/{admin.organization_id}/invitations/{invitation.id}/revoke"

    unconfirmed = client.post(url, follow_redirects=True)
    assert "Nothing changed" in unconfirmed.get_data(as_text=True)
    db.session.refresh(invitation)
    assert invitation.revoked_at is None

    done = client.post(url, data={"confirm": "yes"}, follow_redirects=True)
    assert "no longer works" in done.get_data(as_text=True)
    db.session.refresh(invitation)
    assert invitation.status == "revoked"
    assert [e.actor_id for e in _events("invitation.revoked")] == [admin.id]


def test_deactivating_an_admin_signs_them_out_and_reactivating_lets_them_back(app, client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    colleague = make_org_admin(admin.organization)
    colleague_client = app.test_client()
    with colleague_client.session_transaction() as session:
        put_signed_in(session, colleague)
    base = f"/orgs/{admin.organization_id}/admins/{colleague.id}"

    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    assert "will be signed out everywhere at once and cannot sign in" in page

    assert "Nothing changed" in client.post(f"{base}/deactivate", follow_redirects=True).get_data(as_text=True)
    db.session.refresh(colleague)
    assert colleague.is_active

    done = client.post(f"{base}/deactivate", data={"confirm": "yes"}, follow_redirects=True).get_data(as_text=True)
    assert "is deactivated" in done
    db.session.refresh(colleague)
    assert not colleague.is_active
    g.pop("_login_user", None)  # the test's one app context would otherwise keep the admin as current user
    assert colleague_client.get(f"/orgs/{admin.organization_id}").status_code == 302  # their session is dead
    signed_in = app.test_client().post("/sign-in", data={"email": colleague.email, "password": DEFAULT_PASSWORD})
    assert signed_in.status_code == 401

    g.pop("_login_user", None)
    back = client.post(f"{base}/reactivate", data={"confirm": "yes"}, follow_redirects=True).get_data(as_text=True)
    assert "can sign in" in back
    db.session.refresh(colleague)
    assert colleague.is_active


def test_an_admin_cannot_deactivate_themselves(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    page = client.post(
        f"/orgs/{admin.organization_id}/admins/{admin.id}/deactivate", data={"confirm": "yes"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "cannot deactivate your own account" in page
    db.session.refresh(admin)
    assert admin.is_active


def test_support_staff_are_not_admins_of_an_organization(client, login_as, make_org_admin, make_support_user):
    admin = login_as(make_org_admin(password=None))
    support_user = make_support_user(password=None)
    response = client.post(f"/orgs/{admin.organization_id}/admins/{support_user.id}/deactivate", data={"confirm": "yes"})
    assert response.status_code == 404
    assert db.session.get(User, support_user.id).is_active


def test_overview_with_one_admin_points_to_inviting_another(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    page = client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True)
    assert 'data-step="connect"' in page
    assert f'href="/orgs/{admin.organization_id}/admins">Invite another admin' in page


def test_overview_with_two_admins_leads_to_the_wizard(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    make_org_admin(admin.organization, password=None)
    page = client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True)
    assert "Connect your organization&#39;s calendars" in page and "Invite another admin" not in page
    assert f'href="/orgs/{admin.organization_id}/wizard">Connect your calendars' in page


def test_overview_tells_admins_when_support_acted_and_why(client, login_as, make_org_admin, make_support_user):
    admin = login_as(make_org_admin(password=None))
    support_user = make_support_user(password=None)
    db.session.add(
        AuditEvent(
            action="support.access_started",
            actor_id=support_user.id,
            organization_id=admin.organization_id,
            reason="Ticket 4711: connection stuck in pending",
        )
    )
    db.session.commit()
    page = client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True)
    assert "Ticket 4711: connection stuck in pending" in page and support_user.email in page
