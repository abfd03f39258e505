"""/api/docs: Swagger UI (from the flask-swagger-ui package, served from here) and the problem types page."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, render_template, send_from_directory, url_for

from blueprints.api.problems import PROBLEM_TYPES
from extensions import limiter

bp = Blueprint("api_docs", __name__, url_prefix="/api/docs")
SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
# Swagger UI sets style attributes from script; this page alone allows that.
DOCS_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
               "form-action 'self'")


@bp.get("")
@limiter.exempt
def index():
    page = render_template("api/docs.html", spec_url=url_for("api-docs.openapi_json"))
    return page, 200, {"Content-Security-Policy": DOCS_POLICY}


@bp.get("/assets/<name>")
@limiter.exempt
def asset(name: str):
    if name not in ASSETS:
        return "", 404
    return send_from_directory(SWAGGER_DIST, name, max_age=86400)


@bp.get("/problems")
@limiter.exempt
def problems():
    kinds = sorted(PROBLEM_TYPES.values(), key=lambda kind: (kind.status, kind.slug))
    return render_template("api/problems.html", kinds=kinds)
