"""Connection list and page; disconnecting revokes upstream and keeps the history."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.connections import bp
from extensions import db
from models.connection import Connection
from services.connections import connections
from services.platform.tenancy import organization_or_404, scoped_or_404


@bp.get("/orgs/<int:org_id>/connections")
@login_required
def index(org_id: int):
    organization = organization_or_404(org_id)
    return render_template(
        "connections/index.html", organization=organization, connections=connections.list_for(organization)
    )


@bp.get("/orgs/<int:org_id>/connections/<int:connection_id>")
@login_required
def show(org_id: int, connection_id: int):
    organization = organization_or_404(org_id)
    connection = scoped_or_404(Connection, connection_id, organization)
    return render_template("connections/show.html", organization=organization, connection=connection)


@bp.post("/orgs/<int:org_id>/connections/<int:connection_id>/disconnect")
@login_required
def disconnect(org_id: int, connection_id: int):
    organization = organization_or_404(org_id)
    connection = scoped_or_404(Connection, connection_id, organization)
    if request.form.get("confirm") != "yes":
        abort(400, "Confirm the disconnection first.")
    try:
        connections.disconnect(connection, actor=current_user)
    except connections.ConnectionActionError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(f"{connection.label} is disconnected. Its history is kept; reconnect it any time.", "success")
    return redirect(url_for("connections.show", org_id=org_id, connection_id=connection_id))
