"""The client takes proxy and CA-bundle settings from the environment once, for every kind of call."""

from __future__ import annotations

import pytest

from services.cronofy import CronofyClient, upstream_for
from services.cronofy.client import environment_session

API = "https://api-de.cronofy.com"


@pytest.fixture(autouse=True)
def clean_proxy_environment(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_an_https_proxy_and_a_ca_bundle_in_the_environment_are_used(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    session = environment_session(API)
    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/corporate.pem"
    # Read once: requests does not look at the environment (or ~/.netrc) again per request.
    assert session.trust_env is False


def test_no_proxy_keeps_the_upstream_direct(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".cronofy.com")
    assert environment_session(API).proxies == {}


def test_token_grants_go_the_same_way_as_api_calls(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client = CronofyClient(upstream_for("de", client_id="cli", client_secret="sec"))
    oauth = client._oauth_session()
    assert (oauth.proxies, oauth.trust_env) == (client._session.proxies, False)
