"""The mailbox list (filters, summary bar, selection), export, mailbox pages, adding and removing, resource sync."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from blueprints.converters import parse_id
from blueprints.mailboxes import bp
from blueprints.mailboxes.actions import offered_scopes
from blueprints.mailboxes.forms import KIND_CHOICES, AddMailboxForm
from extensions import db
from models.connection import Connection
from models.mailbox import MAILBOX_KINDS, MAILBOX_STATUSES, Mailbox
from models.selection import MailboxSelection
from models.user import User
from services.connections import connections
from services.mailboxes import mailbox_export, mailbox_query, resource_sync
from services.mailboxes import selection as selections
from services.mailboxes.mailbox_directory import MAX_SYNC_REMOVAL, MailboxError, add_mailbox, removal_plan, remove_mailboxes
from services.mailboxes.mailbox_query import InvalidFilter, MailboxFilter
from services.mailboxes.mailbox_states import timeline
from services.mailboxes.resource_sync import ResourceSyncError
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.platform.wording import plural
from services.read_models import failures, mailbox_actions


def _filter_or_400(args) -> MailboxFilter:
    try:
        return MailboxFilter.from_args(args)
    except InvalidFilter as exc:
        abort(400, str(exc))


def _selection_or_404(organization, selection_id: int) -> MailboxSelection:
    selection = scoped_or_404(MailboxSelection, selection_id, organization)
    if selections.is_expired(selection):
        abort(404)
    return selection


def _active_selection(organization, selection_id: int | None) -> MailboxSelection | None:
    """Return the list's current selection (from ?selection=), ignoring a foreign or expired one."""
    selection = db.session.get(MailboxSelection, selection_id) if selection_id else None
    if selection is None or selection.organization_id != organization.id or selections.is_expired(selection):
        return None
    return selection


@bp.get("/orgs/<int:org_id>/mailboxes")
@login_required
def index(org_id: int):
    organization = organization_or_404(org_id)
    flt = _filter_or_400(request.args)
    counts = mailbox_query.status_counts(organization, flt)
    matching = mailbox_query.matching_count(counts, flt)
    rows = mailbox_query.page(organization, flt, request.args.get("after"))
    return render_template(
        "mailboxes/index.html", organization=organization, flt=flt, counts=counts, matching=matching, page=rows,
        has_any=matching > 0 or _has_any(organization), groups=mailbox_query.groups(organization),
        connections=connections.list_for(organization), statuses=MAILBOX_STATUSES, kinds=MAILBOX_KINDS,
        sorts=mailbox_query.SORT_LABELS,
        selection=_active_selection(organization, request.args.get("selection", type=parse_id)),
        failure_groups=failures.mailbox_failures(organization),
    )


def _has_any(organization) -> bool:
    return db.session.scalar(select(Mailbox.id).where(Mailbox.organization_id == organization.id).limit(1)) is not None


@bp.post("/orgs/<int:org_id>/mailboxes/selection")
@login_required
def select_mailboxes(org_id: int):
    """Turn the list form's ticked rows, or its filter, into a selection and go to the chosen action."""
    organization = organization_or_404(org_id)
    flt = _filter_or_400(request.form)
    action = request.form.get("action", "")
    if action not in ("select_all", "export", "remove"):
        abort(400, "Choose what to do with the selected mailboxes.")
    try:
        selection = _selection_for_action(organization, action, flt)
    except selections.SelectionError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for(".index", org_id=org_id, **flt.to_args()))
    db.session.commit()
    if action == "export":
        return redirect(url_for(".export", org_id=org_id, selection=selection.id))
    if action == "remove":
        return redirect(url_for(".confirm_removal", org_id=org_id, selection_id=selection.id))
    return redirect(url_for(".index", org_id=org_id, selection=selection.id, **flt.to_args()))


def _selection_for_action(organization, action: str, flt: MailboxFilter) -> MailboxSelection:
    current = _active_selection(organization, request.form.get("selection_id", type=parse_id))
    if action == "select_all":
        return selections.create_selection(organization, user=current_user, flt=flt)
    if current is not None:
        return current
    ticked = [i for i in request.form.getlist("mailbox_ids", type=parse_id) if i]
    return selections.create_selection(organization, user=current_user, mailbox_ids=ticked)


@bp.get("/orgs/<int:org_id>/mailboxes/export.csv")
@login_required
def export(org_id: int):
    """Stream the filtered list (or a selection) as CSV; the export is audited before the first row."""
    organization = organization_or_404(org_id)
    selection_id = request.args.get("selection", type=parse_id)
    if selection_id:
        selection = _selection_or_404(organization, selection_id)
        query = mailbox_export.base_query(organization, ids=selections.resolve(selection, organization))
        count, flt = selections.count(selection), None
    else:
        selection, flt = None, _filter_or_400(request.args)
        query = mailbox_export.base_query(organization, flt=flt)
        count = mailbox_query.matching_count(mailbox_query.status_counts(organization, flt), flt)
    mailbox_export.record_export(organization, actor=current_user, count=count, flt=flt, selection=selection)
    db.session.commit()
    headers = {"Content-Disposition": f'attachment; filename="{mailbox_export.filename(organization)}"'}
    body = stream_with_context(mailbox_export.csv_lines(query))
    return Response(body, mimetype="text/csv", headers=headers)


@bp.get("/orgs/<int:org_id>/mailboxes/selections/<int:selection_id>/remove")
@login_required
def confirm_removal(org_id: int, selection_id: int):
    organization = organization_or_404(org_id)
    selection = _selection_or_404(organization, selection_id)
    plan = removal_plan(organization, selections.resolve(selection, organization))
    return render_template(
        "mailboxes/confirm_removal.html", organization=organization, selection=selection, plan=plan,
        described=selections.describe(selection), limit=MAX_SYNC_REMOVAL,
    )


@bp.post("/orgs/<int:org_id>/mailboxes/selections/<int:selection_id>/remove")
@login_required
def remove_selection(org_id: int, selection_id: int):
    organization = organization_or_404(org_id)
    selection = _selection_or_404(organization, selection_id)
    if request.form.get("confirm") != "yes":
        abort(400, "Confirm the removal first.")
    ids = list(db.session.scalars(selections.resolve(selection, organization).limit(MAX_SYNC_REMOVAL + 1)))
    if _removed(organization, ids):
        return redirect(url_for(".index", org_id=org_id))
    return redirect(url_for(".confirm_removal", org_id=org_id, selection_id=selection_id))


def _removed(organization, ids: list[int]) -> bool:
    """Remove the mailboxes, commit and say what happened; return whether every one of them went."""
    try:
        result = remove_mailboxes(organization, ids, actor=current_user)
    except MailboxError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return False
    db.session.commit()
    if result.removed:
        revoked = f" ({result.revoked:,} revoked at Cronofy first)" if result.revoked else ""
        flash(f"Removed {plural(result.removed, 'mailbox')}{revoked}.", "success")
    for email, reason in result.failed[:10]:
        flash(f"{email} was not removed: {reason}", "danger")
    if len(result.failed) > 10:
        flash(f"{plural(len(result.failed) - 10, 'more mailbox', 'more mailboxes')} stayed, for the same kind of "
              "reason.", "danger")
    return not result.failed


@bp.get("/orgs/<int:org_id>/mailboxes/<int:mailbox_id>")
@login_required
def show(org_id: int, mailbox_id: int):
    organization = organization_or_404(org_id)
    mailbox = scoped_or_404(Mailbox, mailbox_id, organization)
    events = timeline(mailbox)
    actor_ids = {e.actor_id for e in events if e.actor_id}
    actors = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(actor_ids)))} if actor_ids else {}
    actions = mailbox_actions.for_mailbox(mailbox)
    return render_template(
        "mailboxes/show.html", organization=organization, mailbox=mailbox, events=events, actors=actors,
        actions=actions, scopes=offered_scopes(actions), kind_labels=dict(KIND_CHOICES),
        source_label=resource_sync.directory_label(mailbox.connection) if mailbox.connection else "the directory",
    )


@bp.post("/orgs/<int:org_id>/mailboxes/<int:mailbox_id>/remove")
@login_required
def remove(org_id: int, mailbox_id: int):
    organization = organization_or_404(org_id)
    mailbox = scoped_or_404(Mailbox, mailbox_id, organization)
    if request.form.get("confirm") != "yes":
        abort(400, "Confirm the removal first.")
    if _removed(organization, [mailbox.id]):
        return redirect(url_for(".index", org_id=org_id))
    return redirect(url_for(".show", org_id=org_id, mailbox_id=mailbox_id))


@bp.route("/orgs/<int:org_id>/mailboxes/new", methods=["GET", "POST"])
@login_required
def new(org_id: int):
    organization = organization_or_404(org_id)
    form = AddMailboxForm()
    form.set_connections(connections.list_for(organization))
    if form.validate_on_submit():
        try:
            mailbox = add_mailbox(
                organization, email=form.email.data, name=form.name.data or "", kind=form.kind.data,
                group_name=form.group_name.data, connection=_chosen_connection(organization, form), actor=current_user,
            )
        except MailboxError as exc:
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            flash(f"Added {mailbox.email} to the mailbox list. It is not authorized yet; authorizing it checks "
                  "that the calendar service knows the address.", "success")
            return redirect(url_for(".show", org_id=org_id, mailbox_id=mailbox.id))
    status = 400 if form.is_submitted() else 200
    return render_template("mailboxes/new.html", organization=organization, form=form), status


def _chosen_connection(organization, form: AddMailboxForm) -> Connection | None:
    return scoped_or_404(Connection, form.connection_id.data, organization) if form.connection_id.data else None


@bp.post("/orgs/<int:org_id>/connections/<int:connection_id>/sync-resources")
@login_required
def sync_resources(org_id: int, connection_id: int):
    organization = organization_or_404(org_id)
    connection = scoped_or_404(Connection, connection_id, organization)
    try:
        result = resource_sync.sync_resources(connection, actor=current_user)
    except (ResourceSyncError, connections.ConnectionActionError) as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        kept = len(result.kept_names)
        flash(
            f"Resources synced: {len(result.new):,} new, {len(result.updated):,} updated, "
            f"{len(result.vanished):,} no longer listed, {result.unchanged:,} unchanged."
            + (f" {plural(kept, 'name')} given here {'was' if kept == 1 else 'were'} kept." if kept else ""),
            "success",
        )
    return redirect(url_for(".resources", org_id=org_id, connection_id=connection_id))


@bp.get("/orgs/<int:org_id>/connections/<int:connection_id>/resources")
@login_required
def resources(org_id: int, connection_id: int):
    """Show the connection's latest resource sync: new, updated and vanished resources."""
    organization = organization_or_404(org_id)
    connection = scoped_or_404(Connection, connection_id, organization)
    event = resource_sync.last_sync(connection)
    details = event.details if event else {}
    listed = {key: resource_sync.still_present(organization, details.get(key, [])) for key in ("new", "updated")}
    return render_template(
        "mailboxes/resources.html", organization=organization, connection=connection, event=event,
        details=details, vanished=resource_sync.still_present(organization, details.get("vanished", [])),
        new_rows=listed["new"], updated_rows=listed["updated"], kind_labels=dict(KIND_CHOICES),
        source_label=resource_sync.directory_label(connection),
    )
