"""Schemas of `/webhook-endpoints` and their deliveries: requests, answers and the OpenAPI document's examples."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from blueprints.api.run_schemas import IdInput
from blueprints.api.schemas import IdString, PageQuerySchema, StrictSchema, UtcDateTime
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.platform.event_types import NAMES, TEST_EVENT
from services.webhooks import url_guard
from services.webhooks.endpoints import MAX_DESCRIPTION_LENGTH

OUTCOMES = ("succeeded", "failed", "pending")
DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed")
ENDPOINT_EXAMPLE = {
    "id": "5", "url": "https://hooks.vendor.example/ecc", "description": "Scheduling back end",
    "event_types": ["mailbox.authorized", "mailbox.failed"], "organization_id": None, "enabled": True,
    "disabled_reason": None, "disabled_at": None, "failing_since": None, "last_success_at": "2026-12-02T09:12:00Z",
    "previous_secrets_valid_until": None, "created_at": "2026-12-01T16:00:00Z", "updated_at": "2026-12-01T16:00:00Z",
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERY_EXAMPLE = {
    "id": "981", "endpoint_id": "5", "event_id": "120331", "event_type": "mailbox.authorized", "redelivery": 0,
    "status": "succeeded", "attempt_count": 2, "next_attempt_at": None, "last_status_code": 200, "last_error": None,
    "created_at": "2026-12-02T09:11:55Z", "delivered_at": "2026-12-02T09:12:00Z",
    "attempts": [
        {"started_at": "2026-12-02T09:11:55Z", "status_code": 503, "latency_ms": 41, "response_excerpt": "busy",
         "error": "HTTP 503", "succeeded": False},
        {"started_at": "2026-12-02T09:12:00Z", "status_code": 200, "latency_ms": 38, "response_excerpt": "ok",
         "error": None, "succeeded": True},
    ],
}
_TYPES_HELP = "Event types to send; empty (the default) sends every type. " + ", ".join(NAMES)


class WebhookEndpointSchema(ma.Schema):
    id = IdString()
    url = ma.fields.String()
    description = ma.fields.String()
    event_types = ma.fields.List(ma.fields.String(), metadata={"description": "Empty: every type"})
    organization_id = IdString(allow_none=True, metadata={"description": "Only this organization's events; "
                                                                         "null: every organization's"})
    enabled = ma.fields.Boolean()
    disabled_reason = ma.fields.String(allow_none=True, metadata={
        "description": "Why the console disabled it (410 Gone, failing for 5 days); null when a person did"})
    disabled_at = UtcDateTime(allow_none=True)
    failing_since = UtcDateTime(allow_none=True, metadata={"description": "Every attempt since then has failed"})
    last_success_at = UtcDateTime(allow_none=True)
    previous_secrets_valid_until = UtcDateTime(allow_none=True, metadata={
        "description": "After a rotation, until when deliveries are signed with the previous secret too"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class IssuedEndpointSchema(WebhookEndpointSchema):
    secret = ma.fields.String(metadata={"description": "The signing secret (`whsec_…`), shown this once",
                                        "example": SECRET_EXAMPLE})


class WebhookEndpointPageSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(WebhookEndpointSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "null on the last page"})


class WebhookEndpointQuerySchema(PageQuerySchema):
    organization_id = IdInput(metadata={"description": "Only the endpoints filtered to this organization"})


class WebhookEndpointCreateSchema(StrictSchema):
    url = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=url_guard.MAX_URL_LENGTH),
                           metadata={"example": "https://hooks.vendor.example/ecc"})
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(NAMES)), load_default=list,
                                 metadata={"description": _TYPES_HELP, "example": ["mailbox.authorized"]})
    organization_id = IdInput(allow_none=True, metadata={
        "description": "Only this organization's events (a key restricted to one organization: always its own)"})
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=MAX_DESCRIPTION_LENGTH),
                                   metadata={"example": "Scheduling back end"})
    enabled = ma.fields.Boolean(load_default=True)


class WebhookEndpointUpdateSchema(StrictSchema):
    url = ma.fields.String(validate=ma.validate.Length(min=1, max=url_guard.MAX_URL_LENGTH))
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(NAMES)),
                                 metadata={"description": _TYPES_HELP})
    organization_id = IdInput(allow_none=True)
    description = ma.fields.String(validate=ma.validate.Length(max=MAX_DESCRIPTION_LENGTH))
    enabled = ma.fields.Boolean(metadata={"description": "Turning it on again clears the console's reason"})


class RotatedSecretSchema(ma.Schema):
    secret = ma.fields.String(metadata={"description": "The new signing secret, shown this once",
                                        "example": SECRET_EXAMPLE})
    previous_secrets_valid_until = UtcDateTime(metadata={
        "description": "The previous secrets sign deliveries too until then (24 hours)"})


class WebhookAttemptSchema(ma.Schema):
    started_at = UtcDateTime()
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    response_excerpt = ma.fields.String(allow_none=True, metadata={"description": "The first 2 KB of the answer"})
    error = ma.fields.String(allow_none=True)
    succeeded = ma.fields.Boolean()


class WebhookDeliverySchema(ma.Schema):
    id = IdString()
    endpoint_id = IdString()
    event_id = IdString(metadata={"description": "The event's id, sent as `webhook-id`"})
    event_type = ma.fields.String()
    redelivery = ma.fields.Integer(metadata={"description": "0 for the first delivery, then 1, 2… per redelivery"})
    status = ma.fields.String(validate=ma.validate.OneOf(DELIVERY_STATUSES))
    attempt_count = ma.fields.Integer()
    next_attempt_at = UtcDateTime(allow_none=True)
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    created_at = UtcDateTime()
    delivered_at = UtcDateTime(allow_none=True)
    attempts = ma.fields.List(ma.fields.Nested(WebhookAttemptSchema), metadata={"description": "Oldest first"})


class WebhookDeliveryPageSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(WebhookDeliverySchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "null on the last page"})


class WebhookDeliveryQuerySchema(PageQuerySchema):
    event_type = ma.fields.String(validate=ma.validate.OneOf((*NAMES, TEST_EVENT)),
                                  metadata={"example": "mailbox.authorized"})
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES), metadata={
        "description": "succeeded, failed (no attempts left), pending (waiting for an attempt)", "example": "failed"})


class RedeliverFailedSchema(StrictSchema):
    since = ma.fields.AwareDateTime(required=True, default_timezone=UTC, metadata={
        "description": "Redeliver every delivery to this endpoint that failed and was created since then",
        "example": "2026-12-02T00:00:00Z"})


class RedeliveredSchema(ma.Schema):
    redelivered = ma.fields.Integer(metadata={"example": 12})


def dump_endpoint(endpoint: WebhookEndpoint, previous_valid_until=None) -> dict:
    return {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description,
            "event_types": endpoint.event_type_list, "organization_id": endpoint.organization_id,
            "enabled": endpoint.enabled, "disabled_reason": endpoint.disabled_reason,
            "disabled_at": endpoint.disabled_at, "failing_since": endpoint.failing_since,
            "last_success_at": endpoint.last_success_at, "previous_secrets_valid_until": previous_valid_until,
            "created_at": endpoint.created_at, "updated_at": endpoint.updated_at}


def dump_attempt(attempt: WebhookAttempt) -> dict:
    return {"started_at": attempt.started_at, "status_code": attempt.status_code, "latency_ms": attempt.latency_ms,
            "response_excerpt": attempt.response_excerpt, "error": attempt.error, "succeeded": attempt.succeeded}


def dump_delivery(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict:
    return {"id": delivery.id, "endpoint_id": delivery.endpoint_id, "event_id": delivery.event_id,
            "event_type": delivery.event_type, "redelivery": delivery.redelivery, "status": delivery.status,
            "attempt_count": delivery.attempt_count, "next_attempt_at": delivery.next_attempt_at,
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
            "created_at": delivery.created_at, "delivered_at": delivery.delivered_at,
            "attempts": [dump_attempt(a) for a in attempts]}
