"""`POST /organizations/{id}/portal-links`: a single-use link that signs the customer's admin in."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from blueprints.api.auth import organization_for_key, require_scope
from blueprints.api.idempotency import idempotent
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.schemas import StrictSchema, UtcDateTime
from extensions import db
from models.portal_link import PORTAL_INTENTS
from services.accounts import portal_links

blp = resource_blueprint("portal_links", "Portal links", "Send a customer's admin into the console")
LINK_EXAMPLE = {"url": "https://console.example/portal/3q2x…", "expires_at": "2026-12-02T17:05:00Z"}


class PortalLinkRequestSchema(StrictSchema):
    admin_email = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=254),
                                   metadata={"example": "it-admin@acme.example"})
    intent = ma.fields.String(load_default="overview", validate=ma.validate.OneOf(PORTAL_INTENTS), metadata={
        "description": "The page to land on: overview, connect (the wizard), mailboxes or runs", "example": "connect"})
    return_url = ma.fields.String(required=True, validate=ma.validate.Length(min=8, max=2000), metadata={
        "description": "Where “Back to …” leads; must match the console's PORTAL_RETURN_URLS",
        "example": "https://app.vendor.example/settings/calendars"})


class PortalLinkSchema(ma.Schema):
    url = ma.fields.String(metadata={"description": "Works once, until expires_at"})
    expires_at = UtcDateTime()


@blp.route("/organizations/<int:organization_id>/portal-links")
class PortalLinks(MethodView):
    @require_scope("organizations:write")
    @idempotent
    @blp.arguments(PortalLinkRequestSchema)
    @blp.response(201, PortalLinkSchema, example=LINK_EXAMPLE)
    @errors(blp, 400, 401, 403, 404, 413, 429)
    def post(self, body, organization_id):
        """Open a portal link for the organization's admin (created on first use, with no password)"""
        organization = organization_for_key(organization_id)
        try:
            issued = portal_links.create_portal_link(organization, admin_email=body["admin_email"],
                                                     intent=body["intent"], return_url=body["return_url"],
                                                     api_key=g.api_key)
        except portal_links.PortalLinkError as exc:
            raise ApiProblem("validation-failed", str(exc),
                             errors=[{"pointer": f"#/{exc.field}", "detail": str(exc)}]) from None
        db.session.commit()
        return {"url": issued.url, "expires_at": issued.link.expires_at}, 201
