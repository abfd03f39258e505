"""Registry of the routes whose URL carries a one-time secret, for the secret-logging and link-privacy sweeps.

The sweeps visit every rule of `app.url_map` with a `<secret:...>` argument. For each one they need a
real, usable secret, and (when the rule takes POST) a request that the route accepts. Register a
factory here when you add such a route: `LINKS["blueprint.endpoint"] = _factory`, where the factory
takes an `Organization`, creates what the link opens (committed) and returns a `Link`. The sweeps fail,
naming the rule, until every secret rule is registered; and no rule may take an argument named like
a secret without the `secret` converter.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from flask import current_app
from sqlalchemy import select

from blueprints.converters import secret_arguments
from extensions import db
from models.authorization import AuthorizationAttempt
from models.mailbox import Mailbox
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN
from services.accounts import invitations, password_reset
from services.cronofy import HMAC_HEADER, sign
from services.engine import attempts, runs
from services.onboarding import setup_links
from tests import factories
from tests.helpers import make_connection, make_mailbox
from tests.web.wizard_helpers import ready_wizard

NEW_PASSWORD = "a brand new passphrase, long enough"
DELEGATED_SCOPE = "read_account list_calendars read_events create_event delete_event read_free_busy"
SECRET_LIKE = re.compile(r"token|secret|code", re.IGNORECASE)
# Routes that exist today: the sweeps must find at least these, so that they cannot pass by finding nothing.
KNOWN_SECRET_ENDPOINTS = frozenset(
    {"auth.accept_invitation", "auth.reset_password", "onboarding.setup_page", "onboarding.setup_connect",
     "callbacks.delegated", "portal.open_link"}
)


@dataclass
class Link:
    """A usable secret for a rule, what a POST to it sends, and the status that says it was accepted."""

    token: str
    post: dict = field(default_factory=dict)
    accepted: int = 302
    opened: int = 200  # what a GET answers (a portal link signs in and redirects)


def token_of(url: str) -> str:
    """Return the last path segment of a link."""
    return url.rstrip("/").rsplit("/", 1)[1]


def _invitation(organization: Organization) -> Link:
    admin = factories.make_org_admin(organization, password=None)
    issued = invitations.create_invitation(email=f"new.{secrets.token_hex(3)}@customer.example", role=ROLE_ORG_ADMIN,
                                           organization=organization, invited_by=admin)
    db.session.commit()
    return Link(token_of(issued.url), {"data": {"name": "Nia New", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}})


def _reset(organization: Organization) -> Link:
    user = factories.make_support_user()
    return Link(token_of(password_reset.reset_url(user)), {"data": {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}})


def _setup_link(organization: Organization) -> Link:
    admin = factories.make_org_admin(organization, password=None)
    issued = setup_links.create_setup_link(ready_wizard(organization, admin), actor=admin, label="for Sam")
    db.session.commit()
    return Link(token_of(issued.url), {"data": {}})


def _callback(organization: Organization) -> Link:
    """A requested attempt, whose callback URL's token the test knows, and Cronofy's signed success for it."""
    admin = factories.make_org_admin(organization, password=None)
    connection = make_connection(organization)
    connection.granted_delegated_scope = DELEGATED_SCOPE
    mailbox = make_mailbox(organization)
    run = runs.start_run(organization, connection=connection, scope="read_only", actor=admin, source="t",
                         mailbox_ids_select=select(Mailbox.id).where(Mailbox.id == mailbox.id))
    db.session.commit()
    attempt = db.session.scalar(select(AuthorizationAttempt).where(AuthorizationAttempt.run_id == run.id))
    token = secrets.token_urlsafe(24)
    attempt.callback_token_hash, attempt.status = attempts.hash_token(token), "requested"
    db.session.commit()
    body = json.dumps({"authorization": {"code": secrets.token_urlsafe(24), "state": attempt.state}}).encode()
    headers = {"Content-Type": "application/json", HMAC_HEADER: sign(body, current_app.config["CRONOFY_CLIENT_SECRET"])}
    return Link(token, {"data": body, "headers": headers}, accepted=200)


def _portal_link(organization: Organization) -> Link:
    from flask import current_app as app

    from services.accounts import portal_links

    app.config["PORTAL_RETURN_URLS"] = ["https://app.vendor.example/*"]
    issued = portal_links.create_portal_link(organization, admin_email=f"it.{secrets.token_hex(3)}@customer.example",
                                             intent="overview", return_url="https://app.vendor.example/back",
                                             api_key=None)
    db.session.commit()
    return Link(token_of(issued.url), opened=302)


LINKS: dict[str, Callable[[Organization], Link]] = {
    "auth.accept_invitation": _invitation,
    "auth.reset_password": _reset,
    "onboarding.setup_page": _setup_link,
    "onboarding.setup_connect": _setup_link,
    "callbacks.delegated": _callback,
    "portal.open_link": _portal_link,
}


def secret_rules(app) -> list:
    """Return every rule with a `secret` argument, sorted by endpoint; fail for one nobody registered,
    or when a route known to carry a secret lost its converter (a sweep must not pass by finding nothing)."""
    rules = sorted((r for r in app.url_map.iter_rules() if secret_arguments(r)), key=lambda r: (r.endpoint, r.rule))
    missing = [f"{rule.endpoint} ({rule.rule})" for rule in rules if rule.endpoint not in LINKS]
    if missing:
        pytest.fail("Secret routes without a factory in tests/security/secret_links.py LINKS: " + ", ".join(missing),
                    pytrace=False)
    unmarked = KNOWN_SECRET_ENDPOINTS - {rule.endpoint for rule in rules}
    assert not unmarked, f"routes whose URL carries a secret but not through <secret:...>: {sorted(unmarked)}"
    return rules


def unconverted_secret_arguments(app) -> list[str]:
    """Return `rule: argument` for every argument named like a secret that does not use the converter."""
    return sorted(
        f"{rule.rule}: {name}"
        for rule in app.url_map.iter_rules()
        for name in rule.arguments
        if SECRET_LIKE.search(name) and name not in secret_arguments(rule)
    )


def path_for(rule, token: str) -> str:
    """Return the path of rule with token as each of its secret arguments."""
    return rule.build({name: token for name in rule.arguments})[1]


def methods_of(rule) -> list[str]:
    """Return the methods a sweep sends: the rule's own, and GET (a 405) where the rule has none."""
    return sorted(((rule.methods or set()) - {"OPTIONS", "HEAD"}) | {"GET"})
