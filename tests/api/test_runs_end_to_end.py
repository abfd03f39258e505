"""Through the API only, against a real worker and the sandbox: upsert mailboxes, run, follow it, retry, fetch a token."""

from __future__ import annotations

import time

import pycronofy

from extensions import db
from models.organization import Organization
from tests.helpers import connect_sandbox
from tests.jobs.conftest import directory_emails, engine, worker  # noqa: F401 - fixtures

FINISHED = ("completed", "cancelled")


def _wait(api, run_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/api/v1/runs/{run_id}").json
        if run["status"] in FINISHED:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def test_upsert_authorize_follow_retry_and_use_a_token(api, engine, worker, monkeypatch):  # noqa: F811
    created = api.post("/api/v1/organizations", json={"name": "Acme Corp", "external_id": "cust_e2e"})
    org_id = int(created.json["id"])
    connect_sandbox(db.session.get(Organization, org_id), engine)  # the customer's admin approves the consent (a browser test does it by hand)
    healthy = directory_emails(engine, trait="none")[:3]
    entries = [{"email": email, "external_id": f"user_{n}"} for n, email in enumerate(healthy)]
    entries.append({"email": "ghost@acme.example", "name": "Left long ago"})
    upserted = api.put(f"/api/v1/organizations/{org_id}/mailboxes", json={"mailboxes": entries})
    assert upserted.status_code == 200 and upserted.json["created"] == 4

    started = api.post(f"/api/v1/organizations/{org_id}/runs",
                       json={"action": "authorize", "mailboxes": "all_unauthorized"})
    assert started.status_code == 202
    run = _wait(api, started.json["id"])
    assert run["status"] == "completed" and run["done"] == run["total"] == 4 and run["percent"] == 100
    assert (run["counts"]["authorized"], run["counts"]["failed"]) == (3, 1)
    assert run["rate_is_average"] and run["eta_seconds"] is None
    [cause] = run["failures_by_cause"]
    assert cause["cause"] == "not_found" and cause["count"] == 1 and not cause["retryable"] and cause["fix"]

    base = f"/api/v1/runs/{run['id']}"
    skipped = api.post(f"{base}/retry-failed", json={})
    assert (skipped.json["retried"], skipped.json["left_out"]) == (0, 1)
    retried = api.post(f"{base}/retry-failed", json={"include_unfixable": True})
    assert retried.json["retried"] == 1 and retried.json["run"]["status"] == "running"
    again = _wait(api, run["id"])
    assert again["status"] == "completed" and again["counts"]["failed"] == 1

    ghost_id = upserted.json["ids"][3]
    assert api.get(f"/api/v1/mailboxes/{ghost_id}").json["error_key"] == "not_found"
    token = api.post(f"/api/v1/organizations/{org_id}/access-tokens", json={"email": healthy[0]}).json
    # Cronofy's own Python SDK, unchanged, with the token and the API base URL the console handed out.
    monkeypatch.setattr(pycronofy.settings, "API_BASE_URL", token["api_base_url"])
    calendars = pycronofy.Client(access_token=token["access_token"]).list_calendars()
    assert calendars and all(calendar["calendar_id"] for calendar in calendars)

    revoked = api.post(f"/api/v1/organizations/{org_id}/runs",
                       json={"action": "revoke", "mailboxes": {"emails": healthy[:1]}})
    assert revoked.status_code == 202
    assert _wait(api, revoked.json["id"])["counts"]["revoked"] == 1
    assert api.get(f"/api/v1/mailboxes/{upserted.json['ids'][0]}").json["status"] == "revoked"
