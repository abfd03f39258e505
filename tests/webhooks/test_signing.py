"""Signing: what a receiver verifies with the Standard Webhooks reference library, rotation included."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from extensions import db
from models.base import utcnow
from models.event import Event
from services.webhooks import endpoints, signing

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


def _event(**overrides) -> Event:
    fields = {"id": 4711, "type": "mailbox.authorized", "organization_id": 42, "subject_type": "mailbox",
              "subject_id": 1001, "subject_external_id": "user_88",
              "data": {"id": "1001", "external_id": "user_88", "status": "authorized", "name": "Ana Silva"},
              "created_at": datetime(2026, 12, 1, 10, 3, 0, 123456, tzinfo=UTC)}
    return Event(**{**fields, **overrides})


def test_the_body_is_the_events_envelope_and_its_id_is_the_webhook_id():
    event = _event()
    body = signing.body(event)
    assert json.loads(body) == {
        "id": "4711", "type": "mailbox.authorized", "timestamp": "2026-12-01T10:03:00Z", "organization_id": "42",
        "subject": {"type": "mailbox", "id": "1001", "external_id": "user_88"},
        "data": {"id": "1001", "external_id": "user_88", "status": "authorized", "name": "Ana Silva"},
    }
    assert " " not in body.replace("Ana Silva", "")  # compact: what is signed is exactly what is sent
    headers = signing.headers(signing.webhook_id(event), utcnow(), body, [SECRET])
    assert headers["webhook-id"] == json.loads(body)["id"] == "4711"


def test_the_reference_verifier_accepts_the_headers_and_rejects_any_change():
    body, sent_at = signing.body(_event()), utcnow()
    headers = signing.headers("4711", sent_at, body, [SECRET])
    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(body, headers)["id"] == "4711"
    for tampered_body, tampered in ((body.replace("authorized", "revoked"), {}), (body, {"webhook-id": "4712"}),
                                    (body, {"webhook-timestamp": str(int(sent_at.timestamp()) + 1)})):
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(tampered_body, {**headers, **tampered})
    other = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_as_the_specification_says():
    sent_at = datetime(2026, 12, 3, 12, 0, 0, 900000, tzinfo=UTC)
    headers = signing.headers("4711", sent_at, '{"a":1}', [SECRET])
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"4711.{int(sent_at.timestamp())}.{{\"a\":1}}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"


def test_a_stale_attempt_is_refused_by_the_receiver_so_each_retry_is_signed_afresh():
    body = signing.body(_event())
    stale = signing.headers("4711", utcnow() - timedelta(minutes=10), body, [SECRET])
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body, stale)


def test_nothing_is_sent_unsigned():
    with pytest.raises(ValueError):
        signing.headers("4711", utcnow(), "{}", [])


def test_during_rotation_each_secret_verifies_on_its_own(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", True)
    issued = endpoints.create_endpoint("http://127.0.0.1:9/hooks")
    db.session.commit()
    new = endpoints.rotate_secret(issued.endpoint)
    db.session.commit()
    active = endpoints.signing_secrets(issued.endpoint)
    assert active == [new, issued.secret]
    body = signing.body(_event())
    headers = signing.headers("4711", utcnow(), body, active)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    # A receiver still on the old secret and one already on the new one both accept it.
    assert Webhook(issued.secret).verify(body, headers) and Webhook(new).verify(body, headers)
    # After the 24 hours only the new secret signs: the old one no longer verifies.
    later = endpoints.signing_secrets(issued.endpoint, utcnow() + timedelta(hours=24, minutes=1))
    headers = signing.headers("4711", utcnow(), body, later)
    assert Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(issued.secret).verify(body, headers)
