"""The start page, an organization's overview and its admins."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.organizations import bp, issued_links
from blueprints.organizations.forms import ConfirmForm, InviteAdminForm
from extensions import db
from models.invitation import Invitation
from models.user import User
from services.accounts import accounts, invitations, organizations, support
from services.accounts.accounts import AccountError
from services.platform import audit, mail
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.read_models.overview import overview_for


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
        overview=overview_for(organization),
        events=audit.recent_for_organization(organization.id, limit=10),
        support_accesses=support.recent_accesses(organization),
    )


@bp.route("/orgs/<int:org_id>/admins", methods=["GET", "POST"])
@login_required
def admins(org_id: int):
    organization = organization_or_404(org_id)
    form = InviteAdminForm()
    if form.validate_on_submit():
        try:
            issued = organizations.invite_admin(organization, email=form.email.data, invited_by=current_user)
        except AccountError as exc:
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            issued_links.remember(issued)
            flash(f"Invitation created for {issued.invitation.email}: it is on its way to them by email. You can also "
                  "copy the link below.", "success")
            return redirect(url_for(".admins", org_id=org_id))
    return _render_admins(organization, form), 400 if form.is_submitted() else 200


def _render_admins(organization, form: InviteAdminForm) -> str:
    pending = organizations.open_invitations(organization)
    emails = mail.latest_for_invitations([invitation.id for invitation in pending])
    return render_template(
        "organizations/admins.html",
        organization=organization,
        form=form,
        admins=organizations.admins_of(organization),
        invitations=pending,
        emails=emails,
        retryable={email.id for email in emails.values() if mail.can_retry(email)},
        issued=issued_links.pop(organization.id),
    )


@bp.post("/orgs/<int:org_id>/invitations/<int:invitation_id>/revoke")
@login_required
def revoke_invitation(org_id: int, invitation_id: int):
    organization = organization_or_404(org_id)
    invitation = scoped_or_404(Invitation, invitation_id, organization)
    message = f"The invitation to {invitation.email} is withdrawn; its link no longer works."
    _apply_confirmed(invitations.revoke_invitation, invitation, message)
    return redirect(url_for(".admins", org_id=org_id))


@bp.post("/orgs/<int:org_id>/admins/<int:user_id>/deactivate")
@login_required
def deactivate_admin(org_id: int, user_id: int):
    organization = organization_or_404(org_id)
    admin = scoped_or_404(User, user_id, organization)
    message = f"{admin.email} is deactivated: signed out everywhere and unable to sign in."
    _apply_confirmed(accounts.deactivate_user, admin, message)
    return redirect(url_for(".admins", org_id=org_id))


@bp.post("/orgs/<int:org_id>/admins/<int:user_id>/reactivate")
@login_required
def reactivate_admin(org_id: int, user_id: int):
    organization = organization_or_404(org_id)
    admin = scoped_or_404(User, user_id, organization)
    message = f"{admin.email} is active again and can sign in."
    _apply_confirmed(accounts.reactivate_user, admin, message)
    return redirect(url_for(".admins", org_id=org_id))


def _apply_confirmed(action: Callable, target, success: str) -> None:
    """Run action(target, actor=current_user) if the form was confirmed; commit and flash the outcome."""
    if not ConfirmForm().validate_on_submit():
        flash("Nothing changed: confirm the action to go ahead.", "warning")
        return
    try:
        action(target, actor=current_user)
    except AccountError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return
    db.session.commit()
    flash(success, "success")
