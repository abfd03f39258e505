"""Committing, discarding and expiring an import's preview; removing the leavers an admin ticked.

A commit is one transaction of set-based statements (INSERT ... SELECT from the stored preview rows),
so 100,000 rows commit in seconds and a failure anywhere leaves nothing behind. A preview commits
once: the status moves from `preview` to `committed` with a conditional UPDATE, so a double submit
(or two admins at once) finds the row already taken.

Rows outside the organization's domains (outcome `warning`) are imported only when the admin ticks
them in, and only if they are still the ones the page showed: the tick carries their version,
the preview's id and how many such rows it would add, and the commit refuses a version that differs
(an address was added by hand meanwhile, say), so nobody imports a set of addresses they did not see.

A new mailbox gets the import's connection, or, when the import names none, the live connection serving
its address's domain (`services.mailboxes.mailbox_connections`), chosen in the same INSERT ... SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import JSON, Integer, String, case, cast, delete, exists, func, insert, literal, select, update

from extensions import db
from models.base import UTCDateTime, utcnow
from models.mailbox import Mailbox, MailboxEvent
from models.mailbox_import import MailboxImport, MailboxImportRow
from services.mailboxes.mailbox_connections import by_domain_order, serving_connections
from services.mailboxes.mailbox_import.preview import IMPORTED, counts_of
from services.platform import audit, events
from services.platform.wording import plural

PREVIEW_TTL = timedelta(hours=24)
UPDATE_CHUNK = 1_000
OUTSIDE = "warning"


class ImportStateError(RuntimeError):
    """The import cannot be committed or discarded in its state; the message says why and what to do."""


@dataclass(frozen=True)
class CommitResult:
    """What a commit changed."""

    added: int
    updated: int
    skipped: int
    left_out: int = 0  # addresses outside the organization's domains, not ticked in


def commit_import(
    mailbox_import: MailboxImport, *, actor=None, include_outside: bool = False, outside_version: str | None = None
) -> CommitResult:
    """Add the preview's new mailboxes and apply its updates, in the caller's transaction.

    Rows outside the domains are added only with `include_outside` and the `outside_version` shown.

    :raises ImportStateError: if the preview was already committed, was discarded or has expired, or if
        its outside rows are no longer those of `outside_version` (roll back then: the claim is undone).
    """
    ensure_open(mailbox_import)
    now = utcnow()
    _claim(mailbox_import, actor, now)
    _drop_rows_taken_meanwhile(mailbox_import)
    outside = _outside_count(mailbox_import)
    if include_outside and outside_version != _version(mailbox_import, outside):
        raise ImportStateError(
            f"The preview changed after it was shown: it now has {plural(outside, 'address')} "
            "outside the organization's domains to import (others were added to the directory meanwhile). "
            "Nothing was imported. Check them and tick the box again."
        )
    adding = ("add", OUTSIDE) if include_outside else ("add",)
    added = _insert_new_mailboxes(mailbox_import, now, adding)
    _record_imported_events(mailbox_import, actor, now, adding)
    events.record_many("mailbox.created", organization_id=mailbox_import.organization_id, subject_type="mailbox",
                       subject_ids=_new_mailbox_ids(mailbox_import, adding))
    updated = _apply_updates(mailbox_import, now)
    mailbox_import.added_count, mailbox_import.updated_count = added, updated
    left_out = 0 if include_outside else outside
    mailbox_import.outside_left_out_count = left_out
    result = CommitResult(added=added, updated=updated, skipped=mailbox_import.problem_count, left_out=left_out)
    audit.record(
        IMPORTED, actor=actor, organization=mailbox_import.organization, target=mailbox_import,
        details={
            "source": mailbox_import.source, "filename": mailbox_import.filename, "mode": mailbox_import.mode,
            "added": added, "updated": updated, "skipped": result.skipped, "outside_left_out": left_out,
            "preview": counts_of(mailbox_import),
        },
    )
    return result


class OutsideOffer(NamedTuple):
    """The addresses outside the domains a commit can tick in: how many, and the version that dates them."""

    count: int
    version: str


def outside_offer(mailbox_import: MailboxImport) -> OutsideOffer:
    """Return how many rows outside the domains ticking them in would add now, and their version."""
    count = _outside_count(mailbox_import)
    return OutsideOffer(count, _version(mailbox_import, count))


def _version(mailbox_import: MailboxImport, outside: int) -> str:
    # The count only falls (rows turn `present` when their address is added meanwhile), so it dates the rows.
    return f"{mailbox_import.id}:{outside}"


def _outside_count(mailbox_import: MailboxImport) -> int:
    """Return how many rows outside the domains would still add a mailbox (not added meanwhile)."""
    return db.session.scalar(
        select(func.count(MailboxImportRow.id)).where(
            MailboxImportRow.import_id == mailbox_import.id,
            MailboxImportRow.outcome == OUTSIDE,
            ~_in_directory(mailbox_import),
        )
    )


def _in_directory(mailbox_import: MailboxImport):
    """Return the condition that a preview row's address is in the organization's directory now."""
    return exists().where(
        Mailbox.organization_id == mailbox_import.organization_id, Mailbox.email == MailboxImportRow.email
    )


def ensure_open(mailbox_import: MailboxImport) -> None:
    """Return if the preview can still be acted on; :raises ImportStateError: otherwise."""
    if expire_if_stale(mailbox_import):
        raise ImportStateError(
            "This preview is more than 24 hours old and has expired, so that it cannot apply a stale view of "
            "the directory. Upload the list again to get a fresh preview."
        )
    messages = {
        "committed": "This import has already been committed; nothing was imported twice.",
        "discarded": "This preview was discarded. Upload the list again to import it.",
        "expired": "This preview has expired. Upload the list again to get a fresh preview.",
    }
    if mailbox_import.status in messages:
        raise ImportStateError(messages[mailbox_import.status])


def _claim(mailbox_import: MailboxImport, actor, now: datetime) -> None:
    """Move the preview to committed unless another request did first (the row lock decides)."""
    claimed = db.session.execute(
        update(MailboxImport)
        .where(MailboxImport.id == mailbox_import.id, MailboxImport.status == "preview")
        .values(status="committed", committed_at=now, committed_by_id=getattr(actor, "id", None))
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise ImportStateError("This import has already been committed; nothing was imported twice.")
    db.session.refresh(mailbox_import)


def _drop_rows_taken_meanwhile(mailbox_import: MailboxImport) -> None:
    """Turn adds whose address was added since the preview (by hand, by sync) into `present`."""
    db.session.execute(
        update(MailboxImportRow)
        .where(
            MailboxImportRow.import_id == mailbox_import.id,
            MailboxImportRow.outcome.in_(("add", OUTSIDE)),
            _in_directory(mailbox_import),
        )
        .values(outcome="present", reason="added to the directory after this preview was made")
        .execution_options(synchronize_session=False)
    )


def _connection_of_row(mailbox_import: MailboxImport, email):
    """Return the SQL value of a new mailbox's connection: the import's, else the one serving its domain."""
    if mailbox_import.connection_id is not None:
        return literal(mailbox_import.connection_id, Integer)
    serving = by_domain_order(serving_connections(mailbox_import.organization_id))
    if not serving:
        return literal(None, Integer)
    return case(
        *((email.endswith("@" + domain, autoescape=True) | email.endswith("." + domain, autoescape=True),
           literal(connection.id, Integer)) for domain, connection in serving),
        else_=literal(None, Integer),
    )


def _insert_new_mailboxes(mailbox_import: MailboxImport, now: datetime, adding: tuple[str, ...]) -> int:
    row = MailboxImportRow.__table__.c
    moment = literal(now, UTCDateTime())
    source = select(
        literal(mailbox_import.organization_id, Integer), _connection_of_row(mailbox_import, row.email),
        row.email, row.name, row.kind, row.group_name, literal("import", String), literal("new", String),
        moment, moment, moment,
    ).where(row.import_id == mailbox_import.id, row.outcome.in_(adding))
    columns = [
        "organization_id", "connection_id", "email", "name", "kind", "group_name", "source", "status",
        "status_changed_at", "created_at", "updated_at",
    ]
    # SQLAlchemy keeps an INSERT's rowcount only when asked (psycopg would report -1 otherwise).
    statement = insert(Mailbox.__table__).from_select(columns, source).execution_options(preserve_rowcount=True)
    return db.session.execute(statement).rowcount


def _record_imported_events(mailbox_import: MailboxImport, actor, now: datetime, adding: tuple[str, ...]) -> None:
    """Add one `imported` timeline event per new mailbox, in one statement."""
    row, mailbox = MailboxImportRow.__table__.c, Mailbox.__table__
    label = mailbox_import.filename or ("a pasted list" if mailbox_import.source == "paste" else "a file")
    source = (
        select(
            mailbox.c.id, literal(mailbox_import.organization_id, Integer), literal("imported", String),
            literal(getattr(actor, "id", None), Integer),
            literal(f"Imported from {label}, row ", String) + cast(row.row_number, String),
            literal({"import_id": mailbox_import.id}, JSON), literal(now, UTCDateTime()),
        )
        .select_from(MailboxImportRow.__table__)
        .join(mailbox, (mailbox.c.organization_id == mailbox_import.organization_id) & (mailbox.c.email == row.email))
        .where(row.import_id == mailbox_import.id, row.outcome.in_(adding))
    )
    columns = ["mailbox_id", "organization_id", "kind", "actor_id", "summary", "details", "created_at"]
    db.session.execute(insert(MailboxEvent.__table__).from_select(columns, source))


def _new_mailbox_ids(mailbox_import: MailboxImport, adding: tuple[str, ...]) -> list[int]:
    """Return the ids of the mailboxes this commit added, in one query."""
    row, mailbox = MailboxImportRow.__table__.c, Mailbox.__table__
    return list(db.session.scalars(
        select(mailbox.c.id)
        .select_from(MailboxImportRow.__table__)
        .join(mailbox, (mailbox.c.organization_id == mailbox_import.organization_id) & (mailbox.c.email == row.email))
        .where(row.import_id == mailbox_import.id, row.outcome.in_(adding))
        .order_by(mailbox.c.id)
    ))


def _apply_updates(mailbox_import: MailboxImport, now: datetime) -> int:
    """Write the changed names, kinds and groups of rows marked `update`, in chunks."""
    changes = db.session.execute(
        select(MailboxImportRow.mailbox_id, MailboxImportRow.name, MailboxImportRow.kind, MailboxImportRow.group_name)
        .join(Mailbox, Mailbox.id == MailboxImportRow.mailbox_id)
        .where(
            MailboxImportRow.import_id == mailbox_import.id,
            MailboxImportRow.outcome == "update",
            Mailbox.organization_id == mailbox_import.organization_id,
        )
    ).all()
    values = [
        {"id": c.mailbox_id, "name": c.name, "kind": c.kind, "group_name": c.group_name, "updated_at": now}
        for c in changes
    ]
    for start in range(0, len(values), UPDATE_CHUNK):
        db.session.execute(update(Mailbox), values[start:start + UPDATE_CHUNK])
    return len(values)


def discard_import(mailbox_import: MailboxImport, *, actor=None) -> None:
    """Discard a preview and its stored rows; :raises ImportStateError: if it is no longer a preview."""
    ensure_open(mailbox_import)
    _close(mailbox_import, "discarded")
    audit.record(
        "mailboxes.import_discarded", actor=actor, organization=mailbox_import.organization, target=mailbox_import,
        details={"filename": mailbox_import.filename, **counts_of(mailbox_import)},
    )


def expire_if_stale(mailbox_import: MailboxImport, now: datetime | None = None) -> bool:
    """Mark a preview older than 24 hours as expired (dropping its rows); return whether it did."""
    if mailbox_import.status != "preview" or mailbox_import.created_at > (now or utcnow()) - PREVIEW_TTL:
        return False
    _close(mailbox_import, "expired")
    return True


def expire_stale_previews(now: datetime | None = None) -> int:
    """Expire every preview older than 24 hours, for a periodic clean-up; return how many."""
    stale = db.session.scalars(
        select(MailboxImport).where(
            MailboxImport.status == "preview", MailboxImport.created_at <= (now or utcnow()) - PREVIEW_TTL
        )
    ).all()
    for mailbox_import in stale:
        _close(mailbox_import, "expired")
    return len(stale)


def _close(mailbox_import: MailboxImport, status: str) -> None:
    """End a preview without applying it (unless a commit took it first); its rows are of no further use."""
    closed = db.session.execute(
        update(MailboxImport)
        .where(MailboxImport.id == mailbox_import.id, MailboxImport.status == "preview")
        .values(status=status, closed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(mailbox_import)
    if closed != 1:
        ensure_open(mailbox_import)
    db.session.execute(delete(MailboxImportRow).where(MailboxImportRow.import_id == mailbox_import.id))
    db.session.flush()
