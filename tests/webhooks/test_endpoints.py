"""Webhook endpoints: the secret shown once and kept encrypted, rotation's 24 hours, filters, disabling, audit."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret
from services.platform import keys
from services.platform.crypto import TokenCipher
from services.webhooks import endpoints
from services.webhooks.endpoints import WebhookEndpointError
from tests.webhooks.dns import fake_dns  # noqa: F401 - fixture

URL = "https://hooks.vendor.example/ecc"


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _create(**kwargs) -> endpoints.IssuedEndpoint:
    issued = endpoints.create_endpoint(kwargs.pop("url", URL), **kwargs)
    db.session.commit()
    return issued


def test_a_new_endpoint_has_a_standard_webhooks_secret_kept_only_encrypted(app, fake_dns, make_support_user):
    person = make_support_user()
    issued = _create(event_types=["mailbox.failed", "mailbox.authorized"], description=" Scheduler ", created_by=person)
    assert issued.secret.startswith("whsec_") and len(base64.b64decode(issued.secret[6:])) == 24
    stored = db.session.scalar(select(WebhookSecret))
    assert issued.secret not in stored.secret_encrypted and issued.secret[6:] not in stored.secret_encrypted
    assert endpoints.signing_secrets(issued.endpoint) == [issued.secret]
    endpoint = db.session.get(WebhookEndpoint, issued.endpoint.id)
    assert endpoint.event_type_list == ["mailbox.authorized", "mailbox.failed"]  # the catalog's order
    assert endpoint.description == "Scheduler" and endpoint.created_by_id == person.id
    created = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "webhook_endpoint.created"))
    assert created.actor_id == person.id and created.details["url"] == URL
    assert issued.secret not in str(created.details)
    assert _create().secret != issued.secret


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
def test_urls_to_internal_addresses_are_refused_unless_private_networks_are_allowed(app, fake_dns):
    fake_dns.names["internal.vendor.example"] = ["10.0.0.8"]
    for url in ("http://127.0.0.1:9000/", "https://internal.vendor.example/", "file:///etc/passwd"):
        with pytest.raises(WebhookEndpointError) as caught:
            endpoints.create_endpoint(url)
        assert caught.value.field == "url"
    app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] = True
    assert _create(url="http://127.0.0.1:9000/hook").endpoint.url == "http://127.0.0.1:9000/hook"
    with pytest.raises(WebhookEndpointError, match="metadata"):
        endpoints.create_endpoint("http://169.254.169.254/")


def test_private_networks_are_allowed_in_tests_and_development_but_not_by_default_in_production(app):
    from config import build_config

    assert app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is True
    assert build_config(app.instance_path, "testing")["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is True


@pytest.mark.config(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
def test_production_accepts_only_https(app, fake_dns):
    app.config["APP_ENV"] = "production"
    with pytest.raises(WebhookEndpointError, match="must use https"):
        endpoints.create_endpoint("http://hooks.vendor.example/ecc")
    assert _create().endpoint.url == URL


def test_unknown_event_types_and_long_descriptions_are_refused(app, fake_dns):
    with pytest.raises(WebhookEndpointError, match="Unknown event type mailbox.exploded") as caught:
        endpoints.create_endpoint(URL, event_types=["mailbox.exploded", "mailbox.created"])
    assert caught.value.field == "event_types"
    with pytest.raises(WebhookEndpointError, match="Unknown event type webhook.test"):
        endpoints.create_endpoint(URL, event_types=["webhook.test"])
    with pytest.raises(WebhookEndpointError) as caught:
        endpoints.create_endpoint(URL, description="x" * 501)
    assert caught.value.field == "description"
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_rotation_signs_with_both_secrets_for_24_hours_then_only_the_new_one(app, fake_dns):
    issued = _create()
    before = utcnow()
    new = endpoints.rotate_secret(issued.endpoint)
    db.session.commit()
    assert new.startswith("whsec_") and new != issued.secret
    assert endpoints.signing_secrets(issued.endpoint) == [new, issued.secret]
    assert endpoints.signing_secrets(issued.endpoint, now=before + timedelta(hours=23, minutes=59)) == [new, issued.secret]
    assert endpoints.signing_secrets(issued.endpoint, now=before + timedelta(hours=24, minutes=1)) == [new]
    until = endpoints.previous_secrets_valid_until(issued.endpoint)
    assert timedelta(hours=23, minutes=59) < until - before <= timedelta(hours=24, minutes=1)
    assert "webhook_endpoint.secret_rotated" in _actions()


def test_rotating_again_does_not_extend_an_older_secret(app, fake_dns):
    issued = _create()
    second = endpoints.rotate_secret(issued.endpoint)
    first_expiry = db.session.scalar(select(WebhookSecret.expires_at).order_by(WebhookSecret.id).limit(1))
    third = endpoints.rotate_secret(issued.endpoint)
    db.session.commit()
    rows = db.session.scalars(select(WebhookSecret).order_by(WebhookSecret.id)).all()
    assert rows[0].expires_at == first_expiry and rows[2].expires_at is None
    assert endpoints.signing_secrets(issued.endpoint) == [third, second, issued.secret]


def test_wants_follows_enabled_types_and_organization(app, fake_dns, make_organization):
    acme, other = make_organization(), make_organization()
    everything = _create().endpoint
    failures = _create(event_types=["mailbox.failed"], organization=acme).endpoint
    assert endpoints.wants(everything, "run.started", other.id)
    assert endpoints.wants(everything, "webhook_endpoint.disabled", None)
    assert endpoints.wants(failures, "mailbox.failed", acme.id)
    assert not endpoints.wants(failures, "mailbox.failed", other.id)
    assert not endpoints.wants(failures, "mailbox.authorized", acme.id)
    assert not endpoints.wants(everything, "webhook.test", None)  # sent only where it was asked for
    endpoints.update_endpoint(everything, enabled=False)
    assert not endpoints.wants(everything, "run.started", other.id)


def test_the_console_disabling_an_endpoint_is_audited_and_an_event_once(app, fake_dns, make_organization):
    acme = make_organization()
    endpoint = _create(organization=acme).endpoint
    endpoints.disable(endpoint, "It answered 410 Gone.")
    endpoints.disable(endpoint, "It answered 410 Gone.")
    db.session.commit()
    assert not endpoint.enabled and endpoint.disabled_reason == "It answered 410 Gone." and endpoint.disabled_at
    event = db.session.scalar(select(Event))
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1
    assert (event.type, event.organization_id, event.subject_type, event.subject_id) == \
        ("webhook_endpoint.disabled", acme.id, "webhook_endpoint", endpoint.id)
    assert event.data["id"] == str(endpoint.id) and event.data["enabled"] is False
    assert event.data["disabled_reason"] == "It answered 410 Gone." and event.data["url"] == URL
    assert _actions().count("webhook_endpoint.disabled") == 1


def test_a_rolled_back_disable_leaves_no_event(app, fake_dns):
    endpoint = _create().endpoint
    endpoints.disable(endpoint, "Failing for 5 days.")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
    assert db.session.get(WebhookEndpoint, endpoint.id).enabled


def test_turning_an_endpoint_on_again_clears_the_reason_and_the_failing_days(app, fake_dns):
    endpoint = _create().endpoint
    endpoint.failing_since = utcnow() - timedelta(days=5)
    endpoints.disable(endpoint, "Failing for 5 days.")
    changes = endpoints.update_endpoint(endpoint, enabled=True, description="Back")
    db.session.commit()
    assert changes == {"description": "Back", "enabled": True}
    assert endpoint.enabled and endpoint.disabled_reason is None and endpoint.failing_since is None
    assert endpoints.update_endpoint(endpoint, description="Back", url=URL) == {}
    assert _actions().count("webhook_endpoint.updated") == 1


def test_changing_the_url_goes_through_the_guard(app, fake_dns):
    endpoint = _create().endpoint
    with pytest.raises(WebhookEndpointError, match="does not resolve"):
        endpoints.update_endpoint(endpoint, url="https://gone.vendor.example/")
    assert endpoints.update_endpoint(endpoint, url="HTTPS://HOOKS.vendor.example/v2") == \
        {"url": "https://hooks.vendor.example/v2"}


def test_deleting_an_endpoint_removes_its_secrets_and_delivery_log(app, fake_dns):
    endpoint = _create().endpoint
    kept = _create().endpoint
    event = Event(type="run.started", subject_type="run", subject_id=1, data={})
    db.session.add(event)
    db.session.flush()
    for owner in (endpoint, kept):
        delivery = WebhookDelivery(endpoint_id=owner.id, event_id=event.id, event_type=event.type)
        db.session.add(delivery)
        db.session.flush()
        db.session.add(WebhookAttempt(delivery_id=delivery.id, status_code=500))
    db.session.commit()
    endpoints.delete_endpoint(endpoint)
    db.session.commit()
    assert db.session.get(WebhookEndpoint, endpoint.id) is None
    assert db.session.scalars(select(WebhookDelivery.endpoint_id)).all() == [kept.id]
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 1
    assert db.session.scalar(select(func.count()).select_from(WebhookSecret)) == 1
    assert _actions()[-1] == "webhook_endpoint.deleted"


def test_key_rotation_re_encrypts_signing_secrets(app, fake_dns):
    issued = _create()
    old_key = app.config["TOKEN_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, old_key]
    assert keys.rotate_all()["WebhookSecret"] == 1
    db.session.expire_all()
    stored = db.session.scalar(select(WebhookSecret.secret_encrypted))
    assert TokenCipher([new_key]).decrypt(stored) == issued.secret
