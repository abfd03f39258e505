"""Contract: push notification channels (§3.11) — lifecycle, signed notifications, errors (§4)."""

import time

import pycronofy
import pytest
from pycronofy.exceptions import PyCronofyRequestError

from tests.contract.push_support import (VECTOR_BODY, VECTOR_HMAC, VECTOR_SECRET, admin, api, hmac_valid,
                                         notifications, open_channel, push_url, wait_notifications)
from tests.contract.sandbox_support import (bearer, delegated_account, http, members, token_request,
                                            wait_for_events)


@pytest.fixture
def account(sandbox, callback_receiver, sa_token):
    """A delegated account on acme.example: its token response JSON, with the mailbox as `email`."""
    email = members(sandbox, 6, domain="acme.example", kind="user", trait="none")[5]
    token = delegated_account(sandbox, callback_receiver, sa_token["access_token"], email, name="ch")
    return {**token, "email": email}


def test_hmac_helper_matches_the_documented_test_vector():
    assert hmac_valid(VECTOR_HMAC, VECTOR_BODY, VECTOR_SECRET)
    assert hmac_valid(f"bogus=,{VECTOR_HMAC}", VECTOR_BODY, VECTOR_SECRET)
    assert not hmac_valid(VECTOR_HMAC, VECTOR_BODY + b" ", VECTOR_SECRET)


def test_channel_lifecycle_and_signed_verification(sandbox, callback_receiver, account):
    url = push_url(callback_receiver, "life")
    created = open_channel(sandbox, account["access_token"], url, {"calendar_ids": ["cal_x"], "only_managed": False})
    assert created.status_code == 200, created.text
    channel = created.json()["channel"]
    assert channel["channel_id"].startswith("chn_") and channel["callback_url"] == url
    assert channel["filters"] == {"calendar_ids": ["cal_x"], "only_managed": False}

    body = wait_notifications(callback_receiver, url, "verification")[0]
    assert body == {"notification": {"type": "verification", "changes_since": body["notification"]["changes_since"]},
                    "channel": channel}
    _, received = notifications(callback_receiver, url, "verification")[0]
    assert hmac_valid(received["headers"]["Cronofy-Hmac-Sha256"], received["raw"], sandbox.client_secret)
    assert not hmac_valid(received["headers"]["Cronofy-Hmac-Sha256"], received["raw"], "another-secret")

    listed = api(sandbox, "GET", "/v1/channels", account["access_token"]).json()["channels"]
    assert channel in listed
    assert api(sandbox, "DELETE", f"/v1/channels/{channel['channel_id']}", account["access_token"]).status_code == 202
    assert channel not in api(sandbox, "GET", "/v1/channels", account["access_token"]).json()["channels"]
    again = api(sandbox, "DELETE", f"/v1/channels/{channel['channel_id']}", account["access_token"])
    assert again.status_code == 404 and again.json()["error"] == "not_found"
    events = wait_for_events(sandbox, lambda e: "verification" in e["detail"], kind="notification")
    assert events and events[0]["status"] == 200


def test_unknown_channel_is_404(sandbox, account):
    response = api(sandbox, "DELETE", "/v1/channels/chn_doesnotexist", account["access_token"])
    assert response.status_code == 404


@pytest.mark.parametrize("payload, field, key", [
    ({}, "callback_url", "errors.required"),
    ({"callback_url": "ftp://127.0.0.1/push"}, "callback_url", "errors.invalid"),
    ({"callback_url": "not a url"}, "callback_url", "errors.invalid"),
    ({"callback_url": "http://127.0.0.1/" + "a" * 130}, "callback_url", "errors.too_long"),
    ({"callback_url": "https://elsewhere.example/push"}, "callback_url", "errors.invalid"),
    ({"callback_url": "http://127.0.0.1/p", "filters": {"calendar_ids": "cal_1"}}, "filters[calendar_ids]",
     "errors.invalid"),
    ({"callback_url": "http://127.0.0.1/p", "filters": {"only_managed": "yes"}}, "filters[only_managed]",
     "errors.invalid"),
])
def test_bad_channel_requests_are_422_in_cronofys_shape(sandbox, account, payload, field, key):
    response = http().post(f"{sandbox.url}/v1/channels", json=payload, headers=bearer(account["access_token"]))
    assert response.status_code == 422
    assert response.json()["errors"][field][0]["key"] == key


def test_a_refused_request_opens_no_channel(sandbox, account):
    before = len(api(sandbox, "GET", "/v1/channels", account["access_token"]).json()["channels"])
    assert open_channel(sandbox, account["access_token"], "gopher://x").status_code == 422
    assert len(api(sandbox, "GET", "/v1/channels", account["access_token"]).json()["channels"]) == before


def test_wrong_token_types_are_refused(sandbox, callback_receiver, sa_token, account):
    url = push_url(callback_receiver, "wrong")
    as_sa = open_channel(sandbox, sa_token["access_token"], url)
    assert as_sa.status_code == 403 and as_sa.json()["error"] == "insufficient_scope"
    assert api(sandbox, "GET", "/v1/channels", sa_token["access_token"]).status_code == 403
    assert api(sandbox, "GET", "/v1/profiles", sa_token["access_token"]).status_code == 403
    assert open_channel(sandbox, "not-a-token", url).status_code == 401
    assert open_channel(sandbox, account["refresh_token"], url).status_code == 401
    time.sleep(0.2)
    assert not notifications(callback_receiver, url)


def test_profile_disconnected_reaches_every_open_channel_and_no_closed_one(sandbox, callback_receiver, account):
    token = account["access_token"]
    urls = [push_url(callback_receiver, f"pd{i}") for i in range(3)]
    ids = [open_channel(sandbox, token, url).json()["channel"]["channel_id"] for url in urls]
    assert api(sandbox, "DELETE", f"/v1/channels/{ids[2]}", token).status_code == 202
    for url in urls:
        wait_notifications(callback_receiver, url, "verification")

    answer = admin(sandbox, "disconnect-profile", email=account["email"]).json()
    assert [entry["account_id"] for entry in answer["disconnected"]] == [account["account_id"]]
    for url, channel_id in zip(urls[:2], ids[:2]):
        body = wait_notifications(callback_receiver, url, "profile_disconnected")[0]
        assert body["channel"]["channel_id"] == channel_id
        _, received = notifications(callback_receiver, url, "profile_disconnected")[0]
        assert hmac_valid(received["headers"]["Cronofy-Hmac-Sha256"], received["raw"], sandbox.client_secret)
    time.sleep(0.3)
    assert not notifications(callback_receiver, urls[2], "profile_disconnected")
    assert len(notifications(callback_receiver, urls[0], "profile_disconnected")) == 1
    # A second disconnection of a disconnected profile changes nothing and sends nothing.
    assert admin(sandbox, "disconnect-profile", email=account["email"]).json() == {"disconnected": []}


def test_calendar_change_notifies_the_channels_that_want_it(sandbox, callback_receiver, account):
    token = account["access_token"]
    primary = api(sandbox, "GET", "/v1/calendars", token).json()["calendars"][0]["calendar_id"]
    wanted = {"all": None, "same": {"calendar_ids": [primary]}, "other": {"calendar_ids": ["cal_other"]},
              "managed": {"only_managed": True}}
    urls = {name: push_url(callback_receiver, f"chg{name}") for name in wanted}
    for name, filters in wanted.items():
        assert open_channel(sandbox, token, urls[name], filters).status_code == 200
    before = api(sandbox, "GET", "/v1/free_busy?from=2026-03-02&to=2026-03-07", token).json()["free_busy"]

    changed = admin(sandbox, "change-calendar", account_id=account["account_id"]).json()["changed"]
    assert changed[0]["calendar_id"] == primary
    for name in ("all", "same"):
        assert wait_notifications(callback_receiver, urls[name], "change")
    time.sleep(0.3)
    assert not notifications(callback_receiver, urls["other"], "change")
    assert not notifications(callback_receiver, urls["managed"], "change")
    after = api(sandbox, "GET", "/v1/free_busy?from=2026-03-02&to=2026-03-07", token).json()["free_busy"]
    assert after != before


def test_notifications_off_switch_sends_nothing(sandbox, callback_receiver, account):
    sandbox.set_faults(notifications_off=True)
    url = push_url(callback_receiver, "off")
    assert open_channel(sandbox, account["access_token"], url).status_code == 200
    admin(sandbox, "disconnect-profile", email=account["email"])
    time.sleep(0.4)
    assert not notifications(callback_receiver, url)


def test_revoking_the_account_closes_its_channels(sandbox, callback_receiver, account):
    url = push_url(callback_receiver, "rev")
    channel_id = open_channel(sandbox, account["access_token"], url).json()["channel"]["channel_id"]
    assert admin(sandbox, "revoke-account", account_id=account["account_id"]).json()["revoked"] == [
        account["account_id"]]
    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=account["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json() == {"error": "invalid_grant"}
    listed = sandbox.http.get(f"{sandbox.url}/sandbox/admin/channels.json",
                              params={"account_id": account["account_id"]}).json()["channels"]
    assert [c["closed_at"] is not None for c in listed if c["channel_id"] == channel_id] == [True]


def test_pycronofy_channel_calls_work_against_the_sandbox(sandbox, callback_receiver, account, monkeypatch):
    monkeypatch.setattr(pycronofy.settings, "API_BASE_URL", sandbox.url)
    monkeypatch.setattr(pycronofy.settings, "APP_BASE_URL", sandbox.url)
    client = pycronofy.Client(client_id=sandbox.client_id, client_secret=sandbox.client_secret,
                              access_token=account["access_token"])
    url = push_url(callback_receiver, "sdk")
    channel = client.create_notification_channel(url, calendar_ids=("cal_a",), only_managed=True)
    assert channel["filters"] == {"calendar_ids": ["cal_a"], "only_managed": True}
    assert channel in client.list_notification_channels()
    wait_notifications(callback_receiver, url, "verification")
    _, received = notifications(callback_receiver, url, "verification")[0]
    assert client.hmac_valid(received["headers"]["Cronofy-Hmac-Sha256"], received["raw"].decode())
    client.close_notification_channel(channel["channel_id"])
    assert channel not in client.list_notification_channels()
    assert client.list_profiles()[0]["profile_connected"] is True
    with pytest.raises(PyCronofyRequestError) as caught:
        client.close_notification_channel(channel["channel_id"])
    assert caught.value.response.status_code == 404
