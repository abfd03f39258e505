"""Authlib's Flask client for the browser half of the consent flow (§3.1).

One client is registered per upstream (a data center's app host, or the sandbox), with
client_secret_post as Cronofy wants it (§2). Authlib builds the authorize URL and keeps the
`state` in the signed browser session; `take_state` reads it back once and forgets it, so a
reply is only accepted in the session that started it. The code exchange itself goes through
`services.cronofy` (explicit timeouts, typed errors, no token in any log).
"""

from __future__ import annotations

import hashlib

from flask import current_app, session

from extensions import oauth
from services.cronofy import Upstream
from services.platform import upstream

AUTHORIZE_PATH = "/enterprise_connect/oauth/authorize"


def _client_name(target: Upstream) -> str:
    # The name ends up in session keys: derive it from public values only, never from the secret.
    digest = hashlib.sha256(f"{target.app_url}|{target.api_url}|{target.client_id}".encode()).hexdigest()
    return f"cronofy_{digest[:16]}"


def consent_client(data_center: str):
    """Return the Authlib client of data_center's upstream, registering it on first use.

    :raises upstream.UpstreamConfigError: for an unknown data center.
    """
    target = upstream.upstream(data_center)
    name = _client_name(target)
    client = oauth.create_client(name)
    if client is None:
        client = oauth.register(
            name,
            client_id=target.client_id,
            client_secret=target.client_secret,
            authorize_url=f"{target.app_url}{AUTHORIZE_PATH}",
            access_token_url=f"{target.api_url}/oauth/token",
            client_kwargs={"token_endpoint_auth_method": "client_secret_post", "timeout": target.timeout},
        )
    return client


def redirect_to_consent(*, data_center: str, state: str, redirect_uri: str, scope: str, delegated_scope: str,
                        provider_name: str | None):
    """Return the redirect to the consent page, with state remembered in this browser's session."""
    params = {"scope": scope, "delegated_scope": delegated_scope}
    if provider_name and current_app.config.get("SANDBOX_MODE"):
        # §3.1: provider_name is undocumented for Enterprise Connect; only the sandbox is known to honour it.
        params["provider_name"] = provider_name
    return consent_client(data_center).authorize_redirect(redirect_uri, state=state, **params)


def take_state(data_center: str, state: str) -> bool:
    """Tell whether this session started the consent with state, and forget it either way (single use)."""
    try:
        client = consent_client(data_center)
    except upstream.UpstreamConfigError:
        return False
    found = client.framework.get_state_data(session, state) is not None
    client.framework.clear_state_data(session, state)
    return found
