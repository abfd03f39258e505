"""The run history, a run's page (progress, outcomes) with its polling fragment, and the run's actions."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

import jobs
from blueprints.converters import parse_id
from blueprints.runs import bp, queries
from extensions import db
from models.authorization import ATTEMPT_STATUSES, AuthorizationRun
from services.engine import runs
from services.platform.tenancy import organization_or_404, scoped_or_404
from services.platform.wording import plural, sentence
from services.read_models import failures

FINISHED = ("completed", "cancelled")


def is_active(run: AuthorizationRun) -> bool:
    """Return whether the run can still change, so its page keeps polling."""
    return run.status not in FINISHED


@bp.get("/orgs/<int:org_id>/runs")
@login_required
def index(org_id: int):
    organization = organization_or_404(org_id)
    page = queries.history(organization, request.args.get("page", 1, type=int))
    return render_template("runs/index.html", organization=organization, history=page)


def _live_context(organization, run: AuthorizationRun) -> dict:
    """Return what the live part of the run page shows, all of it from one snapshot of the run."""
    status = queries.status_filter(request.args.get("status"))
    cause = queries.cause_filter(request.args.get("cause"))
    after = request.args.get("after", type=parse_id)
    snapshot = queries.snapshot(run, status=status, cause=cause, after=after)
    return dict(organization=organization, run=run, snapshot=snapshot, progress=snapshot.progress,
                outcomes=snapshot, status="failed" if cause else status, cause=cause, after=after,
                statuses=ATTEMPT_STATUSES, active=is_active(run), failure_groups=snapshot.causes)


@bp.get("/orgs/<int:org_id>/runs/<int:run_id>")
@login_required
def show(org_id: int, run_id: int):
    organization = organization_or_404(org_id)
    run = scoped_or_404(AuthorizationRun, run_id, organization)
    return render_template("runs/show.html", **_live_context(organization, run))


@bp.get("/orgs/<int:org_id>/runs/<int:run_id>/progress")
@login_required
def progress(org_id: int, run_id: int):
    """The live part of the page (summary, failures by cause, tabs and rows) for run_progress.js to swap in."""
    organization = organization_or_404(org_id)
    run = scoped_or_404(AuthorizationRun, run_id, organization)
    return render_template("runs/_live.html", **_live_context(organization, run))


def _act(org_id: int, run_id: int, action: Callable, message: str | Callable, *, confirm: bool = False,
         pump: bool = True):
    """Apply a run action: check the confirmation, call the service, commit, then wake the worker.

    `message` is the flash, formatted with the action's result (or a function of the run and the result).
    """
    organization = organization_or_404(org_id)
    run = scoped_or_404(AuthorizationRun, run_id, organization)
    if confirm and request.form.get("confirm") != "yes":
        abort(400, "Confirm first: tick the confirmation and submit again.")
    try:
        result = action(run, actor=current_user)
    except runs.RunError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        db.session.commit()
        if pump:
            jobs.enqueue_pump(run.id)
        flash(message(run, result) if callable(message) else message.format(result=result), "success")
    return redirect(url_for(".show", org_id=org_id, run_id=run_id))


@bp.post("/orgs/<int:org_id>/runs/<int:run_id>/pause")
@login_required
def pause(org_id: int, run_id: int):
    return _act(org_id, run_id, runs.pause_run, "Paused. Requests already sent still finish; nothing new is sent.",
                pump=False)


@bp.post("/orgs/<int:org_id>/runs/<int:run_id>/resume")
@login_required
def resume(org_id: int, run_id: int):
    return _act(org_id, run_id, runs.resume_run, "Resumed.")


@bp.post("/orgs/<int:org_id>/runs/<int:run_id>/cancel")
@login_required
def cancel(org_id: int, run_id: int):
    return _act(org_id, run_id, runs.cancel_run,
                "Cancelled. Mailboxes not yet sent are left as they were; requests already sent still finish.",
                confirm=True, pump=False)


@bp.post("/orgs/<int:org_id>/runs/<int:run_id>/retry-failed")
@login_required
def retry_failed(org_id: int, run_id: int):
    """Retry the run's failures; those a retry as it is cannot fix only when the admin includes them."""
    include = request.form.get("include_unfixable") == "yes"
    left_out: list = []

    def retry(run: AuthorizationRun, *, actor):
        if not include:
            left_out.extend(g for g in failures.run_failures(run, run.connection.provider) if not g.retryable)
        return runs.retry_failed(run, actor=actor, include_unfixable=include)

    return _act(org_id, run_id, retry, lambda run, retried: retry_message(retried, left_out))


def retry_message(retried: int, left_out: list) -> str:
    """Say how many failures are retried and which were left out, per cause, because a retry cannot fix them."""
    said = f"Retrying {plural(retried, 'failed mailbox', 'failed mailboxes')}." if retried else "Nothing retried."
    if left_out:
        count = sum(group.count for group in left_out)
        causes = ", ".join(f"{group.guidance.name}: {group.count:,}" for group in left_out)
        said += (f" Left out {plural(count, 'failure')} whose cause a retry as it is will not fix ({causes}). "
                 "Fix the cause first, or tick “Include them too” and retry again")
    return sentence(said)


@bp.post("/orgs/<int:org_id>/runs/<int:run_id>/confirm-wave")
@login_required
def confirm_wave(org_id: int, run_id: int):
    return _act(org_id, run_id, runs.confirm_next_wave, "Going on with the next wave.")
