"""`/organizations/{id}/connections`: the service accounts an organization connected, and their state."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from blueprints.api.auth import organization_for_key, require_scope
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.schemas import IdString, UtcDateTime
from models.connection import CONNECTION_STATUSES
from services.connections import connections

blp = resource_blueprint("connections", "Connections", "The service accounts an organization connected")
CONNECTION_EXAMPLE = {
    "id": "7", "organization_id": "42", "status": "active", "provider": "google", "domain": "acme.example",
    "data_center": "us", "granted_scopes": ["read_free_busy", "read_events"],
    "granted_delegated_scopes": ["read_free_busy", "read_events"], "connected_at": "2026-11-30T09:20:00Z",
    "last_refreshed_at": "2026-12-01T08:00:00Z",
}


class ConnectionSchema(ma.Schema):
    id = IdString()
    organization_id = IdString()
    status = ma.fields.String(validate=ma.validate.OneOf(CONNECTION_STATUSES))
    provider = ma.fields.String(metadata={"example": "google"})
    domain = ma.fields.String(allow_none=True)
    data_center = ma.fields.String()
    granted_scopes = ma.fields.List(ma.fields.String())
    granted_delegated_scopes = ma.fields.List(ma.fields.String())
    connected_at = UtcDateTime(allow_none=True)
    last_refreshed_at = UtcDateTime(allow_none=True, metadata={"description": "Last refresh of its token"})


class ConnectionListSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(ConnectionSchema))


def _dump(connection) -> dict:
    return {"id": connection.id, "organization_id": connection.organization_id, "status": connection.status,
            "provider": connection.provider, "domain": connection.domain, "data_center": connection.data_center,
            "granted_scopes": list(connection.scopes("granted_scope")),
            "granted_delegated_scopes": list(connection.scopes("granted_delegated_scope")),
            "connected_at": connection.connected_at, "last_refreshed_at": connection.last_refreshed_at}


@blp.route("/organizations/<int:organization_id>/connections")
class Connections(MethodView):
    @require_scope("organizations:read")
    @blp.response(200, ConnectionListSchema, example={"data": [CONNECTION_EXAMPLE]})
    @errors(blp, 401, 403, 404, 429)
    def get(self, organization_id):
        """An organization's connections, active ones first"""
        organization = organization_for_key(organization_id)
        return {"data": [_dump(c) for c in connections.list_for(organization)]}
