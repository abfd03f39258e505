"""Contract: POST /oauth/token (§3.2, §3.3.2, §3.6) and POST /oauth/token/revoke (§3.7.1)."""

import time

import pytest

from tests.contract.sandbox_support import (SA_SCOPE, approve, bearer, connect_service_account, http,
                                            token_request)

REDIRECT = "http://127.0.0.1:5000/onboarding/callback"


def _code(sandbox, redirect_uri=REDIRECT):
    return approve(sandbox, redirect_uri)[0]["code"]


def _userinfo(sandbox, token):
    return http().get(f"{sandbox.url}/v1/userinfo", headers=bearer(token))


def test_service_account_exchange_answers_the_documented_fields(sandbox):
    response = token_request(sandbox, grant_type="authorization_code", code=_code(sandbox), redirect_uri=REDIRECT)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"token_type", "access_token", "expires_in", "refresh_token", "scope", "service_account_id"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    assert body["scope"] == SA_SCOPE
    assert body["service_account_id"].startswith("ser_")
    assert _userinfo(sandbox, body["access_token"]).json()["sub"] == body["service_account_id"]


def test_form_encoded_token_requests_work_too(sandbox):
    response = token_request(sandbox, as_form=True, grant_type="authorization_code", code=_code(sandbox),
                             redirect_uri=REDIRECT)
    assert response.status_code == 200
    assert response.json()["service_account_id"].startswith("ser_")


def test_code_is_single_use(sandbox):
    code = _code(sandbox)
    first = token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    second = token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert first.status_code == 200
    assert (second.status_code, second.json()) == (400, {"error": "invalid_grant"})


def test_code_expires_after_the_configured_lifetime(sandbox):
    sandbox.set_limits(code_ttl=0.3)
    code = _code(sandbox)
    time.sleep(0.5)
    response = token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_default_code_lifetime_is_ten_minutes(sandbox):
    assert sandbox.set_limits()["code_ttl"] == 600


@pytest.mark.parametrize("redirect_uri", [REDIRECT + "/", "https://127.0.0.1:5000/onboarding/callback",
                                          REDIRECT + "?x=1"])
def test_redirect_uri_must_match_byte_for_byte(sandbox, redirect_uri):
    code = _code(sandbox)
    response = token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=redirect_uri)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})
    # A mismatch does not burn the code.
    assert token_request(sandbox, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).ok


def test_unknown_code_is_invalid_grant(sandbox):
    response = token_request(sandbox, grant_type="authorization_code", code="x" * 32, redirect_uri=REDIRECT)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


@pytest.mark.parametrize("credentials", [
    {"client_secret": "wrong"}, {"client_id": "nobody"},
])
def test_wrong_client_credentials_are_invalid_client(sandbox, credentials):
    response = token_request(sandbox, grant_type="authorization_code", code=_code(sandbox), redirect_uri=REDIRECT,
                             **credentials)
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


def test_missing_client_credentials_are_invalid_client(sandbox):
    response = http().post(f"{sandbox.url}/oauth/token", json={"grant_type": "refresh_token", "refresh_token": "x"})
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


def test_unsupported_and_missing_grant_types(sandbox):
    unsupported = token_request(sandbox, grant_type="password")
    assert (unsupported.status_code, unsupported.json()) == (400, {"error": "unsupported_grant_type"})
    missing = token_request(sandbox)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    no_code = token_request(sandbox, grant_type="authorization_code", redirect_uri=REDIRECT)
    assert no_code.status_code == 400 and no_code.json()["error"] == "invalid_request"


@pytest.mark.parametrize("raw, content_type", [
    (b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"\xff\xfe", "application/json"),
    (b'{"client_id": ["a"], "client_secret": 3}', "application/json"),
])
def test_malformed_token_bodies_get_an_oauth_error_not_a_500(sandbox, raw, content_type):
    response = http().post(f"{sandbox.url}/oauth/token", data=raw, headers={"Content-Type": content_type})
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_request", "invalid_client")


def test_refresh_rotates_the_refresh_token_and_the_old_one_dies(sandbox):
    tokens = connect_service_account(sandbox)
    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert set(body) == {"token_type", "access_token", "expires_in", "refresh_token", "scope"}
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["expires_in"] == 1800 and body["scope"] == SA_SCOPE
    assert _userinfo(sandbox, body["access_token"]).status_code == 200
    again = token_request(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    chained = token_request(sandbox, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert chained.status_code == 200


def test_refresh_token_of_another_client_is_invalid_grant(sandbox):
    tokens = connect_service_account(sandbox)
    other = http().post(f"{sandbox.url}/sandbox/admin/clients", json={"allow_loopback": True}).json()
    response = token_request(sandbox, client_id=other["client_id"], client_secret=other["client_secret"],
                             grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_access_token_expires_after_expires_in(sandbox):
    sandbox.set_limits(sa_token_ttl=1)
    tokens = connect_service_account(sandbox)
    assert tokens["expires_in"] == 1
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 200
    time.sleep(1.2)
    expired = _userinfo(sandbox, tokens["access_token"])
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_token"


def test_revoke_by_refresh_token_kills_the_access_tokens_of_that_authorization(sandbox):
    tokens = connect_service_account(sandbox)
    other = connect_service_account(sandbox)
    response = http().post(f"{sandbox.url}/oauth/token/revoke", json={
        "client_id": sandbox.client_id, "client_secret": sandbox.client_secret, "token": tokens["refresh_token"]})
    assert (response.status_code, response.content) == (200, b"")
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 401
    refresh = token_request(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.json() == {"error": "invalid_grant"}
    assert _userinfo(sandbox, other["access_token"]).status_code == 200


def test_revoke_by_access_token_and_by_sub(sandbox):
    by_token = connect_service_account(sandbox)
    by_sub = connect_service_account(sandbox)
    creds = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret}
    http().post(f"{sandbox.url}/oauth/token/revoke", data={**creds, "token": by_token["access_token"]})
    http().post(f"{sandbox.url}/oauth/token/revoke", json={**creds, "sub": by_sub["service_account_id"]})
    assert _userinfo(sandbox, by_token["access_token"]).status_code == 401
    assert _userinfo(sandbox, by_sub["access_token"]).status_code == 401


def test_revoke_of_unknown_token_still_answers_200(sandbox):
    response = http().post(f"{sandbox.url}/oauth/token/revoke", json={
        "client_id": sandbox.client_id, "client_secret": sandbox.client_secret, "token": "never-issued"})
    assert (response.status_code, response.content) == (200, b"")


def test_revoke_errors(sandbox):
    creds = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret}
    missing = http().post(f"{sandbox.url}/oauth/token/revoke", json=creds)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    wrong = http().post(f"{sandbox.url}/oauth/token/revoke", json={**creds, "client_secret": "no", "token": "t"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
