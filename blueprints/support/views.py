"""Support's list of organizations, creating one, and acting on its behalf with a recorded reason."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.auth.redirects import safe_next
from blueprints.organizations import issued_links
from blueprints.support import bp
from blueprints.support.forms import NewOrganizationForm, SupportAccessForm
from extensions import db
from models.mailbox import MAILBOX_STATUSES
from services.accounts import support
from services.accounts.accounts import AccountError
from services.accounts.organizations import OrganizationError
from services.accounts.support import SupportError
from services.platform import tenancy
from services.read_models.organization_list import organization_list


@bp.get("/")
def index():
    args = request.args
    page = organization_list(args.get("q", ""), args.get("page", 1, type=int),
                             sort=args.get("sort", "name"), direction=args.get("dir", "asc"))
    return render_template("support/index.html", page=page, statuses=MAILBOX_STATUSES)


@bp.route("/orgs/new", methods=["GET", "POST"])
def new_organization():
    form = NewOrganizationForm()
    if form.validate_on_submit():
        try:
            organization, issued = support.create_organization_with_admin(
                name=form.name.data, data_center=form.data_center.data, admin_email=form.admin_email.data, actor=current_user
            )
        except (OrganizationError, AccountError) as exc:
            db.session.rollback()
            field = form.admin_email if isinstance(exc, AccountError) else form.name
            field.errors.append(str(exc))
        else:
            db.session.commit()
            issued_links.remember(issued)
            flash(f"{organization.name} is created. Send the invitation link below to its first admin.", "success")
            return redirect(url_for("organizations.admins", org_id=organization.id))
    return render_template("support/new_organization.html", form=form), 400 if form.is_submitted() else 200


@bp.route("/orgs/<int:org_id>/access", methods=["GET", "POST"])
def access(org_id: int):
    organization = tenancy.organization_or_404(org_id, support_grant_required=False)
    form = SupportAccessForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:
            event = support.start_access(organization, actor=current_user, reason=form.reason.data)
        except SupportError as exc:
            db.session.rollback()
            form.reason.errors.append(str(exc))
        else:
            db.session.commit()
            tenancy.remember_support_access(event)
            flash(f"You are acting on behalf of {organization.name}. The reason is recorded.", "success")
            return redirect(safe_next(form.next.data) or url_for("organizations.overview", org_id=org_id))
    return _render_access(organization, form), 400 if form.is_submitted() else 200


def _render_access(organization, form: SupportAccessForm) -> str:
    return render_template(
        "support/access.html",
        organization=organization,
        form=form,
        minutes=tenancy.support_access_minutes(),
        recent=support.recent_accesses(organization),
    )


@bp.post("/orgs/<int:org_id>/access/end")
def end_access(org_id: int):
    organization = tenancy.organization_or_404(org_id, support_grant_required=False)
    active = tenancy.active_support_access(organization.id, current_user)
    if active is not None:
        support.end_access(active, actor=current_user)
        db.session.commit()
    tenancy.forget_support_access(organization.id)
    flash(f"You no longer act on behalf of {organization.name}.", "info")
    return redirect(url_for("organizations.overview", org_id=org_id))
