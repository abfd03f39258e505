"""The support area: the organization list, creating an organization, and acting on its behalf with a reason."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import g

from extensions import db
from models.audit import AuditEvent
from models.invitation import Invitation
from models.organization import Organization
from services.platform import audit

REASON = "Ticket 4711: the customer cannot invite a second admin"


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _count(model) -> int:
    return db.session.scalar(db.select(db.func.count(model.id)))


@pytest.fixture
def support_client(client, login_as, make_support_user):
    client.user = login_as(make_support_user(password=None))
    return client


def _start_access(client, organization, reason: str = REASON):
    return client.post(f"/support/orgs/{organization.id}/access", data={"reason": reason})


# The organization list


def test_empty_list_points_to_creating_the_first_organization(support_client):
    page = support_client.get("/support/").get_data(as_text=True)
    assert "No organizations yet" in page and 'href="/support/orgs/new"' in page


def test_search_finds_by_name_or_slug_and_says_when_nothing_matches(support_client, make_organization):
    make_organization(name="Acme Travel", slug="acme-travel")
    make_organization(name="Globex", slug="globex-emea")
    by_name = support_client.get("/support/?q=acme").get_data(as_text=True)
    assert "Acme Travel" in by_name and "Globex" not in by_name
    by_slug = support_client.get("/support/?q=EMEA").get_data(as_text=True)
    assert "Globex" in by_slug and "Acme Travel" not in by_slug
    nothing = support_client.get("/support/?q=initech").get_data(as_text=True)
    assert "No organization matches" in nothing and "Show all organizations" in nothing


def test_search_treats_wildcards_literally(support_client, make_organization):
    make_organization(name="Fifty Percent", slug="fifty")
    make_organization(name="100% Calendars", slug="hundred")
    page = support_client.get("/support/?q=%25").get_data(as_text=True)
    assert "100% Calendars" in page and "Fifty Percent" not in page


def test_list_pages_by_25_and_keeps_the_search(support_client, make_organization):
    for n in range(30):
        make_organization(name=f"Tenant {n:02d}", slug=f"tenant-{n:02d}")
    make_organization(name="Other", slug="other")
    first = support_client.get("/support/?q=tenant").get_data(as_text=True)
    assert first.count('data-testid="organization-row"') == 25
    assert "Tenant 00" in first and "Tenant 25" not in first and "Page 1 of 2" in first
    assert 'href="/support/?page=2&amp;q=tenant"' in first
    second = support_client.get("/support/?q=tenant&page=2").get_data(as_text=True)
    assert second.count('data-testid="organization-row"') == 5 and "Tenant 29" in second
    beyond = support_client.get("/support/?q=tenant&page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


def test_list_counts_active_admins_and_links_each_overview(support_client, make_organization, make_org_admin):
    organization = make_organization(name="Acme", slug="acme")
    make_org_admin(organization, password=None)
    make_org_admin(organization, is_active=False, password=None)
    page = support_client.get("/support/").get_data(as_text=True)
    assert f'href="/orgs/{organization.id}">Acme</a>' in page
    assert '<td class="text-end" data-count="admins">1</td>' in page


# Creating an organization


def test_new_organization_form_offers_named_data_centers(support_client):
    page = support_client.get("/support/orgs/new").get_data(as_text=True)
    assert '<option value="de">Germany (DE)</option>' in page and "United States (US)" in page


def test_creating_an_organization_invites_its_first_admin_and_shows_the_link(support_client):
    response = support_client.post(
        "/support/orgs/new", data={"name": "Acme Travel", "data_center": "de", "admin_email": "it@acme.example"}
    )
    organization = db.session.scalar(db.select(Organization))
    assert response.status_code == 302 and response.location.endswith(f"/orgs/{organization.id}/admins")
    assert (organization.name, organization.data_center) == ("Acme Travel", "de")
    invitation = db.session.scalar(db.select(Invitation))
    assert invitation.organization_id == organization.id and invitation.email == "it@acme.example"
    page = support_client.get(response.location).get_data(as_text=True)
    assert 'id="invitation-link"' in page and "/invitations/" in page
    assert [e.organization_id for e in _events("organization.created")] == [organization.id]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "data_center": "us", "admin_email": "it@acme.example"}, "This field is required"),
        ({"name": "   ", "data_center": "us", "admin_email": "it@acme.example"}, "This field is required"),
        ({"name": "Acme", "data_center": "mars", "admin_email": "it@acme.example"}, "Not a valid choice"),
        ({"name": "Acme", "data_center": "us", "admin_email": "not-an-address"}, "not a valid email address"),
        ({"name": "Acme", "data_center": "us", "admin_email": ""}, "This field is required"),
        ({"name": "A" * 121, "data_center": "us", "admin_email": "it@acme.example"}, "longer than 120"),
        ({"name": "Acme", "data_center": "us", "admin_email": "a" * 250 + "@x.example"}, "longer than 254"),
    ],
)
def test_bad_input_creates_nothing_and_says_what_to_fix(support_client, form, message):
    response = support_client.post("/support/orgs/new", data=form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(Organization) == 0 and _count(Invitation) == 0


def test_an_email_that_already_has_an_account_leaves_no_half_created_organization(support_client, make_org_admin):
    existing = make_org_admin(password=None)
    before = _count(Organization)
    response = support_client.post(
        "/support/orgs/new", data={"name": "Acme", "data_center": "us", "admin_email": existing.email}
    )
    assert response.status_code == 400 and "already has an account" in response.get_data(as_text=True)
    assert _count(Organization) == before and _events("organization.created") == []


# Acting on an organization's behalf


def test_support_can_look_without_a_reason(support_client, make_organization):
    organization = make_organization()
    page = support_client.get(f"/orgs/{organization.id}/admins").get_data(as_text=True)
    assert "You are viewing" in page and f"/support/orgs/{organization.id}/access?next=" in page


def test_a_change_without_access_leads_to_the_reason_page_and_changes_nothing(support_client, make_organization):
    organization = make_organization()
    response = support_client.post(
        f"/orgs/{organization.id}/admins",
        data={"email": "it@acme.example"},
        headers={"Referer": f"http://localhost/orgs/{organization.id}/admins"},
    )
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == f"/support/orgs/{organization.id}/access"
    assert parse_qs(location.query)["next"] == [f"/orgs/{organization.id}/admins"]
    assert _count(Invitation) == 0
    page = support_client.get(response.location).get_data(as_text=True)
    assert "first record why you are acting on its behalf" in page and "Why do you need to act" in page


def test_a_post_only_route_without_referrer_returns_to_the_overview(support_client, make_organization, make_org_admin):
    organization = make_organization()
    admin = make_org_admin(organization, password=None)
    response = support_client.post(f"/orgs/{organization.id}/admins/{admin.id}/deactivate", data={"confirm": "yes"})
    assert parse_qs(urlsplit(response.location).query)["next"] == [f"/orgs/{organization.id}"]
    assert db.session.get(type(admin), admin.id).is_active


@pytest.mark.parametrize("reason", ["", "too short", "x" * 501])
def test_the_reason_must_be_10_to_500_characters(support_client, make_organization, reason):
    organization = make_organization()
    response = _start_access(support_client, organization, reason)
    assert response.status_code == 400
    assert _events("support.access_started") == []
    assert support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"}).status_code == 302
    assert _count(Invitation) == 0


def test_with_a_reason_changes_work_and_carry_the_reason(support_client, make_organization, make_org_admin):
    organization = make_organization(name="Acme")
    admin = make_org_admin(organization, password=None)
    started = support_client.post(
        f"/support/orgs/{organization.id}/access?next=/orgs/{organization.id}/admins",
        data={"reason": REASON, "next": f"/orgs/{organization.id}/admins"},
    )
    assert started.status_code == 302 and started.location.endswith(f"/orgs/{organization.id}/admins")
    [access] = _events("support.access_started")
    assert (access.reason, access.actor_id, access.organization_id) == (REASON, support_client.user.id, organization.id)

    page = support_client.get(f"/orgs/{organization.id}/admins").get_data(as_text=True)
    assert f"Acting on behalf of Acme</strong> — reason: {REASON}" in page and "End access" in page

    invited = support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"})
    assert invited.status_code == 302 and _count(Invitation) == 1
    deactivated = support_client.post(
        f"/orgs/{organization.id}/admins/{admin.id}/deactivate", data={"confirm": "yes"}
    )
    assert deactivated.status_code == 302
    assert [e.reason for e in _events("invitation.created")] == [REASON]
    assert [e.reason for e in _events("user.deactivated")] == [REASON]


def test_ending_access_is_recorded_and_stops_further_changes(support_client, make_organization):
    organization = make_organization()
    _start_access(support_client, organization)
    ended = support_client.post(f"/support/orgs/{organization.id}/access/end", follow_redirects=True)
    assert "no longer act on behalf" in ended.get_data(as_text=True)
    [end] = _events("support.access_ended")
    assert end.reason == REASON and end.target_id == str(_events("support.access_started")[0].id)
    assert support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"}).status_code == 302
    assert _count(Invitation) == 0


def test_an_ended_grant_cannot_be_replayed_from_an_old_session(support_client, make_organization):
    organization = make_organization()
    _start_access(support_client, organization)
    with support_client.session_transaction() as session:
        kept = dict(session["support_access"])
    support_client.post(f"/support/orgs/{organization.id}/access/end")
    with support_client.session_transaction() as session:
        session["support_access"] = kept
    support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"})
    assert _count(Invitation) == 0


def test_access_expires_after_the_configured_time(support_client, make_organization):
    organization = make_organization()
    _start_access(support_client, organization)
    [access] = _events("support.access_started")
    access.created_at = access.created_at - timedelta(minutes=61)
    db.session.commit()
    response = support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"})
    assert response.status_code == 302 and "/support/orgs/" in response.location
    assert _count(Invitation) == 0


def test_access_to_one_organization_does_not_cover_another(support_client, make_organization):
    first, second = make_organization(), make_organization()
    _start_access(support_client, first)
    response = support_client.post(f"/orgs/{second.id}/admins", data={"email": "it@acme.example"})
    assert urlsplit(response.location).path == f"/support/orgs/{second.id}/access"
    assert _count(Invitation) == 0


def test_a_grant_belongs_to_the_person_who_gave_the_reason(support_client, login_as, make_organization, make_support_user):
    organization = make_organization()
    _start_access(support_client, organization)
    login_as(make_support_user(password=None))  # another person signs in on the same browser; the session keeps the grant
    g.pop("_login_user", None)
    support_client.post(f"/orgs/{organization.id}/admins", data={"email": "it@acme.example"})
    assert _count(Invitation) == 0


def test_next_never_leads_off_site(support_client, make_organization):
    organization = make_organization()
    response = support_client.post(
        f"/support/orgs/{organization.id}/access", data={"reason": REASON, "next": "https://evil.example/"}
    )
    assert response.location.endswith(f"/orgs/{organization.id}")


def test_audit_outside_a_request_records_no_borrowed_reason(app, make_support_user, make_organization):
    event = audit.record("organization.checked", actor=make_support_user(password=None), organization=make_organization())
    assert event.reason is None


def test_unknown_organization_gives_404_to_support(support_client):
    assert support_client.get("/support/orgs/999999/access").status_code == 404


def test_the_support_banner_shows_on_every_organization_page(client, login_as, make_support_user, make_organization):
    organization = make_organization(name="Umbrella Corp")
    login_as(make_support_user())
    page = client.get(f"/orgs/{organization.id}/connections").get_data(as_text=True)
    assert "To change anything, first record why" in page

    client.post(f"/support/orgs/{organization.id}/access", data={"reason": "Customer ticket 4411: stuck wizard"})
    page = client.get(f"/orgs/{organization.id}/connections").get_data(as_text=True)
    assert "Acting on behalf of Umbrella Corp" in page and "Customer ticket 4411" in page
