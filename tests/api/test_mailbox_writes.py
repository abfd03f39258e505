"""The bulk upsert of mailboxes and removing one, as the vendor's developer sees them over the API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.mailbox import Mailbox, MailboxEvent
from services.cronofy.errors import InvalidGrantError
from services.platform import upstream
from tests.helpers import authorize_mailbox, connect_sandbox, make_connection, make_mailbox
from tests.jobs.conftest import directory_emails


@pytest.fixture
def organization(make_organization):
    return make_organization()


def _url(organization) -> str:
    return f"/api/v1/organizations/{organization.id}/mailboxes"


def _mailboxes(organization) -> list[Mailbox]:
    db.session.expire_all()
    return list(db.session.scalars(select(Mailbox).where(Mailbox.organization_id == organization.id)
                                   .order_by(Mailbox.id)))


def _audits(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_new_mailboxes_are_created_normalized_and_given_their_connection(api, organization):
    connection = make_connection(organization, domain="acme.example")
    answer = api.put(_url(organization), json={"mailboxes": [
        {"email": "  Ana@ACME.example ", "name": "  Ana   Silva ", "kind": "Person", "group": "Sales",
         "external_id": "user_1"},
        {"email": "room-1@eu.acme.example", "kind": "room"},
    ]})
    assert answer.status_code == 200
    assert answer.json["created"] == 2 and answer.json["updated"] == 0 and answer.json["unchanged"] == 0
    stored = _mailboxes(organization)
    assert answer.json["ids"] == [str(m.id) for m in stored]
    ana, room = stored
    assert (ana.email, ana.name, ana.kind, ana.group_name, ana.external_id, ana.status) == (
        "Ana@acme.example", "Ana Silva", "user", "Sales", "user_1", "new")
    assert (room.kind, room.connection_id, ana.connection_id) == ("resource", connection.id, connection.id)
    assert db.session.scalar(select(func.count()).select_from(MailboxEvent)
                             .where(MailboxEvent.kind == "imported")) == 2
    listed = api.get(f"{_url(organization)}?email=ana@acme.example").json["data"]
    assert listed[0]["external_id"] == "user_1"


def test_existing_mailboxes_are_updated_in_any_case_and_blank_fields_keep_what_is_stored(api, organization):
    kept = make_mailbox(organization, email="Bob@acme.example", name="Bob", kind="shared", group_name="Ops")
    same = make_mailbox(organization, email="carla@acme.example", name="Carla", external_id="user_3")
    answer = api.put(_url(organization), json={"mailboxes": [
        {"email": "dave@acme.example"},
        {"email": "BOB@acme.example", "name": "Robert", "external_id": "user_2"},
        {"email": "carla@acme.example", "name": "", "kind": None},
    ]})
    assert answer.status_code == 200
    assert (answer.json["created"], answer.json["updated"], answer.json["unchanged"]) == (1, 1, 1)
    assert answer.json["ids"][1:] == [str(kept.id), str(same.id)]
    db.session.expire_all()
    bob = db.session.get(Mailbox, kept.id)
    assert (bob.email, bob.name, bob.kind, bob.group_name, bob.external_id) == (
        "Bob@acme.example", "Robert", "shared", "Ops", "user_2")
    assert db.session.get(Mailbox, same.id).external_id == "user_3"
    cleared = api.put(_url(organization), json={"mailboxes": [{"email": "carla@acme.example", "external_id": None}]})
    assert cleared.json["updated"] == 1
    db.session.expire_all()
    assert db.session.get(Mailbox, same.id).external_id is None


def test_one_bad_entry_writes_nothing_and_every_bad_field_is_pointed_at(api, organization):
    answer = api.put(_url(organization), json={"mailboxes": [
        {"email": "ok@acme.example"},
        {"email": "not an address"},
        {"email": "x@acme.example", "kind": "robot", "name": "n" * 201},
        {"email": "OK@acme.example"},
        {"email": "y@acme.example", "external_id": "dup"},
        {"email": "z@acme.example", "external_id": "dup"},
    ]})
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    errors = {error["pointer"]: error["detail"] for error in answer.json["errors"]}
    assert set(errors) == {"#/mailboxes/1/email", "#/mailboxes/2/kind", "#/mailboxes/2/name",
                           "#/mailboxes/3/email", "#/mailboxes/5/external_id"}
    assert "malformed address" in errors["#/mailboxes/1/email"]
    assert "unknown kind 'robot'" in errors["#/mailboxes/2/kind"]
    assert "longer than 200 characters" in errors["#/mailboxes/2/name"]
    assert "#/mailboxes/0/email" in errors["#/mailboxes/3/email"] and "duplicate" in errors["#/mailboxes/3/email"]
    assert "#/mailboxes/4/external_id" in errors["#/mailboxes/5/external_id"]
    assert answer.json["detail"].startswith("4 entries are invalid")
    assert _mailboxes(organization) == [] and _audits("mailboxes.upserted") == []


def test_wrong_types_and_unknown_fields_are_pointed_at(api, organization):
    answer = api.put(_url(organization), json={"mailboxes": [{"email": 5}, {"email": "a@acme.example", "age": 3}]})
    assert answer.status_code == 422
    pointers = {error["pointer"] for error in answer.json["errors"]}
    assert pointers == {"#/mailboxes/0/email", "#/mailboxes/1/age"}
    assert api.put(_url(organization), json={"people": []}).status_code == 422


def test_addresses_outside_the_connections_domains_are_refused_unless_asked_for(api, organization):
    make_connection(organization, domain="acme.example")
    body = {"mailboxes": [{"email": "guest@elsewhere.example"}]}
    refused = api.put(_url(organization), json=body)
    assert refused.status_code == 422
    assert refused.json["errors"][0]["pointer"] == "#/mailboxes/0/email"
    assert "elsewhere.example is not one of the connection's" in refused.json["errors"][0]["detail"]
    accepted = api.put(_url(organization), json={**body, "include_outside_domains": True})
    assert accepted.status_code == 200 and accepted.json["created"] == 1
    assert _mailboxes(organization)[0].connection_id is None


def test_an_external_id_of_another_mailbox_is_a_conflict(api, organization):
    make_mailbox(organization, email="holder@acme.example", external_id="user_9")
    answer = api.put(_url(organization), json={"mailboxes": [{"email": "new@acme.example", "external_id": "user_9"}]})
    assert answer.status_code == 409 and answer.json["type"].endswith("#conflict")
    assert "holder@acme.example" in answer.json["detail"]
    assert len(_mailboxes(organization)) == 1


def test_more_than_ten_thousand_entries_are_refused_clearly(api, organization):
    answer = api.put(_url(organization), json={"mailboxes": [{"email": f"u{n}@acme.example"} for n in range(10_001)]})
    assert answer.status_code == 422
    assert answer.json["errors"] == [{"pointer": "#/mailboxes", "detail": (
        "At most 10,000 mailboxes per request: send the rest in another request.")}]
    assert _mailboxes(organization) == []


def test_ten_thousand_entries_are_upserted_and_audited_once(api, organization):
    make_mailbox(organization, email="u0@acme.example", name="Old")
    answer = api.put(_url(organization), json={"mailboxes": [
        {"email": f"u{n}@acme.example", "name": f"User {n}"} for n in range(10_000)]})
    assert answer.status_code == 200
    assert (answer.json["created"], answer.json["updated"], answer.json["unchanged"]) == (9_999, 1, 0)
    assert len(answer.json["ids"]) == len(set(answer.json["ids"])) == 10_000
    [event] = _audits("mailboxes.upserted")
    assert event.details["created"] == 9_999 and event.details["via"] == "api" and event.details["api_key"]


def test_upserting_needs_the_write_scope_and_the_organization(api, make_api_key, organization, make_organization):
    read_only = api.put(_url(organization), key=make_api_key("mailboxes:read"), json={"mailboxes": []})
    assert read_only.status_code == 403 and read_only.json["required_scope"] == "mailboxes:write"
    other = make_organization()
    hidden = api.put(_url(other), key=make_api_key(organization=organization), json={"mailboxes": []})
    assert hidden.status_code == 404


def test_deleting_a_mailbox_that_holds_no_authorization_removes_it(api, organization):
    mailbox = make_mailbox(organization, email="gone@acme.example")
    answer = api.delete(f"/api/v1/mailboxes/{mailbox.id}")
    assert answer.status_code == 204 and answer.data == b""
    assert api.get(f"/api/v1/mailboxes/{mailbox.id}").status_code == 404
    [event] = _audits("mailboxes.removed")
    assert event.details["emails"] == ["gone@acme.example"] and event.details["via"] == "api"


def test_deleting_an_authorized_mailbox_revokes_it_upstream_first(api, organization, use_sandbox):
    connection, sa_tokens = connect_sandbox(organization, use_sandbox)
    mailbox = make_mailbox(organization, email=directory_emails(use_sandbox, trait="none")[0],
                           connection_id=connection.id)
    tokens = authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    answer = api.delete(f"/api/v1/mailboxes/{mailbox.id}")
    assert answer.status_code == 204
    with pytest.raises(InvalidGrantError):  # Cronofy no longer honours the mailbox's authorization
        upstream.client_for("us").refresh_access_token(tokens["refresh_token"])
    assert _audits("mailboxes.removed")[0].details["revoked"] == 1


def test_an_upstream_failure_leaves_the_mailbox_and_says_so(api, app, organization, use_sandbox):
    connection, sa_tokens = connect_sandbox(organization, use_sandbox)
    mailbox = make_mailbox(organization, email=directory_emails(use_sandbox, trait="none")[0],
                           connection_id=connection.id)
    authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    app.config["SANDBOX_URL"] = "http://127.0.0.1:9"  # nothing listens there
    answer = api.delete(f"/api/v1/mailboxes/{mailbox.id}")
    assert answer.status_code == 502 and answer.json["type"].endswith("#upstream-failed")
    assert "could not be reached" in answer.json["detail"]
    app.config["SANDBOX_URL"] = use_sandbox.url
    assert api.get(f"/api/v1/mailboxes/{mailbox.id}").json["status"] == "authorized"
    assert _audits("mailboxes.removed") == []


def test_deleting_needs_the_write_scope(api, make_api_key, organization):
    mailbox = make_mailbox(organization)
    answer = api.delete(f"/api/v1/mailboxes/{mailbox.id}", key=make_api_key("mailboxes:read"))
    assert answer.status_code == 403
    assert api.get(f"/api/v1/mailboxes/{mailbox.id}").status_code == 200
