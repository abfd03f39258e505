"""Contract: profiles and their disconnection (§3.8), revocation (§3.6, §3.7) and the admin actions that break
a tenant — on a sandbox of their own, since they break whole domains."""

import time

import pytest

from tests.contract.push_support import admin, api, open_channel, push_url, wait_notifications
from tests.contract.sandbox_support import (connect_service_account, delegated_account, members, request_access,
                                            token_request)
from tests.plugins.sandbox_server import start_sandbox


@pytest.fixture(scope="module")
def private_sandbox(tmp_path_factory):
    """A sandbox no other test module shares: consent withdrawn here must not reach their service accounts."""
    running = start_sandbox(f"sqlite:///{tmp_path_factory.mktemp('profiles') / 'sandbox.sqlite'}")
    yield running
    running.stop()


def _accounts(sandbox, receiver, domain, count, offset=0):
    sa = connect_service_account(sandbox, domain=domain)
    emails = members(sandbox, offset + count, domain=domain, kind="user", trait="none")[offset:]
    return sa, [{**delegated_account(sandbox, receiver, sa["access_token"], email, name=f"p{offset + i}"),
                 "email": email} for i, email in enumerate(emails)]


def _profile(sandbox, token):
    return api(sandbox, "GET", "/v1/profiles", token).json()["profiles"][0]


def test_profiles_and_userinfo_show_a_disconnected_profile(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    _, (account,) = _accounts(sandbox, callback_receiver, "acme.example", 1)
    token = account["access_token"]
    healthy = _profile(sandbox, token)
    assert healthy["profile_connected"] is True and "profile_relink_url" not in healthy
    assert healthy["provider_name"] == "google" and healthy["profile_name"] == account["email"]
    assert healthy["profile_initial_sync_required"] is False and healthy["profile_id"].startswith("pro_")

    admin(sandbox, "disconnect-profile", email=account["email"], reason="mailbox_suspended")
    broken = _profile(sandbox, token)
    assert broken["profile_connected"] is False and broken["profile_relink_url"].startswith(sandbox.url)
    info = api(sandbox, "GET", "/v1/userinfo", token).json()["cronofy.data"]["profiles"][0]
    assert info["profile_connected"] is False and info["profile_relink_url"] == broken["profile_relink_url"]
    assert api(sandbox, "GET", "/v1/calendars", token).status_code == 423
    assert sandbox.http.get(broken["profile_relink_url"]).status_code == 200
    # The authorization itself stays: the token refreshes, and the channels endpoints answer.
    assert token_request(sandbox, grant_type="refresh_token", refresh_token=account["refresh_token"]).status_code == 200
    assert api(sandbox, "GET", "/v1/channels", token).status_code == 200
    states = sandbox.http.get(f"{sandbox.url}/sandbox/admin/profiles.json",
                              params={"email": account["email"]}).json()["profiles"]
    assert [(s["profile_connected"], s["reason"]) for s in states] == [(False, "mailbox_suspended")]


def test_requesting_access_again_reconnects_the_profile(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    sa, (account,) = _accounts(sandbox, callback_receiver, "acme.example", 1, offset=1)
    admin(sandbox, "disconnect-profile", account_id=account["account_id"])
    assert _profile(sandbox, account["access_token"])["profile_connected"] is False
    again = delegated_account(sandbox, callback_receiver, sa["access_token"], account["email"], name="again")
    assert again["account_id"] == account["account_id"]
    assert _profile(sandbox, again["access_token"])["profile_connected"] is True


def test_a_scheduled_disconnection_holds_from_its_moment(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    _, (account,) = _accounts(sandbox, callback_receiver, "acme.example", 1, offset=2)
    url = push_url(callback_receiver, "sched")
    open_channel(sandbox, account["access_token"], url)
    at = admin(sandbox, "disconnect-profile", email=account["email"], delay=0.6).json()["disconnected"][0]["at"]
    assert _profile(sandbox, account["access_token"])["profile_connected"] is True
    body = wait_notifications(callback_receiver, url, "profile_disconnected")[0]
    assert time.time() >= at - 0.05
    assert _profile(sandbox, account["access_token"])["profile_connected"] is False
    assert body["notification"]["changes_since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def test_refreshing_a_revoked_accounts_token_is_invalid_grant(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    _, (account,) = _accounts(sandbox, callback_receiver, "acme.example", 1, offset=3)
    admin(sandbox, "revoke-account", email=account["email"])
    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=account["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json() == {"error": "invalid_grant"}
    assert api(sandbox, "GET", "/v1/userinfo", account["access_token"]).status_code == 401
    assert admin(sandbox, "revoke-account", email="nobody@acme.example").status_code == 404


def test_disconnecting_a_share_of_a_domain_is_seeded_and_reported(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    _, accounts = _accounts(sandbox, callback_receiver, "initech.example", 10)
    first = admin(sandbox, "disconnect-profiles", domain="initech.example", percent=30, seed=7).json()
    assert first["candidates"] == 10 and first["seed"] == 7 and len(first["disconnected"]) == 3
    picked = {entry["email"] for entry in first["disconnected"]}
    for account in accounts:
        connected = _profile(sandbox, account["access_token"])["profile_connected"]
        assert connected is (account["email"] not in picked)
    for email in picked:
        admin(sandbox, "reconnect-profile", email=email)
    second = admin(sandbox, "disconnect-profiles", domain="initech.example", percent=30, seed=7).json()
    assert {entry["email"] for entry in second["disconnected"]} == picked
    bad = admin(sandbox, "disconnect-profiles", domain="initech.example", percent=150)
    assert bad.status_code == 422 and "percent" in bad.json()["errors"]


def test_expired_service_account_tokens_answer_401_until_refreshed(private_sandbox):
    sandbox = private_sandbox
    sa = connect_service_account(sandbox, domain="initech.example")
    assert api(sandbox, "GET", "/v1/userinfo", sa["access_token"]).status_code == 200
    expired = admin(sandbox, "expire-service-account", domain="initech.example").json()["expired"]
    assert sa["service_account_id"] in expired
    assert api(sandbox, "GET", "/v1/userinfo", sa["access_token"]).status_code == 401
    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=sa["refresh_token"])
    assert refreshed.status_code == 200
    assert api(sandbox, "GET", "/v1/userinfo", refreshed.json()["access_token"]).status_code == 200


def test_withdrawn_consent_stops_the_service_account_and_disconnects_its_profiles(private_sandbox,
                                                                                    callback_receiver):
    sandbox = private_sandbox
    sa, accounts = _accounts(sandbox, callback_receiver, "globex.example", 2)
    urls = [push_url(callback_receiver, f"wd{i}") for i in range(2)]
    for account, url in zip(accounts, urls):
        open_channel(sandbox, account["access_token"], url)
    withdrawn = admin(sandbox, "withdraw-consent", domain="globex.example").json()["withdrawn"]
    assert sa["service_account_id"] in withdrawn
    for url in urls:
        wait_notifications(callback_receiver, url, "profile_disconnected")

    refreshed = token_request(sandbox, grant_type="refresh_token", refresh_token=sa["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json() == {"error": "invalid_grant"}
    assert api(sandbox, "GET", "/v1/userinfo", sa["access_token"]).status_code == 401
    email = members(sandbox, 3, domain="globex.example", kind="user", trait="none")[2]
    assert request_access(sandbox, sa["access_token"], {"email": email, "scope": "read_events",
                                                        "callback_url": callback_receiver.callback_url("x")}
                          ).status_code == 401
    assert _profile(sandbox, accounts[0]["access_token"])["profile_connected"] is False
    assert api(sandbox, "GET", "/v1/calendars", accounts[0]["access_token"]).status_code == 423
    listed = sandbox.http.get(f"{sandbox.url}/sandbox/admin/service-accounts.json",
                              params={"domain": "globex.example", "status": "consent_withdrawn"}).json()
    assert sa["service_account_id"] in [entry["id"] for entry in listed["service_accounts"]]
    assert admin(sandbox, "withdraw-consent", domain="nowhere.example").status_code == 422


def test_the_domain_admin_removing_the_service_account_notifies_its_profiles(private_sandbox, callback_receiver):
    sandbox = private_sandbox
    sa, (account,) = _accounts(sandbox, callback_receiver, "acme.example", 1, offset=4)
    url = push_url(callback_receiver, "rsa")
    open_channel(sandbox, account["access_token"], url)
    revoked = admin(sandbox, "revoke-service-account", service_account_id=sa["service_account_id"]).json()
    assert revoked == {"revoked": [sa["service_account_id"]]}
    assert wait_notifications(callback_receiver, url, "profile_disconnected")
    counts = sandbox.http.get(f"{sandbox.url}/sandbox/admin/callbacks.json").json()
    assert counts["notifications"].get("delivered", 0) >= 2 and "delivering" not in counts["callbacks"]
