"""Revoking selected mailboxes in bulk: a confirmation page with the counts, then a revoke run."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

import jobs
from blueprints.runs import bp
from blueprints.runs.forms import ConfirmRevokeForm
from blueprints.runs.sources import SourceError, from_args
from extensions import db
from models.mailbox import Mailbox
from services.engine import runs
from services.engine.run_sources import revoking_connection
from services.platform.tenancy import organization_or_404
from services.platform.wording import plural


@bp.route("/orgs/<int:org_id>/mailboxes/revoke", methods=["GET", "POST"])
@login_required
def revoke(org_id: int):
    organization = organization_or_404(org_id)
    try:
        source = from_args(request.args, organization)
    except SourceError as exc:
        # A page that explains on GET; a refused request on POST.
        page = render_template("runs/revoke.html", organization=organization, problem=str(exc))
        return page, 400 if request.method == "POST" else 200
    form = ConfirmRevokeForm()
    total, holding = source.count(), source.count_where(Mailbox.status.in_(runs.REVOCABLE))
    if form.validate_on_submit():
        problem = _refusal(form, holding)
        if problem is None:
            return _start(organization, source)
        form.form_errors.append(problem)
    return render_template("runs/revoke.html", organization=organization, source=source, total=total,
                           holding=holding, form=form), 400 if form.is_submitted() else 200


def _refusal(form: ConfirmRevokeForm, holding: int) -> str | None:
    if form.confirm.data != "yes":
        return "Confirm first: revoking cannot be undone."
    if holding == 0:
        return "None of these mailboxes is authorized: there is nothing to revoke."
    return None


def _start(organization, source):
    connection = revoking_connection(organization)
    try:
        if connection is None:
            raise runs.RunError("This organization has no connection: there is nothing to revoke.")
        run = runs.start_revoke_run(organization, connection=connection, mailbox_ids_select=source.mailbox_ids,
                                    actor=current_user, source=source.label)
    except runs.RunError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".revoke", org_id=organization.id, **source.args))
    db.session.commit()
    jobs.enqueue_pump(run.id)
    flash(f"Revoking {plural(run.total, 'mailbox')}.", "success")
    return redirect(url_for(".show", org_id=organization.id, run_id=run.id))
