"""`/webhook-endpoints` and `/webhook-deliveries`: where the console sends events, their secrets and delivery log.

The same services as the vendor settings page (services/webhooks/endpoints.py, delivery_log.py). A key
restricted to one organization manages only endpoints filtered to that organization: a new one is
filtered to it whatever the body says, and any other endpoint or delivery is a 404.
"""

from __future__ import annotations

from flask import g, url_for
from flask.views import MethodView

from blueprints.api import pagination
from blueprints.api.auth import audit_as_api, organization_for_key, require_scope
from blueprints.api.idempotency import idempotent
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.webhook_schemas import (DELIVERY_EXAMPLE, ENDPOINT_EXAMPLE, SECRET_EXAMPLE, IssuedEndpointSchema,
                                            RedeliveredSchema, RedeliverFailedSchema, RotatedSecretSchema,
                                            WebhookDeliveryPageSchema, WebhookDeliveryQuerySchema,
                                            WebhookDeliverySchema, WebhookEndpointCreateSchema,
                                            WebhookEndpointPageSchema, WebhookEndpointQuerySchema,
                                            WebhookEndpointSchema, WebhookEndpointUpdateSchema, dump_delivery,
                                            dump_endpoint)
from extensions import db
from models.webhook import WebhookDelivery, WebhookEndpoint
from services.webhooks import delivery_log, endpoints

blp = resource_blueprint("webhook_endpoints", "Webhooks",
                         "Endpoints that receive the event log, signed (Standard Webhooks), and what was sent to them")
SCOPE = "webhooks:write"
_documented = errors(blp, 401, 403, 404, 429)


def endpoint_for_key(endpoint_id: int) -> WebhookEndpoint:
    """The endpoint, if the key may see it (a restricted key: only its organization's); otherwise 404."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    restricted = g.api_key.organization_id
    if endpoint is None or (restricted is not None and endpoint.organization_id != restricted):
        raise ApiProblem("not-found", "There is no webhook endpoint with this id.")
    return endpoint


def delivery_for_key(delivery_id: int) -> WebhookDelivery:
    """The delivery, if the key may see its endpoint; otherwise 404."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    restricted = g.api_key.organization_id
    if delivery is None or (restricted is not None and delivery.endpoint.organization_id != restricted):
        raise ApiProblem("not-found", "There is no webhook delivery with this id.")
    return delivery


def _organization(body: dict, *, creating: bool):
    """The organization the body names (forced to a restricted key's own); endpoints.UNSET if it names none."""
    restricted = g.api_key.organization_id
    if "organization_id" not in body:
        return organization_for_key(restricted) if creating and restricted is not None else endpoints.UNSET
    if body["organization_id"] is None:
        if restricted is not None:
            raise ApiProblem("restricted-key", "A key restricted to one organization manages only endpoints "
                                               "filtered to that organization.")
        return None
    return organization_for_key(body["organization_id"])


def _invalid(exc: endpoints.WebhookEndpointError) -> ApiProblem:
    return ApiProblem("validation-failed", str(exc), errors=[{"pointer": f"#/{exc.field}", "detail": str(exc)}])


def _shown(endpoint: WebhookEndpoint, **extra) -> dict:
    return {**dump_endpoint(endpoint, endpoints.previous_secrets_valid_until(endpoint)), **extra}


@blp.route("/webhook-endpoints")
class WebhookEndpoints(MethodView):
    @require_scope(SCOPE)
    @blp.arguments(WebhookEndpointQuerySchema, location="query")
    @blp.response(200, WebhookEndpointPageSchema, example={"data": [ENDPOINT_EXAMPLE], "next_cursor": None})
    @errors(blp, 400)
    @_documented
    def get(self, query):
        """List webhook endpoints, oldest first (a restricted key sees only its organization's)"""
        organization_id = g.api_key.organization_id or query.get("organization_id", endpoints.UNSET)
        rows = endpoints.list_endpoints(organization_id=organization_id,
                                        after_id=pagination.decode("webhook_endpoints", query.get("cursor")),
                                        limit=query["limit"] + 1)
        rows, next_cursor = pagination.page(rows, query["limit"], "webhook_endpoints")
        return {"data": [_shown(row) for row in rows], "next_cursor": next_cursor}

    @require_scope(SCOPE)
    @idempotent
    @blp.arguments(WebhookEndpointCreateSchema, example={"url": "https://hooks.vendor.example/ecc",
                                                         "event_types": ["mailbox.authorized", "mailbox.failed"]})
    @blp.response(201, IssuedEndpointSchema, example={**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}, headers={
        "Location": {"description": "The new endpoint", "schema": {"type": "string"}}})
    @errors(blp, 400, 413)
    @_documented
    def post(self, body):
        """Create an endpoint; the answer holds its signing secret, shown this once"""
        audit_as_api()
        organization = _organization(body, creating=True)
        try:
            issued = endpoints.create_endpoint(
                body["url"], event_types=body["event_types"], description=body["description"],
                organization=None if organization is endpoints.UNSET else organization, enabled=body["enabled"],
                created_by_key=g.api_key)
        except endpoints.WebhookEndpointError as exc:
            db.session.rollback()
            raise _invalid(exc) from None
        db.session.commit()
        location = url_for("api_webhook_endpoints.WebhookEndpointItem", webhook_endpoint_id=issued.endpoint.id,
                           _external=True)
        return _shown(issued.endpoint, secret=issued.secret), 201, {"Location": location}


@blp.route("/webhook-endpoints/<int:webhook_endpoint_id>")
class WebhookEndpointItem(MethodView):
    @require_scope(SCOPE)
    @blp.response(200, WebhookEndpointSchema, example=ENDPOINT_EXAMPLE)
    @_documented
    def get(self, webhook_endpoint_id):
        """One webhook endpoint (never its secret)"""
        return _shown(endpoint_for_key(webhook_endpoint_id))

    @require_scope(SCOPE)
    @blp.arguments(WebhookEndpointUpdateSchema, example={"enabled": True})
    @blp.response(200, WebhookEndpointSchema, example=ENDPOINT_EXAMPLE)
    @errors(blp, 400, 413)
    @_documented
    def patch(self, body, webhook_endpoint_id):
        """Change an endpoint's URL, event types, organization, description, or turn it on or off"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        audit_as_api()
        changes = {name: body[name] for name in ("url", "event_types", "description", "enabled") if name in body}
        try:
            endpoints.update_endpoint(endpoint, organization=_organization(body, creating=False), **changes)
        except endpoints.WebhookEndpointError as exc:
            db.session.rollback()
            raise _invalid(exc) from None
        db.session.commit()
        return _shown(endpoint)

    @require_scope(SCOPE)
    @blp.response(204)
    @_documented
    def delete(self, webhook_endpoint_id):
        """Delete an endpoint with its secrets and delivery log; nothing more is sent to it"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        audit_as_api()
        endpoints.delete_endpoint(endpoint)
        db.session.commit()
        return "", 204


@blp.route("/webhook-endpoints/<int:webhook_endpoint_id>/rotate-secret")
class WebhookEndpointSecret(MethodView):
    @require_scope(SCOPE)
    @blp.response(200, RotatedSecretSchema, example={"secret": SECRET_EXAMPLE,
                                                     "previous_secrets_valid_until": "2026-12-03T16:00:00Z"})
    @_documented
    def post(self, webhook_endpoint_id):
        """Issue a new signing secret; deliveries are signed with the previous one too for 24 hours"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        audit_as_api()
        secret = endpoints.rotate_secret(endpoint)
        db.session.commit()
        return {"secret": secret, "previous_secrets_valid_until": endpoints.previous_secrets_valid_until(endpoint)}


@blp.route("/webhook-endpoints/<int:webhook_endpoint_id>/test")
class WebhookEndpointTest(MethodView):
    @require_scope(SCOPE)
    @blp.response(202, WebhookDeliverySchema, example={**DELIVERY_EXAMPLE, "event_type": "webhook.test"})
    @_documented
    def post(self, webhook_endpoint_id):
        """Send a `webhook.test` event to this endpoint only; follow it in its deliveries"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        audit_as_api()
        delivery = delivery_log.send_test_event(endpoint)
        db.session.commit()
        return dump_delivery(delivery, delivery_log.attempts_of(delivery)), 202


@blp.route("/webhook-endpoints/<int:webhook_endpoint_id>/deliveries")
class WebhookEndpointDeliveries(MethodView):
    @require_scope(SCOPE)
    @blp.arguments(WebhookDeliveryQuerySchema, location="query")
    @blp.response(200, WebhookDeliveryPageSchema, example={"data": [DELIVERY_EXAMPLE], "next_cursor": None})
    @errors(blp, 400)
    @_documented
    def get(self, query, webhook_endpoint_id):
        """The endpoint's deliveries, newest first, each with its attempts (time, status, latency, answer, error)"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        scope = f"webhook_deliveries:{endpoint.id}"
        rows = delivery_log.list_deliveries(
            endpoint_id=endpoint.id, event_type=query.get("event_type"), outcome=query.get("outcome"),
            after_id=pagination.decode(scope, query.get("cursor")), limit=query["limit"] + 1)
        rows, next_cursor = pagination.page(rows, query["limit"], scope)
        attempts = delivery_log.attempts_of_each(rows)
        return {"data": [dump_delivery(row, attempts[row.id]) for row in rows],
                "next_cursor": next_cursor}


@blp.route("/webhook-deliveries/<int:webhook_delivery_id>/redeliver")
class WebhookDeliveryRedeliver(MethodView):
    @require_scope(SCOPE)
    @blp.response(202, WebhookDeliverySchema, example={**DELIVERY_EXAMPLE, "redelivery": 1, "status": "pending",
                                                       "attempt_count": 0, "attempts": []})
    @_documented
    def post(self, webhook_delivery_id):
        """Send a delivery's event again (same `webhook-id`), as a new delivery due now"""
        delivery = delivery_for_key(webhook_delivery_id)
        audit_as_api()
        again = delivery_log.redeliver(delivery)
        db.session.commit()
        return dump_delivery(again, delivery_log.attempts_of(again)), 202


@blp.route("/webhook-endpoints/<int:webhook_endpoint_id>/redeliver-failed")
class WebhookEndpointRedeliverFailed(MethodView):
    @require_scope(SCOPE)
    @blp.arguments(RedeliverFailedSchema, example={"since": "2026-12-02T00:00:00Z"})
    @blp.response(202, RedeliveredSchema, example={"redelivered": 12})
    @errors(blp, 400, 413)
    @_documented
    def post(self, body, webhook_endpoint_id):
        """Redeliver every failed delivery to this endpoint created since a time"""
        endpoint = endpoint_for_key(webhook_endpoint_id)
        audit_as_api()
        count = delivery_log.redeliver_failed_since(endpoint, body["since"])
        db.session.commit()
        return {"redelivered": count}, 202
