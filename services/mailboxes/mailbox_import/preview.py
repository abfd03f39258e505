"""Building an import's preview: every row classified and stored, nothing changed in the directory yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from flask import current_app
from sqlalchemy import func, insert, select

from extensions import db
from models.connection import Connection
from models.mailbox import Mailbox
from models.mailbox_import import MailboxImport, MailboxImportRow
from models.organization import Organization
from services.mailboxes.mailbox_import.encoding import UNICODE_ENCODINGS, encoding_label
from services.platform import audit
from services.mailboxes.mailbox_import.normalize import (
    MAX_GROUP_LENGTH,
    MAX_NAME_LENGTH,
    AddressError,
    address_key,
    canonical_domain,
    domain_matches,
    normalize_address,
    normalize_kind,
    normalize_text,
)
from services.mailboxes.mailbox_import.parsing import ParsedList, RawRow, parse_list

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
INSERT_CHUNK = 5_000
ROWS_PER_PAGE = 100
PREVIEWED, IMPORTED = "mailboxes.import_previewed", "mailboxes.imported"


class Existing(NamedTuple):
    """What the preview needs to know of a mailbox already in the directory."""

    id: int
    email: str
    name: str
    kind: str
    group_name: str | None
    connection_id: int | None
    source: str


@dataclass(frozen=True)
class PreviewFacts:
    """What a preview recorded when it was made (and committed), for its page and the commit's message."""

    encoding: str | None  # the codec the file was read with; None for a preview older than the record
    domains: tuple[str, ...]  # the domains rows were checked against; none when no connection had one
    left_out: int | None = None  # once committed: the addresses outside the domains that were not imported

    @property
    def encoding_label(self) -> str | None:
        """Return the encoding in words ("Windows-1252 (Western European)"), if recorded."""
        return encoding_label(self.encoding) if self.encoding else None

    @property
    def encoding_guessed(self) -> bool:
        """Return whether the encoding was guessed (the file was neither UTF-8 nor UTF-16)."""
        return self.encoding is not None and self.encoding not in UNICODE_ENCODINGS

    @property
    def domain_label(self) -> str:
        """Return the domains in words: "acme.example", "acme.example and globex.example"."""
        if len(self.domains) < 2:
            return "".join(self.domains)
        return ", ".join(self.domains[:-1]) + " and " + self.domains[-1]


def import_limits() -> tuple[int, int]:
    """Return (IMPORT_MAX_BYTES, IMPORT_MAX_ROWS) from the configuration."""
    config = current_app.config
    return int(config.get("IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)), int(config.get("IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS))


def create_preview(
    organization: Organization,
    data: bytes,
    *,
    source: str,
    filename: str | None = None,
    connection: Connection | None = None,
    mode: str = "add",
    actor=None,
) -> MailboxImport:
    """Parse data, classify every row against the directory and store the preview.

    :raises ImportFileError: when the file cannot be imported at all (nothing is stored then).
    """
    max_bytes, max_rows = import_limits()
    parsed = parse_list(data, max_bytes=max_bytes, max_rows=max_rows)
    existing = existing_mailboxes(organization)
    domains = expected_domains(organization, connection)
    rows, seen = classify(parsed.rows, existing, domains)
    if mode == "full":
        rows.extend(leavers(existing, seen, connection))
    mailbox_import = _new_import(organization, parsed, rows, domains, source, filename, connection, mode, actor)
    _insert_rows(mailbox_import.id, rows)
    audit.record(
        PREVIEWED, actor=actor, organization=organization, target=mailbox_import,
        details={
            "source": source, "filename": filename, "mode": mode, "encoding": parsed.encoding,
            "domains": sorted(domains), **counts_of(mailbox_import),
        },
    )
    return mailbox_import


def existing_mailboxes(organization: Organization) -> dict[str, Existing]:
    """Return the organization's mailboxes by address key, in one query."""
    query = select(
        Mailbox.id, Mailbox.email, Mailbox.name, Mailbox.kind, Mailbox.group_name,
        Mailbox.connection_id, Mailbox.source,
    ).where(Mailbox.organization_id == organization.id)
    return {address_key(row[1]): Existing._make(row) for row in db.session.execute(query)}


def expected_domains(organization: Organization, connection: Connection | None) -> frozenset[str]:
    """Return the domains rows should belong to: the chosen connection's, else every live connection's."""
    if connection is not None:
        candidates = [connection.domain]
    else:
        candidates = db.session.scalars(
            select(Connection.domain).where(
                Connection.organization_id == organization.id, Connection.status != "revoked"
            )
        ).all()
    return frozenset(_domain_form(domain) for domain in candidates if domain)


def _domain_form(domain: str) -> str:
    try:
        return canonical_domain(domain)
    except AddressError:
        return domain.strip().lower()


def classify(rows: list[RawRow], existing: dict[str, Existing], domains: frozenset[str]):
    """Return (row dicts with their outcome and reason, {address key: row number} of readable rows)."""
    seen: dict[str, int] = {}
    return [_classify_row(raw, existing, seen, domains) for raw in rows], seen


def _classify_row(raw: RawRow, existing: dict[str, Existing], seen: dict[str, int], domains) -> dict:
    if raw.problem:
        return _row(raw.row_number, raw.email.strip(), raw.name, raw.kind.strip(), raw.group, "problem", raw.problem)
    try:
        email = normalize_address(raw.email)
        name = normalize_text(raw.name, label="name", limit=MAX_NAME_LENGTH)
        group = normalize_text(raw.group, label="group", limit=MAX_GROUP_LENGTH) or None
        kind = normalize_kind(raw.kind)
    except ValueError as exc:
        return _row(raw.row_number, raw.email.strip(), raw.name, raw.kind.strip(), raw.group, "problem", str(exc))
    key = address_key(email)
    if key in seen:
        reason = f"duplicate of row {seen[key]} (the same address, written differently)"
        return _row(raw.row_number, email, name, kind, group, "problem", reason)
    seen[key] = raw.row_number
    current = existing.get(key)
    if current is not None:
        return _against_existing(raw, current, name=name, kind=kind if raw.kind.strip() else None, group=group)
    if domains and not domain_matches(email, domains):
        reason = f"the domain {email.rpartition('@')[2]} is not one of the connection's ({', '.join(sorted(domains))})"
        return _row(raw.row_number, email, name, kind, group, "warning", reason)
    return _row(raw.row_number, email, name, kind, group, "add", None)


def _against_existing(raw: RawRow, current: Existing, *, name: str, kind: str | None, group: str | None) -> dict:
    """Classify a row whose mailbox exists: blank cells keep what is stored, other cells update it."""
    new = {
        "name": name or current.name,
        "kind": kind or current.kind,
        "group_name": group or current.group_name,
    }
    changes = [
        f"{label} {getattr(current, field) or '(none)'!r} → {new[field]!r}"
        for field, label in (("name", "name"), ("kind", "kind"), ("group_name", "group"))
        if new[field] != getattr(current, field)
    ]
    outcome = "update" if changes else "present"
    reason = "; ".join(changes) if changes else f"already present as {current.email}"
    row = _row(raw.row_number, current.email, new["name"], new["kind"], new["group_name"], outcome, reason)
    row["mailbox_id"] = current.id
    return row


def leavers(existing: dict[str, Existing], seen: dict[str, int], connection: Connection | None) -> list[dict]:
    """Return leaver rows: mailboxes in the list's scope that the full list does not name.

    The scope is the chosen connection's mailboxes, or the whole organization's. Rooms and other
    resources from resource sync are never leavers: resource sync reconciles those.
    """
    found = []
    for key, mailbox in sorted(existing.items(), key=lambda item: item[1].email):
        if key in seen or mailbox.source == "resource_sync":
            continue
        if connection is not None and mailbox.connection_id != connection.id:
            continue
        row = _row(None, mailbox.email, mailbox.name, mailbox.kind, mailbox.group_name, "leaver", "not in the list")
        row["mailbox_id"] = mailbox.id
        found.append(row)
    return found


def _row(number, email, name, kind, group, outcome, reason) -> dict:
    return {
        "row_number": number,
        "email": email[:320],
        "name": (name or "")[:MAX_NAME_LENGTH],
        "kind": (kind or "")[:16],
        "group_name": (group or None) and group[:MAX_GROUP_LENGTH],
        "outcome": outcome,
        "reason": reason,
        "mailbox_id": None,
    }


def _new_import(organization, parsed: ParsedList, rows, domains, source, filename, connection, mode,
                actor) -> MailboxImport:
    tally = {outcome: 0 for outcome in ("add", "present", "update", "problem", "warning", "leaver")}
    for row in rows:
        tally[row["outcome"]] += 1
    mailbox_import = MailboxImport(
        organization_id=organization.id,
        connection_id=connection.id if connection is not None else None,
        created_by_id=getattr(actor, "id", None),
        source=source,
        filename=(filename or None) and filename[:255],
        mode=mode,
        status="preview",
        delimiter=parsed.delimiter_name,
        row_count=len(parsed.rows),
        encoding=parsed.encoding,
        checked_domains=sorted(domains),
        **{f"{outcome}_count": count for outcome, count in tally.items()},
    )
    db.session.add(mailbox_import)
    db.session.flush()
    return mailbox_import


def _insert_rows(import_id: int, rows: list[dict]) -> None:
    """Store the rows in chunks of multi-row INSERTs (100,000 rows in a few seconds)."""
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = [{"import_id": import_id, **row} for row in rows[start:start + INSERT_CHUNK]]
        db.session.execute(insert(MailboxImportRow.__table__), chunk)


def preview_facts(mailbox_import: MailboxImport) -> PreviewFacts:
    """Return the encoding and domains the preview recorded, and what its commit left out."""
    domains = mailbox_import.checked_domains
    if domains is None:  # made before previews recorded their domains: the rows were checked against these
        domains = sorted(expected_domains(mailbox_import.organization, mailbox_import.connection))
    return PreviewFacts(mailbox_import.encoding, tuple(domains), mailbox_import.outside_left_out_count)


def counts_of(mailbox_import: MailboxImport) -> dict:
    """Return the preview's counts per outcome, for audit details and the page."""
    return {
        "rows": mailbox_import.row_count,
        "add": mailbox_import.add_count,
        "warning": mailbox_import.warning_count,
        "update": mailbox_import.update_count,
        "present": mailbox_import.present_count,
        "problem": mailbox_import.problem_count,
        "leaver": mailbox_import.leaver_count,
    }


def rows_page(mailbox_import: MailboxImport, outcome: str, page: int = 1, per_page: int = ROWS_PER_PAGE):
    """Return (rows, number of pages, page shown) of one outcome of a preview, in file order."""
    total = db.session.scalar(
        select(func.count(MailboxImportRow.id)).where(
            MailboxImportRow.import_id == mailbox_import.id, MailboxImportRow.outcome == outcome
        )
    )
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = db.session.scalars(
        select(MailboxImportRow)
        .where(MailboxImportRow.import_id == mailbox_import.id, MailboxImportRow.outcome == outcome)
        .order_by(MailboxImportRow.row_number, MailboxImportRow.email, MailboxImportRow.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return rows, pages, page


def recent_imports(organization: Organization, limit: int = 10) -> list[MailboxImport]:
    """Return the organization's latest imports, newest first."""
    return list(
        db.session.scalars(
            select(MailboxImport)
            .where(MailboxImport.organization_id == organization.id)
            .order_by(MailboxImport.created_at.desc(), MailboxImport.id.desc())
            .limit(limit)
        )
    )
