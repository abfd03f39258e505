"""Contract: Cronofy's official Python SDK (pycronofy), unchanged, works against the sandbox."""

import datetime
import json

import pycronofy
import pytest
from pycronofy.exceptions import PyCronofyRequestError

from tests.contract.sandbox_support import approve, members

REDIRECT = "http://127.0.0.1:5000/onboarding/callback"


@pytest.fixture
def sdk_pointed_at_sandbox(sandbox, monkeypatch):
    """Point pycronofy's US data-center URLs (settings.API_BASE_URL / APP_BASE_URL) at the sandbox."""
    monkeypatch.setattr(pycronofy.settings, "API_BASE_URL", sandbox.url)
    monkeypatch.setattr(pycronofy.settings, "APP_BASE_URL", sandbox.url)
    return sandbox


def _client(sandbox, **tokens):
    return pycronofy.Client(client_id=sandbox.client_id, client_secret=sandbox.client_secret, **tokens)


def _exchange(sandbox, code, redirect_uri):
    client = _client(sandbox)
    client.get_authorization_from_code(code, redirect_uri=redirect_uri)
    return client


def test_sdk_runs_the_whole_enterprise_connect_flow(sdk_pointed_at_sandbox, callback_receiver):
    sandbox = sdk_pointed_at_sandbox
    service_account = _exchange(sandbox, approve(sandbox, REDIRECT)[0]["code"], REDIRECT)

    info = service_account.userinfo()
    assert info["cronofy.type"] == "service_account" and info["sub"].startswith("ser_")
    resources = service_account.resources()
    assert any(r["email"].startswith("room.") for r in resources)

    emails = members(sandbox, 3, domain="acme.example", kind="user", trait="none")
    service_account.authorize_with_service_account(emails[0], "read_events", callback_receiver.callback_url("s0"),
                                                   state="s0")
    service_account.authorize_multiple_accounts_via_service_account([
        {"email": emails[1], "scope": "read_events list_calendars", "callback_url": callback_receiver.callback_url("s1"),
         "state": "s1"},
        {"email": emails[2], "scope": "read_events", "callback_url": callback_receiver.callback_url("s2"),
         "state": "s2"},
    ])
    bodies = {json.loads(r["raw"])["authorization"]["state"]: json.loads(r["raw"])["authorization"]
              for r in callback_receiver.wait_for(3)}
    assert sorted(bodies) == ["s0", "s1", "s2"]
    for received in callback_receiver.received:
        assert service_account.hmac_valid(received["headers"]["Cronofy-Hmac-Sha256"], received["raw"].decode())

    account = _exchange(sandbox, bodies["s1"]["code"], callback_receiver.callback_url("s1"))
    calendars = account.list_calendars()
    assert calendars and calendars[0]["profile_name"] == emails[1]
    busy = account.read_free_busy(from_date=datetime.date(2026, 3, 2), to_date=datetime.date(2026, 3, 6)).all()
    assert busy

    old_refresh = account.auth.refresh_token
    account.refresh_authorization()
    assert account.auth.refresh_token != old_refresh
    assert account.list_calendars() == calendars

    service_account.refresh_authorization()
    assert service_account.userinfo()["sub"] == info["sub"]

    access_token = account.auth.access_token
    account.revoke_authorization()
    with pytest.raises(PyCronofyRequestError) as caught:
        _client(sandbox, access_token=access_token).list_calendars()
    assert caught.value.response.status_code == 401


def test_sdk_sees_api_errors_as_request_errors(sdk_pointed_at_sandbox):
    sandbox = sdk_pointed_at_sandbox
    service_account = _exchange(sandbox, approve(sandbox, REDIRECT)[0]["code"], REDIRECT)
    with pytest.raises(PyCronofyRequestError) as caught:
        service_account.authorize_multiple_accounts_via_service_account([])
    assert caught.value.response.status_code == 422
    with pytest.raises(PyCronofyRequestError) as caught:
        _client(sandbox).get_authorization_from_code("x" * 32, redirect_uri=REDIRECT)
    assert caught.value.response.json() == {"error": "invalid_grant"}
