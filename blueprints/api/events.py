"""`/events`: the event log, in order, for consumers that pull or that catch up after missing webhooks.

Ids grow in commit order (services/platform/events.py), so `after=<the last id seen>` never skips an
event that commits later. Each event is the envelope webhooks carry (services/webhooks/signing.py), with the
same id as a webhook's `webhook-id`. The OpenAPI document has one schema per subject type, `data` being that
resource's own schema (docs/events.md).
"""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView
from sqlalchemy import select

from blueprints.api.auth import organization_for_key, require_scope
from blueprints.api.connections import ConnectionSchema
from blueprints.api.mailboxes import MailboxSchema
from blueprints.api.organizations import OrganizationSchema
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.run_schemas import RunSchema
from blueprints.api.schemas import MAX_LIMIT, IdString, StrictSchema, UtcDateTime
from blueprints.api.webhook_schemas import WebhookEndpointSchema
from extensions import db
from models.event import Event
from services.platform.event_types import BY_NAME, CATALOG, TEST_EVENT
from services.webhooks.signing import envelope

blp = resource_blueprint("events", "Events", "Every state change, once, in commit order (what webhooks deliver)")
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 100
# subject type -> (component name, the resource schema its `data` follows)
SUBJECTS = {
    "organization": ("OrganizationEvent", OrganizationSchema),
    "connection": ("ConnectionEvent", ConnectionSchema),
    "mailbox": ("MailboxEvent", MailboxSchema),
    "run": ("RunEvent", RunSchema),
    "webhook_endpoint": ("WebhookEndpointEvent", WebhookEndpointSchema),
}
EVENT_EXAMPLE = {
    "id": "120331", "type": "mailbox.authorized", "timestamp": "2026-12-02T09:11:54Z", "organization_id": "42",
    "subject": {"type": "mailbox", "id": "1001", "external_id": "u-42"},
    "data": {"id": "1001", "organization_id": "42", "email": "ana@acme.example", "status": "authorized"},
}


class EventSubjectSchema(ma.Schema):
    type = ma.fields.String(required=True, metadata={"example": "mailbox"})
    id = IdString(allow_none=True, metadata={"example": "1001"})
    external_id = ma.fields.String(allow_none=True, metadata={
        "description": "The vendor's own id of the subject, where it has one", "example": "u-42"})


def _event_schema(subject_type: str, data_schema: type[ma.Schema]) -> type[ma.Schema]:
    """Build the documented shape of one subject type's events (types enumerated, data nested)."""
    names = [t.name for t in CATALOG if t.subject_type == subject_type]
    subject = type(f"{SUBJECTS[subject_type][0]}SubjectSchema", (EventSubjectSchema,), {
        "type": ma.fields.String(required=True, validate=ma.validate.OneOf([subject_type]))})
    return type(f"{SUBJECTS[subject_type][0]}Schema", (ma.Schema,), {
        "__doc__": "; ".join(f"`{t.name}`: {t.description}" for t in CATALOG if t.subject_type == subject_type),
        "id": IdString(required=True, metadata={"description": "Grows in commit order; the `webhook-id` of its "
                                                               "webhooks", "example": "120331"}),
        "type": ma.fields.String(required=True, validate=ma.validate.OneOf(names)),
        "timestamp": UtcDateTime(required=True, metadata={"description": "When the change was made"}),
        "organization_id": IdString(allow_none=True, metadata={"example": "42"}),
        "subject": ma.fields.Nested(subject, required=True),
        "data": ma.fields.Nested(data_schema, required=True, metadata={
            "description": "The subject as the API returns it at the moment of the change"}),
    })


EVENT_SCHEMAS = {name: _event_schema(subject_type, schema) for subject_type, (name, schema) in SUBJECTS.items()}


class EventQuerySchema(StrictSchema):
    after = ma.fields.Integer(validate=ma.validate.Range(min=0, max=MAX_ID), metadata={
        "description": "Return the events after this id: the `next_cursor` of the previous page, or the last id "
                       "seen", "example": 120330})
    types = ma.fields.String(metadata={"description": "Comma-separated event types; all of them by default",
                                       "example": "mailbox.authorized,mailbox.failed"})
    organization_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_ID), metadata={"example": 42})
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT),
                              metadata={"description": f"At most {MAX_LIMIT}", "example": DEFAULT_LIMIT})


class EventPageSchema(ma.Schema):
    # Dumped as built (`envelope`); documented as one of the per-subject schemas.
    data = ma.fields.List(ma.fields.Raw(metadata={"oneOf": [
        {"$ref": f"#/components/schemas/{name}"} for name in EVENT_SCHEMAS]}))
    next_cursor = ma.fields.String(allow_none=True, metadata={
        "description": "The last event's id, to pass as `after` next time (whether or not `has_more`); the `after` "
                       "given when the page is empty"})
    has_more = ma.fields.Boolean(metadata={"description": "Whether more events follow right away"})


@blp.record_once
def _document_event_schemas(state) -> None:
    api = state.app.extensions["flask-smorest"]["blp_name_to_api"][blp.name]
    for name, schema in EVENT_SCHEMAS.items():
        api.spec.components.schema(name, schema=schema)


def _types(value: str | None) -> list[str] | None:
    if value is None:
        return None
    wanted = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown or not wanted:
        detail = (f"Unknown event type {unknown[0]!r}; the types are: {', '.join(BY_NAME)}." if unknown
                  else "Name at least one event type, or leave `types` out.")
        raise ApiProblem("validation-failed", detail, errors=[{"parameter": "types", "in": "query", "detail": detail}])
    return wanted


def _visible_organization(organization_id: int | None) -> int | None:
    """The organization to filter on: the one asked for (404 if the key may not see it), else the key's own."""
    if organization_id is not None:
        return organization_for_key(organization_id).id
    return g.api_key.organization_id


def list_events(*, after: int | None, types: list[str] | None, organization_id: int | None, limit: int) -> list[Event]:
    """Return up to limit + 1 events after `after`, oldest first (the test event is never listed)."""
    query = select(Event).order_by(Event.id).limit(limit + 1)
    if after is not None:
        query = query.where(Event.id > after)
    query = query.where(Event.type.in_(types)) if types else query.where(Event.type != TEST_EVENT)
    if organization_id is not None:
        query = query.where(Event.organization_id == organization_id)
    return list(db.session.scalars(query))


@blp.route("/events")
class Events(MethodView):
    @require_scope("events:read")
    @blp.arguments(EventQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, EventPageSchema, example={"data": [EVENT_EXAMPLE], "next_cursor": "120331",
                                                 "has_more": False})
    @errors(blp, 401, 403, 404, 422, 429)
    def get(self, query):
        """Events after a cursor, oldest first; a key restricted to one organization sees only its events"""
        rows = list_events(after=query.get("after"), types=_types(query.get("types")),
                           organization_id=_visible_organization(query.get("organization_id")),
                           limit=query["limit"])
        page = rows[:query["limit"]]
        cursor = str(page[-1].id) if page else (str(query["after"]) if "after" in query else None)
        return {"data": [envelope(event) for event in page], "next_cursor": cursor,
                "has_more": len(rows) > query["limit"]}
