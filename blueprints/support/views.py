"""Support's list of organizations."""

from __future__ import annotations

from flask import render_template

from blueprints.support import bp
from services import support


@bp.get("/")
def index():
    return render_template("support/index.html", rows=support.organization_rows())
