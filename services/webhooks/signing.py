"""What a webhook carries: the event's envelope as the body, and the Standard Webhooks headers that sign it.

The body is the event exactly as the events API shows it (`id`, `type`, `timestamp`, `organization_id`,
`subject`, `data`), serialized once into compact JSON: the signature covers these exact bytes, and the
sender posts the same bytes it signed. `webhook-id` is the event's id, the same string as the body's
`id` and as the events API's, so a receiver that pulls and is pushed the same event recognizes it, and
every retry or redelivery of one event carries one id (receivers deduplicate by it).

`webhook-timestamp` is the attempt's time, not the event's: a retry is signed afresh, so receivers can
refuse stale replays (the reference verifier allows 5 minutes). The `webhook-signature` header lists
one `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per active secret, newest first, so a receiver
that has not yet switched to a rotated secret still verifies with the old one. Signing is done by the
specification's reference implementation (`standardwebhooks`), not by hand.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

from models.event import Event

CONTENT_TYPE = "application/json"
USER_AGENT = "EnterpriseConnectConsole-Webhooks/1"


def webhook_id(event: Event) -> str:
    """Return the event's id as webhooks and the events API show it (a string)."""
    return str(event.id)


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


def envelope(event: Event) -> dict:
    """Return the event as the events API and the webhook body show it."""
    return {
        "id": webhook_id(event),
        "type": event.type,
        "timestamp": _timestamp(event.created_at),
        "organization_id": _id(event.organization_id),
        "subject": {"type": event.subject_type, "id": _id(event.subject_id),
                    "external_id": event.subject_external_id},
        "data": event.data or {},
    }


def body(event: Event) -> str:
    """Return the webhook body: the envelope as compact JSON (what is signed is exactly what is sent)."""
    return json.dumps(envelope(event), separators=(",", ":"), ensure_ascii=False, default=str)


def signature(msg_id: str, sent_at: datetime, payload: str, secrets: Sequence[str]) -> str:
    """Return the `webhook-signature` value: one `v1,<base64>` per secret, space-separated.

    :raises ValueError: without any secret (an endpoint always has one; sending unsigned is never right).
    """
    if not secrets:
        raise ValueError("the endpoint has no active signing secret")
    # The reference signer reads the time as UTC whatever its zone says: hand it UTC.
    at = sent_at.astimezone(UTC)
    return " ".join(Webhook(secret).sign(msg_id, at, payload) for secret in secrets)


def headers(msg_id: str, sent_at: datetime, payload: str, secrets: Sequence[str]) -> dict[str, str]:
    """Return the headers of one attempt: content type, the three `webhook-*` headers, a user agent."""
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature(msg_id, sent_at, payload, secrets),
    }
