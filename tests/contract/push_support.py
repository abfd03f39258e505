"""Helpers for the sandbox's push notification contract tests: channels, notifications received, HMACs."""

import base64
import hashlib
import hmac
import json
import time

from tests.contract.sandbox_support import bearer, http

# The documented test vector (§3.11): this secret signs this body as this value.
VECTOR_SECRET, VECTOR_BODY = "pDY0Oi7TJSP2hfNmZNkm5", b'{"example":"well-known"}'
VECTOR_HMAC = "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="


def hmac_valid(header, raw, secret):
    """Verify a Cronofy-HMAC-SHA256 header as a receiver must: any comma-separated value matching (§3.11)."""
    expected = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
    return any(hmac.compare_digest(value.strip().encode(), expected) for value in (header or "").split(","))


def push_url(receiver, name):
    """Return a push notification URL on the receiver, shaped like the console's."""
    return f"{receiver.url}/callbacks/push/tok{name}ABCDEFGHIJKLMNOP"


def open_channel(sandbox, token, callback_url, filters=None):
    """POST /v1/channels with an account token; return the response."""
    payload = {"callback_url": callback_url, **({"filters": filters} if filters is not None else {})}
    return http().post(f"{sandbox.url}/v1/channels", json=payload, headers=bearer(token))


def api(sandbox, method, path, token):
    """Call the API with a bearer token; return the response."""
    return http().request(method, f"{sandbox.url}{path}", headers=bearer(token))


def admin(sandbox, action, **payload):
    """POST an admin action as JSON; return the response."""
    return http().post(f"{sandbox.url}/sandbox/admin/{action}", json=payload, timeout=10)


def notifications(receiver, url, kind=None):
    """Return (body, received) of the notifications that reached one URL, in arrival order."""
    path = url.replace(receiver.url, "")
    found = [(json.loads(r["raw"]), r) for r in list(receiver.received) if r["path"] == path]
    return [(b, r) for b, r in found if kind is None or b["notification"]["type"] == kind]


def wait_notifications(receiver, url, kind, count=1, timeout=10.0):
    """Wait until `count` notifications of `kind` reached `url`; return their bodies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = notifications(receiver, url, kind)
        if len(found) >= count:
            return [body for body, _ in found]
        time.sleep(0.02)
    raise AssertionError(f"expected {count} {kind} notifications at {url}, got {len(notifications(receiver, url, kind))}")
