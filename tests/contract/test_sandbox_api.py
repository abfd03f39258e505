"""Contract: /v1/resources, /v1/userinfo, /v1/calendars, /v1/free_busy, /v1/profiles/{id}/revoke, JSON errors."""

import pytest

from tests.contract.sandbox_support import (bearer, connect_service_account, delegated_account, http, members)


def _get(sandbox, path, token, **params):
    return http().get(f"{sandbox.url}{path}", headers=bearer(token), params=params)


def test_resources_lists_rooms_equipment_and_shared_mailboxes(sandbox, sa_token):
    response = _get(sandbox, "/v1/resources", sa_token["access_token"])
    assert response.status_code == 200
    resources = response.json()["resources"]
    directory = {m["email"]: m["kind"] for m in sandbox.directory(domain="acme.example", limit=1000)}
    assert {directory[r["email"]] for r in resources} == {"room", "equipment", "shared"}
    assert all(set(r) == {"email", "name"} for r in resources)


def test_resources_include_capacity_and_location_on_request(sandbox, sa_token):
    resources = _get(sandbox, "/v1/resources", sa_token["access_token"],
                     include_details="capacity location").json()["resources"]
    room = next(r for r in resources if r["email"].startswith("room."))
    assert room["capacity"] in (4, 6, 8, 10, 12, 20)
    location = room["location"]
    assert location["building_name"] == "Berlin HQ" and location["floor_name"]
    assert location["address"]["locality"] == "Berlin" and location["address"]["country"] == "DE"
    assert set(location["coordinates"]) == {"lat", "long"}
    only_capacity = _get(sandbox, "/v1/resources", sa_token["access_token"],
                         include_details="capacity").json()["resources"]
    assert all("location" not in r for r in only_capacity)


def test_resources_need_the_resources_scope(sandbox):
    users_only = connect_service_account(sandbox, scope="service_account/accounts/manage")
    response = _get(sandbox, "/v1/resources", users_only["access_token"])
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"


def test_resources_without_a_token_is_401(sandbox):
    response = http().get(f"{sandbox.url}/v1/resources")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_userinfo_for_a_service_account(sandbox):
    tokens = connect_service_account(sandbox, domain="initech.example", delegated_scope="read_write")
    info = _get(sandbox, "/v1/userinfo", tokens["access_token"]).json()
    assert info == {
        "sub": tokens["service_account_id"], "cronofy.type": "service_account",
        "email": "cronofy-service@initech.example",
        "cronofy.data": {"service_account": {"provider_name": "exchange", "domain": "initech.example"},
                         "authorization": {"scope": tokens["scope"], "delegated_scope": "read_write",
                                           "status": "active"}}}


def test_userinfo_calendars_and_free_busy_for_a_delegated_account(sandbox, callback_receiver):
    tokens = connect_service_account(sandbox, domain="globex.example")
    email = members(sandbox, domain="globex.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, tokens["access_token"], email)
    info = _get(sandbox, "/v1/userinfo", account["access_token"]).json()
    assert info["sub"] == account["sub"] and info["cronofy.type"] == "account" and info["email"] == email
    profile = info["cronofy.data"]["profiles"][0]
    assert profile["provider_name"] == "office365" and profile["provider_protocol"] == "graph_api"
    assert profile["profile_connected"] is True and profile["profile_initial_sync_required"] is False
    calendars = _get(sandbox, "/v1/calendars", account["access_token"]).json()["calendars"]
    primary = next(c for c in calendars if c["calendar_primary"])
    assert primary["profile_id"] == account["linking_profile"]["profile_id"]
    assert [c["calendar_id"] for c in profile["profile_calendars"]] == [c["calendar_id"] for c in calendars]
    busy = _get(sandbox, "/v1/free_busy", account["access_token"], **{"from": "2026-03-02", "to": "2026-03-07"})
    body = busy.json()
    assert body["pages"] == {"current": 1, "total": 1}
    assert body["free_busy"] and all(b["calendar_id"] == primary["calendar_id"] for b in body["free_busy"])
    again = _get(sandbox, "/v1/free_busy", account["access_token"], **{"from": "2026-03-02", "to": "2026-03-07"})
    assert again.json() == body


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"from": "2026-03-10", "to": "2026-03-01"},
                                    {"from": "2026-01-01", "to": "2026-06-01"}])
def test_free_busy_rejects_bad_ranges_with_422(sandbox, callback_receiver, sa_token, params):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email)
    response = _get(sandbox, "/v1/free_busy", account["access_token"], **params)
    assert response.status_code == 422 and response.json()["errors"]


def test_account_scope_limits_the_calls(sandbox, callback_receiver, sa_token):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email, scope="read_free_busy")
    assert _get(sandbox, "/v1/free_busy", account["access_token"]).status_code == 200
    assert _get(sandbox, "/v1/calendars", account["access_token"]).status_code == 403


def test_service_account_token_cannot_read_calendars(sandbox, sa_token):
    for path in ("/v1/calendars", "/v1/free_busy"):
        assert _get(sandbox, path, sa_token["access_token"]).status_code == 403


def test_profile_revoke_drops_the_profile_but_keeps_the_authorization(sandbox, callback_receiver, sa_token):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email)
    profile_id = account["linking_profile"]["profile_id"]
    wrong = http().post(f"{sandbox.url}/v1/profiles/pro_unknown/revoke", headers=bearer(account["access_token"]))
    assert wrong.status_code == 404 and wrong.json()["error"] == "not_found"
    response = http().post(f"{sandbox.url}/v1/profiles/{profile_id}/revoke", headers=bearer(account["access_token"]))
    assert (response.status_code, response.content) == (202, b"")
    assert _get(sandbox, "/v1/calendars", account["access_token"]).json() == {"calendars": []}
    info = _get(sandbox, "/v1/userinfo", account["access_token"])
    assert info.status_code == 200 and info.json()["cronofy.data"]["profiles"] == []


def test_account_refresh_and_revoke(sandbox, callback_receiver, sa_token):
    from tests.contract.sandbox_support import token_request

    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email)
    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=account["refresh_token"]).json()
    assert refreshed["expires_in"] == 3600 and refreshed["refresh_token"] != account["refresh_token"]
    http().post(f"{sandbox.url}/oauth/token/revoke", json={"client_id": sandbox.client_id,
                                                           "client_secret": sandbox.client_secret,
                                                           "sub": account["sub"]})
    for token in (account["access_token"], refreshed["access_token"]):
        assert _get(sandbox, "/v1/calendars", token).status_code == 401


def test_unknown_api_paths_get_json_404_and_wrong_methods_json_405(sandbox):
    missing = http().get(f"{sandbox.url}/v1/no_such_thing")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = http().get(f"{sandbox.url}/oauth/token")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]
    wrong_v1 = http().delete(f"{sandbox.url}/v1/service_account_authorizations")
    assert wrong_v1.status_code == 405 and wrong_v1.headers["Content-Type"].startswith("application/json")


GARBAGE = [b"", b"null", b"true", b"[]", b"\"text\"", b"{\"email\": null}", b"\x00\x01\x02", b"{" * 500,
           b"{\"service_account_authorizations\": [null, 1, \"x\", []]}", "ü".encode("latin-1")]


@pytest.mark.parametrize("raw", GARBAGE)
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/token/revoke", "/v1/service_account_authorizations"])
def test_garbage_never_gets_a_500_or_a_stack_trace(sandbox, sa_token, raw, path):
    response = http().post(f"{sandbox.url}{path}", data=raw, headers={
        **bearer(sa_token["access_token"]), "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text
    assert response.headers["Content-Type"].startswith("application/json")
