"""The Enterprise Connect consent page for the fake domain administrator (§3.1)."""

from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request
from sqlalchemy import select

from sandbox import clients, scopes
from sandbox.db import session
from sandbox.directory import PROVIDERS
from sandbox.models import Domain, ServiceAccount
from sandbox.secrets_util import new_id
from sandbox.tokens import issue_code
from sandbox.views.common import state

bp = Blueprint("sandbox_consent", __name__)

PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "delegated_scope", "state", "provider_name")


class PageError(Exception):
    """A request so broken that the admin cannot safely be sent back: show an error page."""


class RedirectError(Exception):
    """An error reported back to the redirect_uri as ?error=...&state=..."""

    def __init__(self, error, description):
        super().__init__(error)
        self.error, self.description = error, description


def back_to(uri, params):
    """Return the redirect URI with params added, keeping any query it already has."""
    clean = {key: value for key, value in params.items() if value is not None}
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(clean)}"


def _check_client(db, values):
    client = clients.find(db, values.get("client_id"))
    if client is None:
        raise PageError("The client_id is missing or unknown to this sandbox.")
    if not values.get("redirect_uri") or not clients.redirect_allowed(client, values["redirect_uri"]):
        raise PageError("The redirect_uri is missing or not registered for this client.")
    return client


def _check_scopes(values):
    if values.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "response_type must be code")
    requested = scopes.split(values.get("scope"))
    if not requested or any(word not in scopes.SA_SCOPES for word in requested):
        raise RedirectError("invalid_scope", "scope must hold service account scopes only")
    if not values.get("delegated_scope"):
        raise RedirectError("invalid_request", "delegated_scope is required")
    if scopes.unknown_delegated(values["delegated_scope"]):
        raise RedirectError("invalid_scope", "delegated_scope holds unknown scopes")


def _error_redirect(values, error):
    params = {"error": error.error, "state": values.get("state")}
    if state().config["SANDBOX_ERROR_DESCRIPTION_ON_REDIRECT"]:
        params["error_description"] = error.description
    return redirect(back_to(values["redirect_uri"], params))


def _error_page(message):
    return render_template("sandbox/error.html", message=message), 400


@bp.get("/enterprise_connect/oauth/authorize")
def authorize():
    """Validate the authorization request and show the consent page."""
    db, values = session(), request.args.to_dict()
    try:
        client = _check_client(db, values)
        _check_scopes(values)
    except PageError as exc:
        return _error_page(str(exc))
    except RedirectError as exc:
        return _error_redirect(values, exc)
    domains = list(db.scalars(select(Domain).order_by(Domain.name)))
    chosen = values.get("provider_name") if values.get("provider_name") in PROVIDERS else None
    return render_template("sandbox/consent.html", client=client, values=values, params=PARAMS, domains=domains,
                           providers=PROVIDERS, chosen_provider=chosen, sa_scopes=scopes.describe(values["scope"]),
                           delegated=scopes.describe(values["delegated_scope"]))


def _approve(db, client, values, form):
    domain = db.scalar(select(Domain).where(Domain.name == form.get("domain")))
    provider = form.get("provider") or (domain.provider if domain else None)
    if domain is None or provider not in PROVIDERS:
        raise PageError("Choose one of the seeded domains and a provider.")
    sa = ServiceAccount(id=new_id("ser"), client_id=client.client_id, domain_id=domain.id, provider=provider,
                        email=f"cronofy-service@{domain.name}", scope=values["scope"],
                        delegated_scope=values["delegated_scope"])
    db.add(sa)
    code = issue_code(db, client.client_id, "service_account", sa.id, values["scope"], values["redirect_uri"],
                      state().settings.get("limits")["code_ttl"])
    db.commit()
    return redirect(back_to(values["redirect_uri"], {"code": code, "state": values.get("state")}))


@bp.post("/enterprise_connect/oauth/authorize")
def decide():
    """Apply the administrator's Approve or Deny."""
    db, form = session(), request.form
    values = {name: form[name] for name in PARAMS if name in form}
    try:
        client = _check_client(db, values)
        _check_scopes(values)
        if form.get("decision") != "approve":
            raise RedirectError("access_denied", "The administrator declined")
        return _approve(db, client, values, form)
    except PageError as exc:
        return _error_page(str(exc))
    except RedirectError as exc:
        return _error_redirect(values, exc)
