"""One HTTP exchange with the upstream: budget hook, timeouts, logging, typed errors, retries.

Only method, path, status and elapsed time are logged (at DEBUG); query values
of token-like parameters are masked and request/response bodies never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from .errors import REDACTED, CronofyError, UnavailableError, error_for_response, scrub
from .retry import RetryPolicy

log = logging.getLogger("services.cronofy")

T = TypeVar("T")
Observe = Callable[[requests.Response], requests.Response]
Send = Callable[[Observe], T]

_SENSITIVE_PARAMS = frozenset({"token", "access_token", "refresh_token", "code", "client_secret", "sub"})


class Transport:
    """Run sends through the budget hook, the retry policy and the error mapping."""

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        before_request: Callable[[], object] | None,
        client_secret: str,
    ) -> None:
        self._retry = retry
        self._before_request = before_request
        self._client_secret = client_secret

    def execute(
        self,
        method: str,
        url: str,
        send: Send[T],
        *,
        idempotent: bool,
        secrets: Iterable[str | None] = (),
    ) -> T:
        """Send (and resend per the policy) until success or a final typed error.

        ``send`` performs one HTTP request and must pass its response to the
        ``observe`` callback it receives, which logs it and raises on non-2xx.
        """
        secrets = (self._client_secret, *secrets)
        attempt = 1
        while True:
            try:
                return self._once(method, url, send, secrets)
            except _Failure as failure:
                may_resend = idempotent or failure.never_sent
                delay = self._retry.delay_for(failure.error, attempt, may_resend=may_resend)
                if delay is None:
                    raise failure.error from None
            log.info("Retrying %s %s in %.2f s (attempt %d)", method, loggable_path(url), delay, attempt + 1)
            self._retry.sleep(delay)
            attempt += 1

    def _once(self, method: str, url: str, send: Send[T], secrets: tuple[str | None, ...]) -> T:
        if self._before_request is not None:
            self._before_request()
        started = time.monotonic()
        path = loggable_path(url)

        def observe(response: requests.Response) -> requests.Response:
            log.debug("%s %s -> %s in %.0f ms", method, path, response.status_code, _ms(started))
            if not 200 <= response.status_code < 300:
                raise _Failure(_response_error(response, secrets))
            return response

        try:
            return send(observe)
        except requests.RequestException as exc:
            log.debug("%s %s -> %s after %.0f ms", method, path, type(exc).__name__, _ms(started))
            raise _Failure(_transport_error(exc, secrets), never_sent=_never_sent(exc)) from None


class _Failure(Exception):
    """Carry a typed error out of one attempt, with whether the request never left."""

    def __init__(self, error: CronofyError, *, never_sent: bool = False) -> None:
        super().__init__(error.description)
        self.error = error
        self.never_sent = never_sent


def loggable_path(url: str, params: dict[str, Any] | None = None) -> str:
    """Return the path and query of url with token-like query values masked."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True) + list((params or {}).items())
    query = "&".join(f"{k}={REDACTED if k in _SENSITIVE_PARAMS else v}" for k, v in pairs)
    return f"{parts.path}?{query}" if query else parts.path


def read_json(response: requests.Response) -> Any:
    """Return the JSON body of a 2xx response, or raise UnavailableError if unreadable."""
    try:
        return response.json()
    except ValueError:
        raise UnavailableError(
            f"Cronofy answered HTTP {response.status_code} with a body that is not JSON.",
            status=response.status_code,
            error_key="malformed_response",
        ) from None


def read_object(response: requests.Response) -> dict[str, Any]:
    """Return the JSON object of a 2xx response, or raise UnavailableError."""
    payload = read_json(response)
    if not isinstance(payload, dict):
        raise UnavailableError("Cronofy answered with JSON that is not an object.", error_key="malformed_response")
    return payload


def read_list(payload: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Return the list of objects under key, or raise UnavailableError if it is missing."""
    items = payload.get(key)
    if not isinstance(items, list):
        raise UnavailableError(f"Cronofy's answer lacks the {key!r} list.", error_key="malformed_response")
    return [item for item in items if isinstance(item, dict)]


def _response_error(response: requests.Response, secrets: tuple[str | None, ...]) -> CronofyError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return error_for_response(
        response.status_code,
        payload,
        retry_after=response.headers.get("Retry-After"),
        secrets=secrets,
    )


def _transport_error(exc: requests.RequestException, secrets: tuple[str | None, ...]) -> UnavailableError:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
    return UnavailableError(
        scrub(f"The request to Cronofy {kind}: {type(exc).__name__}: {exc}", secrets),
        error_key="timeout" if isinstance(exc, requests.Timeout) else "connection_error",
    )


def _never_sent(exc: requests.RequestException) -> bool:
    # A connect timeout or a refused connection means no byte of the request
    # reached the upstream, so even a single-use code may be sent again.
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
