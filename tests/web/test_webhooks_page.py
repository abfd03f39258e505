"""The vendor settings' webhooks pages: only vendor admins; the secret shown once; edit, disable, rotate, delete
with confirmation; test events; the delivery log with its attempts, filters, paging and redelivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.webhooks import endpoints
from tests.webhooks.dns import fake_dns  # noqa: F401 - fixture

URL = "https://hooks.vendor.example/ecc"


@pytest.fixture
def vendor_admin(login_as, make_support_user):
    return login_as(make_support_user(is_vendor_admin=True))


def _text(response) -> str:
    return response.get_data(as_text=True)


def _endpoint(**kwargs) -> WebhookEndpoint:
    issued = endpoints.create_endpoint(kwargs.pop("url", URL), **kwargs)
    db.session.commit()
    return issued.endpoint


def _delivery(endpoint, *, status="failed", event_type="mailbox.failed", attempts=((500, "oops", "HTTP 500"),),
              created_at=None) -> WebhookDelivery:
    event = Event(type=event_type, subject_type="mailbox", subject_id=1, data={})
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type=event_type, status=status,
                               attempt_count=len(attempts), next_attempt_at=None, created_at=created_at or utcnow(),
                               last_status_code=attempts[-1][0] if attempts else None)
    db.session.add(delivery)
    db.session.flush()
    for code, answer, error in attempts:
        db.session.add(WebhookAttempt(delivery_id=delivery.id, status_code=code, latency_ms=87,
                                      response_excerpt=answer, error=error, succeeded=code == 200))
    db.session.commit()
    return delivery


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_only_vendor_admins_open_the_pages(client, login_as, make_support_user, make_org_admin, fake_dns):
    endpoint = _endpoint()
    for person in (make_org_admin(), make_support_user()):
        login_as(person)
        for path in ("/support/webhooks", "/support/webhooks/deliveries", f"/support/webhooks/{endpoint.id}/edit"):
            assert client.get(path).status_code == 404, path
        assert client.post("/support/webhooks", data={"url": URL}).status_code == 404
        assert client.post(f"/support/webhooks/{endpoint.id}/delete", data={"confirm": "yes"}).status_code == 404
    assert _count(WebhookEndpoint) == 1
    login_as(make_support_user(is_vendor_admin=True))
    assert client.get("/support/webhooks").status_code == 200


def test_empty_states_guide_to_the_first_endpoint(client, vendor_admin):
    assert "No webhook endpoints yet" in _text(client.get("/support/webhooks"))
    assert "Add an endpoint first" in _text(client.get("/support/webhooks/deliveries"))


def test_a_new_endpoint_shows_its_secret_once(client, vendor_admin, make_organization, fake_dns):
    acme = make_organization(name="Acme")
    created = client.post("/support/webhooks", data={
        "url": URL, "description": "Scheduler", "event_types": ["mailbox.failed", "run.paused"],
        "organization": acme.id, "enabled": "y"})
    assert created.status_code == 302
    page = _text(client.get("/support/webhooks"))
    endpoint = db.session.scalar(select(WebhookEndpoint))
    secret = page.split('data-testid="new-webhook-secret"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert secret.startswith("whsec_") and endpoints.signing_secrets(endpoint) == [secret]
    assert endpoint.created_by_id == vendor_admin.id and endpoint.organization_id == acme.id
    assert endpoint.event_type_list == ["mailbox.failed", "run.paused"]
    assert "Acme" in page and "Scheduler" in page and "run.paused" in page
    again = _text(client.get("/support/webhooks"))
    assert secret not in again and URL in again


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
def test_refused_urls_say_why_and_create_nothing(client, vendor_admin, fake_dns):
    refused = client.post("/support/webhooks", data={"url": "http://169.254.169.254/latest/meta-data/"})
    assert refused.status_code == 422 and "a cloud metadata address" in _text(refused)
    missing = client.post("/support/webhooks", data={"url": ""})
    assert missing.status_code == 422 and "Enter the URL" in _text(missing)
    assert _count(WebhookEndpoint) == 0


def test_editing_an_endpoint(client, vendor_admin, fake_dns):
    endpoint = _endpoint(description="Old")
    form = _text(client.get(f"/support/webhooks/{endpoint.id}/edit"))
    assert 'value="Old"' in form and URL in form
    saved = client.post(f"/support/webhooks/{endpoint.id}/edit", data={
        "url": URL, "description": "New", "event_types": ["run.completed"], "organization": 0, "enabled": "y"})
    assert saved.status_code == 302
    assert (endpoint.description, endpoint.event_type_list) == ("New", ["run.completed"])
    refused = client.post(f"/support/webhooks/{endpoint.id}/edit", data={"url": "ftp://hooks.vendor.example/"})
    assert refused.status_code == 422 and "not ftp:" in _text(refused)
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).url == URL


def test_disabling_and_the_consoles_reason(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    client.post(f"/support/webhooks/{endpoint.id}/enabled", data={"enabled": "no"})
    assert not endpoint.enabled and "by a person" in _text(client.get("/support/webhooks"))
    client.post(f"/support/webhooks/{endpoint.id}/enabled", data={"enabled": "yes"})
    assert endpoint.enabled
    endpoint.failing_since = utcnow() - timedelta(days=5)
    endpoint.last_success_at = utcnow() - timedelta(days=6)
    endpoints.disable(endpoint, "It failed every attempt for 5 days.")
    db.session.commit()
    page = _text(client.get("/support/webhooks"))
    assert 'data-testid="disabled-reason"' in page and "It failed every attempt for 5 days." in page
    assert 'data-testid="failing-since"' in page and ">Enable<" in page


def test_rotating_asks_first_then_shows_the_new_secret_once(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    confirm = client.get(f"/support/webhooks/{endpoint.id}/rotate-secret")
    assert confirm.status_code == 200 and "24 hours" in _text(confirm)
    client.post(f"/support/webhooks/{endpoint.id}/rotate-secret")  # no confirmation: nothing happens
    assert len(endpoints.signing_secrets(endpoint)) == 1
    done = client.post(f"/support/webhooks/{endpoint.id}/rotate-secret", data={"confirm": "yes"},
                       follow_redirects=True)
    secrets_now = endpoints.signing_secrets(endpoint)
    assert len(secrets_now) == 2 and secrets_now[0] in _text(done) and "previous" in _text(done)
    page = _text(client.get("/support/webhooks"))
    assert secrets_now[0] not in page and "Still signs until" in page


def test_deleting_asks_first(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    confirm = client.get(f"/support/webhooks/{endpoint.id}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in _text(confirm)
    client.post(f"/support/webhooks/{endpoint.id}/delete")
    assert _count(WebhookEndpoint) == 1
    done = client.post(f"/support/webhooks/{endpoint.id}/delete", data={"confirm": "yes"}, follow_redirects=True)
    assert "Deleted" in _text(done) and _count(WebhookEndpoint) == 0
    assert client.get(f"/support/webhooks/{endpoint.id}/delete").status_code == 404


def test_a_test_event_appears_in_the_endpoints_delivery_log(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    sent = client.post(f"/support/webhooks/{endpoint.id}/test")
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"/deliveries?endpoint_id={endpoint.id}")
    page = _text(client.get(sent.headers["Location"]))
    assert "A test event is on its way" in page and "webhook.test" in page and "Not attempted yet" in page
    assert db.session.scalar(select(WebhookDelivery.event_type)) == "webhook.test"


def test_the_log_shows_each_attempt_escaped_and_filters(client, vendor_admin, fake_dns):
    endpoint, other = _endpoint(), _endpoint(url="https://hooks.vendor.example/other")
    failed = _delivery(endpoint, attempts=((503, "<script>alert(1)</script>", "HTTP 503"),
                                           (None, None, "Timed out after 15 s")))
    _delivery(endpoint, status="succeeded", event_type="run.completed", attempts=((200, "ok", None),))
    _delivery(other, event_type="run.paused")
    page = _text(client.get("/support/webhooks/deliveries"))
    assert page.count('data-testid="webhook-delivery"') == 3 and page.count('data-testid="delivery-attempt"') == 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "87 ms" in page and "Timed out after 15 s" in page
    only_failed = _text(client.get(f"/support/webhooks/deliveries?endpoint_id={endpoint.id}&outcome=failed"))
    assert only_failed.count('data-testid="webhook-delivery"') == 1 and f'data-delivery="{failed.id}"' in only_failed
    by_type = _text(client.get("/support/webhooks/deliveries?event_type=run.paused"))
    assert by_type.count('data-testid="webhook-delivery"') == 1
    nothing = _text(client.get("/support/webhooks/deliveries?event_type=organization.created"))
    assert "No deliveries match these filters" in nothing


def test_the_log_pages_from_the_newest_back(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    ids = [_delivery(endpoint).id for _ in range(27)]
    first = _text(client.get("/support/webhooks/deliveries"))
    assert first.count('data-testid="webhook-delivery"') == 25 and f'data-delivery="{ids[-1]}"' in first
    older = first.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = _text(client.get(older))
    assert second.count('data-testid="webhook-delivery"') == 2 and f'data-delivery="{ids[0]}"' in second
    assert 'rel="next"' not in second and ">Newest<" in second


def test_redelivering_one_and_all_failed_since_a_time(client, vendor_admin, fake_dns):
    endpoint = _endpoint()
    old = _delivery(endpoint, created_at=utcnow() - timedelta(days=2))
    recent = _delivery(endpoint)
    one = client.post(f"/support/webhooks/deliveries/{old.id}/redeliver", data={"outcome": "failed"})
    assert one.status_code == 302 and one.headers["Location"].endswith("/deliveries?outcome=failed")
    assert db.session.scalar(select(func.count()).where(WebhookDelivery.event_id == old.event_id)) == 2
    since = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    many = client.post(f"/support/webhooks/{endpoint.id}/redeliver-failed", data={"since": since},
                       follow_redirects=True)
    assert "Redelivering 1 failed delivery" in _text(many)
    assert db.session.scalar(select(func.count()).where(WebhookDelivery.event_id == recent.event_id)) == 2
    bad = client.post(f"/support/webhooks/{endpoint.id}/redeliver-failed", data={"since": "yesterday"},
                      follow_redirects=True)
    assert "UTC" in _text(bad) and _count(WebhookDelivery) == 4


def test_the_person_menu_links_the_page_for_vendor_admins_only(client, login_as, make_support_user):
    login_as(make_support_user())
    assert "/support/webhooks" not in _text(client.get("/support/"))
    login_as(make_support_user(is_vendor_admin=True))
    assert "/support/webhooks" in _text(client.get("/support/"))
