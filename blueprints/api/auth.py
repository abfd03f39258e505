"""Who is calling: the bearer API key (never the session cookie), its scopes, its organization, its limit."""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import time

from flask import current_app, g, request
from flask_limiter.util import get_remote_address

from extensions import db, limiter
from models.organization import Organization
from services.accounts import api_keys
from blueprints.api.problems import ApiProblem

BEARER_CHALLENGE = 'Bearer realm="api"'


def _bearer_value() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def authenticate_key() -> None:
    """before_request of every API blueprint: the request's key, or a 401 problem document."""
    value = _bearer_value()
    if value is None:
        raise ApiProblem("unauthenticated", "Send the API key as `Authorization: Bearer <key>`.",
                         headers={"WWW-Authenticate": BEARER_CHALLENGE})
    key = api_keys.authenticate(value)
    if key is None:
        raise ApiProblem("unauthenticated", "This API key is unknown or has been revoked.",
                         headers={"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'})
    if db.session.info.pop("api_key_used_written", False):
        db.session.commit()  # last_used_at, written at most once a minute
    g.api_key = key


def require_scope(scope: str):
    """Refuse (403, naming the scope) a key without scope; the view's security entry in OpenAPI names it."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if scope not in g.api_key.scope_list:
                raise ApiProblem("insufficient-scope", f"This API key does not have the scope {scope}.",
                                 required_scope=scope)
            return view(*args, **kwargs)

        docs = copy.deepcopy(getattr(view, "_apidoc", {}))
        docs.setdefault("manual_doc", {})["security"] = [{"bearerAuth": [scope]}]
        wrapper._apidoc = docs
        return wrapper

    return decorate


def organization_for_key(organization_id: int) -> Organization:
    """The organization, if it exists and the key may see it; otherwise 404 (never 403: ids stay private)."""
    key = g.api_key
    organization = db.session.get(Organization, organization_id)
    if organization is None or (key.organization_id is not None and key.organization_id != organization.id):
        raise ApiProblem("not-found", "There is no organization with this id.")
    return organization


def rate_limit_key() -> str:
    """Count per key: the hash of the bearer value (a wrong key gets a bucket of its own), else the address."""
    value = _bearer_value()
    if value is None:
        return "api-anonymous:" + get_remote_address()
    return "api-key:" + hashlib.sha256(value.encode()).hexdigest()


def api_rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def limit_blueprint(blueprint) -> None:
    limiter.limit(api_rate_limit, key_func=rate_limit_key, per_method=False)(blueprint)


def add_rate_limit_headers(response):
    """RateLimit-Limit / -Remaining / -Reset (seconds) for the limit closest to running out, Retry-After on 429."""
    current = limiter.current_limit
    if current is None:
        return response
    reset = max(0, math.ceil(current.reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(max(0, current.remaining))
    response.headers["RateLimit-Reset"] = str(reset)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset))
    return response
