"""`/webhook-endpoints`: create (secret once), list, change, rotate, delete, test events and the delivery log,
and what a key restricted to one organization may do."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.webhooks import endpoints
from tests.webhooks.dns import fake_dns  # noqa: F401 - fixture

URL = "https://hooks.vendor.example/ecc"
BASE = "/api/v1/webhook-endpoints"


def _create(api, headers=None, **body):
    return api.post(BASE, json={"url": URL, **body}, headers=headers)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _delivery(endpoint_id: int, *, event_type="mailbox.authorized", status="failed", organization_id=None,
              attempts=((503, "busy", "HTTP 503"),), created_at=None) -> WebhookDelivery:
    event = Event(type=event_type, organization_id=organization_id, subject_type="mailbox", subject_id=1,
                  data={"id": "1"})
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint_id, event_id=event.id, event_type=event_type, status=status,
                               attempt_count=len(attempts), next_attempt_at=None,
                               created_at=created_at or utcnow())
    db.session.add(delivery)
    db.session.flush()
    for code, body, error in attempts:
        db.session.add(WebhookAttempt(delivery_id=delivery.id, status_code=code, latency_ms=12,
                                      response_excerpt=body, error=error, succeeded=code == 200))
    db.session.commit()
    return delivery


def test_creating_an_endpoint_shows_its_secret_once(api, fake_dns):
    created = _create(api, event_types=["mailbox.authorized"], description="Scheduler")
    assert created.status_code == 201
    body = created.json
    assert body["secret"].startswith("whsec_") and body["url"] == URL and body["enabled"] is True
    assert body["event_types"] == ["mailbox.authorized"] and body["organization_id"] is None
    assert created.headers["Location"].endswith(f"{BASE}/{body['id']}")
    shown = api.get(f"{BASE}/{body['id']}").json
    assert "secret" not in shown and shown["description"] == "Scheduler"
    listed = api.get(BASE).json
    assert [row["id"] for row in listed["data"]] == [body["id"]] and body["secret"] not in str(listed)
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.created"))
    assert audit.details["via"] == "api" and audit.details["api_key"] == api.key[:17]


def test_a_retried_create_with_the_same_idempotency_key_creates_one_endpoint(api, fake_dns):
    first = _create(api, headers={"Idempotency-Key": "create-hook-1"})
    again = _create(api, headers={"Idempotency-Key": "create-hook-1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["secret"] == first.json["secret"] and _count(WebhookEndpoint) == 1


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
def test_refused_urls_and_unknown_types_are_validation_problems(api, fake_dns):
    for url, words in (("http://169.254.169.254/latest", "metadata"), ("http://10.0.0.1/", "private network"),
                       ("file:///etc/passwd", "not file:"), ("https://me:pw@hooks.vendor.example/", "password")):
        refused = _create(api, url=url)
        assert refused.status_code == 422 and words in refused.json["detail"], url
        assert refused.json["errors"][0]["pointer"] == "#/url"
    unknown = _create(api, event_types=["mailbox.exploded"])
    assert unknown.status_code == 422 and unknown.json["errors"][0]["pointer"] == "#/event_types/0"
    assert _count(WebhookEndpoint) == 0


def test_every_route_needs_the_webhooks_scope(api, make_api_key, fake_dns):
    endpoint_id = _create(api).json["id"]
    key = make_api_key("events:read", "organizations:write")
    for method, path in (("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/{endpoint_id}"),
                         ("POST", f"{BASE}/{endpoint_id}/rotate-secret"), ("DELETE", f"{BASE}/{endpoint_id}")):
        answer = api.request(method, path, key=key, json={"url": URL} if method == "POST" else None)
        assert answer.status_code == 403 and answer.json["required_scope"] == "webhooks:write", path


def test_a_restricted_key_manages_only_its_organizations_endpoints(api, make_api_key, make_organization, fake_dns):
    mine, theirs = make_organization(), make_organization()
    everyone = _create(api).json["id"]
    their_endpoint = _create(api, organization_id=str(theirs.id)).json["id"]
    key = make_api_key("webhooks:write", organization=mine)
    forced = api.post(BASE, key=key, json={"url": URL})
    assert forced.status_code == 201 and forced.json["organization_id"] == str(mine.id)
    assert api.post(BASE, key=key, json={"url": URL, "organization_id": str(theirs.id)}).status_code == 404
    refused = api.post(BASE, key=key, json={"url": URL, "organization_id": None})
    assert refused.status_code == 403 and refused.json["type"].endswith("#restricted-key")
    assert [row["id"] for row in api.get(BASE, key=key).json["data"]] == [forced.json["id"]]
    assert [row["id"] for row in api.get(f"{BASE}?organization_id={theirs.id}", key=key).json["data"]] \
        == [forced.json["id"]]
    for other in (everyone, their_endpoint):
        assert api.get(f"{BASE}/{other}", key=key).status_code == 404
        assert api.patch(f"{BASE}/{other}", key=key, json={"enabled": False}).status_code == 404
    widened = api.patch(f"{BASE}/{forced.json['id']}", key=key, json={"organization_id": None})
    assert widened.status_code == 403
    assert db.session.get(WebhookEndpoint, int(forced.json["id"])).organization_id == mine.id
    assert db.session.get(WebhookEndpoint, int(everyone)).enabled


def test_an_unrestricted_key_filters_by_organization_and_pages(api, make_organization, fake_dns):
    acme = make_organization()
    ids = [_create(api, organization_id=str(acme.id) if n == 1 else None).json["id"] for n in range(3)]
    first = api.get(f"{BASE}?limit=2").json
    assert [row["id"] for row in first["data"]] == ids[:2] and first["next_cursor"]
    rest = api.get(f"{BASE}?limit=2&cursor={first['next_cursor']}").json
    assert [row["id"] for row in rest["data"]] == ids[2:] and rest["next_cursor"] is None
    assert [row["id"] for row in api.get(f"{BASE}?organization_id={acme.id}").json["data"]] == [ids[1]]
    assert api.get(f"{BASE}?cursor=forged").status_code == 400


def test_changing_disabling_and_deleting_an_endpoint(api, fake_dns):
    endpoint_id = _create(api).json["id"]
    changed = api.patch(f"{BASE}/{endpoint_id}", json={"enabled": False, "event_types": ["run.completed"],
                                                      "url": "https://HOOKS.vendor.example/v2"})
    assert changed.status_code == 200
    assert (changed.json["enabled"], changed.json["event_types"], changed.json["url"]) == \
        (False, ["run.completed"], "https://hooks.vendor.example/v2")
    assert changed.json["disabled_at"] and changed.json["disabled_reason"] is None
    bad = api.patch(f"{BASE}/{endpoint_id}", json={"url": "ftp://hooks.vendor.example/"})
    assert bad.status_code == 422 and db.session.get(WebhookEndpoint, int(endpoint_id)).url.endswith("/v2")
    assert api.delete(f"{BASE}/{endpoint_id}").status_code == 204
    assert api.get(f"{BASE}/{endpoint_id}").status_code == 404
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["webhook_endpoint.updated", "webhook_endpoint.deleted"]


def test_rotating_the_secret_keeps_the_old_one_signing_for_a_day(api, fake_dns):
    created = _create(api).json
    rotated = api.post(f"{BASE}/{created['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json["secret"] != created["secret"]
    endpoint = db.session.get(WebhookEndpoint, int(created["id"]))
    assert endpoints.signing_secrets(endpoint) == [rotated.json["secret"], created["secret"]]
    shown = api.get(f"{BASE}/{created['id']}").json
    assert shown["previous_secrets_valid_until"] == rotated.json["previous_secrets_valid_until"]
    assert shown["previous_secrets_valid_until"] > (utcnow() + timedelta(hours=23)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_disabled_event_carries_the_endpoint_as_the_api_shows_it(api, fake_dns):
    endpoint_id = _create(api).json["id"]
    endpoints.disable(db.session.get(WebhookEndpoint, int(endpoint_id)), "It answered 410 Gone.")
    db.session.commit()
    event = db.session.scalar(select(Event).where(Event.type == "webhook_endpoint.disabled"))
    assert event.data == api.get(f"{BASE}/{endpoint_id}").json


def test_the_delivery_log_lists_attempts_newest_first_with_filters(api, fake_dns):
    endpoint_id = int(_create(api).json["id"])
    failed = _delivery(endpoint_id, attempts=((503, "busy", "HTTP 503"), (None, None, "Timed out after 15 s")))
    succeeded = _delivery(endpoint_id, event_type="run.completed", status="succeeded",
                          attempts=((200, "ok", None),))
    other = _delivery(int(_create(api).json["id"]))
    listed = api.get(f"{BASE}/{endpoint_id}/deliveries").json["data"]
    assert [row["id"] for row in listed] == [str(succeeded.id), str(failed.id)]
    assert [a["error"] for a in listed[1]["attempts"]] == ["HTTP 503", "Timed out after 15 s"]
    assert listed[1]["attempts"][0]["status_code"] == 503 and listed[1]["attempts"][0]["response_excerpt"] == "busy"
    by_outcome = api.get(f"{BASE}/{endpoint_id}/deliveries?outcome=failed").json["data"]
    assert [row["id"] for row in by_outcome] == [str(failed.id)]
    by_type = api.get(f"{BASE}/{endpoint_id}/deliveries?event_type=run.completed").json["data"]
    assert [row["id"] for row in by_type] == [str(succeeded.id)]
    first = api.get(f"{BASE}/{endpoint_id}/deliveries?limit=1").json
    rest = api.get(f"{BASE}/{endpoint_id}/deliveries?limit=1&cursor={first['next_cursor']}").json
    assert [first["data"][0]["id"], rest["data"][0]["id"]] == [str(succeeded.id), str(failed.id)]
    assert other.endpoint_id != endpoint_id  # another endpoint's delivery is not in this log
    assert api.get(f"{BASE}/{endpoint_id}/deliveries?outcome=lost").status_code == 422


def test_test_events_and_redeliveries_are_new_deliveries(api, fake_dns):
    endpoint_id = int(_create(api).json["id"])
    sent = api.post(f"{BASE}/{endpoint_id}/test")
    assert sent.status_code == 202 and sent.json["event_type"] == "webhook.test"
    assert sent.json["status"] == "pending" and sent.json["endpoint_id"] == str(endpoint_id)
    failed = _delivery(endpoint_id)
    again = api.post(f"/api/v1/webhook-deliveries/{failed.id}/redeliver")
    assert again.status_code == 202
    assert again.json["event_id"] == str(failed.event_id) and again.json["redelivery"] == failed.redelivery + 1


def test_redelivering_everything_that_failed_since_a_time(api, fake_dns):
    endpoint_id = int(_create(api).json["id"])
    old = _delivery(endpoint_id, created_at=utcnow() - timedelta(days=3))
    recent = [_delivery(endpoint_id) for _ in range(2)]
    _delivery(endpoint_id, status="succeeded", attempts=((200, "ok", None),))
    since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    counted = api.post(f"{BASE}/{endpoint_id}/redeliver-failed", json={"since": since})
    assert counted.status_code == 202 and counted.json["redelivered"] == 2
    redelivered = set(db.session.scalars(select(WebhookDelivery.event_id).where(WebhookDelivery.redelivery > 0)))
    assert old.event_id not in redelivered and {d.event_id for d in recent} <= redelivered


def test_a_restricted_key_cannot_reach_another_organizations_deliveries(api, make_api_key, make_organization,
                                                                        fake_dns):
    mine, theirs = make_organization(), make_organization()
    theirs_endpoint = int(_create(api, organization_id=str(theirs.id)).json["id"])
    delivery = _delivery(theirs_endpoint, organization_id=theirs.id)
    key = make_api_key("webhooks:write", organization=mine)
    assert api.get(f"{BASE}/{theirs_endpoint}/deliveries", key=key).status_code == 404
    assert api.post(f"/api/v1/webhook-deliveries/{delivery.id}/redeliver", key=key).status_code == 404
    assert api.post(f"{BASE}/{theirs_endpoint}/test", key=key).status_code == 404
    assert _count(WebhookDelivery) == 1
