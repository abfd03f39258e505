"""/api/v1/organizations: list, filter, page, create, read and change, each answer in the documented shape."""

from __future__ import annotations

import pytest

from extensions import db
from models.audit import AuditEvent
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization


def _create(api, **body):
    return api.post("/api/v1/organizations", json={"name": "Acme Corp", **body})


def test_create_then_read_an_organization(api):
    created = _create(api, data_center="de", external_id="cust_1")
    assert created.status_code == 201
    body = created.json
    assert body["name"] == "Acme Corp" and body["data_center"] == "de" and body["external_id"] == "cust_1"
    assert isinstance(body["id"], str) and body["slug"] == "acme-corp"
    assert body["onboarding_state"] == "not_connected"
    assert body["mailbox_counts"]["new"] == 0
    assert body["created_at"].endswith("Z")
    assert created.headers["Location"].endswith(f"/api/v1/organizations/{body['id']}")
    assert api.get(f"/api/v1/organizations/{body['id']}").json == body
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "organization.created"))
    assert event.details["via"] == "api" and event.details["api_key"] == api.key[:17]


def test_list_filters_by_external_id_and_slug_and_pages_with_a_cursor(api):
    for n in range(5):
        _create(api, name=f"Customer {n}", external_id=f"ext-{n}")
    first = api.get("/api/v1/organizations?limit=2").json
    assert [o["name"] for o in first["data"]] == ["Customer 0", "Customer 1"] and first["next_cursor"]
    second = api.get(f"/api/v1/organizations?limit=2&cursor={first['next_cursor']}").json
    third = api.get(f"/api/v1/organizations?limit=2&cursor={second['next_cursor']}").json
    assert [o["name"] for o in second["data"] + third["data"]] == ["Customer 2", "Customer 3", "Customer 4"]
    assert third["next_cursor"] is None
    assert [o["name"] for o in api.get("/api/v1/organizations?external_id=ext-3").json["data"]] == ["Customer 3"]
    assert [o["name"] for o in api.get("/api/v1/organizations?slug=customer-1").json["data"]] == ["Customer 1"]
    assert api.get("/api/v1/organizations?external_id=nobody").json == {"data": [], "next_cursor": None}


def test_the_state_and_counts_follow_connections_mailboxes_and_runs(api, app):
    organization_id = int(_create(api).json["id"])
    organization = db.session.get(Organization, organization_id)

    def state():
        return api.get(f"/api/v1/organizations/{organization_id}").json

    connection = Connection(organization=organization, provider="google", domain="acme.example", status="active",
                            data_center="us")
    db.session.add(connection)
    db.session.commit()
    assert state()["onboarding_state"] == "connected"
    for n, status in enumerate(("new", "authorized", "authorized")):
        db.session.add(Mailbox(organization=organization, email=f"m{n}@acme.example", status=status))
    db.session.commit()
    assert state()["onboarding_state"] == "importing"
    assert state()["mailbox_counts"] | {} == {**state()["mailbox_counts"], "new": 1, "authorized": 2}
    db.session.execute(db.update(Mailbox).values(status="authorized"))
    db.session.commit()
    assert state()["onboarding_state"] == "ready"
    db.session.execute(db.update(Mailbox).where(Mailbox.email == "m0@acme.example").values(status="failed"))
    db.session.commit()
    assert state()["onboarding_state"] == "needs_attention"
    connection.status = "needs_reauth"
    db.session.commit()
    assert state()["onboarding_state"] == "needs_attention"


def test_patch_renames_and_sets_the_external_id_but_not_the_data_center(api):
    organization_id = _create(api, external_id="a").json["id"]
    changed = api.patch(f"/api/v1/organizations/{organization_id}", json={"name": "Acme Inc", "external_id": "b"})
    assert changed.status_code == 200 and changed.json["name"] == "Acme Inc" and changed.json["external_id"] == "b"
    refused = api.patch(f"/api/v1/organizations/{organization_id}", json={"data_center": "uk"})
    assert refused.status_code == 422
    assert refused.json["errors"] == [{"pointer": "#/data_center", "detail": "Unknown field."}]
    assert api.get(f"/api/v1/organizations/{organization_id}").json["data_center"] == "us"
    cleared = api.patch(f"/api/v1/organizations/{organization_id}", json={"external_id": None})
    assert cleared.json["external_id"] is None


def test_a_duplicate_external_id_is_a_conflict_and_changes_nothing(api):
    first = _create(api, external_id="same").json
    duplicate = _create(api, name="Other", external_id="same")
    assert duplicate.status_code == 409 and duplicate.json["type"].endswith("#conflict")
    other = _create(api, name="Other", external_id="other").json
    moved = api.patch(f"/api/v1/organizations/{other['id']}", json={"external_id": "same", "name": "Renamed"})
    assert moved.status_code == 409
    assert api.get(f"/api/v1/organizations/{other['id']}").json["name"] == "Other"
    assert [o["id"] for o in api.get("/api/v1/organizations?external_id=same").json["data"]] == [first["id"]]


def test_bad_bodies_get_problem_documents_with_pointers(api):
    cases = [
        ({"data_center": "mars"}, "#/data_center"),
        ({"name": 12}, "#/name"),
        ({"name": ""}, "#/name"),
        ({"name": "x" * 121}, "#/name"),
        ({"name": "Acme", "colour": "red"}, "#/colour"),
    ]
    for body, pointer in cases:
        response = api.post("/api/v1/organizations", json=body if "name" in body else {"name": "Acme", **body})
        assert response.status_code == 422, body
        assert response.json["type"].endswith("#validation-failed")
        assert pointer in [error["pointer"] for error in response.json["errors"]], body
    malformed = api.post("/api/v1/organizations", data="{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json["type"].endswith("#malformed-request")
    assert db.session.scalar(db.select(db.func.count()).select_from(Organization)) == 0


def test_invalid_cursors_and_limits_are_refused(api):
    for query in ("cursor=garbage", "cursor=eyJhIjoxfQ", "limit=0", "limit=201", "limit=ten", "color=red"):
        response = api.get(f"/api/v1/organizations?{query}")
        assert response.status_code in (400, 422), query
        assert response.mimetype == "application/problem+json", query


def test_a_key_restricted_to_one_organization_sees_only_it(api, make_api_key, make_organization):
    mine, theirs = make_organization(), make_organization()
    restricted = make_api_key("organizations:read", "organizations:write", organization=mine)
    listed = api.get("/api/v1/organizations", key=restricted).json["data"]
    assert [o["id"] for o in listed] == [str(mine.id)]
    assert api.get(f"/api/v1/organizations/{theirs.id}", key=restricted).status_code == 404
    assert api.patch(f"/api/v1/organizations/{theirs.id}", key=restricted, json={"name": "x"}).status_code == 404
    assert api.get(f"/api/v1/organizations/{mine.id}", key=restricted).status_code == 200
    refused = api.post("/api/v1/organizations", key=restricted, json={"name": "New"})
    assert refused.status_code == 403 and refused.json["type"].endswith("#restricted-key")
    assert api.get("/api/v1/organizations/999999").status_code == 404


def test_unknown_paths_and_methods_under_the_api_are_problem_documents(api):
    missing = api.get("/api/v1/nothing-here", validate=False)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = api.delete("/api/v1/organizations", validate=False)
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]


@pytest.mark.config(MAX_CONTENT_LENGTH=2000)
def test_an_oversize_body_is_a_413_problem_and_changes_nothing(api):
    response = api.post("/api/v1/organizations", json={"name": "Acme", "external_id": "x" * 5000})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("#payload-too-large")
    assert db.session.scalar(db.select(db.func.count()).select_from(Organization)) == 0
