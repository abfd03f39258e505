"""`/organizations/{id}/mailboxes` and `/mailboxes/{id}`: an organization's mailboxes, with status, cause and fix."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from blueprints.api import mailbox_writes, pagination
from blueprints.api.auth import organization_for_key, require_scope
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.schemas import IdString, PageQuerySchema, UtcDateTime
from models.mailbox import MAILBOX_KINDS, MAILBOX_STATUSES
from services.mailboxes import failure_guide, mailbox_listing

blp = resource_blueprint("mailboxes", "Mailboxes", "An organization's mailboxes and where each one stands")
MAILBOX_EXAMPLE = {
    "id": "1001", "organization_id": "42", "connection_id": "7", "email": "ana@acme.example", "name": "Ana Silva",
    "kind": "user", "group": "Sales", "external_id": "user_88", "status": "failed", "error_key": "not_found",
    "cause": "Cronofy could not find this mailbox in the directory.",
    "fix": "Check the address, or remove the mailbox if the person has left.",
    "authorized_scope": None, "authorized_at": None, "status_changed_at": "2026-12-01T10:03:00Z",
    "token_fetched_at": None, "created_at": "2026-11-30T09:30:00Z", "updated_at": "2026-12-01T10:03:00Z",
}


class MailboxSchema(ma.Schema):
    id = IdString()
    organization_id = IdString()
    connection_id = IdString(allow_none=True)
    email = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_KINDS))
    group = ma.fields.String(allow_none=True)
    external_id = ma.fields.String(allow_none=True, metadata={"description": "The vendor's own id for this user"})
    status = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_STATUSES))
    error_key = ma.fields.String(allow_none=True, metadata={"description": "The latest failure's key"})
    cause = ma.fields.String(allow_none=True, metadata={"description": "The latest failure, in plain words"})
    fix = ma.fields.String(allow_none=True, metadata={"description": "What to do about it"})
    authorized_scope = ma.fields.List(ma.fields.String(), allow_none=True,
                                      metadata={"description": "The access granted; null unless authorized"})
    authorized_at = UtcDateTime(allow_none=True)
    status_changed_at = UtcDateTime()
    token_fetched_at = UtcDateTime(allow_none=True, metadata={"description": "Last access token handed out"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class MailboxPageSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(MailboxSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "null on the last page"})


class MailboxQuerySchema(PageQuerySchema):
    status = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_STATUSES))
    kind = ma.fields.String(validate=ma.validate.OneOf(MAILBOX_KINDS))
    group = ma.fields.String(validate=ma.validate.Length(max=100))
    email = ma.fields.String(validate=ma.validate.Length(max=320))
    updated_since = ma.fields.AwareDateTime(default_timezone=None, metadata={
        "description": "ISO 8601 with a time zone", "example": "2026-12-01T00:00:00Z"})


def dump_mailbox(mailbox) -> dict:
    failed = mailbox.status in ("failed", "needs_attention") and mailbox.last_error_key
    guidance = failure_guide.explain(mailbox.last_error_key, mailbox.last_error_description,
                                     mailbox.provider_name) if failed else None
    authorized = mailbox.status == "authorized"
    return {
        "id": mailbox.id, "organization_id": mailbox.organization_id, "connection_id": mailbox.connection_id,
        "email": mailbox.email, "name": mailbox.name, "kind": mailbox.kind, "group": mailbox.group_name,
        "external_id": mailbox.external_id, "status": mailbox.status,
        "error_key": mailbox.last_error_key if failed else None,
        "cause": guidance.cause if guidance else None, "fix": guidance.fix if guidance else None,
        "authorized_scope": (mailbox.granted_scope or "").split() if authorized else None,
        "authorized_at": mailbox.authorized_at if authorized else None,
        "status_changed_at": mailbox.status_changed_at, "token_fetched_at": mailbox.token_fetched_at,
        "created_at": mailbox.created_at, "updated_at": mailbox.updated_at,
    }


def mailbox_for_key(mailbox_id: int):
    """The mailbox, if the key may see its organization; otherwise 404."""
    mailbox = mailbox_listing.find_mailbox(g.api_key.organization_id, mailbox_id)
    if mailbox is None:
        raise ApiProblem("not-found", "There is no mailbox with this id.")
    return mailbox


@blp.route("/organizations/<int:organization_id>/mailboxes")
class OrganizationMailboxes(MethodView):
    @require_scope("mailboxes:read")
    @blp.arguments(MailboxQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, MailboxPageSchema, example={"data": [MAILBOX_EXAMPLE], "next_cursor": None})
    @errors(blp, 400, 401, 403, 404, 429)
    def get(self, query, organization_id):
        """An organization's mailboxes by id, filtered, in pages of up to 200"""
        organization = organization_for_key(organization_id)
        scope = f"mailboxes:{organization.id}"
        rows = mailbox_listing.list_mailboxes(
            organization, status=query.get("status"), kind=query.get("kind"), group=query.get("group"),
            email=query.get("email"), updated_since=query.get("updated_since"),
            after_id=pagination.decode(scope, query.get("cursor")), limit=query["limit"] + 1)
        rows, next_cursor = pagination.page(rows, query["limit"], scope)
        return {"data": [dump_mailbox(row) for row in rows], "next_cursor": next_cursor}

    @require_scope("mailboxes:write")
    @blp.arguments(mailbox_writes.UpsertSchema, example=mailbox_writes.UPSERT_EXAMPLE)
    @blp.response(200, mailbox_writes.UpsertResultSchema, example=mailbox_writes.RESULT_EXAMPLE)
    @errors(blp, 400, 401, 403, 404, 409, 413, 429)
    def put(self, body, organization_id):
        """Add or update up to 10,000 mailboxes, with the CSV import's rules; all or nothing"""
        return mailbox_writes.upsert(organization_for_key(organization_id), body)


@blp.route("/mailboxes/<int:mailbox_id>")
class Mailbox(MethodView):
    @require_scope("mailboxes:read")
    @blp.response(200, MailboxSchema, example=MAILBOX_EXAMPLE)
    @errors(blp, 401, 403, 404, 429)
    def get(self, mailbox_id):
        """One mailbox"""
        return dump_mailbox(mailbox_for_key(mailbox_id))

    @require_scope("mailboxes:write")
    @blp.response(204)
    @errors(blp, 401, 403, 404, 429, 502)
    def delete(self, mailbox_id):
        """Remove a mailbox; an authorized one is revoked at Cronofy first, and stays if Cronofy does not confirm"""
        mailbox_writes.remove(mailbox_for_key(mailbox_id))
