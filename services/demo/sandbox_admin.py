"""What the demo asks of the sandbox over HTTP: its directory, and the consent page approved as the domain admin.

The sandbox is a separate application (docs/sandbox.md); the console meets it over HTTP only. Its admin
endpoints need no login and exist only in the sandbox, so nothing here runs against Cronofy itself.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from flask import current_app

from services.platform import upstream

AUTHORIZE_PATH = "/enterprise_connect/oauth/authorize"  # §3.1, the app host's consent page
TIMEOUT = 10


class SandboxUnavailable(RuntimeError):
    """The sandbox does not answer (yet): the demo waits and tries again."""


class SandboxRefused(RuntimeError):
    """The sandbox answered, but not as a demo step needs; the message says what it answered."""


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the sandbox is on this machine: never through a proxy
    return session


def _base_url() -> str:
    return current_app.config["SANDBOX_URL"].rstrip("/")


def _get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    try:
        return session.get(url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise SandboxUnavailable(f"The sandbox at {_base_url()} does not answer ({type(exc).__name__}).") from exc


def directory(domain: str, *, kind: str, trait: str, limit: int) -> list[dict]:
    """Return up to limit members of domain's directory of this kind and trait ("none": they succeed).

    :raises SandboxUnavailable: when the sandbox does not answer.
    """
    params = {"domain": domain, "kind": kind, "trait": trait, "limit": max(1, min(limit, 1000))}
    with _http() as session:
        response = _get(session, f"{_base_url()}/sandbox/admin/directory.json", params=params)
    if response.status_code != 200:
        raise SandboxRefused(f"The sandbox's directory answered HTTP {response.status_code}.")
    return response.json()["members"][:limit]


def approve_consent(*, data_center: str, params: dict[str, str], domain: str, provider: str) -> dict[str, str]:
    """Open the consent page with params and approve it for domain; return the query sent back (code, state).

    :raises SandboxUnavailable: when the sandbox does not answer.
    :raises SandboxRefused: when the page is refused or sends back an error.
    """
    target = upstream.upstream(data_center)
    url = f"{target.app_url}{AUTHORIZE_PATH}"
    query = {"response_type": "code", "client_id": target.client_id, **params}
    with _http() as session:
        page = _get(session, url, params=query, allow_redirects=False)
        if page.status_code != 200:
            raise SandboxRefused(f"The sandbox's consent page answered HTTP {page.status_code}.")
        form = {**query, "decision": "approve", "domain": domain, "provider": provider}
        try:
            answer = session.post(url, data=form, allow_redirects=False, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise SandboxUnavailable(f"The sandbox stopped answering ({type(exc).__name__}).") from exc
    if answer.status_code != 302:
        raise SandboxRefused(f"Approving the consent page answered HTTP {answer.status_code}.")
    back = {key: values[0] for key, values in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    if "error" in back:
        raise SandboxRefused(f"The consent page sent back {back['error']}.")
    return back
