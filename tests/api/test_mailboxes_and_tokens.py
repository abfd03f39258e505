"""Mailboxes and fresh tokens over the API, against the sandbox: real HTTP for every upstream call."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import requests

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox
from services.accounts import api_keys
from services.mailboxes import mailbox_tokens
from services.platform import upstream
from tests.helpers import authorize_mailbox, connect_sandbox, make_mailbox
from tests.jobs.conftest import directory_emails, events_since, latest_event_id


@pytest.fixture
def organization(make_organization):
    return make_organization()


@pytest.fixture
def authorized(app, use_sandbox, organization):
    connection, sa_tokens = connect_sandbox(organization, use_sandbox)
    mailbox = make_mailbox(organization, email=directory_emails(use_sandbox, trait="none")[0],
                           connection_id=connection.id, external_id="user_1")
    tokens = authorize_mailbox(mailbox, use_sandbox, sa_tokens.access_token)
    return mailbox, tokens


def test_connections_are_listed_with_their_scopes(api, use_sandbox, organization):
    connect_sandbox(organization, use_sandbox)
    listed = api.get(f"/api/v1/organizations/{organization.id}/connections").json["data"]
    assert [(c["status"], c["domain"], c["provider"]) for c in listed] == [("active", "acme.example", "google")]
    assert "service_account/accounts/manage" in listed[0]["granted_scopes"]
    assert listed[0]["granted_delegated_scopes"] and listed[0]["connected_at"]


def test_mailboxes_are_listed_filtered_and_paged(api, organization):
    for n in range(5):
        make_mailbox(organization, email=f"Person{n}@acme.example", status="failed" if n % 2 else "new",
                     group_name="Sales" if n < 2 else None, last_error_key="not_found" if n % 2 else None)
    base = f"/api/v1/organizations/{organization.id}/mailboxes"
    first = api.get(f"{base}?limit=3").json
    rest = api.get(f"{base}?limit=3&cursor={first['next_cursor']}").json
    assert [m["email"] for m in first["data"] + rest["data"]] == [f"Person{n}@acme.example" for n in range(5)]
    assert rest["next_cursor"] is None
    failed = api.get(f"{base}?status=failed").json["data"]
    assert [m["email"] for m in failed] == ["Person1@acme.example", "Person3@acme.example"]
    assert failed[0]["error_key"] == "not_found" and failed[0]["cause"] and failed[0]["fix"]
    assert [m["email"] for m in api.get(f"{base}?group=Sales").json["data"]] == ["Person0@acme.example",
                                                                                  "Person1@acme.example"]
    assert [m["email"] for m in api.get(f"{base}?email=person2@ACME.example").json["data"]] == ["Person2@acme.example"]
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert api.get(base, query_string={"updated_since": later}).json["data"] == []
    assert len(api.get(base, query_string={"updated_since": "2026-01-01T00:00:00Z"}).json["data"]) == 5
    assert api.get(f"{base}?updated_since=2026-01-01T00:00:00").status_code == 422  # no time zone
    assert api.get(f"{base}?status=lost").status_code == 422


def test_a_cursor_of_one_organization_fits_no_other(api, organization, make_organization):
    other = make_organization()
    for n in range(3):
        make_mailbox(organization, email=f"m{n}@acme.example")
    cursor = api.get(f"/api/v1/organizations/{organization.id}/mailboxes?limit=1").json["next_cursor"]
    refused = api.get(f"/api/v1/organizations/{other.id}/mailboxes?cursor={cursor}")
    assert refused.status_code == 400 and refused.json["type"].endswith("#invalid-cursor")


def test_another_organizations_ids_give_404_everywhere(api, make_api_key, organization, make_organization):
    other = make_organization()
    theirs = make_mailbox(other, email="x@other.example")
    key = make_api_key(organization=organization)
    for method, path in (("GET", f"/api/v1/mailboxes/{theirs.id}"),
                         ("GET", f"/api/v1/organizations/{other.id}/mailboxes"),
                         ("GET", f"/api/v1/organizations/{other.id}/connections"),
                         ("POST", f"/api/v1/mailboxes/{theirs.id}/access-token")):
        response = api.request(method, path, key=key)
        assert response.status_code == 404, path
    response = api.post(f"/api/v1/organizations/{other.id}/access-tokens", key=key, json={"email": "x@other.example"})
    assert response.status_code == 404


def test_a_fresh_token_is_handed_out_and_works_against_the_sandbox(api, app, authorized, use_sandbox):
    mailbox, tokens = authorized
    answer = api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token")
    assert answer.status_code == 200
    body = answer.json
    assert body["access_token"] == tokens["access_token"] and body["account_id"] == mailbox.account_id
    assert body["api_base_url"] == use_sandbox.url and body["data_center"] == "us"
    calendars = requests.get(f"{body['api_base_url']}/v1/calendars", timeout=10,
                             headers={"Authorization": f"Bearer {body['access_token']}"})
    assert calendars.status_code == 200 and calendars.json()["calendars"]
    assert mailbox_tokens.fold_issuances() == 1
    db.session.expire_all()
    stored = db.session.get(Mailbox, mailbox.id)
    assert stored.token_fetch_count == 1 and stored.token_fetched_at is not None
    by_email = api.post(f"/api/v1/organizations/{mailbox.organization_id}/access-tokens",
                        json={"email": mailbox.email.upper()})
    assert by_email.status_code == 200 and by_email.json["mailbox_id"] == str(mailbox.id)


def test_issuances_reach_the_mailbox_within_a_second_without_being_asked(api, app, authorized):
    mailbox, _ = authorized
    for _ in range(3):
        assert api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token").status_code == 200
    deadline = time.monotonic() + mailbox_tokens.ISSUANCE_FOLD_SECONDS + 5
    while time.monotonic() < deadline:
        db.session.rollback()
        db.session.expire_all()
        stored = db.session.get(Mailbox, mailbox.id)
        if stored.token_fetch_count == 3:
            break
        time.sleep(0.1)
    assert stored.token_fetch_count == 3
    assert stored.token_fetched_by == api.key[:api_keys.PREFIX_LENGTH] and stored.token_fetched_at is not None
    assert api.get(f"/api/v1/mailboxes/{mailbox.id}").json["token_fetched_at"] is not None


def test_a_token_expiring_within_five_minutes_is_refreshed_first(api, app, authorized, use_sandbox):
    mailbox, tokens = authorized
    mailbox.access_token_expires_at = utcnow() + timedelta(minutes=4)
    db.session.commit()
    since = latest_event_id(use_sandbox)
    body = api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token").json
    assert body["access_token"] != tokens["access_token"]
    assert len(events_since(use_sandbox, since, path="/oauth/token", method="POST")) == 1
    assert body["expires_at"] > (utcnow() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_concurrent_requests_for_an_expired_token_cause_one_refresh(app, api, authorized, use_sandbox, live_server):
    mailbox, _ = authorized
    mailbox.access_token_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    url, key = f"{live_server.url}/api/v1/mailboxes/{mailbox.id}/access-token", api.key
    since = latest_event_id(use_sandbox)
    answers = []

    def fetch():
        answers.append(requests.post(url, timeout=30,
                                     headers={"Authorization": f"Bearer {key}"}))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.json()["access_token"] for a in answers}) == 1
    assert len(events_since(use_sandbox, since, path="/oauth/token", method="POST")) == 1


def test_a_refused_refresh_marks_the_mailbox_and_says_so(api, authorized):
    mailbox, tokens = authorized
    mailbox.access_token_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    upstream.client_for("us").revoke(token=tokens["refresh_token"])
    refused = api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token")
    assert refused.status_code == 409 and refused.json["type"].endswith("#mailbox-needs-attention")
    assert refused.json["mailbox_status"] == "needs_attention"
    assert api.get(f"/api/v1/mailboxes/{mailbox.id}").json["status"] == "needs_attention"


def test_a_mailbox_that_is_not_authorized_has_no_token(api, organization):
    mailbox = make_mailbox(organization, email="new@acme.example")
    refused = api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token")
    assert refused.status_code == 409 and refused.json["mailbox_status"] == "new"
    missing = api.post(f"/api/v1/organizations/{organization.id}/access-tokens", json={"email": "nobody@acme.example"})
    assert missing.status_code == 404
    bad = api.post(f"/api/v1/organizations/{organization.id}/access-tokens", json={"mail": "x"})
    assert bad.status_code == 422


def test_tokens_need_the_tokens_scope(api, make_api_key, authorized):
    mailbox, _ = authorized
    response = api.post(f"/api/v1/mailboxes/{mailbox.id}/access-token", key=make_api_key("mailboxes:read"))
    assert response.status_code == 403 and response.json["required_scope"] == "tokens:read"


@pytest.mark.config(API_RATE_LIMIT="100 per hour;1000 per day")
def test_each_token_answer_is_counted_and_a_revoked_key_gets_none(api, authorized):
    mailbox, _ = authorized
    url = f"/api/v1/mailboxes/{mailbox.id}/access-token"
    first, second = api.post(url), api.post(url)
    assert first.status_code == second.status_code == 200
    assert second.headers["RateLimit-Limit"] == "100"  # the tighter window's
    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == ["99", "98"]
    assert 3500 < int(second.headers["RateLimit-Reset"]) <= 3600
    api_keys.revoke_key(api_keys.find_by_prefix(api.key[:api_keys.PREFIX_LENGTH]))
    db.session.commit()
    refused = api.post(url)
    assert refused.status_code == 401 and "invalid_token" in refused.headers["WWW-Authenticate"]
