"""Helpers for the wizard tests: a wizard ready to connect, and the sandbox's consent page driven over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import g
from flask.testing import FlaskClient

from extensions import db
from models.onboarding import WizardSession
from services.onboarding import wizard as wizards

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
            session["_user_id"] = user.get_id()
    return browser


def point_at_sandbox(app, sandbox) -> None:
    """Make the console talk to the test sandbox, as `make run` does with the demo sandbox."""
    app.config.update(
        SANDBOX_MODE=True,
        SANDBOX_URL=sandbox.url,
        CRONOFY_CLIENT_ID=sandbox.client_id,
        CRONOFY_CLIENT_SECRET=sandbox.client_secret,
    )


def ready_wizard(organization, actor, *, provider="google", data_center="us", scope=FULL_SCOPE,
                 delegated_scope="read_write") -> WizardSession:
    """Return a committed wizard whose choices are complete, at the review step."""
    wizard = wizards.start_wizard(organization, actor=actor)
    wizards.save_provider(wizard, provider=provider, data_center=data_center)
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
