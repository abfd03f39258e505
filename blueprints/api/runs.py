"""`/runs`: bulk authorizations and revocations of an organization's mailboxes, their progress and actions.

The same services as the run pages (services/engine/runs.py; which mailboxes: services/engine/run_sources.py),
committed by the view, then the engine's pump is enqueued, exactly as the pages do.
"""

from __future__ import annotations

from flask import g, url_for
from flask.views import MethodView

import jobs
from blueprints.api import run_schemas
from blueprints.api.auth import audit_as_api, organization_for_key, require_scope
from blueprints.api.idempotency import idempotent
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.run_schemas import RUN_EXAMPLE, RetryResultSchema, RetrySchema, RunCreateSchema, RunSchema
from extensions import db
from models.authorization import AuthorizationRun
from models.connection import Connection
from services.connections import connections
from services.engine import run_sources, runs
from services.onboarding import catalog
from services.platform.wording import plural
from services.read_models import failures
from services.read_models.run_snapshot import run_snapshot

blp = resource_blueprint("runs", "Runs", "Bulk authorizations and revocations, their progress and actions")
AUTHORIZE_ONLY = ("scope", "canary_size", "connection_id")


def _invalid(pointer: str, detail: str) -> ApiProblem:
    return ApiProblem("validation-failed", detail, errors=[{"pointer": pointer, "detail": detail}])


def run_for_key(run_id: int) -> AuthorizationRun:
    """The run, if the key may see its organization; otherwise 404."""
    run = db.session.get(AuthorizationRun, run_id)
    restricted = g.api_key.organization_id
    if run is None or (restricted is not None and run.organization_id != restricted):
        raise ApiProblem("not-found", "There is no run with this id.")
    return run


def _answer(run: AuthorizationRun) -> dict:
    db.session.expire_all()
    run = db.session.get(AuthorizationRun, run.id)
    return run_schemas.dump_run(run, run_snapshot(run, size=1, provider=run.connection.provider))


def _source(organization, named: dict):
    """Return (the select of the named mailboxes' ids, what to call them)."""
    try:
        if "ids" in named:
            return run_sources.by_ids(organization, named["ids"]), f"API: {plural(len(named['ids']), 'mailbox')} by id"
        if "emails" in named:
            return (run_sources.by_emails(organization, named["emails"]),
                    f"API: {plural(len(named['emails']), 'mailbox')} by address")
    except run_sources.UnknownMailboxes as exc:
        way = "ids" if "ids" in named else "emails"
        errors = [{"pointer": f"#/mailboxes/{way}/{index}", "detail": reason} for index, reason in exc.problems]
        raise ApiProblem("validation-failed", f"{plural(len(errors), 'named mailbox', 'named mailboxes')} cannot be "
                         "found in this organization; no run was started.", errors=errors) from None
    if "filter" in named:
        criteria = named["filter"]
        words = ", ".join(f"{key} {value}" for key, value in sorted(criteria.items())) or "every mailbox"
        return run_sources.by_filter(organization, **criteria), f"API: mailboxes matching {words}"
    return run_sources.not_yet_authorized(organization), "API: everything not yet authorized"


def _connection(organization, wanted: int | None) -> Connection:
    found = connections.list_for(organization)
    if wanted is not None:
        chosen = next((c for c in found if c.id == wanted), None)
        if chosen is None:
            raise _invalid("#/connection_id", "This organization has no connection with this id.")
        return chosen
    active = [c for c in found if c.status == "active"]
    if not active:
        raise _invalid("#", "Connect a domain first: there is no active connection to authorize through.")
    return active[0]


def _start_authorize(organization, body, ids_select, label) -> AuthorizationRun:
    connection = _connection(organization, body.get("connection_id"))
    scope = body.get("scope") or " ".join(catalog.split(connection.granted_delegated_scope))
    run = runs.start_run(
        organization, connection=connection, mailbox_ids_select=ids_select, scope=scope, actor=None,
        source=label, canary_size=body.get("canary_size"), auto_continue=body["continue_after_canary"] != "confirm",
        failure_threshold=body["failure_threshold"] / 100)
    canary = body.get("canary_size")
    if canary and canary >= run.total:
        raise _invalid("#/canary_size", f"The canary wave must be smaller than the {plural(run.total, 'mailbox')} "
                                        "to authorize, or left out.")
    return run


def _start_revoke(organization, body, ids_select, label) -> AuthorizationRun:
    given = [name for name in AUTHORIZE_ONLY if body.get(name) is not None]
    if given:
        raise _invalid(f"#/{given[0]}", f"Only an authorization takes {given[0]}; a revocation revokes everything.")
    connection = run_sources.revoking_connection(organization)
    if connection is None:
        raise runs.RunError("This organization has no connection: there is nothing to revoke.")
    return runs.start_revoke_run(organization, connection=connection, mailbox_ids_select=ids_select, actor=None,
                                 source=label)


_documented = errors(blp, 401, 403, 404, 409, 429)
_read_only = errors(blp, 401, 403, 404, 429)


@blp.route("/organizations/<int:organization_id>/runs")
class OrganizationRuns(MethodView):
    @require_scope("runs:write")
    @idempotent
    @blp.arguments(RunCreateSchema, example={"action": "authorize", "mailboxes": {"filter": {"status": "new"}},
                                             "scope": "read_free_busy", "canary_size": 20})
    @blp.response(202, RunSchema, example=RUN_EXAMPLE, headers={
        "Location": {"description": "The run, to follow its progress", "schema": {"type": "string"}}})
    @errors(blp, 400, 413)
    @_documented
    def post(self, body, organization_id):
        """Start authorizing or revoking mailboxes; the engine works through them in the background"""
        organization = organization_for_key(organization_id)
        audit_as_api()
        ids_select, label = _source(organization, body["mailboxes"])
        start = _start_authorize if body["action"] == "authorize" else _start_revoke
        try:
            run = start(organization, body, ids_select, label)
        except runs.RunError as exc:
            db.session.rollback()
            raise _invalid("#", str(exc)) from None
        except ApiProblem:
            db.session.rollback()
            raise
        db.session.commit()
        jobs.enqueue_pump(run.id)
        location = url_for("api_runs.Run", run_id=run.id, _external=True)
        return _answer(run), 202, {"Location": location}


@blp.route("/runs/<int:run_id>")
class Run(MethodView):
    @require_scope("runs:write")
    @blp.response(200, RunSchema, example=RUN_EXAMPLE)
    @_read_only
    def get(self, run_id):
        """A run's progress: mailboxes per status, pace, estimated end and failures by cause"""
        return _answer(run_for_key(run_id))


def _act(run_id: int, action, *, pump: bool):
    run = run_for_key(run_id)
    audit_as_api()
    try:
        result = action(run, actor=None)
    except runs.RunError as exc:
        db.session.rollback()
        raise ApiProblem("run-state", str(exc)) from None
    db.session.commit()
    if pump:
        jobs.enqueue_pump(run.id)
    return run, result


def _resume(run: AuthorizationRun, *, actor) -> None:
    """Resume a paused run, or go on after the canary of a run waiting for that confirmation."""
    if run.status == "awaiting_confirmation":
        return runs.confirm_next_wave(run, actor=actor)
    return runs.resume_run(run, actor=actor)


def _action_route(name: str, service, summary: str, *, pump: bool):
    def post(self, run_id):
        return _answer(_act(run_id, service, pump=pump)[0])

    post.__doc__ = summary
    decorated = require_scope("runs:write")(blp.response(200, RunSchema, example=RUN_EXAMPLE)(_documented(post)))
    view = type(f"Run{name.title()}", (MethodView,), {"post": decorated})
    blp.route(f"/runs/<int:run_id>/{name}")(view)


_action_route("pause", runs.pause_run, "Pause a run: nothing new is sent; requests already sent still finish",
              pump=False)
_action_route("resume", _resume, "Resume a paused run, or go on after a canary wave that waits for confirmation",
              pump=True)
_action_route("cancel", runs.cancel_run, "Cancel what has not been sent yet; those mailboxes are left as they were",
              pump=False)


@blp.route("/runs/<int:run_id>/retry-failed")
class RunRetryFailed(MethodView):
    @require_scope("runs:write")
    @blp.arguments(RetrySchema, example={"include_unfixable": False})
    @blp.response(200, RetryResultSchema, example={"retried": 3, "left_out": 2, "run": RUN_EXAMPLE})
    @errors(blp, 400, 413)
    @_documented
    def post(self, body, run_id):
        """Give the run's failed mailboxes a new attempt (by default only those a retry can help)"""
        include = body["include_unfixable"]
        left_out = []

        def retry(run, *, actor):
            if not include:
                left_out.extend(group for group in failures.run_failures(run, run.connection.provider)
                                if not group.retryable)
            return runs.retry_failed(run, actor=actor, include_unfixable=include)

        run, retried = _act(run_id, retry, pump=True)
        return {"retried": retried, "left_out": sum(group.count for group in left_out), "run": _answer(run)}
