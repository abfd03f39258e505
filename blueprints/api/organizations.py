"""`/organizations`: the vendor's customers, with where each stands in onboarding and its mailboxes per status."""

from __future__ import annotations

import marshmallow as ma
from flask import g, url_for
from flask.views import MethodView

from blueprints.api import pagination
from blueprints.api.auth import organization_for_key, require_scope
from blueprints.api.idempotency import idempotent
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.schemas import (IdString, PageQuerySchema, StrictSchema, UtcDateTime, mailbox_counts_field,
                                    onboarding_state_field)
from extensions import db
from services.accounts import organizations
from services.platform import audit
from services.read_models.organization_state import states_for

blp = resource_blueprint("organizations", "Organizations", "The vendor's customers and where each one stands")
ORGANIZATION_EXAMPLE = {
    "id": "42", "name": "Acme Corp", "slug": "acme-corp", "data_center": "us", "external_id": "cust_1234",
    "onboarding_state": "importing", "mailbox_counts": {"new": 180, "authorized": 60, "failed": 0},
    "created_at": "2026-11-30T09:15:00Z", "updated_at": "2026-12-01T16:02:11Z",
}


class OrganizationSchema(ma.Schema):
    id = IdString(dump_only=True)
    name = ma.fields.String()
    slug = ma.fields.String()
    data_center = ma.fields.String(metadata={"description": "Cronofy data center; fixed once created"})
    external_id = ma.fields.String(allow_none=True, metadata={"description": "The vendor's own id for this customer"})
    onboarding_state = onboarding_state_field()
    mailbox_counts = mailbox_counts_field()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class OrganizationPageSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(OrganizationSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "null on the last page"})


class OrganizationQuerySchema(PageQuerySchema):
    external_id = ma.fields.String(metadata={"example": "cust_1234"})
    slug = ma.fields.String(metadata={"example": "acme-corp"})


class OrganizationCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=120),
                            metadata={"example": "Acme Corp"})
    data_center = ma.fields.String(load_default="us", validate=ma.validate.OneOf(organizations.DATA_CENTER_CODES),
                                   metadata={"example": "us"})
    external_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=200),
                                   metadata={"example": "cust_1234"})


class OrganizationUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=120))
    external_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=200))


def _dump(organization, state) -> dict:
    return {"id": organization.id, "name": organization.name, "slug": organization.slug,
            "data_center": organization.data_center, "external_id": organization.external_id,
            "onboarding_state": state.state, "mailbox_counts": state.mailbox_counts,
            "created_at": organization.created_at, "updated_at": organization.updated_at}


def _with_state(organization) -> dict:
    return _dump(organization, states_for([organization.id])[organization.id])


def _api_audit(action: str, organization, details: dict) -> None:
    audit.record(action, organization=organization, target=organization,
                 details={**details, "via": "api", "api_key": g.api_key.prefix})


def _refuse_restricted() -> None:
    if g.api_key.organization_id is not None:
        raise ApiProblem("restricted-key", "A key restricted to one organization cannot create organizations.")


@blp.route("/organizations")
class Organizations(MethodView):
    @require_scope("organizations:read")
    @blp.arguments(OrganizationQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, OrganizationPageSchema, example={"data": [ORGANIZATION_EXAMPLE], "next_cursor": None})
    @errors(blp, 400, 401, 403, 429)
    def get(self, query):
        """List organizations, oldest first (a restricted key sees only its own)"""
        rows = organizations.list_organizations(
            external_id=query.get("external_id"), slug=query.get("slug"), only_id=g.api_key.organization_id,
            after_id=pagination.decode("organizations", query.get("cursor")), limit=query["limit"] + 1)
        rows, next_cursor = pagination.page(rows, query["limit"], "organizations")
        states = states_for([row.id for row in rows])
        return {"data": [_dump(row, states[row.id]) for row in rows], "next_cursor": next_cursor}

    @require_scope("organizations:write")
    @idempotent
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema, example=ORGANIZATION_EXAMPLE, headers={"Location": {"description": "The new organization",
                                                                 "schema": {"type": "string"}}})
    @errors(blp, 400, 401, 403, 409, 413, 429)
    def post(self, body):
        """Create an organization (`external_id` is the vendor's own id for the customer, unique)"""
        _refuse_restricted()
        try:
            organization = organizations.create_organization(body["name"], body["data_center"],
                                                             external_id=body.get("external_id"))
        except organizations.DuplicateExternalId as exc:
            raise ApiProblem("conflict", str(exc)) from None
        except organizations.OrganizationError as exc:
            raise ApiProblem("validation-failed", str(exc), errors=[{"pointer": "#", "detail": str(exc)}]) from None
        _api_audit("organization.created", organization, {"name": organization.name})
        db.session.commit()
        location = url_for("api_organizations.Organization", organization_id=organization.id, _external=True)
        return _with_state(organization), 201, {"Location": location}


@blp.route("/organizations/<int:organization_id>")
class Organization(MethodView):
    @require_scope("organizations:read")
    @blp.response(200, OrganizationSchema, example=ORGANIZATION_EXAMPLE)
    @errors(blp, 401, 403, 404, 429)
    def get(self, organization_id):
        """One organization"""
        return _with_state(organization_for_key(organization_id))

    @require_scope("organizations:write")
    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, OrganizationSchema, example=ORGANIZATION_EXAMPLE)
    @errors(blp, 400, 401, 403, 404, 409, 413, 429)
    def patch(self, body, organization_id):
        """Rename an organization or set its external id (the data center cannot change)"""
        organization = organization_for_key(organization_id)
        try:
            changes = organizations.update_organization(organization, **body)
        except organizations.DuplicateExternalId as exc:
            raise ApiProblem("conflict", str(exc)) from None
        except organizations.OrganizationError as exc:
            raise ApiProblem("validation-failed", str(exc), errors=[{"pointer": "#", "detail": str(exc)}]) from None
        if changes:
            _api_audit("organization.updated", organization, {"changes": changes})
        db.session.commit()
        return _with_state(organization)
