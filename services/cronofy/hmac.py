"""Sign and verify the Cronofy-HMAC-SHA256 header of callbacks (§3.11 of docs/cronofy-api.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac as _hmac
from collections.abc import Sequence

HEADER = "Cronofy-HMAC-SHA256"


def sign(body: bytes, secret: str) -> str:
    """Return Base64(HMAC-SHA256(body, secret)), the value Cronofy puts in the header."""
    digest = _hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_hmac(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Return True if any value of the header matches the body signed with any secret.

    §3.11: with several active client secrets the header holds one value per
    secret, comma-separated. Every comparison is constant-time, and every pair is
    compared so the timing does not reveal which value matched.
    """
    if not header:
        return False
    received = [value.strip().encode("ascii", "replace") for value in header.split(",") if value.strip()]
    expected = [sign(body, secret).encode("ascii") for secret in secrets if secret]
    matched = False
    for value in received:
        for candidate in expected:
            matched |= _hmac.compare_digest(value, candidate)
    return matched
