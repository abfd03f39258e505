"""Upserting a list of mailboxes in one go (the vendor API's bulk PUT), all or nothing.

Each entry goes through the CSV import's rules: its cells are normalized by `mailbox_import.normalize`,
then the list is classified by `mailbox_import.preview.classify` (duplicates within the list, mailboxes
already in the directory with blank cells keeping what is stored, addresses outside the organization's
domains), and a new mailbox gets the connection serving its domain (`mailbox_connections`). On top of
those, `external_id` (the vendor's id for the user) is unique within the organization.

Nothing is written unless every entry is valid: `UpsertInvalid` lists each bad entry's field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import insert, select, update

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox, MailboxEvent
from models.organization import Organization
from services.mailboxes.mailbox_connections import connection_for, serving_connections
from services.mailboxes.mailbox_import.normalize import (
    MAX_GROUP_LENGTH,
    MAX_NAME_LENGTH,
    address_key,
    normalize_address,
    normalize_kind,
    normalize_text,
)
from services.mailboxes.mailbox_import.parsing import RawRow
from services.mailboxes.mailbox_import.preview import classify, existing_mailboxes, expected_domains
from services.platform import audit, events

MAX_ENTRIES = 10_000
_CHUNK = 500
UPSERTED = "mailboxes.upserted"


@dataclass(frozen=True)
class EntryError:
    """One bad field of one entry: where (`index`, `field`) and why."""

    index: int
    field: str
    detail: str


class UpsertInvalid(ValueError):
    """Some entries are invalid; nothing was written. `errors` has one EntryError per bad field."""

    def __init__(self, errors: list[EntryError]):
        super().__init__(f"{len(errors)} entries are invalid")
        self.errors = errors


class ExternalIdTaken(ValueError):
    """An entry's external_id belongs to another mailbox of the organization; the message names both."""


@dataclass(frozen=True)
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[int] = field(default_factory=list)  # in the order of the entries


def upsert_mailboxes(organization: Organization, entries: list[dict], *, include_outside_domains: bool = False,
                     actor=None) -> UpsertResult:
    """Create the new mailboxes (status new) and update the existing ones, in the caller's transaction.

    An entry is {"email", "name"?, "kind"?, "group"?, "external_id"?}; a missing or blank name, kind or
    group keeps what is stored (as in a CSV import), a missing external_id too, a null one clears it.
    :raises UpsertInvalid: when any entry is invalid (nothing is written).
    :raises ExternalIdTaken: when an external_id belongs to another mailbox (nothing is written).
    """
    raws, errors = _normalized(entries)
    rows, seen = classify(raws, existing_mailboxes(organization), expected_domains(organization, None))
    errors += _list_errors(rows, seen, include_outside_domains)
    errors += _duplicate_external_ids(entries)
    if errors:
        raise UpsertInvalid(sorted(errors, key=lambda e: (e.index, e.field)))
    by_index = {row["row_number"]: row for row in rows}
    _check_external_ids(organization, entries, by_index)
    now = utcnow()
    created_ids = _create(organization, entries, by_index, now, actor)
    updated, unchanged = _update(organization, entries, by_index, now)
    ids = [by_index[i]["mailbox_id"] or created_ids[i] for i in range(len(entries))]
    result = UpsertResult(created=len(created_ids), updated=updated, unchanged=unchanged, ids=ids)
    audit.record(UPSERTED, actor=actor, organization=organization, details={
        "entries": len(entries), "created": result.created, "updated": result.updated, "unchanged": result.unchanged})
    return result


def _normalized(entries: list[dict]) -> tuple[list[RawRow], list[EntryError]]:
    """Return the entries whose cells are valid, as normalized rows, and the errors of the others."""
    raws, errors = [], []
    for index, entry in enumerate(entries):
        found = []
        cells = {}
        for name, check in (("email", normalize_address), ("name", _name), ("kind", _kind), ("group", _group)):
            try:
                cells[name] = check(entry.get(name) or "")
            except ValueError as exc:
                found.append(EntryError(index, name, str(exc)))
        if found:
            errors += found
        else:
            raws.append(RawRow(index, cells["email"], cells["name"], cells["kind"], cells["group"]))
    return raws, errors


def _name(raw: str) -> str:
    return normalize_text(raw, label="name", limit=MAX_NAME_LENGTH)


def _group(raw: str) -> str:
    return normalize_text(raw, label="group", limit=MAX_GROUP_LENGTH)


def _kind(raw: str) -> str:
    # Blank stays blank here, so that classify() keeps an existing mailbox's kind; a new one becomes a user.
    return normalize_kind(raw) if raw.strip() else ""


def _list_errors(rows: list[dict], seen: dict[str, int], include_outside: bool) -> list[EntryError]:
    errors = []
    for row in rows:
        if row["outcome"] == "problem":  # cells are valid by now: only a duplicate address is left
            first = seen[address_key(row["email"])]
            errors.append(EntryError(row["row_number"], "email",
                                     f"duplicate of #/mailboxes/{first}/email (entry {first}): the same address, "
                                     "written differently"))
        elif row["outcome"] == "warning" and not include_outside:
            errors.append(EntryError(row["row_number"], "email",
                                     row["reason"] + "; send include_outside_domains: true to add it anyway"))
    return errors


def _duplicate_external_ids(entries: list[dict]) -> list[EntryError]:
    first: dict[str, int] = {}
    errors = []
    for index, entry in enumerate(entries):
        value = entry.get("external_id")
        if value is None:
            continue
        if value in first:
            errors.append(EntryError(index, "external_id", f"the same external_id as #/mailboxes/{first[value]}"
                                                           f"/external_id (entry {first[value]})"))
        else:
            first[value] = index
    return errors


def _check_external_ids(organization: Organization, entries: list[dict], by_index: dict[int, dict]) -> None:
    wanted = {entry["external_id"]: index for index, entry in enumerate(entries) if entry.get("external_id")}
    values = sorted(wanted)
    for start in range(0, len(values), _CHUNK):
        holders = db.session.execute(select(Mailbox.id, Mailbox.email, Mailbox.external_id).where(
            Mailbox.organization_id == organization.id, Mailbox.external_id.in_(values[start:start + _CHUNK])))
        for mailbox_id, email, external_id in holders:
            index = wanted[external_id]
            if by_index[index]["mailbox_id"] != mailbox_id:
                raise ExternalIdTaken(f"The external_id {external_id!r} of entry {index} already belongs to "
                                      f"another mailbox, {email} (id {mailbox_id}). Nothing was changed.")


def _create(organization: Organization, entries, by_index, now, actor) -> dict[int, int]:
    """Insert the new mailboxes and their `imported` timeline events; return {entry index: new id}."""
    serving = serving_connections(organization.id)
    new = [(index, row) for index, row in sorted(by_index.items()) if row["mailbox_id"] is None]
    if not new:
        return {}
    values = [{
        "organization_id": organization.id, "email": row["email"], "name": row["name"], "kind": row["kind"] or "user",
        "group_name": row["group_name"], "external_id": entries[index].get("external_id"),
        "connection_id": getattr(connection_for(row["email"], serving), "id", None), "source": "import",
        "status": "new", "status_changed_at": now, "created_at": now, "updated_at": now,
    } for index, row in new]
    statement = insert(Mailbox).returning(Mailbox.id, sort_by_parameter_order=True)
    new_ids = db.session.execute(statement, values).scalars().all()
    timeline = [{"mailbox_id": mailbox_id, "organization_id": organization.id, "kind": "imported",
               "actor_id": getattr(actor, "id", None), "summary": f"Added through the API (entry {index})",
               "details": {"via": "api"}, "created_at": now} for (index, _), mailbox_id in zip(new, new_ids)]
    db.session.execute(insert(MailboxEvent), timeline)
    events.record_many("mailbox.created", organization_id=organization.id, subject_type="mailbox", subject_ids=new_ids)
    return {index: mailbox_id for (index, _), mailbox_id in zip(new, new_ids)}


def _update(organization: Organization, entries, by_index, now) -> tuple[int, int]:
    """Write the changed names, kinds, groups and external ids of existing mailboxes; return (updated, unchanged)."""
    existing = [(index, row) for index, row in sorted(by_index.items()) if row["mailbox_id"] is not None]
    stored = _stored_external_ids(organization, [row["mailbox_id"] for _, row in existing])
    changes = []
    for index, row in existing:
        external_id = entries[index].get("external_id", stored[row["mailbox_id"]])
        if row["outcome"] == "update" or external_id != stored[row["mailbox_id"]]:
            changes.append({"id": row["mailbox_id"], "name": row["name"], "kind": row["kind"],
                            "group_name": row["group_name"], "external_id": external_id, "updated_at": now})
    for start in range(0, len(changes), _CHUNK):
        db.session.execute(update(Mailbox), changes[start:start + _CHUNK])
    return len(changes), len(existing) - len(changes)


def _stored_external_ids(organization: Organization, ids: list[int]) -> dict[int, str | None]:
    found: dict[int, str | None] = {}
    for start in range(0, len(ids), _CHUNK):
        found.update(db.session.execute(select(Mailbox.id, Mailbox.external_id).where(
            Mailbox.organization_id == organization.id, Mailbox.id.in_(ids[start:start + _CHUNK]))).tuples().all())
    return found
