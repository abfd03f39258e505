"""Contract: GET /enterprise_connect/oauth/authorize and the consent page (§3.1)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.contract.sandbox_support import authorize_params, approve, bearer, connect_service_account, http

REDIRECT = "http://127.0.0.1:5000/onboarding/callback?org=7"


def _get(sandbox, **overrides):
    params = {**authorize_params(sandbox, REDIRECT), **overrides}
    params = {k: v for k, v in params.items() if v is not None}
    return http().get(f"{sandbox.url}/enterprise_connect/oauth/authorize", params=params, allow_redirects=False)


def _redirect_query(response):
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:5000/onboarding/callback?org=7&")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_consent_page_shows_domain_scopes_in_words_and_buttons(sandbox):
    page = _get(sandbox, delegated_scope="read_only free_busy")
    assert page.status_code == 200
    text = page.text
    for domain in ("acme.example", "globex.example", "initech.example"):
        assert domain in text
    for provider in ("Google Workspace", "Microsoft 365 (Graph API)", "Microsoft Exchange (EWS)"):
        assert provider in text
    assert "list rooms and equipment" in text and "read calendars and events" in text
    assert "see free/busy information only" in text
    assert 'value="approve"' in text and 'value="deny"' in text
    assert "<script" not in text


def test_approve_redirects_with_a_32_character_code_and_the_state(sandbox):
    query, location = approve(sandbox, REDIRECT)
    assert len(query["code"]) == 32 and query["code"].isascii() and query["code"].isalnum()
    assert query["state"] == "tenant-42.abc"
    assert query["org"] == "7"


def test_deny_redirects_with_access_denied_and_the_state(sandbox):
    query, _ = approve(sandbox, REDIRECT, decision="deny")
    assert query["error"] == "access_denied"
    assert query["state"] == "tenant-42.abc"
    assert "code" not in query


@pytest.mark.parametrize("overrides, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": None}, "unsupported_response_type"),
    ({"scope": None}, "invalid_scope"),
    ({"scope": "read_write"}, "invalid_scope"),
    ({"scope": "service_account/accounts/manage made_up"}, "invalid_scope"),
    ({"delegated_scope": None}, "invalid_request"),
    ({"delegated_scope": "read_write fly_to_the_moon"}, "invalid_scope"),
])
def test_bad_parameters_redirect_with_the_error_and_state(sandbox, overrides, error):
    query = _redirect_query(_get(sandbox, **overrides))
    assert query["error"] == error
    assert query["state"] == "tenant-42.abc"
    assert query["error_description"]


def test_error_description_on_redirect_can_be_switched_off(tmp_path):
    from tests.plugins.sandbox_server import start_sandbox

    other = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", ERROR_DESCRIPTION_ON_REDIRECT=False,
                          DELIVERY_THREAD=False)
    try:
        query = _redirect_query(_get(other, response_type="token"))
    finally:
        other.stop()
    assert query == {"org": "7", "error": "unsupported_response_type", "state": "tenant-42.abc"}


@pytest.mark.parametrize("overrides", [
    {"client_id": "no-such-client"},
    {"client_id": None},
    {"redirect_uri": None},
    {"redirect_uri": "https://evil.example/steal"},
    {"redirect_uri": "javascript:alert(1)"},
])
def test_unknown_client_or_redirect_shows_an_error_page_instead_of_redirecting(sandbox, overrides):
    response = _get(sandbox, **overrides)
    assert response.status_code == 400
    assert "cannot be completed" in response.text
    assert "Location" not in response.headers


def test_tampered_consent_form_is_validated_again(sandbox):
    form = {**authorize_params(sandbox, "https://evil.example/cb"), "domain": "acme.example", "decision": "approve"}
    response = http().post(f"{sandbox.url}/enterprise_connect/oauth/authorize", data=form, allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_unknown_domain_in_the_form_is_refused(sandbox):
    form = {**authorize_params(sandbox, REDIRECT), "domain": "nowhere.example", "decision": "approve"}
    response = http().post(f"{sandbox.url}/enterprise_connect/oauth/authorize", data=form, allow_redirects=False)
    assert response.status_code == 400


@pytest.mark.parametrize("domain, provider, expected", [
    ("acme.example", "", "google"),
    ("globex.example", "", "office365"),
    ("initech.example", "", "exchange"),
    ("acme.example", "exchange", "exchange"),
])
def test_admin_chooses_domain_and_provider(sandbox, domain, provider, expected):
    tokens = connect_service_account(sandbox, domain=domain, provider=provider)
    info = http().get(f"{sandbox.url}/v1/userinfo", headers=bearer(tokens["access_token"])).json()
    assert info["cronofy.data"]["service_account"] == {"provider_name": expected, "domain": domain}


def test_provider_name_preselects_the_provider(sandbox):
    page = _get(sandbox, provider_name="office365")
    assert '<option value="office365" selected>' in page.text


def test_loopback_hosts_are_accepted_for_the_demo_client(sandbox):
    for uri in ("http://localhost:8000/cb", "http://[::1]:8000/cb", "http://127.9.9.9/cb"):
        query, _ = approve(sandbox, uri)
        assert "code" in query


def test_registered_client_uses_its_exact_and_wildcard_redirect_uris(sandbox):
    created = http().post(f"{sandbox.url}/sandbox/admin/clients", json={
        "name": "Vendor", "redirect_uris": ["https://app.vendor.example/ec/callback",
                                            "https://*.tenants.example/ec/callback"]}).json()
    base = {"client_id": created["client_id"]}
    ok = http().get(f"{sandbox.url}/enterprise_connect/oauth/authorize", allow_redirects=False,
                    params=authorize_params(sandbox, "https://acme.tenants.example/ec/callback", **base))
    assert ok.status_code == 200
    for uri in ("https://app.vendor.example/ec/callback/", "http://127.0.0.1/cb",
                "https://tenants.example.evil.example/ec/callback"):
        refused = http().get(f"{sandbox.url}/enterprise_connect/oauth/authorize", allow_redirects=False,
                             params=authorize_params(sandbox, uri, **base))
        assert refused.status_code == 400, uri
