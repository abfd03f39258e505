"""An organization's email actions: send an admin a password reset link, retry an email that failed."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user, login_required

from blueprints.organizations import bp
from blueprints.organizations.forms import ConfirmForm
from extensions import db
from models.outgoing_email import OutgoingEmail
from models.user import User
from services.accounts import password_reset
from services.accounts.accounts import AccountError
from services.platform import mail
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.platform.wording import sentence


@bp.post("/orgs/<int:org_id>/admins/<int:user_id>/email-reset-link")
@login_required
def email_reset_link(org_id: int, user_id: int):
    organization = organization_or_404(org_id)
    admin = scoped_or_404(User, user_id, organization)
    if not ConfirmForm().validate_on_submit():
        flash("Nothing changed: confirm the action to go ahead.", "warning")
        return redirect(url_for(".admins", org_id=org_id))
    try:
        password_reset.email_reset_link(admin, actor=current_user)
    except AccountError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash(sentence(f"A link to choose a new password is on its way to {admin.email}"), "success")
    return redirect(url_for(".admins", org_id=org_id))


@bp.post("/orgs/<int:org_id>/emails/<int:email_id>/retry")
@login_required
def retry_email(org_id: int, email_id: int):
    organization = organization_or_404(org_id)
    email = scoped_or_404(OutgoingEmail, email_id, organization)
    try:
        mail.retry(email, actor=current_user)
    except mail.MailError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash(sentence(f"Sending the email to {email.to_address} again"), "info")
    return redirect(url_for(".admins", org_id=org_id))
