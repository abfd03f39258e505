"""Changing an organization's mailboxes: the bulk upsert (`PUT /organizations/{id}/mailboxes`) and
`DELETE /mailboxes/{id}`, which revokes the mailbox's authorization at Cronofy first.

The views are methods of `blueprints.api.mailboxes`' resources (one URL rule per path, so that an id beyond
64 bits answers 404 with every method); their schemas and work are here.
"""

from __future__ import annotations

import marshmallow as ma
from sqlalchemy.exc import IntegrityError

from blueprints.api.auth import audit_as_api
from blueprints.api.problems import ApiProblem
from blueprints.api.schemas import IdString, StrictSchema
from extensions import db
from services.mailboxes import mailbox_directory, mailbox_upsert
from services.platform.wording import plural, sentence

UPSERT_EXAMPLE = {"mailboxes": [
    {"email": "ana@acme.example", "name": "Ana Silva", "kind": "user", "group": "Sales", "external_id": "user_88"},
    {"email": "room-1@acme.example", "name": "Room 1", "kind": "resource"},
]}
RESULT_EXAMPLE = {"created": 1, "updated": 1, "unchanged": 0, "ids": ["1001", "1002"]}


class UpsertEntrySchema(StrictSchema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=320),
                             metadata={"description": "The mailbox's address; the same address in another case is "
                                                      "the same mailbox", "example": "ana@acme.example"})
    name = ma.fields.String(allow_none=True, metadata={
        "description": "Missing or blank keeps the stored name", "example": "Ana Silva"})
    kind = ma.fields.String(allow_none=True, metadata={
        "description": "user, shared or resource (also the CSV import's words: person, room, equipment, shared "
                       "mailbox); missing or blank keeps the stored kind, and a new mailbox is a user",
        "example": "user"})
    group = ma.fields.String(allow_none=True, metadata={
        "description": "Missing or blank keeps the stored group", "example": "Sales"})
    external_id = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=200), metadata={
        "description": "The vendor's id for this user, unique within the organization; missing keeps it, "
                       "null removes it", "example": "user_88"})


class UpsertSchema(StrictSchema):
    mailboxes = ma.fields.List(
        ma.fields.Nested(UpsertEntrySchema), required=True,
        validate=ma.validate.Length(max=mailbox_upsert.MAX_ENTRIES, error=(
            f"At most {mailbox_upsert.MAX_ENTRIES:,} mailboxes per request: send the rest in another request.")),
        metadata={"description": f"Up to {mailbox_upsert.MAX_ENTRIES:,} entries, each address once"})
    include_outside_domains = ma.fields.Boolean(load_default=False, metadata={
        "description": "Add addresses outside the domains of the organization's connections too (refused "
                       "otherwise, as the CSV import leaves them out unless ticked in)"})


class UpsertResultSchema(ma.Schema):
    created = ma.fields.Integer(metadata={"description": "New mailboxes (status new)"})
    updated = ma.fields.Integer(metadata={"description": "Existing mailboxes whose details changed"})
    unchanged = ma.fields.Integer(metadata={"description": "Existing mailboxes already as sent"})
    ids = ma.fields.List(IdString(), metadata={"description": "The mailboxes' ids, in the order of the entries"})


def _invalid(errors: list[mailbox_upsert.EntryError]) -> ApiProblem:
    entries = len({error.index for error in errors})
    detail = sentence(f"{plural(entries, 'entry', 'entries')} {'is' if entries == 1 else 'are'} invalid and nothing "
                      "was changed: `errors` lists each bad field with a pointer to it")
    return ApiProblem("validation-failed", detail, errors=[
        {"pointer": f"#/mailboxes/{error.index}/{error.field}", "detail": error.detail} for error in errors])


def upsert(organization, body) -> dict:
    """PUT /organizations/{id}/mailboxes: the upsert, committed, or a problem with nothing written."""
    audit_as_api()
    try:
        result = mailbox_upsert.upsert_mailboxes(organization, body["mailboxes"],
                                                 include_outside_domains=body["include_outside_domains"])
        db.session.commit()
    except mailbox_upsert.UpsertInvalid as exc:
        db.session.rollback()
        raise _invalid(exc.errors) from None
    except mailbox_upsert.ExternalIdTaken as exc:
        db.session.rollback()
        raise ApiProblem("conflict", str(exc)) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiProblem("conflict", "Another request added one of these addresses or external ids at the "
                                     "same time; nothing was changed. Send the request again.") from None
    return {"created": result.created, "updated": result.updated, "unchanged": result.unchanged, "ids": result.ids}


def remove(mailbox) -> None:
    """DELETE /mailboxes/{id}: revoke at Cronofy first when authorized, then remove; unchanged if Cronofy fails."""
    audit_as_api()
    result = mailbox_directory.remove_mailboxes(mailbox.organization, [mailbox.id], actor=None)
    if result.failed:
        db.session.rollback()
        raise ApiProblem("upstream-failed", f"The mailbox was not removed: {result.failed[0][1]}")
    db.session.commit()
