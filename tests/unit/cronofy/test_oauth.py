"""Authorization URL, code exchange, refresh and revoke against the loopback stub."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from services.cronofy import InvalidGrantError, UnavailableError

from .conftest import CLIENT_ID, CLIENT_SECRET

SA_TOKENS = {
    "token_type": "bearer",
    "access_token": "sa_at_ACCESS_aaaa",
    "expires_in": 1800,
    "refresh_token": "sa_rt_REFRESH_bbbb",
    "scope": "service_account/accounts/manage service_account/resources/manage",
    "service_account_id": "ser_65f0c1a2",
}
ACCOUNT_TOKENS = {
    "token_type": "bearer",
    "access_token": "acc_at_ACCESS_cccc",
    "expires_in": 3600,
    "refresh_token": "acc_rt_REFRESH_dddd",
    "scope": "read_write",
    "account_id": "acc_65f0c9e1",
    "sub": "acc_65f0c9e1",
    "linking_profile": {
        "provider_name": "google",
        "provider_service": "gsuite",
        "profile_id": "pro_Zp3kQw9",
        "profile_name": "alice@customer.example",
    },
}


def test_authorization_url_points_at_the_enterprise_connect_page(cronofy, stub):
    url = cronofy.authorization_url(
        redirect_uri="https://console.example/onboarding/callback",
        scope=["service_account/accounts/manage", "service_account/resources/manage"],
        delegated_scope="read_account read_events",
        state="org-42.abc",
    )
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{stub.url}/enterprise_connect/oauth/authorize"
    assert query == {
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": ["https://console.example/onboarding/callback"],
        "scope": ["service_account/accounts/manage service_account/resources/manage"],
        "delegated_scope": ["read_account read_events"],
        "state": ["org-42.abc"],
    }
    assert "%20" in parts.query and "+" not in parts.query
    assert CLIENT_SECRET not in url


def test_authorization_url_passes_provider_name_only_when_given(cronofy):
    common = dict(redirect_uri="https://x.example/cb", scope="s", delegated_scope="d", state="st")
    assert "provider_name" not in cronofy.authorization_url(**common)
    assert "provider_name=google" in cronofy.authorization_url(**common, provider_name="google")


def test_exchange_code_posts_client_secret_post_and_parses_the_service_account(cronofy, stub):
    stub.reply(200, SA_TOKENS)
    before = datetime.now(timezone.utc)
    tokens = cronofy.exchange_code("CODE_single_use_32chars_xxxxxxxx", "https://console.example/cb")
    sent = stub.seen[0]
    assert (sent.method, sent.path) == ("POST", "/oauth/token")
    assert sent.form() == {
        "grant_type": "authorization_code",
        "code": "CODE_single_use_32chars_xxxxxxxx",
        "redirect_uri": "https://console.example/cb",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "Authorization" not in sent.headers
    assert tokens.access_token == "sa_at_ACCESS_aaaa"
    assert tokens.refresh_token == "sa_rt_REFRESH_bbbb"
    assert tokens.service_account_id == "ser_65f0c1a2"
    assert tokens.linking_profile is None
    assert tokens.expires_at.tzinfo is timezone.utc
    assert before + timedelta(seconds=1799) <= tokens.expires_at <= datetime.now(timezone.utc) + timedelta(seconds=1800)


def test_exchange_code_parses_a_delegated_account_with_its_linking_profile(cronofy, stub):
    stub.reply(200, ACCOUNT_TOKENS)
    callback = "https://console.example/callbacks/delegated?org=42&mbx=7731"
    tokens = cronofy.exchange_code("CODE_delegated", callback)
    assert stub.seen[0].form()["redirect_uri"] == callback
    assert (tokens.sub, tokens.account_id, tokens.scope) == ("acc_65f0c9e1", "acc_65f0c9e1", "read_write")
    profile = tokens.linking_profile
    assert (profile.provider_name, profile.provider_service) == ("google", "gsuite")
    assert (profile.profile_id, profile.profile_name) == ("pro_Zp3kQw9", "alice@customer.example")


def test_exchange_of_a_used_code_is_an_invalid_grant(cronofy, stub):
    stub.reply(400, {"error": "invalid_grant", "error_description": "code unknown or used"})
    with pytest.raises(InvalidGrantError) as caught:
        cronofy.exchange_code("CODE_used", "https://console.example/cb")
    assert (caught.value.status, caught.value.error_key) == (400, "invalid_grant")
    assert caught.value.description == "code unknown or used"


def test_exchange_is_not_retried_after_a_5xx_because_the_code_may_be_spent(cronofy, stub, sleeps):
    stub.reply(502, "Bad gateway")
    stub.reply(200, SA_TOKENS)
    with pytest.raises(UnavailableError) as caught:
        cronofy.exchange_code("CODE_maybe_spent", "https://console.example/cb")
    assert caught.value.status == 502
    assert len(stub.seen) == 1 and sleeps.delays == []


def test_exchange_is_retried_after_429_which_the_upstream_refused_unprocessed(cronofy, stub, sleeps):
    stub.reply(429, headers={"Retry-After": "2"})
    stub.reply(200, SA_TOKENS)
    tokens = cronofy.exchange_code("CODE_x", "https://console.example/cb")
    assert tokens.access_token == "sa_at_ACCESS_aaaa"
    assert len(stub.seen) == 2 and sleeps.delays == [2.0]


def test_exchange_returning_a_non_json_200_is_unavailable(cronofy, stub):
    stub.reply(200, "<html>maintenance</html>")
    with pytest.raises(UnavailableError) as caught:
        cronofy.exchange_code("CODE_x", "https://console.example/cb")
    assert caught.value.error_key == "malformed_response"


def test_exchange_returning_json_without_access_token_is_unavailable(cronofy, stub):
    stub.reply(200, {"token_type": "bearer"})
    with pytest.raises(UnavailableError, match="no access token"):
        cronofy.exchange_code("CODE_x", "https://console.example/cb")


def test_a_200_carrying_an_oauth_error_is_still_an_invalid_grant(cronofy, stub):
    stub.reply(200, {"error": "invalid_grant", "error_description": "CODE_x was used"})
    with pytest.raises(InvalidGrantError) as caught:
        cronofy.exchange_code("CODE_x", "https://console.example/cb")
    assert caught.value.description == "[redacted] was used"


def test_refresh_returns_the_rotated_refresh_token(cronofy, stub):
    stub.reply(200, {**SA_TOKENS, "refresh_token": "sa_rt_ROTATED_eeee"})
    tokens = cronofy.refresh_access_token("sa_rt_REFRESH_bbbb")
    assert stub.seen[0].form() == {
        "grant_type": "refresh_token",
        "refresh_token": "sa_rt_REFRESH_bbbb",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert tokens.refresh_token == "sa_rt_ROTATED_eeee"


def test_refresh_without_a_new_refresh_token_keeps_the_old_one(cronofy, stub):
    body = {k: v for k, v in SA_TOKENS.items() if k != "refresh_token"}
    stub.reply(200, body)
    assert cronofy.refresh_access_token("sa_rt_KEEP_ffff").refresh_token == "sa_rt_KEEP_ffff"


def test_refresh_of_a_revoked_authorization_is_an_invalid_grant(cronofy, stub):
    stub.reply(400, {"error": "invalid_grant"})
    with pytest.raises(InvalidGrantError):
        cronofy.refresh_access_token("sa_rt_REVOKED")


def test_revoke_by_token_sends_credentials_and_only_the_token(cronofy, stub):
    stub.reply(200)
    cronofy.revoke(token="acc_rt_REFRESH_dddd", sub="acc_ignored")
    sent = stub.seen[0]
    assert (sent.method, sent.path) == ("POST", "/oauth/token/revoke")
    assert sent.json() == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": "acc_rt_REFRESH_dddd"}


def test_revoke_by_sub(cronofy, stub):
    stub.reply(200)
    cronofy.revoke(sub="acc_65f0c9e1")
    assert stub.seen[0].json()["sub"] == "acc_65f0c9e1"
    assert "token" not in stub.seen[0].json()


def test_revoke_without_token_or_sub_is_refused_locally(cronofy, stub):
    with pytest.raises(ValueError):
        cronofy.revoke()
    assert stub.seen == []


def test_revoke_is_retried_after_a_5xx(cronofy, stub, sleeps):
    stub.reply(503)
    stub.reply(200)
    cronofy.revoke(token="acc_rt_x")
    assert len(stub.seen) == 2 and sleeps.delays == [0.5]
