"""Importing mailboxes: upload or paste a list, review the stored preview, commit it or discard it."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge

from blueprints.errors import render_error
from blueprints.mailboxes import bp
from blueprints.mailboxes.import_forms import ImportCommitForm, ImportDiscardForm, ImportUploadForm
from extensions import db
from models.connection import Connection
from models.mailbox_import import ROW_OUTCOMES, MailboxImport
from services.connections import connections
from services.mailboxes import mailbox_connections, mailbox_directory, mailbox_import
from services.mailboxes.mailbox_import import ImportFileError, ImportStateError, format_size, reconcile
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.platform.wording import plural

# The page's title at each stage: a committed import is no longer a preview.
STAGES = {"preview": "Import preview", "committed": "Import complete", "discarded": "Import discarded",
          "expired": "Import preview expired"}
OUTCOME_LABELS = {
    "problem": "Problems", "warning": "Warnings", "add": "To add", "update": "To update",
    "present": "Already present", "leaver": "Leavers",
}


@bp.route("/orgs/<int:org_id>/mailboxes/import", methods=["GET", "POST"])
@login_required
def import_list(org_id: int):
    organization = organization_or_404(org_id)
    form = ImportUploadForm()
    _offer_connections(form, organization)
    error = None
    if form.validate_on_submit():
        data, source, filename = _submitted_list(form)
        try:
            preview = mailbox_import.create_preview(
                organization, data, source=source, filename=filename, mode=form.mode.data, actor=current_user,
                connection=_connection(organization, form.connection_id.data),
            )
        except ImportFileError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            return redirect(url_for(".import_preview", org_id=org_id, import_id=preview.id))
    return _render_form(organization, form, error), 400 if form.is_submitted() else 200


def _offer_connections(form: ImportUploadForm, organization) -> None:
    """Offer the live connections; with one serving a domain it is the default, with several each address's."""
    live = [c for c in connections.list_for(organization) if c.status != "revoked"]
    serving = mailbox_connections.serving_connections(organization.id)
    by_domain = "Each address's own connection, by its domain" if serving else "No connection yet (decide later)"
    form.connection_id.choices = [(0, by_domain)] + [(c.id, c.label) for c in live]
    if not form.is_submitted():
        form.connection_id.data = next(iter(serving.values())).id if len(serving) == 1 else 0


def _submitted_list(form: ImportUploadForm) -> tuple[bytes, str, str | None]:
    """Return (bytes, source, filename) of the uploaded file or the pasted text."""
    if form.has_file():
        return form.file.data.read(), "csv", form.file.data.filename
    return form.pasted.data.encode("utf-8"), "paste", None


def _connection(organization, connection_id: int) -> Connection | None:
    return scoped_or_404(Connection, connection_id, organization) if connection_id else None


def _render_form(organization, form: ImportUploadForm, error: str | None) -> str:
    max_bytes, max_rows = mailbox_import.import_limits()
    return render_template(
        "mailboxes/import.html", organization=organization, form=form, error=error,
        max_size=format_size(max_bytes), max_rows=max_rows,
        recent=mailbox_import.recent_imports(organization),
    )


@bp.get("/orgs/<int:org_id>/mailboxes/imports/<int:import_id>")
@login_required
def import_preview(org_id: int, import_id: int):
    organization = organization_or_404(org_id)
    preview = scoped_or_404(MailboxImport, import_id, organization)
    if mailbox_import.expire_if_stale(preview):
        db.session.commit()
    return _render_preview(organization, preview, ImportCommitForm())


def _render_preview(organization, preview: MailboxImport, commit_form: ImportCommitForm) -> str:
    """Render a preview's page; commit_form keeps what was ticked when a commit is refused."""
    facts = mailbox_import.preview_facts(preview)
    show = request.args.get("show") or _default_tab(preview)
    if show not in ROW_OUTCOMES:
        abort(404)
    rows, pages, page = mailbox_import.rows_page(preview, show, request.args.get("page", 1, type=int))
    outside = _outside_offer(preview, commit_form)
    labels = {**OUTCOME_LABELS, "warning": f"Outside {facts.domain_label}" if facts.domains else "Warnings"}
    return render_template(
        "mailboxes/import_preview.html", organization=organization, preview=preview, show=show,
        stage=STAGES.get(preview.status, "Import"),
        rows=rows, row_connections=_row_connections(preview, show, rows), page=page, pages=pages, labels=labels,
        tabs=shown_tabs(preview, facts), facts=facts,
        counts=mailbox_import.counts_of(preview), commit_form=commit_form, discard_form=ImportDiscardForm(),
        commit_label=commit_label(preview, outside), outside_count=outside,
        can_remove_leavers=reconcile.can_remove_leavers(preview), max_removal=mailbox_directory.MAX_SYNC_REMOVAL,
    )


def _row_connections(preview: MailboxImport, show: str, rows) -> dict | None:
    """Return {row id: connection} of the rows to add when each address gets its domain's connection."""
    if show != "add" or preview.connection_id is not None:
        return None
    serving = mailbox_connections.serving_connections(preview.organization_id)
    return {row.id: mailbox_connections.connection_for(row.email, serving) for row in rows} if serving else None


def shown_tabs(preview: MailboxImport, facts: mailbox_import.PreviewFacts) -> list[str]:
    """Return the outcomes with a tab: outside rows if there is a domain to be outside of; leavers of a full list."""
    hidden = {"leaver"} if preview.mode != "full" else set()
    if not facts.domains and not preview.warning_count:
        hidden.add("warning")
    return [outcome for outcome in OUTCOME_LABELS if outcome not in hidden]


def _outside_offer(preview: MailboxImport, commit_form: ImportCommitForm) -> int:
    """Return how many addresses outside the domains the form offers to import, dating its tick-box."""
    if preview.status != "preview" or not preview.warning_count:
        return 0
    offer = mailbox_import.outside_offer(preview)
    commit_form.outside_version.data = offer.version
    return offer.count


def _default_tab(preview: MailboxImport) -> str:
    counts = mailbox_import.counts_of(preview)
    return next((outcome for outcome in ("problem", "warning", "add", "update", "leaver") if counts[outcome]), "present")


def commit_label(preview: MailboxImport, outside: int = 0) -> str:
    """Say on the button what committing does: "Import 9,812 mailboxes; 23 rows with problems will be skipped"."""
    adds, updates, problems = preview.add_count, preview.update_count, preview.problem_count
    parts = []
    if adds:
        parts.append(f"Import {plural(adds, 'mailbox')}")
    if updates:
        parts.append(f"{'update' if adds else 'Update'} {plural(updates, 'existing one')}")
    idle = "Commit (only the addresses ticked above)" if outside else "Record this import (nothing to add or update)"
    label = " and ".join(parts) or idle
    if problems:
        label += f"; {plural(problems, 'row')} with problems will be skipped"
    return label


@bp.post("/orgs/<int:org_id>/mailboxes/imports/<int:import_id>/commit")
@login_required
def import_commit(org_id: int, import_id: int):
    organization = organization_or_404(org_id)
    preview = scoped_or_404(MailboxImport, import_id, organization)
    form = ImportCommitForm()
    if not form.validate_on_submit():
        return _render_preview(organization, preview, form), 400
    try:
        result = mailbox_import.commit_import(
            preview, actor=current_user, include_outside=form.include_outside.data,
            outside_version=form.outside_version.data,
        )
    except ImportStateError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for(".import_preview", org_id=org_id, import_id=import_id))
    db.session.commit()
    flash(commit_summary(result, mailbox_import.preview_facts(preview)), "success")
    if form.remove_leavers.data and preview.mode == "full" and preview.leaver_count:
        _remove_leavers(preview)
    return redirect(url_for(".import_preview", org_id=org_id, import_id=import_id))


def commit_summary(result: mailbox_import.CommitResult, facts: mailbox_import.PreviewFacts) -> str:
    """Say what a commit did, and which addresses outside the domains it left out."""
    summary = (
        f"Imported {plural(result.added, 'new mailbox', 'new mailboxes')} and updated {result.updated:,}. "
        f"{plural(result.skipped, 'row')} with problems {'was' if result.skipped == 1 else 'were'} skipped."
    )
    if result.left_out:
        several = result.left_out != 1
        summary += (
            f" {plural(result.left_out, 'address')} outside {facts.domain_label} "
            f"{'were' if several else 'was'} left out."
        )
    return summary


def _remove_leavers(preview: MailboxImport) -> None:
    try:
        result = reconcile.remove_leavers(preview, actor=current_user)
    except (ImportStateError, mailbox_directory.MailboxError) as exc:
        db.session.rollback()
        flash(f"The leavers were not removed: {exc}", "danger")
        return
    db.session.commit()
    flash(f"Removed {plural(result.removed, 'leaver')} ({result.revoked:,} revoked at Cronofy first).", "success")
    if result.failed:
        shown = "; ".join(f"{email}: {reason}" for email, reason in result.failed[:5])
        stay = "stays because its" if len(result.failed) == 1 else "stay because their"
        flash(f"{plural(len(result.failed), 'leaver')} {stay} revocation failed — {shown}", "warning")


@bp.post("/orgs/<int:org_id>/mailboxes/imports/<int:import_id>/discard")
@login_required
def import_discard(org_id: int, import_id: int):
    organization = organization_or_404(org_id)
    preview = scoped_or_404(MailboxImport, import_id, organization)
    if not ImportDiscardForm().validate_on_submit():
        abort(400)
    try:
        mailbox_import.discard_import(preview, actor=current_user)
    except ImportStateError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for(".import_preview", org_id=org_id, import_id=import_id))
    db.session.commit()
    flash("The preview was discarded; nothing was imported.", "info")
    return redirect(url_for(".import_list", org_id=org_id))


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(exc):
    """Say what the limits are when an upload exceeds the largest request the console accepts."""
    max_bytes, max_rows = mailbox_import.import_limits()
    request_limit = current_app.config.get("MAX_CONTENT_LENGTH") or max_bytes
    form_limit = current_app.config.get("MAX_FORM_MEMORY_SIZE") or request_limit
    return render_error(
        413,
        message=(
            f"That is more than the console accepts in one request ({format_size(request_limit)}). "
            f"An import file may be up to {format_size(max_bytes)} and {max_rows:,} rows; a pasted list up to "
            f"{format_size(form_limit)}. Split the list into smaller files, or upload a file instead of pasting."
        ),
    )
