"""Write the event log: each event in the transaction of the change it describes, in commit order.

A domain service that changes a state calls `record()` (or `record_many()` for its bulk forms) right
where the change is made. The event's `data` is the subject as the vendor's API shows it at that moment,
built by the representation the API registered for the subject's type (`register_subject`; this package
sits below the API and knows no schema). The rows are held on the session and inserted just before the
session commits, so a rolled-back change leaves no event (a rolled-back savepoint drops the events
recorded inside it) and a committed change always has its events.

Ids must grow in commit order, or a reader paging `after=<id>` could pass an id whose transaction
commits later. On PostgreSQL the insert takes a transaction-level advisory lock, held until the commit,
so transactions that write events commit one after the other; SQLite writes one transaction at a time
anyway. Only transactions with events take the lock, and only for their last statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import event as orm_event, insert, text
from sqlalchemy.orm import Session, SessionTransaction

from extensions import db
from models.base import utcnow
from models.event import Event

# The lock number is arbitrary; it only has to be the same for every writer of events.
_ORDER_LOCK = text("SELECT pg_advisory_xact_lock(4805613)")
_PENDING = "ecc_pending_events"
_INSERT = insert(Event.__table__)

# subject type -> function(ids) -> {id: representation}; registered by the API at start-up.
_SUBJECT_VIEWS: dict[str, Callable[[Sequence[int]], dict[int, dict]]] = {}
# Run just before the events are inserted, with the organizations that have events in the transaction;
# they may record more (organization.state_changed).
_BEFORE_WRITE: list[Callable[[set[int]], None]] = []


@dataclass
class _Pending:
    row: dict
    transaction: SessionTransaction | None = field(repr=False)


def register_subject(subject_type: str, view: Callable[[Sequence[int]], dict[int, dict]]) -> None:
    """Say how a subject type is shown in events: view(ids) returns {id: the API's representation}."""
    _SUBJECT_VIEWS[subject_type] = view


def register_before_write(check: Callable[[set[int]], None]) -> None:
    """Run check(organization_ids) before each transaction's events are written (once per callable)."""
    if check not in _BEFORE_WRITE:
        _BEFORE_WRITE.append(check)


def record(event_type: str, *, organization_id: int | None, subject_type: str, subject_id: int | None,
           data: dict | None = None) -> None:
    """Add an event to the current transaction; data defaults to the subject as the API shows it now.

    Record a removal before deleting the row, so that its last representation can still be read.
    """
    record_many(event_type, organization_id=organization_id, subject_type=subject_type,
                subject_ids=[subject_id], data={subject_id: data} if data is not None else None)


def record_many(event_type: str, *, organization_id: int | None, subject_type: str,
                subject_ids: Iterable[int | None], data: dict[int | None, dict] | None = None) -> None:
    """Add one event per subject (a bulk change), their data read in one go unless given."""
    ids = list(subject_ids)
    if not ids:
        return
    if data is None:
        data = _represent(subject_type, [i for i in ids if i is not None])
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    now = utcnow()
    pending = session.info.setdefault(_PENDING, [])
    for subject_id in ids:
        shown = data.get(subject_id) or {"id": str(subject_id) if subject_id is not None else None}
        pending.append(_Pending({
            "type": event_type, "organization_id": organization_id, "subject_type": subject_type,
            "subject_id": subject_id, "subject_external_id": shown.get("external_id"), "data": shown,
            "created_at": now,
        }, transaction))


def _represent(subject_type: str, ids: list[int]) -> dict[int, dict]:
    view = _SUBJECT_VIEWS.get(subject_type)
    if view is None or not ids:
        return {}
    db.session.flush()
    return view(ids)


def pending_count() -> int:
    """How many events the current transaction will write when it commits (for tests and diagnostics)."""
    return len(db.session().info.get(_PENDING, []))


def hold_order(connection) -> None:
    """Take the events' order lock until the transaction ends (PostgreSQL; SQLite writes one at a time).

    Whoever inserts into `events` past the writer (the webhook test event) takes it too, or its id could
    commit ahead of a smaller one and a reader's cursor would pass the smaller one for good.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_ORDER_LOCK)


def _write_pending(session: Session) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    organizations = {p.row["organization_id"] for p in pending if p.row["organization_id"] is not None}
    for check in _BEFORE_WRITE:
        check(organizations)
    rows = [p.row for p in session.info.pop(_PENDING, [])]
    if not rows:
        return
    # On the session's connection, past the ORM: this runs in every exchange's transaction (statements.py).
    connection = session.connection()
    hold_order(connection)
    connection.execute(_INSERT, rows)


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous_transaction:
                return True
            transaction = transaction.parent
        return False

    session.info[_PENDING] = [p for p in pending if not inside(p.transaction)]


def _forget_on_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def install() -> None:
    """Hook the writer into every session (idempotent; the app factory calls it)."""
    if not orm_event.contains(Session, "before_commit", _write_pending):
        orm_event.listen(Session, "before_commit", _write_pending)
        orm_event.listen(Session, "after_soft_rollback", _drop_rolled_back)
        orm_event.listen(Session, "after_transaction_end", _forget_on_end)
