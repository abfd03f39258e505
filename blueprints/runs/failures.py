"""A group of failures (one cause) as CSV: "Export these N" of the run page's "Failures by cause" panel."""

from __future__ import annotations

from flask import Response, request, stream_with_context
from flask_login import current_user, login_required
from sqlalchemy import func, select

from blueprints.runs import bp, queries
from extensions import db
from models.authorization import AuthorizationRun
from services.mailboxes import failure_guide, mailbox_export
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.read_models import failures


@bp.get("/orgs/<int:org_id>/runs/<int:run_id>/failures.csv")
@login_required
def export_failures(org_id: int, run_id: int):
    """Stream the mailboxes whose latest attempt in the run failed, with the cause `?cause=` or any; audited first."""
    organization = organization_or_404(org_id)
    run = scoped_or_404(AuthorizationRun, run_id, organization)
    cause = queries.cause_filter(request.args.get("cause"))
    ids = failures.run_failed_with(run, cause)
    count = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    failures.record_group_export(organization, actor=current_user, count=count, cause=cause, run_id=run.id)
    db.session.commit()
    suffix = f"-{failure_guide.anchor(cause)}" if cause else "-failed"
    name = mailbox_export.filename(organization).replace(".csv", f"-run-{run.id}{suffix}.csv")
    body = stream_with_context(mailbox_export.csv_lines(mailbox_export.base_query(organization, ids=ids)))
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})
