"""CSRF: every form POST without a valid token is refused with the "Form expired" page and changes nothing.

Driven by `app.url_map`, so forms added later are covered. Only machine endpoints (callbacks from
Cronofy, the JSON API) may be exempt, and only through Flask-WTF's `csrf.exempt`.
"""

from __future__ import annotations

import re

from flask import Flask, g

from extensions import csrf
from tests.factories import DEFAULT_PASSWORD
from tests.security import org_scoped
from tests.security.org_scoped import database_snapshot, path_for
from tests.helpers import put_signed_in

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Machine endpoints: Cronofy's callbacks, and the vendor API (bearer keys only; its resources are the api_* blueprints).
MACHINE_PREFIXES = ("callbacks.", "api_")
# A body that most forms would accept, so that a missing CSRF check would show up as a change.
PLAUSIBLE_FORM = {
    "confirm": "yes",
    "email": "someone.new@customer.example",
    "admin_email": "first.admin@customer.example",
    "name": "Probe Organization",
    "data_center": "us",
    "reason": "Customer asked for help with their connection",
    "password": DEFAULT_PASSWORD,
}
FORM_EXPIRED = b"Form expired"


def is_exempt(app: Flask, endpoint: str) -> bool:
    """Return whether Flask-WTF skips the CSRF check for endpoint (exempt view or blueprint)."""
    blueprint = app.blueprints.get(endpoint.rpartition(".")[0])
    if blueprint is not None and blueprint in csrf._exempt_blueprints:
        return True
    view = app.view_functions[endpoint]
    return f"{view.__module__}.{view.__name__}" in csrf._exempt_views


def form_rules(app: Flask) -> list:
    """Return every rule that accepts a state-changing method and is not CSRF-exempt."""
    rules = [rule for rule in app.url_map.iter_rules() if (rule.methods or set()) & UNSAFE_METHODS]
    return sorted((rule for rule in rules if not is_exempt(app, rule.endpoint)), key=lambda rule: rule.endpoint)


def url_values(rule, ids: org_scoped.IdMaker, organization) -> dict:
    """Fill ids from the registry; any other argument (e.g. an invitation token) gets a probe value."""
    values = {name: ids.value(name, organization) for name in org_scoped.id_arguments(rule)}
    for name in rule.arguments - values.keys():
        values[name] = org_scoped.OTHER_ARGUMENTS.get(name, "csrf-probe")
    return values


def sign_in(client, user) -> None:
    """Put user (or nobody) into the client's session."""
    with client.session_transaction() as session:
        session.clear()
        if user is not None:
            put_signed_in(session, user)
    g.pop("_login_user", None)


def test_every_form_post_without_a_token_is_refused_and_changes_nothing(
    app, csrf_client, make_organization, make_support_user
):
    organization, support_user = make_organization(), make_support_user(password=None)
    rules = form_rules(app)
    org_scoped.require_registered([rule for rule in rules if org_scoped.id_arguments(rule)])
    ids, problems = org_scoped.IdMaker(), []
    for rule in rules:
        user = None if rule.endpoint == "auth.sign_in" else org_scoped.user_allowed(rule, organization, support_user)
        path = path_for(rule, url_values(rule, ids, organization))
        for method in sorted(rule.methods & UNSAFE_METHODS):
            sign_in(csrf_client, user)
            before = database_snapshot()
            response = csrf_client.open(path, method=method, data=PLAUSIBLE_FORM)
            if response.status_code != 400 or FORM_EXPIRED not in response.data:
                problems.append(f"{method} {path} ({rule.endpoint}) answered {response.status_code} without a CSRF token")
            elif database_snapshot() != before:
                problems.append(f"{method} {path} ({rule.endpoint}) refused the POST but changed the database")
    assert {"auth.sign_in", "auth.sign_out", "organizations.admins", "support.new_organization", "support.access"} <= {
        rule.endpoint for rule in rules
    }
    assert not problems, "\n".join(problems)


def test_sign_in_without_a_token_is_refused_and_does_not_sign_in(csrf_client, make_org_admin):
    admin = make_org_admin()
    response = csrf_client.post("/sign-in", data={"email": admin.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 400 and FORM_EXPIRED in response.data
    assert b"Go back, reload the page" in response.data
    assert csrf_client.get(f"/orgs/{admin.organization_id}").status_code == 302


def page_token(page: bytes) -> str:
    """Return the CSRF token a rendered page carries."""
    return re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()


def test_sign_in_with_the_pages_token_works(csrf_client, make_org_admin):
    """Control: the refusals above are about the token, not about the form."""
    admin = make_org_admin()
    page = csrf_client.get("/sign-in").data
    token = page_token(page)
    response = csrf_client.post("/sign-in", data={"email": admin.email, "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert csrf_client.get(f"/orgs/{admin.organization_id}").status_code == 200


def test_invite_form_with_the_pages_token_creates_the_invitation(app, csrf_client, make_org_admin):
    admin = make_org_admin(password=None)
    sign_in(csrf_client, admin)
    page = csrf_client.get(f"/orgs/{admin.organization_id}/admins").data
    token = page_token(page)
    response = csrf_client.post(
        f"/orgs/{admin.organization_id}/admins", data={"email": "colleague@customer.example", "csrf_token": token}
    )
    assert response.status_code == 302
    assert b"colleague@customer.example" in csrf_client.get(f"/orgs/{admin.organization_id}/admins").data


def test_only_machine_endpoints_are_csrf_exempt(app):
    exempt = [rule.endpoint for rule in app.url_map.iter_rules() if is_exempt(app, rule.endpoint)]
    assert all(endpoint.startswith(MACHINE_PREFIXES) for endpoint in exempt), exempt
    api_rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api_")]
    assert all(rule.rule.startswith("/api/") for rule in api_rules)
