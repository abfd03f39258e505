"""Typed errors of the Cronofy client (§4 of docs/cronofy-api.md).

Every error carries the HTTP ``status`` (None when no response arrived), the
upstream ``error_key`` (e.g. ``invalid_grant``), a human ``description`` and,
for 422, the upstream ``errors`` dict. None of them ever holds a token, a code
or the client secret: the client scrubs the secrets of the request out of
anything the upstream sends back before building the error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

REDACTED = "[redacted]"


class CronofyError(Exception):
    """Base class of every error raised by the Cronofy client."""

    default_description = "The Cronofy request failed."

    def __init__(
        self,
        description: str | None = None,
        *,
        status: int | None = None,
        error_key: str | None = None,
        errors: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.error_key = error_key
        self.description = description or self.default_description
        self.errors = dict(errors or {})
        super().__init__(str(self))

    def __str__(self) -> str:
        details = [f"HTTP {self.status}" if self.status else None, self.error_key]
        suffix = ", ".join(d for d in details if d)
        return f"{self.description} ({suffix})" if suffix else self.description

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_key={self.error_key!r}, "
            f"description={self.description!r})"
        )


class AuthenticationError(CronofyError):
    """401: the token or the client credentials were not recognised."""

    default_description = "Cronofy did not recognise the credentials (expired or revoked token?)."


class InvalidGrantError(CronofyError):
    """400 invalid_grant: the code or refresh token is unknown, used or expired."""

    default_description = "The authorization is no longer valid; it must be granted again."


class ForbiddenError(CronofyError):
    """403: the credentials are valid but lack the scope the call needs."""

    default_description = "The authorization lacks the scope this call needs."


class InvalidRequestError(CronofyError):
    """400 (other than invalid_grant), 422 and other 4xx: the request was invalid."""

    default_description = "Cronofy rejected the request as invalid."


class PaymentRequiredError(CronofyError):
    """402: the Cronofy plan does not include the feature."""

    default_description = "The Cronofy plan does not include this feature."


class NotFoundError(CronofyError):
    """404: the resource does not exist."""

    default_description = "Cronofy could not find the resource."


class AccountLockedError(CronofyError):
    """423: Cronofy has no working provider credentials for the account."""

    default_description = "The calendar connection is broken; the admin must reconnect it."


class RateLimitedError(CronofyError):
    """429: the application went over its rate limit."""

    default_description = "Cronofy rate limit exceeded."

    def __init__(self, description: str | None = None, *, retry_after: float | None = None, **kw: Any):
        self.retry_after = retry_after
        super().__init__(description, **kw)


class UnavailableError(CronofyError):
    """5xx, timeouts, connection errors and malformed bodies: try again later."""

    default_description = "Cronofy is unavailable or answered with something unreadable."


_BY_STATUS: dict[int, type[CronofyError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
    422: InvalidRequestError,
    423: AccountLockedError,
    429: RateLimitedError,
}


def error_for_response(
    status: int,
    payload: Any,
    *,
    retry_after: str | None = None,
    secrets: Iterable[str | None] = (),
) -> CronofyError:
    """Build the typed error of a non-2xx response, with every secret scrubbed."""
    body = payload if isinstance(payload, dict) else {}
    error_key = _text(body.get("error") or body.get("error_key"))
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    if not error_key and errors:
        error_key = _first_error_key(errors)
    description = _text(body.get("error_description") or body.get("description"))
    description = description or _summarise(errors)
    cls = _error_class(status, error_key)
    kwargs: dict[str, Any] = {
        "status": status,
        "error_key": scrub(error_key, secrets),
        "errors": scrub_tree(errors, secrets),
    }
    if cls is RateLimitedError:
        kwargs["retry_after"] = parse_retry_after(retry_after)
    return cls(scrub(description, secrets), **kwargs)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After header asks to wait (delta-seconds or HTTP-date)."""
    if not value or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def scrub(text: str | None, secrets: Iterable[str | None]) -> str | None:
    """Replace every non-empty secret found in text with a marker."""
    if not text:
        return text
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def scrub_tree(value: Any, secrets: Iterable[str | None]) -> Any:
    """Scrub secrets out of every string nested in dicts and lists."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_tree(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_tree(item, secrets) for item in value]
    return value


def _error_class(status: int, error_key: str | None) -> type[CronofyError]:
    if status == 400 and error_key == "invalid_grant":
        return InvalidGrantError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidRequestError
    return UnavailableError


def _first_error_key(errors: dict[str, Any]) -> str | None:
    # §4: 422 bodies look like {"errors": {"email": [{"key": "errors.required", ...}]}}.
    for entries in errors.values():
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            return _text(entries[0].get("key"))
    return None


def _summarise(errors: dict[str, Any]) -> str | None:
    parts = []
    for field_name, entries in errors.items():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                parts.append(f"{field_name}: {entry.get('description') or entry.get('key')}")
    return "; ".join(parts) or None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
