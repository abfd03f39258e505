"""The vendor's JSON API under /api/v1 (flask-smorest, OpenAPI 3.1 at /api/v1/openapi.json), its docs at /api/docs.

JSON only and CSRF-exempt, because it accepts nothing but `Authorization: Bearer <API key>`: the
session cookie is never read. Every error is an RFC 9457 problem document (`problems`).
"""

from __future__ import annotations

from flask import Flask, request

from blueprints.api import auth
from blueprints.api.spec import API_PREFIX, SPEC_KWARGS, ConsoleApi
from extensions import db

# Each module holds one flask-smorest Blueprint named `blp`.
RESOURCE_MODULES = ("organizations", "portal_links", "connections", "mailboxes", "tokens", "runs",
                    "webhook_endpoints", "events")


def _api_blueprints():
    from importlib import import_module

    return [import_module(f"blueprints.api.{name}").blp for name in RESOURCE_MODULES]


def _after_api_request(response):
    if request.path.startswith(API_PREFIX + "/"):
        # The view has committed (what it did not commit is not to be kept); give the connection back before
        # the limiter's store (the database, when Redis is absent or down) takes one, so that busy threads
        # cannot each hold one and wait for another.
        db.session.rollback()
        auth.add_rate_limit_headers(response)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    from blueprints.api import docs, event_subjects

    api = ConsoleApi(app, spec_kwargs=SPEC_KWARGS)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key: `ecc_live_…`"})
    for blueprint in _api_blueprints():
        api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.register_blueprint(docs.bp)
    event_subjects.register()
    app.after_request(_after_api_request)
