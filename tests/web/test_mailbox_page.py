"""The mailbox page (details, status, timeline) and adding a mailbox by hand."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models.audit import AuditEvent
from models.mailbox import Mailbox
from services.mailboxes.mailbox_states import record_event, transition
from tests.helpers import make_connection, make_mailbox


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


def page_of(client, mailbox) -> str:
    response = client.get(f"/orgs/{mailbox.organization_id}/mailboxes/{mailbox.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_resource_shows_its_capacity_location_and_connection(client, admin):
    connection = make_connection(admin.organization, domain="acme.example")
    room = make_mailbox(admin.organization, email="room.atlas@acme.example", name="Atlas (8 seats)", kind="resource",
                        capacity=8, location="Berlin HQ, floor 3, East · Berlin, DE", connection_id=connection.id)
    page = page_of(client, room)
    assert 'data-testid="capacity">8<' in page and "Berlin HQ, floor 3, East · Berlin, DE" in page
    assert "Atlas (8 seats)" in page and "acme.example" in page


def test_a_new_mailbox_has_an_empty_timeline(client, admin):
    page = page_of(client, make_mailbox(admin.organization))
    assert "Nothing has happened to this mailbox yet" in page
    assert 'data-testid="timeline"' not in page


def test_the_timeline_lists_events_newest_first_with_who_did_them(client, admin):
    mailbox = make_mailbox(admin.organization)
    record_event(mailbox, "imported", summary="Imported from staff.csv", actor=admin)
    transition(mailbox, "requested", kind="requested", summary="Delegated access requested", state="st-123")
    transition(mailbox, "failed", kind="error", summary="Cronofy refused", error_key="outside_policy",
               error_description="The mailbox is outside the delegation policy.")
    db.session.commit()
    page = page_of(client, mailbox)
    assert "Nothing has happened" not in page
    assert page.index('data-event-kind="error"') < page.index('data-event-kind="requested"') < page.index(
        'data-event-kind="imported"')
    assert f"By {admin.email}" in page and "st-123" in page
    assert 'data-testid="last-error"' in page and "The mailbox is outside the delegation policy." in page
    assert "outside_policy" in page


def test_another_organizations_mailbox_is_not_found(client, admin, make_organization):
    foreign = make_mailbox(make_organization())
    assert client.get(f"/orgs/{admin.organization_id}/mailboxes/{foreign.id}").status_code == 404


def add(client, admin, **form):
    return client.post(f"/orgs/{admin.organization_id}/mailboxes/new", data={"kind": "user", "connection_id": 0, **form})


def test_adding_a_mailbox_by_hand_normalizes_it_and_picks_the_domains_connection(client, admin):
    connection = make_connection(admin.organization, domain="bücher.example".encode("idna").decode())
    response = add(client, admin, email="  Jörg@BÜCHER.example ", name="Jörg", group_name="Pilot")
    mailbox = db.session.scalar(select(Mailbox))
    assert response.headers["Location"].endswith(f"/mailboxes/{mailbox.id}")
    assert mailbox.email == "Jörg@xn--bcher-kva.example"
    assert (mailbox.source, mailbox.status, mailbox.group_name, mailbox.connection_id) == (
        "manual", "new", "Pilot", connection.id)
    assert "Added by hand" in page_of(client, mailbox)
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.action == "mailbox.added"))


@pytest.mark.parametrize(
    ("email", "message"),
    [("not-an-address", "is not a mailbox address"), ("ANN@acme.example", "is already in the directory")],
)
def test_adding_a_malformed_or_present_address_says_why(client, admin, email, message):
    make_mailbox(admin.organization, email="ann@acme.example")
    response = add(client, admin, email=email)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(Mailbox.id))) == 1


def test_the_add_form_refuses_another_organizations_connection(client, admin, make_organization):
    foreign = make_connection(make_organization())
    assert add(client, admin, email="x@acme.example", connection_id=foreign.id).status_code in (400, 404)
    assert db.session.scalar(select(db.func.count(Mailbox.id))) == 0


def test_the_navigation_leads_to_the_mailbox_list(client, admin):
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes").get_data(as_text=True)
    assert f'href="/orgs/{admin.organization_id}/mailboxes"' in page
    assert f'href="/orgs/{admin.organization_id}/connections"' in page
