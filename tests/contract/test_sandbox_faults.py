"""Contract: fault injection switched at runtime (JSON endpoint and admin page)."""

import json
import time

import pytest

from tests.contract.sandbox_support import (bearer, connect_service_account, delegated_account, http, members,
                                            request_access, token_request, wait_for_events)


def _userinfo(sandbox, token):
    return http().get(f"{sandbox.url}/v1/userinfo", headers=bearer(token))


def _entry(receiver, email, name):
    return {"email": email, "callback_url": receiver.callback_url(name), "scope": "read_events", "state": name}


def test_faults_are_all_off_by_default(sandbox):
    assert sandbox.reset_faults() == {
        "error_rate": 0.0, "latency_ms": 0, "burst_429": 0, "retry_after": 0, "hang_seconds": 0.0,
        "duplicate_callbacks": False, "out_of_order_callbacks": False, "callback_failure_rate": 0.0,
        "notifications_off": False}


def test_error_rate_answers_500_or_503_with_json(sandbox, sa_token):
    sandbox.set_faults(error_rate=1.0)
    responses = [_userinfo(sandbox, sa_token["access_token"]) for _ in range(12)]
    assert {r.status_code for r in responses} <= {500, 503}
    assert all(r.json()["error"] in ("server_error", "service_unavailable") for r in responses)
    sandbox.set_faults(error_rate=0.0)
    assert _userinfo(sandbox, sa_token["access_token"]).status_code == 200


def test_partial_error_rate_fails_some_requests(sandbox, sa_token):
    sandbox.set_faults(error_rate=0.5)
    statuses = [_userinfo(sandbox, sa_token["access_token"]).status_code for _ in range(60)]
    assert 5 < sum(s >= 500 for s in statuses) < 55


def test_latency_is_added_to_api_requests(sandbox, sa_token):
    sandbox.set_faults(latency_ms=300)
    started = time.monotonic()
    assert _userinfo(sandbox, sa_token["access_token"]).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_burst_429_answers_the_next_n_requests_then_recovers(sandbox, sa_token):
    sandbox.set_faults(burst_429=3, retry_after=7)
    responses = [_userinfo(sandbox, sa_token["access_token"]) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert responses[0].headers["Retry-After"] == "7"
    assert http().get(f"{sandbox.url}/sandbox/admin/faults").json()["burst_429"] == 0


def test_burst_429_without_retry_after(sandbox, sa_token):
    sandbox.set_faults(burst_429=1)
    response = _userinfo(sandbox, sa_token["access_token"])
    assert response.status_code == 429 and "Retry-After" not in response.headers


def test_hung_requests_time_out_the_client(sandbox, sa_token):
    import requests

    sandbox.set_faults(hang_seconds=1.0)
    with pytest.raises(requests.Timeout):
        http().get(f"{sandbox.url}/v1/userinfo", headers=bearer(sa_token["access_token"]), timeout=0.3)
    started = time.monotonic()
    patient = _userinfo(sandbox, sa_token["access_token"])
    assert patient.status_code == 504 and time.monotonic() - started >= 1.0


def test_faults_do_not_touch_the_admin_endpoints(sandbox):
    sandbox.set_faults(error_rate=1.0)
    assert http().get(f"{sandbox.url}/sandbox/admin/faults").status_code == 200


def test_duplicate_callbacks_send_the_same_body_twice(sandbox, sa_token, callback_receiver):
    sandbox.set_faults(duplicate_callbacks=True)
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, "d1"))
    first, second = callback_receiver.wait_for(2)
    assert first["raw"] == second["raw"] and first["path"] == second["path"]
    code = json.loads(first["raw"])["authorization"]["code"]
    exchanges = [token_request(sandbox, grant_type="authorization_code", code=code,
                               redirect_uri=callback_receiver.callback_url("d1")) for _ in range(2)]
    assert [r.status_code for r in exchanges] == [200, 400]


def test_out_of_order_callbacks_arrive_in_reverse(tmp_path, callback_receiver):
    from tests.plugins.sandbox_server import start_sandbox

    # One sender thread, so the arrival order is the sandbox's order however loaded the machine is.
    server = start_sandbox(f"sqlite:///{tmp_path / 'sb.sqlite'}", DELIVERY_CONCURRENCY=1)
    try:
        server.set_faults(out_of_order_callbacks=True)
        tokens = connect_service_account(server)
        emails = members(server, 3, domain="acme.example", kind="user", trait="none")
        batch = [_entry(callback_receiver, e, f"o{i}") for i, e in enumerate(emails)]
        request_access(server, tokens["access_token"], {"service_account_authorizations": batch})
        states = [json.loads(r["raw"])["authorization"]["state"] for r in callback_receiver.wait_for(3)]
    finally:
        server.stop()
    assert states == ["o2", "o1", "o0"]


def test_callback_failure_rate_loses_callbacks(sandbox, sa_token, callback_receiver):
    sandbox.set_faults(callback_failure_rate=1.0)
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], _entry(callback_receiver, email, "lost"))
    dropped = wait_for_events(sandbox, lambda e: "dropped" in e["detail"], kind="callback")
    time.sleep(0.2)
    assert dropped and dropped[0]["status"] is None
    assert callback_receiver.received == []


def test_domain_admin_revoking_the_service_account(sandbox, callback_receiver):
    tokens = connect_service_account(sandbox)
    bystander = connect_service_account(sandbox)
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    account = delegated_account(sandbox, callback_receiver, tokens["access_token"], email)
    revoked = http().post(f"{sandbox.url}/sandbox/admin/revoke-service-account",
                          json={"service_account_id": tokens["service_account_id"]}).json()
    assert revoked == {"revoked": [tokens["service_account_id"]]}
    assert _userinfo(sandbox, tokens["access_token"]).status_code == 401
    refresh = token_request(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.json() == {"error": "invalid_grant"}
    assert request_access(sandbox, tokens["access_token"], _entry(callback_receiver, email, "r")).status_code == 401
    calendars = http().get(f"{sandbox.url}/v1/calendars", headers=bearer(account["access_token"]))
    assert calendars.status_code == 423
    info = _userinfo(sandbox, account["access_token"]).json()
    assert info["cronofy.data"]["profiles"][0]["profile_connected"] is False
    assert _userinfo(sandbox, bystander["access_token"]).status_code == 200


@pytest.mark.parametrize("changes", [{"error_rate": 2}, {"latency_ms": -1}, {"duplicate_callbacks": "yes"},
                                     {"teleport": True}, {"burst_429": True}])
def test_invalid_fault_values_are_refused_with_422(sandbox, changes):
    response = http().put(f"{sandbox.url}/sandbox/admin/faults", json=changes)
    assert response.status_code == 422
    assert list(response.json()["errors"]) == list(changes)


def test_admin_page_switches_faults_with_a_plain_form(sandbox, sa_token):
    page = http().get(f"{sandbox.url}/sandbox/admin/")
    assert page.status_code == 200 and "no login" in page.text and "<script" not in page.text
    assert 'name="error_rate"' in page.text and "Revoke as the domain administrator" in page.text
    posted = http().post(f"{sandbox.url}/sandbox/admin/faults/form", data={"error_rate": "1", "latency_ms": "0",
                                                                           "duplicate_callbacks": "on"},
                         allow_redirects=False)
    assert posted.status_code == 302
    faults = http().get(f"{sandbox.url}/sandbox/admin/faults").json()
    assert faults["error_rate"] == 1.0 and faults["duplicate_callbacks"] is True
    assert _userinfo(sandbox, sa_token["access_token"]).status_code >= 500
    http().post(f"{sandbox.url}/sandbox/admin/faults/form", data={"reset": "1"})
    assert _userinfo(sandbox, sa_token["access_token"]).status_code == 200


def test_admin_page_changes_limits_with_a_plain_form(sandbox):
    http().post(f"{sandbox.url}/sandbox/admin/limits/form", data={"per_second": "7", "window": "sliding"})
    limits = http().get(f"{sandbox.url}/sandbox/admin/limits").json()
    assert (limits["per_second"], limits["window"], limits["retry_after"]) == (7, "sliding", False)
