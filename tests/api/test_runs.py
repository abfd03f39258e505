"""Runs over the API: starting them (which mailboxes, what access, canary), their progress and their actions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.authorization import AuthorizationRun
from models.mailbox import Mailbox
from tests.contract.sandbox_support import DELEGATED_SCOPE
from tests.helpers import authorize_mailbox, connect_sandbox, make_mailbox


@pytest.fixture
def organization(make_organization):
    return make_organization()


@pytest.fixture
def connected(organization, use_sandbox):
    connection, sa_tokens = connect_sandbox(organization, use_sandbox)
    return connection, sa_tokens


def _runs_url(organization) -> str:
    return f"/api/v1/organizations/{organization.id}/runs"


def _run_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuthorizationRun))


def _statuses(organization) -> dict[str, str]:
    db.session.expire_all()
    return {m.email: m.status for m in db.session.scalars(select(Mailbox).where(
        Mailbox.organization_id == organization.id))}


def test_an_authorization_by_filter_answers_202_with_the_run_and_where_to_follow_it(api, organization, connected):
    connection, _ = connected
    for n in range(3):
        make_mailbox(organization, email=f"new{n}@acme.example", connection_id=connection.id)
    make_mailbox(organization, email="done@acme.example", status="authorized")
    answer = api.post(_runs_url(organization), json={
        "action": "authorize", "mailboxes": {"filter": {"status": "new"}}, "scope": "read_free_busy"})
    assert answer.status_code == 202
    run = answer.json
    assert answer.headers["Location"].endswith(f"/api/v1/runs/{run['id']}")
    assert (run["action"], run["status"], run["total"], run["scope"]) == ("authorize", "running", 3, ["read_free_busy"])
    assert run["counts"]["queued"] == 3 and run["connection_id"] == str(connection.id)
    assert run["source"] == "API: mailboxes matching status new"
    assert _statuses(organization) == {"new0@acme.example": "queued", "new1@acme.example": "queued",
                                       "new2@acme.example": "queued", "done@acme.example": "authorized"}
    followed = api.get(f"/api/v1/runs/{run['id']}")
    assert followed.status_code == 200 and followed.json["total"] == 3
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "run.started"))
    assert event.details["via"] == "api" and event.details["total"] == 3


def test_the_default_scope_is_everything_the_connection_allows(api, organization, connected):
    make_mailbox(organization, email="a@acme.example")
    run = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized"}).json
    assert run["scope"] == DELEGATED_SCOPE.split() and run["source"] == "API: everything not yet authorized"


def test_mailboxes_named_by_id_or_address_must_all_be_the_organizations(api, organization, connected,
                                                                        make_organization):
    mine = make_mailbox(organization, email="Ana@acme.example")
    theirs = make_mailbox(make_organization(), email="x@other.example")
    refused = api.post(_runs_url(organization), json={"action": "authorize",
                                                      "mailboxes": {"ids": [str(mine.id), str(theirs.id)]}})
    assert refused.status_code == 422
    assert refused.json["errors"] == [{"pointer": "#/mailboxes/ids/1",
                                       "detail": "There is no mailbox with this id in this organization."}]
    refused = api.post(_runs_url(organization), json={"action": "authorize",
                                                      "mailboxes": {"emails": ["ana@ACME.example", "bad", "no@acme.example"]}})
    assert [e["pointer"] for e in refused.json["errors"]] == ["#/mailboxes/emails/1", "#/mailboxes/emails/2"]
    assert _run_count() == 0
    started = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": {"emails": ["ANA@acme.example"]}})
    assert started.status_code == 202 and started.json["total"] == 1


@pytest.mark.parametrize("mailboxes, pointer", [
    ("everything", "#/mailboxes"),
    ({"ids": [], "emails": ["a@acme.example"]}, "#/mailboxes/ids"),
    ({"ids": ["1"], "emails": ["a@acme.example"]}, "#/mailboxes"),
    ({"filter": {"status": "lost"}}, "#/mailboxes/filter/status"),
    ({"ids": ["x"]}, "#/mailboxes/ids/0"),
])
def test_a_malformed_set_of_mailboxes_is_pointed_at(api, organization, mailboxes, pointer):
    refused = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": mailboxes})
    assert refused.status_code == 422
    assert pointer in [error["pointer"] for error in refused.json["errors"]]


def test_a_scope_beyond_the_connections_grant_and_a_canary_too_large_are_refused(api, organization, connected):
    for n in range(2):
        make_mailbox(organization, email=f"m{n}@acme.example")
    wide = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized",
                                                   "scope": "read_write_everything_else"})
    assert wide.status_code == 422 and "asks for more" in wide.json["detail"]
    canary = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized",
                                                     "canary_size": 2})
    assert canary.status_code == 422 and canary.json["errors"][0]["pointer"] == "#/canary_size"
    assert "smaller than the 2 mailboxes" in canary.json["detail"]
    assert _run_count() == 0 and set(_statuses(organization).values()) == {"new"}


def test_nothing_to_authorize_and_no_connection_are_explained(api, organization, use_sandbox):
    make_mailbox(organization, email="a@acme.example")
    alone = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized"})
    assert alone.status_code == 422 and "Connect a domain first" in alone.json["detail"]
    connect_sandbox(organization, use_sandbox)
    empty = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": {"filter": {"group": "Nope"}}})
    assert empty.status_code == 422 and empty.json["detail"].startswith("Nothing to authorize")


def test_canary_settings_are_kept(api, organization, connected):
    for n in range(5):
        make_mailbox(organization, email=f"m{n}@acme.example")
    run = api.post(_runs_url(organization), json={
        "action": "authorize", "mailboxes": "all_unauthorized", "canary_size": 2, "continue_after_canary": "confirm",
        "failure_threshold": 35}).json
    assert (run["canary_size"], run["waves"], run["auto_continue"], run["failure_threshold"]) == (2, 2, False, 35)


def test_a_revoke_run_covers_the_authorized_mailboxes(api, organization, connected, use_sandbox):
    connection, sa_tokens = connected
    from tests.jobs.conftest import directory_emails

    mailbox = make_mailbox(organization, email=directory_emails(use_sandbox, trait="none")[0],
                           connection_id=connection.id)
    authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    other = make_mailbox(organization, email="new@acme.example")
    body = {"action": "revoke", "mailboxes": {"ids": [str(mailbox.id), str(other.id)]}}
    refused = api.post(_runs_url(organization), json={**body, "scope": "read_free_busy"})
    assert refused.status_code == 422 and refused.json["errors"][0]["pointer"] == "#/scope"
    answer = api.post(_runs_url(organization), json=body)
    assert answer.status_code == 202
    assert (answer.json["action"], answer.json["total"], answer.json["scope"]) == ("revoke", 1, [])
    nothing = api.post(_runs_url(organization), json={"action": "revoke", "mailboxes": {"ids": [str(other.id)]}})
    assert nothing.status_code == 422 and "Nothing to revoke" in nothing.json["detail"]


def test_pause_resume_and_cancel_follow_the_runs_rules(api, organization, connected):
    for n in range(3):
        make_mailbox(organization, email=f"m{n}@acme.example")
    run_id = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized"}).json["id"]
    base = f"/api/v1/runs/{run_id}"
    assert api.post(f"{base}/resume").status_code == 409
    paused = api.post(f"{base}/pause")
    assert paused.status_code == 200 and paused.json["status"] == "paused" and paused.json["pause_reason"]
    again = api.post(f"{base}/pause")
    assert again.status_code == 409 and again.json["type"].endswith("#run-state")
    assert "only a running run can be paused" in again.json["detail"]
    assert api.post(f"{base}/resume").json["status"] == "running"
    cancelled = api.post(f"{base}/cancel")
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert cancelled.json["counts"]["cancelled"] == 3 and cancelled.json["finished_at"]
    assert set(_statuses(organization).values()) == {"new"}
    assert api.post(f"{base}/cancel").status_code == 409
    assert api.post(f"{base}/retry-failed", json={}).json["retried"] == 0


def test_starting_a_run_is_idempotent(api, organization, connected):
    make_mailbox(organization, email="a@acme.example")
    body = {"action": "authorize", "mailboxes": "all_unauthorized"}
    first = api.post(_runs_url(organization), json=body, headers={"Idempotency-Key": "run-1"})
    second = api.post(_runs_url(organization), json=body, headers={"Idempotency-Key": "run-1"})
    assert first.status_code == second.status_code == 202
    assert second.json["id"] == first.json["id"] and second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"] and _run_count() == 1
    other = api.post(_runs_url(organization), json={**body, "scope": "read_free_busy"},
                     headers={"Idempotency-Key": "run-1"})
    assert other.status_code == 422 and other.json["type"].endswith("#idempotency-key-reused")


def test_runs_need_the_runs_scope_and_stay_within_the_keys_organization(api, make_api_key, organization, connected,
                                                                       make_organization):
    make_mailbox(organization, email="a@acme.example")
    run_id = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized"}).json["id"]
    reader = make_api_key("mailboxes:read", "mailboxes:write")
    for method, path in (("POST", _runs_url(organization)), ("GET", f"/api/v1/runs/{run_id}"),
                         ("POST", f"/api/v1/runs/{run_id}/pause")):
        refused = api.request(method, path, key=reader, json={"action": "authorize", "mailboxes": "all_unauthorized"}
                              if method == "POST" and path.endswith("/runs") else None)
        assert refused.status_code == 403 and refused.json["required_scope"] == "runs:write", path
    elsewhere = make_api_key(organization=make_organization())
    for method, path in (("GET", f"/api/v1/runs/{run_id}"), ("POST", f"/api/v1/runs/{run_id}/cancel")):
        assert api.request(method, path, key=elsewhere).status_code == 404
    assert api.get(f"/api/v1/runs/{run_id}").json["status"] == "running"


def test_resume_goes_on_after_a_canary_that_waits_for_confirmation(api, organization, connected):
    for n in range(4):
        make_mailbox(organization, email=f"m{n}@acme.example")
    run_id = api.post(_runs_url(organization), json={"action": "authorize", "mailboxes": "all_unauthorized",
                                                     "canary_size": 1, "continue_after_canary": "confirm"}).json["id"]
    run = db.session.get(AuthorizationRun, int(run_id))
    run.status = "awaiting_confirmation"  # where the engine leaves it once the canary wave is done
    db.session.commit()
    answer = api.post(f"/api/v1/runs/{run_id}/resume")
    assert answer.status_code == 200 and answer.json["status"] == "running"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "run.wave_confirmed")).details["via"] == "api"
