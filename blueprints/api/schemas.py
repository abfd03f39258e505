"""Schemas shared by the API's resources: they validate requests, shape responses and build the OpenAPI document.

Unknown fields are refused (marshmallow's RAISE), ids are strings, timestamps ISO 8601 in UTC.
"""

from __future__ import annotations

import marshmallow as ma

from models.mailbox import MAILBOX_STATUSES
from services.read_models.organization_state import ONBOARDING_STATES

MAX_LIMIT = 200


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class IdString(ma.fields.Field):
    """An integer id, written as a string."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class UtcDateTime(ma.fields.DateTime):
    """ISO 8601 with a `Z`."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class PageQuerySchema(StrictSchema):
    cursor = ma.fields.String(metadata={"description": "`next_cursor` of the previous page"})
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=MAX_LIMIT),
                              metadata={"description": f"At most {MAX_LIMIT}", "example": 50})


def mailbox_counts_field():
    return ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.OneOf(MAILBOX_STATUSES)),
                          values=ma.fields.Integer(), metadata={
                              "description": "Mailboxes per status", "example": dict.fromkeys(MAILBOX_STATUSES, 0)})


def onboarding_state_field():
    return ma.fields.String(validate=ma.validate.OneOf(ONBOARDING_STATES), metadata={
        "description": "not_connected, connected (no mailboxes yet), importing (mailboxes waiting to be authorized), "
                       "authorizing (a run is under way), ready (every mailbox authorized), needs_attention",
        "example": "ready"})
