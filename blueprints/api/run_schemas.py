"""Schemas of `/runs`: starting a run (which mailboxes, what access, canary settings) and a run's progress."""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma

from blueprints.api.schemas import IdString, StrictSchema, UtcDateTime
from models.authorization import ATTEMPT_STATUSES, RUN_STATUSES
from models.base import utcnow
from models.mailbox import MAILBOX_KINDS, MAILBOX_STATUSES

MAX_NAMED = 10_000
ALL_UNAUTHORIZED = "all_unauthorized"
RUN_EXAMPLE = {
    "id": "310", "organization_id": "42", "connection_id": "7", "action": "authorize", "status": "running",
    "scope": ["read_free_busy", "read_events"], "source": "API: mailboxes matching status new", "total": 240,
    "counts": {**dict.fromkeys(ATTEMPT_STATUSES, 0), "queued": 120, "requested": 20, "authorized": 95,
               "failed": 5},
    "done": 100, "percent": 41, "rate_per_minute": 48.0, "rate_is_average": False, "eta_seconds": 175,
    "estimated_end_at": "2026-12-02T18:05:00Z", "current_wave": 1, "waves": 1, "canary_size": None,
    "auto_continue": True, "failure_threshold": 20, "pause_reason": None,
    "failures_by_cause": [{"cause": "not_found", "name": "Mailbox not found", "count": 5, "retryable": False,
                           "fix": "Check the address, or remove the mailbox if the person has left."}],
    "started_at": "2026-12-02T18:00:00Z", "finished_at": None,
}


class IdInput(ma.fields.Integer):
    """An id, as a string (as the API writes ids) or a number."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ma.ValidationError("Not an id: give the id as a string of digits, as the API writes it.")
        return super()._deserialize(value, attr, data, **kwargs)


class MailboxFilterSchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_STATUSES), metadata={"example": "new"})
    kind = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_KINDS), metadata={"example": "user"})
    group = ma.fields.String(validate=ma.validate.Length(min=1, max=100), metadata={"example": "Sales"})


class MailboxSetSchema(StrictSchema):
    ids = ma.fields.List(IdInput(), validate=ma.validate.Length(min=1, max=MAX_NAMED))
    emails = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=320)),
                            validate=ma.validate.Length(min=1, max=MAX_NAMED))
    filter = ma.fields.Nested(MailboxFilterSchema)

    @ma.validates_schema
    def one_way(self, data, **kwargs):
        if len(data) != 1:
            raise ma.ValidationError("Name the mailboxes one way: ids, emails or filter.")


def _list_of(items: dict) -> dict:
    return {"type": "array", "items": items, "minItems": 1, "maxItems": MAX_NAMED}


MAILBOX_SET_DOC = {
    "description": f"Which mailboxes: `{{\"ids\": [...]}}`, `{{\"emails\": [...]}}` (up to {MAX_NAMED:,} of either), "
                   "`{\"filter\": {\"status\", \"kind\", \"group\"}}` (every mailbox matching it when the run starts) "
                   f"or `\"{ALL_UNAUTHORIZED}\"` (every mailbox that is new, failed or needs attention). Mailboxes "
                   "already authorized or in a running batch are left out of an authorization.",
    "oneOf": [
        {"type": "string", "enum": [ALL_UNAUTHORIZED]},
        {"type": "object", "required": ["ids"], "additionalProperties": False,
         "properties": {"ids": _list_of({"type": "string", "example": "1001"})}},
        {"type": "object", "required": ["emails"], "additionalProperties": False,
         "properties": {"emails": _list_of({"type": "string", "example": "ana@acme.example"})}},
        {"type": "object", "required": ["filter"], "additionalProperties": False,
         "properties": {"filter": {"type": "object", "additionalProperties": False, "properties": {
             "status": {"type": "string", "enum": list(MAILBOX_STATUSES)},
             "kind": {"type": "string", "enum": list(MAILBOX_KINDS)},
             "group": {"type": "string", "maxLength": 100}}}}},
    ],
    "example": {"filter": {"status": "new"}},
}


class MailboxSet(ma.fields.Field):
    """`"all_unauthorized"`, or an object naming the mailboxes by ids, emails or a filter."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value == ALL_UNAUTHORIZED:
            return {ALL_UNAUTHORIZED: True}
        if not isinstance(value, dict):
            raise ma.ValidationError(f'Give "{ALL_UNAUTHORIZED}" or an object with ids, emails or filter.')
        return MailboxSetSchema().load(value)


class RunCreateSchema(StrictSchema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(["authorize", "revoke"]),
                              metadata={"example": "authorize"})
    mailboxes = MailboxSet(required=True, metadata=MAILBOX_SET_DOC)
    connection_id = IdInput(metadata={"description": "authorize: the active connection to authorize through "
                                                     "(default: the organization's first active one)",
                                      "type": "string", "example": "7"})
    scope = ma.fields.String(validate=ma.validate.Length(min=1, max=500), metadata={
        "description": "authorize: the delegated access to ask for, space-separated, within what the connection "
                       "was granted (default: all of it)", "example": "read_free_busy"})
    canary_size = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1), metadata={
        "description": "authorize: do this many mailboxes first and look at the outcome before the rest "
                       "(smaller than the number to authorize); null or missing: all in one go", "example": 20})
    continue_after_canary = ma.fields.String(load_default="auto", validate=ma.validate.OneOf(["auto", "confirm"]),
                                             metadata={"description": "authorize: `auto` goes on if the canary "
                                                       "went well, `confirm` waits for `POST /runs/{id}/resume`"})
    failure_threshold = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100), metadata={
        "description": "authorize: pause when more than this percentage of a wave fails", "example": 20})


class RetrySchema(StrictSchema):
    include_unfixable = ma.fields.Boolean(load_default=False, metadata={
        "description": "Retry also the failures whose cause a retry as it is cannot fix (mailbox not found, ...)"})


class CauseSchema(ma.Schema):
    cause = ma.fields.String(metadata={"description": "The cause's stable key"})
    name = ma.fields.String()
    count = ma.fields.Integer()
    retryable = ma.fields.Boolean(metadata={"description": "Whether a retry as it is can help"})
    fix = ma.fields.String()


class RunSchema(ma.Schema):
    id = IdString()
    organization_id = IdString()
    connection_id = IdString()
    action = ma.fields.String(validate=ma.validate.OneOf(["authorize", "revoke"]))
    status = ma.fields.String(validate=ma.validate.OneOf(RUN_STATUSES))
    scope = ma.fields.List(ma.fields.String(), metadata={"description": "The access asked for (authorize)"})
    source = ma.fields.String(metadata={"description": "Which mailboxes, in words"})
    total = ma.fields.Integer(metadata={"description": "Mailboxes in the run"})
    counts = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.OneOf(ATTEMPT_STATUSES)),
                            values=ma.fields.Integer(), metadata={"description": "Mailboxes per attempt status"})
    done = ma.fields.Integer(metadata={"description": "Mailboxes finished (authorized, failed, revoked, cancelled)"})
    percent = ma.fields.Integer()
    rate_per_minute = ma.fields.Float(metadata={
        "description": "While running: the current wave's pace; otherwise the average over the time it ran"})
    rate_is_average = ma.fields.Boolean()
    eta_seconds = ma.fields.Integer(allow_none=True, metadata={"description": "null until the pace is known"})
    estimated_end_at = UtcDateTime(allow_none=True)
    current_wave = ma.fields.Integer()
    waves = ma.fields.Integer()
    canary_size = ma.fields.Integer(allow_none=True)
    auto_continue = ma.fields.Boolean()
    failure_threshold = ma.fields.Integer(metadata={"description": "Percent"})
    pause_reason = ma.fields.String(allow_none=True)
    failures_by_cause = ma.fields.List(ma.fields.Nested(CauseSchema))
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)


class RetryResultSchema(ma.Schema):
    retried = ma.fields.Integer(metadata={"description": "Failed mailboxes given a new attempt"})
    left_out = ma.fields.Integer(metadata={"description": "Failures left out: a retry as it is cannot fix them"})
    run = ma.fields.Nested(RunSchema)


def dump_run(run, snapshot) -> dict:
    progress = snapshot.progress
    eta = progress.eta_seconds
    return {
        "id": run.id, "organization_id": run.organization_id, "connection_id": run.connection_id,
        "action": run.action, "status": run.status, "scope": (run.scope or "").split(), "source": run.source,
        "total": progress.total, "counts": progress.counts, "done": progress.done, "percent": progress.percent,
        "rate_per_minute": round(progress.rate_per_minute, 2), "rate_is_average": progress.rate_is_average,
        "eta_seconds": eta, "estimated_end_at": utcnow() + timedelta(seconds=eta) if eta is not None else None,
        "current_wave": progress.current_wave, "waves": progress.waves, "canary_size": progress.canary_size,
        "auto_continue": run.auto_continue, "failure_threshold": round((run.failure_threshold or 0) * 100),
        "pause_reason": progress.pause_reason,
        "failures_by_cause": [{"cause": group.cause, "name": group.guidance.name, "count": group.count,
                               "retryable": group.retryable, "fix": group.guidance.fix}
                              for group in snapshot.causes],
        "started_at": run.started_at, "finished_at": run.finished_at,
    }
