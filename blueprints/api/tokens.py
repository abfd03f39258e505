"""Fresh access tokens for authorized mailboxes: valid for at least five more minutes, refreshed lazily.

Many concurrent requests for one mailbox cause one upstream refresh (the mailbox's refresh lease,
services/mailboxes/mailbox_tokens.py). The token is in the answer only: never logged, audited or stored
in plain text; the mailbox records when it was handed out, and to which key (folded in within a second).
A fresh token costs the key's lookup and one statement, in autocommit, and writes nothing in the request.
"""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask import g
from flask.views import MethodView

from blueprints.api.auth import organization_for_key, reads_in_autocommit, require_scope
from blueprints.api.problems import ApiProblem
from blueprints.api.resource import errors, resource_blueprint
from blueprints.api.schemas import IdString, StrictSchema, UtcDateTime
from extensions import db
from models.mailbox import Mailbox
from services.mailboxes import mailbox_listing, mailbox_tokens
from services.platform import upstream

blp = resource_blueprint("tokens", "Access tokens", "Fresh Cronofy access tokens of authorized mailboxes")
MIN_VALIDITY = timedelta(minutes=5)
TOKEN_EXAMPLE = {
    "mailbox_id": "1001", "access_token": "sandbox-access-…", "expires_at": "2026-12-02T18:00:00Z",
    "scope": ["read_free_busy", "read_events"], "account_id": "acc_5b1f…", "profile_id": "pro_9c2e…",
    "data_center": "us", "api_base_url": "https://api.cronofy.com",
}


class AccessTokenSchema(ma.Schema):
    mailbox_id = IdString()
    access_token = ma.fields.String(metadata={"description": "Use as `Authorization: Bearer` against Cronofy"})
    expires_at = UtcDateTime(allow_none=True, metadata={"description": "At least five minutes from now"})
    scope = ma.fields.List(ma.fields.String())
    account_id = ma.fields.String(allow_none=True)
    profile_id = ma.fields.String(allow_none=True)
    data_center = ma.fields.String()
    api_base_url = ma.fields.String(metadata={"description": "Where to call Cronofy with this token"})


class TokenByEmailSchema(StrictSchema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=320),
                             metadata={"example": "ana@acme.example"})


def _issue(mailbox_id: int) -> dict:
    """The answer for a mailbox the key may see (else 404): its stored token while fresh (one statement), else
    one refreshed under the mailbox's lease; the issuance is counted (folded into the mailbox within a second)."""
    row = mailbox_tokens.token_row(mailbox_id)
    restricted = g.api_key.organization_id
    if row is None or (restricted is not None and row.organization_id != restricted):
        raise ApiProblem("not-found", "There is no mailbox with this id.")
    token = mailbox_tokens.stored_token(row, margin=MIN_VALIDITY)
    if token is None:
        token = _refreshed(mailbox_id)
        row = mailbox_tokens.token_row(mailbox_id)
    mailbox_tokens.record_issuance(mailbox_id, g.api_key.prefix)
    return {"mailbox_id": mailbox_id, "access_token": token, "expires_at": row.access_token_expires_at,
            "scope": (row.granted_scope or "").split(), "account_id": row.account_id,
            "profile_id": row.profile_id, "data_center": row.data_center,
            "api_base_url": upstream.upstream(row.data_center).api_url}


def _refreshed(mailbox_id: int) -> str:
    db.session.rollback()  # leave the fast path's autocommit connection: a refresh writes in transactions
    try:
        return mailbox_tokens.fresh_mailbox_token(mailbox_id, margin=MIN_VALIDITY)
    except mailbox_tokens.MailboxTokenError as exc:
        db.session.rollback()
        current = db.session.get(Mailbox, mailbox_id, populate_existing=True)
        if current.status == "needs_attention":
            raise ApiProblem("mailbox-needs-attention", str(exc), mailbox_status=current.status) from None
        if current.status != "authorized":
            raise ApiProblem("mailbox-not-authorized", f"This mailbox is {current.status.replace('_', ' ')}, "
                             "not authorized: authorize it first.", mailbox_status=current.status) from None
        raise ApiProblem("token-unavailable", str(exc), headers={"Retry-After": "5"}) from None


_documented = errors(blp, 401, 403, 404, 409, 429, 503)


@blp.route("/mailboxes/<int:mailbox_id>/access-token")
@reads_in_autocommit
class MailboxAccessToken(MethodView):
    @require_scope("tokens:read")
    @blp.response(200, AccessTokenSchema, example=TOKEN_EXAMPLE)
    @_documented
    def post(self, mailbox_id):
        """A fresh access token of an authorized mailbox"""
        return _issue(mailbox_id)


@blp.route("/organizations/<int:organization_id>/access-tokens")
class AccessTokenByEmail(MethodView):
    @require_scope("tokens:read")
    @blp.arguments(TokenByEmailSchema)
    @blp.response(200, AccessTokenSchema, example=TOKEN_EXAMPLE)
    @errors(blp, 400, 413)
    @_documented
    def post(self, body, organization_id):
        """A fresh access token of the organization's mailbox with this email"""
        organization = organization_for_key(organization_id)
        mailbox = mailbox_listing.find_by_email(organization, body["email"])
        if mailbox is None:
            raise ApiProblem("not-found", "This organization has no mailbox with this email.")
        return _issue(mailbox.id)
