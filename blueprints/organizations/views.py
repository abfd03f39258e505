"""The start page, an organization's overview and its admins."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.organizations import bp
from services import audit, organizations
from services.tenancy import organization_or_404


@bp.get("/")
@login_required
def home():
    if current_user.is_support:
        return redirect(url_for("support.index"))
    return redirect(url_for("organizations.overview", org_id=current_user.organization_id))


@bp.get("/orgs/<int:org_id>")
@login_required
def overview(org_id: int):
    organization = organization_or_404(org_id)
    return render_template(
        "organizations/overview.html",
        organization=organization,
        summary=organizations.summary(organization),
        events=audit.recent_for_organization(organization.id, limit=10),
    )


@bp.get("/orgs/<int:org_id>/admins")
@login_required
def admins(org_id: int):
    organization = organization_or_404(org_id)
    return render_template(
        "organizations/admins.html",
        organization=organization,
        admins=organizations.admins_of(organization),
        invitations=organizations.open_invitations(organization),
    )
