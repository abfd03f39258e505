"""Helpers for the wizard tests: a wizard ready to connect, and the sandbox's consent page driven over HTTP."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

from flask import g
from flask.testing import FlaskClient

from extensions import db
from models.connection import Connection
from models.onboarding import WizardSession
from services.onboarding import wizard as wizards
from tests.helpers import put_signed_in

FULL_SCOPE = "service_account/accounts/manage service_account/resources/manage"


class FreshClient(FlaskClient):
    """A second browser: forgets the user Flask-Login cached in `g`, which the test's one app context shares."""

    def open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


def other_browser(app, user=None) -> FreshClient:
    """Return a client with its own cookies, signed in as user (or nobody)."""
    browser = FreshClient(app, app.response_class, use_cookies=True)
    if user is not None:
        with browser.session_transaction() as session:
            put_signed_in(session, user)
    return browser


def point_at_sandbox(app, sandbox) -> None:
    """Make the console talk to the test sandbox, as `make run` does with the demo sandbox."""
    app.config.update(
        SANDBOX_MODE=True,
        SANDBOX_URL=sandbox.url,
        CRONOFY_CLIENT_ID=sandbox.client_id,
        CRONOFY_CLIENT_SECRET=sandbox.client_secret,
    )


def ready_wizard(organization, actor, *, provider="google", scope=FULL_SCOPE,
                 delegated_scope="read_write") -> WizardSession:
    """Return a committed wizard whose choices are complete, at the review step (in the organization's data center)."""
    wizard = wizards.start_wizard(organization, actor=actor)
    wizards.save_provider(wizard, provider=provider)
    wizards.save_checklist(wizard, [])
    wizards.save_scopes(wizard, scope=scope, delegated_scope=delegated_scope)
    db.session.commit()
    return wizard


def wizard_url(wizard, step: str) -> str:
    return f"/orgs/{wizard.organization_id}/wizard/{wizard.id}/{step}"


def query(url: str) -> dict[str, str]:
    """Return the query parameters of url, one value each."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def start_consent(client, wizard) -> str:
    """Press Connect and return the consent page address the console redirects to."""
    response = client.post(wizard_url(wizard, "connect"))
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def decide(sandbox, authorize_url: str, decision: str = "approve", domain: str = "acme.example") -> str:
    """Answer the sandbox's consent page as the customer's administrator; return the path we are sent back to."""
    assert authorize_url.startswith(f"{sandbox.url}/enterprise_connect/oauth/authorize?")
    form = {**query(authorize_url), "decision": decision, "domain": domain}
    response = sandbox.http.post(f"{sandbox.url}/enterprise_connect/oauth/authorize", data=form,
                                 allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    back = urlsplit(response.headers["Location"])
    return f"{back.path}?{back.query}"


def connect_through_sandbox(client, sandbox, wizard, **kwargs):
    """Walk Connect → consent page → back; return the console's response to the return address."""
    return client.get(decide(sandbox, start_consent(client, wizard), **kwargs))


def connected(client, sandbox, admin) -> Connection:
    """Connect acme.example through the sandbox as admin and return the active connection."""
    wizard = ready_wizard(admin.organization, admin)
    assert connect_through_sandbox(client, sandbox, wizard, domain="acme.example").status_code == 302
    db.session.refresh(wizard)
    return wizard.connection


def reconnect_wizard(admin, connection: Connection) -> WizardSession:
    """Return a committed wizard that re-authorizes connection, at the review step."""
    wizard = wizards.start_wizard(admin.organization, actor=admin, reconnect=connection)
    db.session.commit()
    return wizard


CONNECTION_FIELDS = ("status", "domain", "service_account_id", "provider", "access_token_encrypted",
                     "refresh_token_encrypted", "access_token_expires_at", "granted_scope",
                     "granted_delegated_scope", "connected_by_id", "connected_at")


def connection_state(connection: Connection) -> dict:
    """Return what a refused consent must leave as it was: the connection's tokens, status, domain and grant."""
    db.session.expire_all()
    row = db.session.get(Connection, connection.id)
    return {field: getattr(row, field) for field in CONNECTION_FIELDS}


def in_another_request(app, work) -> None:
    """Run work() and commit, in a thread with its own app context and session, as a concurrent request would."""
    failures = []

    def run():
        with app.app_context():
            try:
                work()
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - handed back to the test below
                failures.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not failures, failures


class InterruptedExchange:
    """An upstream client that runs `interrupt` right after Cronofy answered the code exchange."""

    def __init__(self, client, interrupt):
        self._client, self._interrupt = client, interrupt

    def __enter__(self):
        self._client.__enter__()
        return self

    def __exit__(self, *exc):
        return self._client.__exit__(*exc)

    def exchange_code(self, code, redirect_uri):
        tokens = self._client.exchange_code(code, redirect_uri)
        self._interrupt()
        return tokens

    def __getattr__(self, name):
        return getattr(self._client, name)


def during_the_exchange(monkeypatch, interrupt) -> None:
    """Make the console's next code exchanges run interrupt() between Cronofy's answer and the recording."""
    from services.platform import upstream

    real = upstream.client_for
    monkeypatch.setattr(upstream, "client_for", lambda *a, **k: InterruptedExchange(real(*a, **k), interrupt))


def service_accounts(sandbox, **filters) -> list[dict]:
    """Return the sandbox's service-account records, newest first (filters: domain, status)."""
    response = sandbox.http.get(f"{sandbox.url}/sandbox/admin/service-accounts.json", params=filters, timeout=10)
    response.raise_for_status()
    return response.json()["service_accounts"]
