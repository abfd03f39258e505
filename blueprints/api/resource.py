"""`resource_blueprint()`: a flask-smorest Blueprint for one API resource, set up once at import.

Every such blueprint authenticates the bearer key before its views, is counted by the per-key rate
limit and is exempt from CSRF (it never reads the session cookie).
"""

from __future__ import annotations

import http

from flask_smorest import Blueprint

from blueprints.api import auth
from extensions import csrf


def resource_blueprint(name: str, tag: str, description: str) -> Blueprint:
    blueprint = Blueprint(f"api_{name}", f"blueprints.api.{name}", description=description)
    blueprint.tag = tag
    blueprint.before_request(auth.authenticate_key)
    auth.limit_blueprint(blueprint)
    csrf.exempt(blueprint)
    return blueprint


def errors(blueprint: Blueprint, *statuses: int):
    """Document the problem documents an operation may answer (each registered once per status in spec.py)."""

    def decorate(view):
        for status in statuses:
            view = blueprint.alt_response(status, response=http.HTTPStatus(status).name)(view)
        return view

    return decorate
