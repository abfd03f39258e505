"""The Cronofy (or sandbox) upstream client: plain Python, requests and Authlib, no Flask.

Every method is named after the upstream operation it performs (docs/cronofy-api.md
§3) and returns small frozen dataclasses. Errors are the typed ones of
``services.cronofy.errors``.

Retries. One ``RetryPolicy`` governs every call, and every attempt first calls
``before_request`` (where the shared rate budget blocks):

- Connection errors, timeouts and 5xx are retried only for idempotent requests:
  the GETs, ``revoke`` and ``revoke_profile`` (revoking twice is harmless, §3.7).
- ``exchange_code``, ``refresh_access_token`` and ``request_delegated_access``
  are NOT retried after a timeout or a 5xx: the upstream may have acted before
  failing to answer. A code is single-use (§3.1), so resending an exchange that
  in fact succeeded would burn it and lose the tokens; a refresh may have rotated
  the refresh token (§3.6); a delegated request would trigger a second callback
  (§3.3). They raise ``UnavailableError`` and the caller decides (e.g. check the
  mailbox state, then re-request). They are resent only when provably unsent
  (connect timeout, refused connection) or on 429, which the upstream refuses
  before doing anything.
- 429 is retried honouring ``Retry-After`` when present (§5 says it is not
  documented, so full-jitter backoff otherwise); a Retry-After longer than
  ``max_delay`` is raised as ``RateLimitedError`` for the caller to schedule.
- ``RetryPolicy(max_attempts=1)`` disables retries entirely.

Secrets. Tokens, codes and the client secret never appear in logs, in error
messages or in reprs; only method, path, status and elapsed time are logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from .errors import UnavailableError, error_for_response
from .hosts import Upstream
from .models import (
    Calendar,
    DelegatedRequest,
    FreeBusyPeriod,
    Resource,
    TokenSet,
    UserInfo,
    parse_calendar,
    parse_free_busy,
    parse_resource,
    parse_token_set,
    parse_userinfo,
)
from .retry import RetryPolicy
from .transport import Observe, Transport, read_list, read_object

MAX_DELEGATED_BATCH = 50


class CronofyClient:
    """Talk to one upstream (a Cronofy data center or the sandbox) for one application."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy = RetryPolicy(),
        before_request: Callable[[], object] | None = None,
    ) -> None:
        self.upstream = upstream
        self._owns_session = session is None
        self._session = session or environment_session(upstream.api_url)
        self._transport = Transport(
            retry=retry, before_request=before_request, client_secret=upstream.client_secret
        )

    def __repr__(self) -> str:
        return f"CronofyClient(api_url={self.upstream.api_url!r}, client_id={self.upstream.client_id!r})"

    def __enter__(self) -> CronofyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    # -- OAuth (§3.1, §3.2, §3.3.2, §3.6, §3.7.1) ---------------------------------

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        scope: str | Sequence[str],
        delegated_scope: str | Sequence[str],
        state: str,
        provider_name: str | None = None,
    ) -> str:
        """Return the Enterprise Connect authorize URL to send the domain admin to (§3.1)."""
        params = {
            "response_type": "code",
            "client_id": self.upstream.client_id,
            "redirect_uri": redirect_uri,
            "scope": _spaced(scope),
            "delegated_scope": _spaced(delegated_scope),
            "state": state,
        }
        if provider_name:
            # §3.1: undocumented for EC; sent only when the caller asks for it.
            params["provider_name"] = provider_name
        query = urlencode(params, quote_via=quote)
        return f"{self.upstream.app_url}/enterprise_connect/oauth/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Swap an authorization or delegated-access code for tokens (§3.2, §3.3.2).

        For a delegated code, ``redirect_uri`` is the exact ``callback_url`` of the request.
        Never retried after a timeout or 5xx (see the module docstring).
        """
        payload = self._token_grant(
            "authorization_code", secrets=(code,), code=code, redirect_uri=redirect_uri
        )
        return parse_token_set(payload)

    def refresh_access_token(self, refresh_token: str) -> TokenSet:
        """Get a fresh access token; always persist the refresh token returned (§3.6)."""
        payload = self._token_grant(
            "refresh_token", secrets=(refresh_token,), refresh_token=refresh_token
        )
        tokens = parse_token_set(payload)
        if tokens.refresh_token is None:
            # §3.6: rotation is optional; without a new one the old one stays valid.
            tokens = replace(tokens, refresh_token=refresh_token)
        return tokens

    def revoke(self, *, token: str | None = None, sub: str | None = None) -> None:
        """Revoke an authorization by token (refresh token preferred) or by sub (§3.7.1)."""
        if not token and not sub:
            raise ValueError("revoke() needs a token or a sub")
        body = {"client_id": self.upstream.client_id, "client_secret": self.upstream.client_secret}
        # §3.7.1: token wins when both are given, so send only one.
        body.update({"token": token} if token else {"sub": sub})
        self._call("POST", "/oauth/token/revoke", json=body, idempotent=True, secrets=(token,))

    # -- Service account (§3.3, §3.8, §3.9) ---------------------------------------

    def userinfo(self, access_token: str) -> UserInfo:
        """Describe the service account or account behind a token (§3.8)."""
        response = self._call("GET", "/v1/userinfo", token=access_token, idempotent=True)
        return parse_userinfo(read_object(response))

    def list_resources(
        self, sa_token: str, include_details: Sequence[str] = ("capacity", "location")
    ) -> list[Resource]:
        """List the tenant's room, equipment and shared-mailbox calendars (§3.9)."""
        params = {"include_details": " ".join(include_details)} if include_details else None
        response = self._call("GET", "/v1/resources", token=sa_token, params=params, idempotent=True)
        items = read_list(read_object(response), "resources")
        return [r for r in (parse_resource(i) for i in items) if r is not None]

    def request_delegated_access(self, sa_token: str, items: Sequence[DelegatedRequest]) -> None:
        """Ask for delegated access to 1..50 mailboxes; the results arrive as callbacks (§3.3).

        :raises ValueError: for an empty batch or more than 50 items.
        """
        if not 1 <= len(items) <= MAX_DELEGATED_BATCH:
            raise ValueError(f"request_delegated_access takes 1 to {MAX_DELEGATED_BATCH} items, got {len(items)}")
        if len(items) == 1:
            body: dict[str, Any] = items[0].as_body()
        else:
            body = {"service_account_authorizations": [item.as_body() for item in items]}
        self._call(
            "POST", "/v1/service_account_authorizations", token=sa_token, json=body, idempotent=False
        )

    # -- Account (§3.7.2 and the calls that prove a token works) ------------------

    def list_calendars(self, account_token: str) -> list[Calendar]:
        """List the calendars of an account."""
        response = self._call("GET", "/v1/calendars", token=account_token, idempotent=True)
        items = read_list(read_object(response), "calendars")
        return [c for c in (parse_calendar(i) for i in items) if c is not None]

    def free_busy(
        self, account_token: str, from_: date | str, to: date | str, *, tzid: str = "Etc/UTC"
    ) -> list[FreeBusyPeriod]:
        """List the busy periods of an account between two dates, following every page."""
        params: dict[str, str] | None = {"from": _iso(from_), "to": _iso(to), "tzid": tzid}
        url = f"{self.upstream.api_url}/v1/free_busy"
        periods: list[FreeBusyPeriod] = []
        while url:
            response = self._call_url("GET", url, token=account_token, params=params, idempotent=True)
            payload = read_object(response)
            periods += [parse_free_busy(i) for i in read_list(payload, "free_busy")]
            url, params = self._next_page(payload), None
        return periods

    def revoke_profile(self, account_token: str, profile_id: str) -> None:
        """Drop access to one calendar profile of an account; the account stays (§3.7.2)."""
        path = f"/v1/profiles/{quote(profile_id, safe='')}/revoke"
        self._call("POST", path, token=account_token, idempotent=True)

    # -- Plumbing -------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._call_url(method, f"{self.upstream.api_url}{path}", **kwargs)

    def _call_url(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        token: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        secrets: Sequence[str | None] = (),
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"

        def send(observe: Observe) -> requests.Response:
            return observe(self._session.request(
                method, url, headers=headers, json=json, params=params,
                timeout=self.upstream.timeout, allow_redirects=False,
            ))

        return self._transport.execute(
            method, url, send, idempotent=idempotent, secrets=(token, *secrets)
        )

    def _token_grant(self, grant_type: str, *, secrets: Sequence[str], **fields: str) -> dict[str, Any]:
        url = f"{self.upstream.api_url}/oauth/token"

        def send(observe: Observe) -> dict[str, Any]:
            oauth = self._oauth_session()
            oauth.register_compliance_hook("access_token_response", observe)
            try:
                return dict(oauth.fetch_token(
                    url, grant_type=grant_type, timeout=self.upstream.timeout,
                    allow_redirects=False, **fields,
                ))
            except ValueError:
                # Authlib: a 2xx whose body is not a JSON object.
                raise UnavailableError(
                    "The token response was not a JSON object.", error_key="malformed_response"
                ) from None
            except OAuthError as exc:
                # A 2xx carrying an RFC 6749 "error": judge it as the 400 it means.
                body = {"error": exc.error, "error_description": exc.description}
                raise error_for_response(400, body, secrets=(*secrets, self.upstream.client_secret)) from None

        return self._transport.execute("POST", url, send, idempotent=False, secrets=secrets)

    def _oauth_session(self) -> OAuth2Session:
        # A fresh OAuth2Session per grant: Authlib keeps the last token on the
        # session, which concurrent grants on a shared one would mix up. The
        # adapters (connection pools) are shared with the client's session.
        oauth = OAuth2Session(
            client_id=self.upstream.client_id,
            client_secret=self.upstream.client_secret,
            token_endpoint_auth_method="client_secret_post",
        )
        for prefix, adapter in self._session.adapters.items():
            oauth.mount(prefix, adapter)
        oauth.trust_env, oauth.proxies, oauth.verify = (
            self._session.trust_env, self._session.proxies, self._session.verify)
        return oauth

    def _next_page(self, payload: dict[str, Any]) -> str | None:
        pages = payload.get("pages")
        next_page = pages.get("next_page") if isinstance(pages, dict) else None
        if not isinstance(next_page, str) or not next_page:
            return None
        # Never send the bearer token to a host other than the upstream's.
        if not next_page.startswith(f"{self.upstream.api_url}/"):
            raise UnavailableError("Cronofy pointed the next page at another host.", error_key="malformed_response")
        return next_page


def environment_session(url: str) -> requests.Session:
    """Return a requests session with the environment's proxy and CA-bundle settings for url, read once.

    requests would otherwise look them up (and search for a ~/.netrc) on every request, which costs
    about as much CPU as the rest of a token request; the environment does not change while the
    process runs, and a credential from ~/.netrc has no business on a call to Cronofy anyway.
    """
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


def _spaced(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else " ".join(value)


def _iso(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()
