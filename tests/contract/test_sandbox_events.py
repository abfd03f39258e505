"""Contract: the event log page and /sandbox/events.json."""

import json

from tests.contract.sandbox_support import bearer, http, members, request_access, token_request, wait_for_events


def test_requests_are_logged_with_status_timing_and_client(sandbox, sa_token):
    token_request(sandbox, grant_type="refresh_token", refresh_token="nope")
    event = sandbox.events(path="/oauth/token", limit=1)[0]
    assert event["kind"] == "request" and event["method"] == "POST" and event["status"] == 400
    assert event["client_id"] == sandbox.client_id and event["duration_ms"] >= 0
    http().get(f"{sandbox.url}/v1/userinfo", headers=bearer(sa_token["access_token"]))
    assert sandbox.events(path="/v1/userinfo", limit=1)[0]["client_id"] == sandbox.client_id


def test_callbacks_are_logged_without_secrets(sandbox, sa_token, callback_receiver):
    email = members(sandbox, domain="acme.example", kind="user", trait="none")[0]
    request_access(sandbox, sa_token["access_token"], {"email": email, "scope": "read_events",
                                                       "callback_url": callback_receiver.callback_url("ev")})
    body = json.loads(callback_receiver.wait_for(1)[0]["raw"])
    event = wait_for_events(sandbox, kind="callback", path=callback_receiver.url)[0]
    assert event["status"] == 200 and event["detail"].startswith("code; attempt 1; delivered")
    assert event["path"] == f"{callback_receiver.url}/callbacks/delegated/…"
    log = json.dumps(sandbox.events(limit=200))
    for secret in (sa_token["access_token"], sa_token["refresh_token"], body["authorization"]["code"],
                   "tokevABCDEFGHIJKLMNOP", sandbox.client_secret):
        assert secret not in log


def test_filters_by_status_class_kind_and_client(sandbox):
    for _ in range(3):
        http().get(f"{sandbox.url}/v1/userinfo")
    unauthorized = sandbox.events(status="4xx", path="/v1/userinfo", limit=3)
    assert len(unauthorized) == 3 and all(e["status"] == 401 for e in unauthorized)
    assert all(e["status"] == 401 for e in sandbox.events(status="401", limit=20))
    assert all(e["kind"] == "callback" for e in sandbox.events(kind="callback", limit=20))
    assert sandbox.events(client="nobody-at-all") == []


def test_pagination_walks_back_without_overlap(sandbox):
    for _ in range(5):
        http().get(f"{sandbox.url}/v1/userinfo")
    first = http().get(f"{sandbox.url}/sandbox/events.json", params={"limit": 2}).json()
    second = http().get(f"{sandbox.url}/sandbox/events.json",
                        params={"limit": 2, "before": first["next_before"]}).json()
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4


def test_event_log_page_renders_and_filters(sandbox):
    http().get(f"{sandbox.url}/v1/does-not-exist")
    page = http().get(f"{sandbox.url}/sandbox/events", params={"path": "does-not-exist", "status": "404"})
    assert page.status_code == 200
    assert "/v1/does-not-exist" in page.text and "<td>404</td>" in page.text
    empty = http().get(f"{sandbox.url}/sandbox/events", params={"client": "nobody-at-all"})
    assert "No events match." in empty.text


def test_admin_changes_are_logged_but_page_views_are_not(sandbox):
    sandbox.set_faults(latency_ms=0)
    http().get(f"{sandbox.url}/sandbox/admin/")
    admin_events = sandbox.events(path="/sandbox/admin", limit=5)
    assert admin_events[0]["method"] == "PUT"
    assert all(e["method"] != "GET" for e in admin_events)
