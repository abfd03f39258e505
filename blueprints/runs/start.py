"""Starting a run: which mailboxes, through which connection, asking for what, in how many waves."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

import jobs
from blueprints.converters import parse_id
from blueprints.runs import bp
from blueprints.runs.forms import StartRunForm, scope_choices
from blueprints.runs.sources import SourceError, from_args
from extensions import db
from models.connection import Connection
from models.mailbox import Mailbox
from models.selection import MailboxSelection
from services.connections import connections
from services.engine import runs
from services.mailboxes import selection as selections
from services.platform.tenancy import organization_or_404
from services.platform.wording import plural

def _active_connections(organization) -> list[Connection]:
    return [c for c in connections.list_for(organization) if c.status == "active"]


def _chosen_connection(active: list[Connection]) -> Connection | None:
    wanted = request.values.get("connection_id", type=int)
    return next((c for c in active if c.id == wanted), active[0] if active else None)


@bp.route("/orgs/<int:org_id>/runs/new", methods=["GET", "POST"])
@login_required
def new(org_id: int):
    organization = organization_or_404(org_id)
    try:
        source = from_args(request.args, organization)
    except SourceError as exc:
        # A page that explains on GET; a refused request on POST.
        page = render_template("runs/new.html", organization=organization, problem=str(exc))
        return page, 400 if request.method == "POST" else 200
    active = _active_connections(organization)
    connection = _chosen_connection(active)
    form = StartRunForm(connection_id=connection.id if connection else None)
    choices = scope_choices(connection) if connection else []
    form.scope.choices = [(choice.value, choice.label) for choice in choices]
    if not form.is_submitted() and choices:
        # "Retry these N" of a failure's cause brings the access its fix suggests (e.g. free/busy only).
        wanted = request.args.get("scope", "")
        form.scope.data = next((c.value for c in choices if c.value == wanted), choices[0].value)
    total = source.count()
    skipped = total - source.count_where(Mailbox.status.in_(runs.AUTHORIZABLE)) if total else 0
    if form.validate_on_submit() and _acceptable(form, connection, choices, total, total - skipped):
        return _start(organization, connection, source, form)
    context = dict(organization=organization, source=source, total=total, skipped=skipped, connections=active,
                   connection=connection, choices=choices, form=form)
    return render_template("runs/new.html", **context), 400 if form.is_submitted() else 200


def _acceptable(form: StartRunForm, connection: Connection | None, choices, total: int, to_do: int) -> bool:
    """Check what the form alone cannot: a connection, some mailboxes, a scope and canary that fit."""
    if connection is None:
        form.form_errors.append("Connect a domain first: there is no active connection to authorize through.")
    elif form.scope.data not in {choice.value for choice in choices}:
        form.scope.errors.append(
            f"The connection to {connection.label} does not allow \"{form.scope.data}\". Choose one of the "
            "access levels shown: they are what its administrator approved.")
    if total == 0:
        form.form_errors.append("There are no mailboxes in this selection.")
    elif to_do == 0:
        form.form_errors.append(f"{'The one mailbox' if total == 1 else f'All {total:,} mailboxes'} of this selection "
                                f"{'is' if total == 1 else 'are'} already authorized or on their way.")
    elif form.canary_size.data and form.canary_size.data >= to_do:
        form.canary_size.errors.append(
            f"The canary wave must be smaller than the {plural(to_do, 'mailbox')} to authorize, or left empty.")
    return not form.form_errors and not form.scope.errors and not form.canary_size.errors


def _start(organization, connection: Connection, source, form: StartRunForm):
    try:
        run = runs.start_run(
            organization, connection=connection, mailbox_ids_select=source.mailbox_ids, scope=form.scope.data,
            actor=current_user, source=source.label, canary_size=form.canary_size.data or None,
            auto_continue=form.continue_mode.data != "confirm",
            failure_threshold=form.failure_threshold.data / 100,
        )
    except runs.RunError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return redirect(url_for(".new", org_id=organization.id, connection_id=connection.id, **source.args))
    db.session.commit()
    jobs.enqueue_pump(run.id)
    flash(f"Authorizing {plural(run.total, 'mailbox')}. This page shows how it goes.", "success")
    return redirect(url_for(".show", org_id=organization.id, run_id=run.id))


@bp.post("/orgs/<int:org_id>/runs/from-list")
@login_required
def from_list(org_id: int):
    """Take the mailbox list's selection (or its ticked rows) to the authorize or revoke page."""
    organization = organization_or_404(org_id)
    target = {"authorize": ".new", "revoke": ".revoke"}.get(request.form.get("action", ""))
    if target is None:
        abort(400, "Choose whether to authorize or revoke the selected mailboxes.")
    try:
        chosen = _list_selection(organization)
    except selections.SelectionError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("mailboxes.index", org_id=org_id))
    db.session.commit()
    return redirect(url_for(target, org_id=org_id, selection=chosen.id))


def _list_selection(organization) -> MailboxSelection:
    current = db.session.get(MailboxSelection, request.form.get("selection_id", type=parse_id) or 0)
    if current is not None and current.organization_id == organization.id and not selections.is_expired(current):
        return current
    ticked = [i for i in request.form.getlist("mailbox_ids", type=parse_id) if i]
    return selections.create_selection(organization, user=current_user, mailbox_ids=ticked)
