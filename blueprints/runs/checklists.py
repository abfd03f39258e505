"""A provider's setup checklist on its own page, so that failure guidance can link to one item."""

from __future__ import annotations

from flask import abort, render_template
from flask_login import login_required

from blueprints.runs import bp
from services.onboarding.providers import provider


@bp.get("/checklists/<provider_key>")
@login_required
def checklist(provider_key: str):
    chosen = provider(provider_key)
    if chosen is None:
        abort(404)
    return render_template("runs/checklist.html", provider=chosen)
