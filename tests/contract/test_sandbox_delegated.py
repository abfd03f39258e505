"""Contract: POST /v1/service_account_authorizations (§3.3), the callbacks (§3.3.1) and code exchange (§3.3.2)."""

import base64
import hashlib
import hmac
import json

import pytest

from tests.contract.sandbox_support import (DELEGATED_SCOPE, bearer, connect_service_account, http, members,
                                            request_access, token_request)


def _entry(receiver, email, name="m1", scope="read_events", **extra):
    return {"email": email, "callback_url": receiver.callback_url(name), "scope": scope, "state": name, **extra}


def _bodies(receiver, count):
    return [json.loads(r["raw"]) for r in receiver.wait_for(count)]


def test_single_request_is_accepted_with_202_and_no_body(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    response = request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email))
    assert (response.status_code, response.content) == (202, b"")


def test_success_callback_carries_code_and_state_posted_to_the_exact_url(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, "alice"))
    received = callback_receiver.wait_for(1)[0]
    assert received["path"] == "/callbacks/delegated/tokaliceABCDEFGHIJKLMNOP?mbx=alice&org=42"
    assert received["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(received["raw"])
    assert set(body["authorization"]) == {"code", "state"}
    assert body["authorization"]["state"] == "alice"
    assert len(body["authorization"]["code"]) == 32


def test_callback_is_signed_with_cronofy_hmac_sha256(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email))
    received = callback_receiver.wait_for(1)[0]
    expected = base64.b64encode(hmac.new(sandbox.client_secret.encode(), received["raw"], hashlib.sha256).digest())
    assert received["headers"]["Cronofy-Hmac-Sha256"].split(",")[0].encode() == expected


def test_delegated_code_exchange_answers_an_account_token(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, scope=DELEGATED_SCOPE))
    code = _bodies(callback_receiver, 1)[0]["authorization"]["code"]
    response = token_request(sandbox, grant_type="authorization_code", code=code,
                             redirect_uri=callback_receiver.callback_url("m1"))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["expires_in"] > sa_token["expires_in"]
    assert body["scope"] == DELEGATED_SCOPE
    assert body["account_id"] == body["sub"] and body["sub"].startswith("acc_")
    profile = body["linking_profile"]
    assert profile["provider_name"] == "google" and profile["provider_service"] == "gsuite"
    assert profile["profile_id"].startswith("pro_") and profile["profile_name"] == email


def test_delegated_code_needs_the_exact_callback_url_as_redirect_uri(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email))
    code = _bodies(callback_receiver, 1)[0]["authorization"]["code"]
    without_query = callback_receiver.callback_url("m1").split("?")[0]
    response = token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=without_query)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_same_mailbox_keeps_the_same_account_id(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    subs = []
    for attempt in range(2):
        request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email))
        code = _bodies(callback_receiver, attempt + 1)[attempt]["authorization"]["code"]
        subs.append(token_request(sandbox, grant_type="authorization_code", code=code,
                                  redirect_uri=callback_receiver.callback_url("m1")).json()["sub"])
    assert subs[0] == subs[1]


def test_batch_request_gets_one_callback_per_entry(sandbox, sa_token, callback_receiver):
    emails = members(sandbox, 3, domain="acme.example", kind="user", trait="none")
    room = members(sandbox, domain="acme.example", kind="room", trait="none")[0]
    entries = [_entry(callback_receiver, e, f"b{i}") for i, e in enumerate(emails + [room])]
    response = request_access(sandbox, sa_token["access_token"], {"service_account_authorizations": entries})
    assert (response.status_code, response.content) == (202, b"")
    states = sorted(b["authorization"]["state"] for b in _bodies(callback_receiver, 4))
    assert states == ["b0", "b1", "b2", "b3"]


def test_batch_of_fifty_is_accepted_and_fifty_one_is_refused(sandbox, sa_token, callback_receiver):
    emails = members(sandbox, 40, domain="acme.example", kind="user")
    emails += members(sandbox, 6, domain="acme.example", kind="room")
    emails += members(sandbox, 4, domain="acme.example", kind="shared")
    fifty = [_entry(callback_receiver, e, f"n{i}") for i, e in enumerate(emails)]
    assert request_access(sandbox, sa_token["access_token"],
                          {"service_account_authorizations": fifty}).status_code == 202
    too_many = request_access(sandbox, sa_token["access_token"],
                              {"service_account_authorizations": fifty + fifty[:1]})
    assert too_many.status_code == 422
    assert too_many.json()["errors"]["service_account_authorizations"][0]["key"] == "errors.too_long"
    assert len(callback_receiver.wait_for(50)) == 50


@pytest.mark.parametrize("mutate, field, key", [
    (lambda e: e.pop("email"), "email", "errors.required"),
    (lambda e: e.pop("callback_url"), "callback_url", "errors.required"),
    (lambda e: e.pop("scope"), "scope", "errors.required"),
    (lambda e: e.update(email="not-an-email"), "email", "errors.invalid"),
    (lambda e: e.update(email="alice@@acme"), "email", "errors.invalid"),
    (lambda e: e.update(email=["a@b.example"]), "email", "errors.invalid"),
    (lambda e: e.update(callback_url="ftp://127.0.0.1/cb"), "callback_url", "errors.invalid"),
    (lambda e: e.update(callback_url="https://elsewhere.example/cb"), "callback_url", "errors.invalid"),
    (lambda e: e.update(scope="read_events fly"), "scope", "errors.invalid"),
    (lambda e: e.update(scope="create_calendar"), "scope", "errors.outside_delegated_scope"),
    (lambda e: e.update(state=42), "state", "errors.invalid"),
])
def test_invalid_single_requests_get_422_with_field_errors(sandbox, sa_token, callback_receiver, mutate, field, key):
    entry = _entry(callback_receiver, "alice.anderson@acme.example")
    mutate(entry)
    response = request_access(sandbox, sa_token["access_token"], entry)
    assert response.status_code == 422
    errors = response.json()["errors"][field]
    assert errors[0]["key"] == key and errors[0]["description"]


def test_invalid_batch_entries_are_named_by_index(sandbox, sa_token, callback_receiver):
    good = _entry(callback_receiver, "alice.anderson@acme.example")
    bad = _entry(callback_receiver, "nope")
    response = request_access(sandbox, sa_token["access_token"], {"service_account_authorizations": [good, bad]})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["service_account_authorizations[1][email]"]


@pytest.mark.parametrize("payload", [
    {"service_account_authorizations": []},
    {"service_account_authorizations": "alice@acme.example"},
    {"service_account_authorizations": [], "email": "alice@acme.example"},
    {"service_account_authorizations": ["alice@acme.example"]},
    [1, 2, 3],
])
def test_bad_shapes_get_422(sandbox, sa_token, payload):
    response = request_access(sandbox, sa_token["access_token"], payload)
    assert response.status_code == 422
    assert response.json()["errors"]


def test_unreadable_json_gets_422(sandbox, sa_token):
    response = http().post(f"{sandbox.url}/v1/service_account_authorizations", data=b"{oops",
                           headers={**bearer(sa_token["access_token"]), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"]["body"][0]["key"] == "errors.invalid_json"


def test_scope_within_an_aggregate_delegated_scope_is_accepted(sandbox, callback_receiver):
    tokens = connect_service_account(sandbox, delegated_scope="read_write")
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    ok = request_access(sandbox, tokens["access_token"], _entry(callback_receiver, email, scope="read_events"))
    assert ok.status_code == 202
    refused = request_access(sandbox, tokens["access_token"], _entry(callback_receiver, email,
                                                                      scope="create_calendar"))
    assert refused.status_code == 422


def test_missing_expired_or_foreign_tokens_get_401(sandbox, callback_receiver):
    entry = _entry(callback_receiver, "alice.anderson@acme.example")
    no_token = http().post(f"{sandbox.url}/v1/service_account_authorizations", json=entry)
    assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_token"
    assert request_access(sandbox, "made-up-token", entry).status_code == 401


def test_service_account_without_the_needed_scope_gets_403(sandbox, callback_receiver):
    users_only = connect_service_account(sandbox, scope="service_account/accounts/manage")
    room = members(sandbox, domain="acme.example", kind="room")[0]
    response = request_access(sandbox, users_only["access_token"], _entry(callback_receiver, room))
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    rooms_only = connect_service_account(sandbox, scope="service_account/resources/manage")
    user = members(sandbox, domain="acme.example", kind="user")[0]
    assert request_access(sandbox, rooms_only["access_token"], _entry(callback_receiver, user)).status_code == 403
    assert request_access(sandbox, rooms_only["access_token"], _entry(callback_receiver, room)).status_code == 202
    elevated_only = connect_service_account(sandbox, scope="service_account/accounts/unrestricted_access")
    assert request_access(sandbox, elevated_only["access_token"], _entry(callback_receiver, user)).status_code == 403


def test_account_token_cannot_request_delegated_access(sandbox, sa_token, callback_receiver):
    from tests.contract.sandbox_support import delegated_account

    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email)
    response = request_access(sandbox, account["access_token"], _entry(callback_receiver, email))
    assert response.status_code == 403


@pytest.mark.parametrize("trait, kind, error_key", [
    ("outside_policy", "user", "outside_access_policy"),
    ("suspended", "user", "mailbox_suspended"),
    ("unlicensed", "user", "license_missing"),
    ("free_busy_only", "user", "unable_to_grant_scope"),
    ("free_busy_only", "room", "unable_to_grant_scope"),
])
def test_failing_mailboxes_get_an_error_callback(sandbox, sa_token, callback_receiver, trait, kind, error_key):
    email = members(sandbox, domain="acme.example", kind=kind, trait=trait)[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, "x1"))
    body = _bodies(callback_receiver, 1)[0]["authorization"]
    assert body["error"] == error_key and body["error_key"] == error_key
    assert email in body["error_description"]
    assert body["state"] == "x1"
    assert "code" not in body


def test_free_busy_only_mailbox_succeeds_when_asked_for_free_busy_only(sandbox, callback_receiver):
    tokens = connect_service_account(sandbox, delegated_scope="free_busy read_events")
    email = members(sandbox, domain="acme.example", kind="user", trait="free_busy_only")[0]
    request_access(sandbox, tokens["access_token"], _entry(callback_receiver, email, scope="free_busy"))
    assert "code" in _bodies(callback_receiver, 1)[0]["authorization"]


def test_unknown_or_foreign_mailboxes_get_not_found(sandbox, sa_token, callback_receiver):
    foreign = members(sandbox, domain="globex.example", kind="user", trait="none")[0]
    entries = [_entry(callback_receiver, "nobody.here@acme.example", "u1"), _entry(callback_receiver, foreign, "u2")]
    request_access(sandbox, sa_token["access_token"], {"service_account_authorizations": entries})
    bodies = sorted((b["authorization"] for b in _bodies(callback_receiver, 2)), key=lambda a: a["state"])
    assert [a["error_key"] for a in bodies] == ["not_found", "not_found"]


def test_state_is_left_out_when_not_sent(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    entry = _entry(callback_receiver, email)
    del entry["state"]
    request_access(sandbox, sa_token["access_token"], entry)
    assert set(_bodies(callback_receiver, 1)[0]["authorization"]) == {"code"}


def test_same_email_always_behaves_the_same(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="suspended")[0]
    for _ in range(2):
        request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email))
    assert [b["authorization"]["error_key"] for b in _bodies(callback_receiver, 2)] == ["mailbox_suspended"] * 2


def test_seeded_demo_domain_has_a_realistic_mix(sandbox):
    everyone = sandbox.directory(domain="acme.example", limit=1000)
    kinds = {m["kind"] for m in everyone}
    assert kinds == {"user", "room", "equipment", "shared"}
    succeed = sum(1 for m in everyone if m["trait"] is None)
    assert 0.75 <= succeed / len(everyone) <= 0.95
    assert {m["trait"] for m in everyone} >= {None, "outside_policy", "suspended", "free_busy_only"}


def test_batch_entries_must_differ_in_email(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    entries = [_entry(callback_receiver, email, "a"), _entry(callback_receiver, email.upper(), "b")]
    response = request_access(sandbox, sa_token["access_token"], {"service_account_authorizations": entries})
    assert response.status_code == 422
    assert response.json()["errors"]["service_account_authorizations[1][email]"][0]["key"] == "errors.taken"


def test_concurrent_requests_for_one_mailbox_all_succeed(sandbox, sa_token, callback_receiver):
    from concurrent.futures import ThreadPoolExecutor

    email = members(sandbox, domain="initech.example", kind="user", trait="none")[-1]
    tokens = connect_service_account(sandbox, domain="initech.example")
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda i: request_access(sandbox, tokens["access_token"], _entry(
            callback_receiver, email, f"c{i}")).status_code, range(24)))
    assert statuses == [202] * 24
    assert all("code" in b["authorization"] for b in _bodies(callback_receiver, 24))


def test_inline_variant_answers_account_tokens_at_once(sandbox, sa_token):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    response = request_access(sandbox, sa_token["access_token"],
                              {"response_type": "inline", "email": email, "scope": "read_events"})
    assert response.status_code == 200
    body = response.json()
    assert body["sub"].startswith("acc_") and body["linking_profile"]["profile_name"] == email
    assert body["expires_in"] == 3600 and body["scope"] == "read_events"
    calendars = http().get(f"{sandbox.url}/v1/free_busy", headers=bearer(body["access_token"]))
    assert calendars.status_code == 200


def test_inline_variant_reports_failures_and_bad_input_as_422(sandbox, sa_token):
    suspended = members(sandbox, domain="acme.example", kind="user", trait="suspended")[0]
    failed = request_access(sandbox, sa_token["access_token"],
                            {"response_type": "inline", "email": suspended, "scope": "read_events"})
    assert failed.status_code == 422
    assert failed.json()["errors"]["email"][0]["key"] == "errors.mailbox_suspended"
    missing = request_access(sandbox, sa_token["access_token"], {"response_type": "inline", "email": suspended})
    assert missing.status_code == 422 and missing.json()["errors"]["scope"][0]["key"] == "errors.required"
