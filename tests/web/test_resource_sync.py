"""Resource sync against the sandbox: rooms arrive with capacity and location; re-syncs show new and vanished rooms."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.mailbox import Mailbox, MailboxEvent
from tests.helpers import connect_sandbox, make_connection, make_mailbox, sandbox_directory_changed

DOMAIN = "initech.example"


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


@pytest.fixture
def connection(admin, use_sandbox):
    connection, _ = connect_sandbox(admin.organization, use_sandbox, actor=admin, domain=DOMAIN)
    return connection


def sync(client, connection):
    path = f"/orgs/{connection.organization_id}/connections/{connection.id}/sync-resources"
    return client.post(path, follow_redirects=True)


def mailbox(email) -> Mailbox | None:
    return db.session.scalar(select(Mailbox).where(Mailbox.email == email))


def test_first_sync_adds_the_rooms_with_capacity_and_location(client, admin, connection, use_sandbox):
    rooms = use_sandbox.directory(domain=DOMAIN, kind="room")
    page = sync(client, connection).get_data(as_text=True)
    room = mailbox(rooms[0]["email"])
    assert (room.kind, room.source, room.status, room.connection_id) == ("resource", "resource_sync", "new", connection.id)
    assert room.capacity == rooms[0]["capacity"] and room.name == rooms[0]["name"]
    assert room.location.startswith("Austin HQ, floor ") and room.location.endswith("Austin, US")
    assert all(mailbox(r["email"]) is not None for r in rooms)
    assert rooms[0]["email"] in page  # the result page lists the new rooms
    shown = client.get(f"/orgs/{admin.organization_id}/mailboxes/{room.id}").get_data(as_text=True)
    assert f'data-testid="capacity">{room.capacity}<' in shown and "Austin HQ" in shown
    assert "Found by resource sync" in shown
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "resources.synced"))
    assert audit.actor_id == admin.id and audit.details["counts"]["new"] == len(audit.details["new"]) >= len(rooms)
    assert f"Resources synced: {len(audit.details['new'])} new, 0 updated, 0 no longer listed" in page


def test_a_resync_shows_new_and_vanished_rooms_and_removes_nothing(client, admin, connection, use_sandbox):
    sync(client, connection)
    before = db.session.scalar(select(func.count(Mailbox.id)))
    retired = use_sandbox.directory(domain=DOMAIN, kind="room")[1]["email"]
    new_room = ("room.new-wing@initech.example", "New Wing (14 seats)", 14)
    with sandbox_directory_changed(use_sandbox, DOMAIN, new_rooms=[new_room], retired=[retired]):
        page = sync(client, connection).get_data(as_text=True)
    assert "1 new" in page and "1 no longer listed" in page
    new_section = page.split('data-testid="sync-new"')[1].split("</section>")[0]
    vanished_section = page.split('data-testid="sync-vanished"')[1].split("</section>")[0]
    assert "room.new-wing@initech.example" in new_section and retired not in new_section
    assert retired in vanished_section and 'name="mailbox_ids"' in vanished_section  # offered for removal
    assert mailbox(retired) is not None  # never removed silently
    assert db.session.scalar(select(func.count(Mailbox.id))) == before + 1
    assert mailbox("room.new-wing@initech.example").capacity == 14


def test_vanished_rooms_can_be_removed_from_the_result_page(client, admin, connection, use_sandbox):
    sync(client, connection)
    retired = use_sandbox.directory(domain=DOMAIN, kind="room")[2]["email"]
    with sandbox_directory_changed(use_sandbox, DOMAIN, retired=[retired]):
        sync(client, connection)
    org_id = admin.organization_id
    chosen = client.post(f"/orgs/{org_id}/mailboxes/selection",
                         data={"action": "remove", "mailbox_ids": [mailbox(retired).id]})
    confirm = client.get(chosen.headers["Location"]).get_data(as_text=True)
    assert "Remove 1 mailbox?" in confirm and retired in confirm
    client.post(chosen.headers["Location"], data={"confirm": "yes"})
    assert mailbox(retired) is None
    assert "They have been removed since" in client.get(
        f"/orgs/{org_id}/connections/{connection.id}/resources").get_data(as_text=True)


def test_an_unchanged_directory_updates_nothing(client, connection):
    sync(client, connection)
    events = db.session.scalar(select(func.count(MailboxEvent.id)))
    page = sync(client, connection).get_data(as_text=True)
    assert "0 new, 0 updated, 0 no longer listed" in page
    assert db.session.scalar(select(func.count(MailboxEvent.id))) == events


def test_changed_details_are_updated_on_resync_and_a_name_given_here_is_kept(client, connection, use_sandbox):
    sync(client, connection)
    listed = use_sandbox.directory(domain=DOMAIN, kind="room")[0]
    room = mailbox(listed["email"])
    room.capacity, room.name = 99, "Renamed here"
    db.session.commit()
    page = sync(client, connection).get_data(as_text=True)
    assert "1 updated" in page
    db.session.refresh(room)
    assert room.capacity == listed["capacity"]
    assert (room.name, room.upstream_name) == ("Renamed here", listed["name"])


def test_an_unrenamed_resource_follows_the_listings_new_name(client, connection, use_sandbox):
    sync(client, connection)
    listed = use_sandbox.directory(domain=DOMAIN, kind="room")[0]
    room = mailbox(listed["email"])
    room.name = room.upstream_name = "Old name upstream"
    db.session.commit()
    sync(client, connection)
    db.session.refresh(room)
    assert room.name == room.upstream_name == listed["name"]


# Finding 5 of issue 13: shared mailboxes were labelled `resource`, admins' names overwritten silently, and the
# result page showed bare addresses.

def test_shared_mailboxes_are_synced_as_shared_and_rooms_as_resources(client, connection, use_sandbox):
    shared = use_sandbox.directory(domain=DOMAIN, kind="shared")
    equipment = use_sandbox.directory(domain=DOMAIN, kind="equipment")
    assert shared and equipment
    sync(client, connection)
    assert {mailbox(m["email"]).kind for m in shared} == {"shared"}
    assert {mailbox(m["email"]).kind for m in equipment} == {"resource"}
    listed = client.get(f"/orgs/{connection.organization_id}/mailboxes?kind=shared").get_data(as_text=True)
    assert all(m["email"] in listed for m in shared)


def test_a_name_an_admin_imported_is_kept_and_the_upstream_name_shown_beside_it(client, admin, connection,
                                                                                 use_sandbox):
    upstream = use_sandbox.directory(domain=DOMAIN, kind="shared")[0]
    make_mailbox(admin.organization, email=upstream["email"], name="Sales team", kind="shared")
    page = sync(client, connection).get_data(as_text=True)
    sales = mailbox(upstream["email"])
    assert (sales.name, sales.upstream_name, sales.kind) == ("Sales team", upstream["name"], "shared")
    assert "1 name given here was kept." in page
    updated = page.split('data-testid="sync-updated"')[1].split("</section>")[0]
    assert "Sales team" in updated and f"· in Google Workspace: {upstream['name']}" in updated
    shown = client.get(f"/orgs/{admin.organization_id}/mailboxes/{sales.id}").get_data(as_text=True)
    assert "Sales team" in shown and f"in Google Workspace: {upstream['name']}" in shown
    assert "the name you gave is kept" in shown  # the timeline says so too


def test_the_result_page_shows_name_kind_capacity_and_location(client, connection, use_sandbox):
    room = use_sandbox.directory(domain=DOMAIN, kind="room")[0]
    page = sync(client, connection).get_data(as_text=True)
    new_section = page.split('data-testid="sync-new"')[1].split("</section>")[0]
    row = new_section.split(f'data-resource="{room["email"]}"')[1].split("</tr>")[0]
    stored = mailbox(room["email"])
    assert room["name"] in row and "Resource (room, equipment)" in row
    assert f"<td>{room['capacity']}</td>" in row and stored.location in row
    shared = use_sandbox.directory(domain=DOMAIN, kind="shared")[0]
    shared_row = new_section.split(f'data-resource="{shared["email"]}"')[1].split("</tr>")[0]
    assert "Shared mailbox" in shared_row and shared["name"] in shared_row


def test_a_service_account_without_the_resources_scope_gets_a_clear_message(client, admin, use_sandbox):
    connection, _ = connect_sandbox(admin.organization, use_sandbox, domain=DOMAIN,
                                    scope="service_account/accounts/manage")
    page = sync(client, connection).get_data(as_text=True)
    assert "service_account/resources/manage" in page and "Reconnect" in page
    assert db.session.scalar(select(func.count(Mailbox.id))) == 0


def test_an_unreachable_upstream_changes_nothing(client, connection, use_sandbox):
    use_sandbox.set_faults(error_rate=1.0)
    page = sync(client, connection).get_data(as_text=True)
    assert "could not be reached" in page or "did not answer" in page
    assert db.session.scalar(select(func.count(Mailbox.id))) == 0
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "resources.synced")) == 0


def test_the_connection_page_offers_a_sync(client, admin):
    connection = make_connection(admin.organization)
    page = client.get(f"/orgs/{admin.organization_id}/connections/{connection.id}").get_data(as_text=True)
    assert f"/connections/{connection.id}/sync-resources" in page and "Sync resources" in page


def test_the_result_page_before_any_sync_has_an_empty_state(client, admin):
    connection = make_connection(admin.organization)
    page = client.get(f"/orgs/{admin.organization_id}/connections/{connection.id}/resources").get_data(as_text=True)
    assert "No resource sync yet" in page
