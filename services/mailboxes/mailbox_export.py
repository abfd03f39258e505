"""CSV export of mailboxes, streamed in keyset chunks so that 100,000 rows never sit in memory.

Cells that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage
return) are prefixed with an apostrophe. Tokens are never exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, select

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox
from models.organization import Organization
from models.selection import MailboxSelection
from services.mailboxes.mailbox_query import MailboxFilter, filtered
from services.platform import audit

HEADER = ("email", "name", "kind", "group", "status", "last error", "authorized at")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 1000
_COLUMNS = (
    Mailbox.email, Mailbox.name, Mailbox.kind, Mailbox.group_name, Mailbox.status,
    Mailbox.last_error_key, Mailbox.last_error_description, Mailbox.authorized_at,
)


def neutralize(value: object) -> str:
    """Return value as a CSV cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def base_query(organization: Organization, *, flt: MailboxFilter | None = None, ids: Select | None = None) -> Select:
    """Return the select of mailboxes to export: those matching flt, or those whose ids `ids` selects."""
    if ids is not None:
        return select(Mailbox).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(ids))
    return filtered(organization, flt or MailboxFilter())


def _row(values) -> list[str]:
    email, name, kind, group, status, error_key, error_description, authorized_at = values
    last_error = error_description or error_key or ""
    when = authorized_at.isoformat(timespec="seconds") if isinstance(authorized_at, datetime) else ""
    return [neutralize(v) for v in (email, name, kind, group, status, last_error, when)]


def chunks(query: Select, size: int = CHUNK) -> Iterator[list]:
    """Yield the query's rows in email order, `size` at a time, each chunk one keyset query."""
    last = None
    while True:
        chunk_query = query.with_only_columns(*_COLUMNS).order_by(Mailbox.email).limit(size)
        if last is not None:
            chunk_query = chunk_query.where(Mailbox.email > last)
        rows = db.session.execute(chunk_query).all()
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last = rows[-1][0]


def csv_lines(query: Select, size: int = CHUNK) -> Iterator[str]:
    """Yield the CSV text of the export: the header, then one piece per chunk of rows."""
    yield _csv([HEADER])
    for rows in chunks(query, size):
        yield _csv(_row(values) for values in rows)


def _csv(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def filename(organization: Organization) -> str:
    """Return the download's file name, e.g. mailboxes-acme-2026-11-28.csv."""
    return f"mailboxes-{organization.slug}-{utcnow():%Y-%m-%d}.csv"


def record_export(
    organization: Organization,
    *,
    actor,
    count: int,
    flt: MailboxFilter | None = None,
    selection: MailboxSelection | None = None,
) -> None:
    """Audit an export: what was asked for (filter or selection) and how many rows."""
    details = {"count": count}
    if selection is not None:
        details.update(selection_id=selection.id, mode=selection.mode, criteria=selection.criteria or {})
    else:
        details["filter"] = (flt or MailboxFilter()).criteria()
    audit.record("mailboxes.exported", actor=actor, organization=organization, details=details)
