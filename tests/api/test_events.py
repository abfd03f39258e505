"""`GET /api/v1/events`: the log in order, resumable after any id, filtered, and private to each organization."""

from __future__ import annotations

from datetime import timedelta

from extensions import db
from models.base import utcnow
from models.event import Event
from services.accounts.organizations import create_organization
from services.mailboxes import mailbox_directory
from services.platform.event_types import TEST_EVENT
from services.platform import events as event_log
from tests.helpers import make_mailbox

URL = "/api/v1/events"


def _organization_with_mailboxes(name, count):
    organization = create_organization(name)
    db.session.commit()
    for n in range(count):
        mailbox_directory.add_mailbox(organization, email=f"m{n}@{name.lower()}.example", actor=None)
        db.session.commit()
    return organization


def test_events_page_in_order_and_resume_after_the_cursor(api):
    organization = _organization_with_mailboxes("Acme", 5)
    first = api.get(f"{URL}?limit=4").json
    assert [e["type"] for e in first["data"]] == ["organization.created"] + ["mailbox.created"] * 3
    assert first["has_more"] is True and first["next_cursor"] == first["data"][-1]["id"]
    rest = api.get(f"{URL}?after={first['next_cursor']}").json
    assert [e["type"] for e in rest["data"]] == ["mailbox.created"] * 2 and rest["has_more"] is False
    ids = [int(e["id"]) for e in first["data"] + rest["data"]]
    assert ids == sorted(ids) and len(set(ids)) == 6
    event = rest["data"][-1]
    assert event["organization_id"] == str(organization.id) and event["subject"]["type"] == "mailbox"
    assert event["data"]["email"] == "m4@acme.example" and event["data"]["id"] == event["subject"]["id"]
    # Caught up: an empty page hands the same cursor back, and the next change appears after it.
    caught_up = api.get(f"{URL}?after={rest['next_cursor']}").json
    assert caught_up == {"data": [], "next_cursor": rest["next_cursor"], "has_more": False}
    mailbox_directory.add_mailbox(organization, email="late@acme.example", actor=None)
    db.session.commit()
    assert [e["data"]["email"] for e in api.get(f"{URL}?after={rest['next_cursor']}").json["data"]] == [
        "late@acme.example"]


def test_types_filter_and_unknown_types_are_refused(api):
    _organization_with_mailboxes("Acme", 2)
    only = api.get(f"{URL}?types=organization.created").json["data"]
    assert [e["type"] for e in only] == ["organization.created"]
    both = api.get(f"{URL}?types=organization.created,mailbox.created").json["data"]
    assert len(both) == 3
    refused = api.get(f"{URL}?types=mailbox.created,mailbox.exploded")
    assert refused.status_code == 422 and "mailbox.exploded" in refused.json["detail"]
    assert refused.json["errors"][0]["parameter"] == "types"
    assert api.get(f"{URL}?limit=201").status_code == 422
    assert api.get(f"{URL}?after=-1").status_code == 422


def test_a_restricted_key_sees_only_its_organizations_events(api, make_api_key):
    mine = _organization_with_mailboxes("Mine", 2)
    theirs = _organization_with_mailboxes("Theirs", 3)
    restricted = make_api_key("events:read", organization=mine)
    seen = api.get(URL, key=restricted).json["data"]
    assert {e["organization_id"] for e in seen} == {str(mine.id)} and len(seen) == 3
    assert api.get(f"{URL}?organization_id={theirs.id}", key=restricted).status_code == 404
    assert len(api.get(f"{URL}?organization_id={mine.id}", key=restricted).json["data"]) == 3
    everyone = api.get(f"{URL}?organization_id={theirs.id}").json["data"]
    assert {e["organization_id"] for e in everyone} == {str(theirs.id)} and len(everyone) == 4
    assert api.get(f"{URL}?organization_id=999999").status_code == 404


def test_the_scope_events_read_is_needed(api, make_api_key):
    refused = api.get(URL, key=make_api_key("organizations:read"))
    assert refused.status_code == 403 and refused.json["required_scope"] == "events:read"
    assert api.get(URL, key=None).status_code == 401


def test_test_events_sent_to_one_endpoint_are_not_listed(api, make_organization):
    organization = make_organization()
    db.session.add(Event(type=TEST_EVENT, organization_id=organization.id, subject_type="webhook_endpoint",
                         subject_id=1, data={"id": "1"}, created_at=utcnow()))
    db.session.commit()
    assert api.get(URL).json["data"] == []


def test_every_event_type_of_every_subject_validates_against_its_schema(api, make_organization):
    """The client validates each answer against the document: one event of each subject type goes through."""
    organization = create_organization("Acme")
    mailbox = make_mailbox(organization, external_id="u-1")
    for event_type, subject_type, subject_id in (("mailbox.failed", "mailbox", mailbox.id),
                                                 ("organization.state_changed", "organization", organization.id)):
        event_log.record(event_type, organization_id=organization.id, subject_type=subject_type,
                         subject_id=subject_id)
    db.session.commit()
    listed = api.get(URL).json["data"]
    assert [e["type"] for e in listed] == ["organization.created", "mailbox.failed", "organization.state_changed"]
    assert listed[1]["subject"] == {"type": "mailbox", "id": str(mailbox.id), "external_id": "u-1"}
    assert listed[0]["timestamp"].endswith("Z")
    assert utcnow() - timedelta(minutes=1) < db.session.get(Event, int(listed[0]["id"])).created_at


def test_the_document_has_a_schema_per_subject_with_its_types_and_data(api):
    document = api.get("/api/v1/openapi.json", validate=False).json
    schemas = document["components"]["schemas"]
    mailbox_event = schemas["MailboxEvent"]
    assert "mailbox.authorized" in mailbox_event["properties"]["type"]["enum"]
    assert "run.started" not in mailbox_event["properties"]["type"]["enum"]
    assert mailbox_event["properties"]["data"]["$ref"] == "#/components/schemas/Mailbox"
    assert schemas["RunEvent"]["properties"]["data"]["$ref"] == "#/components/schemas/Run"
    items = schemas["EventPage"]["properties"]["data"]["items"]["oneOf"]
    assert {"$ref": "#/components/schemas/ConnectionEvent"} in items and len(items) == 5
