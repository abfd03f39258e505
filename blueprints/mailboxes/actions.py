"""The mailbox page's actions: authorize it (a one-mailbox run), retry as its fix suggests, revoke it."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

import jobs
from blueprints.mailboxes import bp
from blueprints.runs.forms import scope_choices
from extensions import db
from models.mailbox import Mailbox
from services.engine import runs
from services.mailboxes.mailbox_revocation import MailboxRevocationError, revoke_on_request
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.read_models import mailbox_actions


def offered_scopes(actions: mailbox_actions.MailboxActions) -> list:
    """Return the access levels the page offers: those of the connection's grant (the run page's choices)."""
    return scope_choices(actions.connection) if actions.connection is not None else []


@bp.post("/orgs/<int:org_id>/mailboxes/<int:mailbox_id>/authorize")
@login_required
def authorize(org_id: int, mailbox_id: int):
    """Start a run of this one mailbox with the access chosen on its page (or its retry button's)."""
    organization = organization_or_404(org_id)
    mailbox = scoped_or_404(Mailbox, mailbox_id, organization)
    actions = mailbox_actions.for_mailbox(mailbox)
    back = redirect(url_for(".show", org_id=org_id, mailbox_id=mailbox_id))
    if not actions.can_authorize:
        flash(f"{mailbox.email} cannot be authorized now. {actions.authorize_problem}", "warning")
        return back
    scope = " ".join(request.form.get("scope", "").split())
    choices = {choice.value: choice.label for choice in offered_scopes(actions)}
    if scope not in choices and not (actions.retry and scope == actions.retry.scope):
        abort(400, f"The connection to {actions.connection.label} does not offer that access. Choose one shown.")
    try:
        run = runs.start_run(
            organization, connection=actions.connection, scope=scope, actor=current_user,
            mailbox_ids_select=select(Mailbox.id).where(Mailbox.id == mailbox.id),
            source=f"Mailbox page: {mailbox.email}", failure_threshold=1.0,
        )
    except runs.RunError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return back
    db.session.commit()
    jobs.enqueue_pump(run.id)
    flash(f"Authorizing {mailbox.email} ({choices.get(scope, scope)}) in run #{run.id}. "
          "Its status below changes as Cronofy answers.", "success")
    return back


@bp.post("/orgs/<int:org_id>/mailboxes/<int:mailbox_id>/revoke")
@login_required
def revoke(org_id: int, mailbox_id: int):
    """Revoke this mailbox's authorization at Cronofy, once confirmed."""
    organization = organization_or_404(org_id)
    mailbox = scoped_or_404(Mailbox, mailbox_id, organization)
    if request.form.get("confirm") != "yes":
        abort(400, "Confirm the revocation first.")
    if not mailbox_actions.for_mailbox(mailbox).can_revoke:
        flash(f"{mailbox.email} holds no authorization to revoke now.", "warning")
        return redirect(url_for(".show", org_id=org_id, mailbox_id=mailbox_id))
    try:
        revoke_on_request(mailbox, actor=current_user)
    except MailboxRevocationError as exc:
        db.session.rollback()
        flash(f"{mailbox.email} was not revoked: {exc}", "danger")
    else:
        db.session.commit()
        flash(f"Revoked {mailbox.email}: Cronofy no longer hands out access to its calendar.", "success")
    return redirect(url_for(".show", org_id=org_id, mailbox_id=mailbox_id))
