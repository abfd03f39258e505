"""Short row leases: one process at a time may do a piece of upstream work for a row.

A lease is a `*_until` timestamp column set with a single conditional UPDATE, which is atomic on
SQLite and PostgreSQL alike and works across processes and machines. It expires on its own, so a
process that dies while holding one blocks the row for at most the lease time.

The engine's leases (a run's pump, a batch being sent, a code being exchanged) last LEASE_SECONDS and
are held as `Lease` objects: the worker's heartbeat renews every one its process holds every third of
that, so a long step keeps its lease while a killed worker's lapses within seconds. A renewal is itself
conditional on the holder (a token, or the lease's own value), so a holder that lost its lease (paused
past its expiry while another worker took over) finds out instead of carrying on beside the new one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from sqlalchemy import or_, update

from extensions import db
from models.base import utcnow

T = TypeVar("T")
# A job handed to the queue (a retry, a pump's hand-over, recover()) gets this long to be picked up
# before recover() counts its work as stalled again.
QUEUE_GRACE = timedelta(seconds=30)


class LeaseBusy(TimeoutError):
    """Another process held the lease for longer than the caller would wait."""


def try_acquire(model, row_id: int, column: str, seconds: float) -> bool:
    """Take the lease on row_id if free or expired; return whether this caller holds it now.

    The caller commits, so that other processes see the lease.
    """
    now = utcnow()
    lease = getattr(model, column)
    result = db.session.execute(
        update(model)
        .where(model.id == row_id, or_(lease.is_(None), lease < now))
        .values({column: now + timedelta(seconds=seconds)})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release(model, row_id: int, column: str) -> None:
    """Give the lease on row_id back."""
    db.session.execute(
        update(model).where(model.id == row_id).values({column: None}).execution_options(synchronize_session=False)
    )


def wait_turn(model, row_id: int, column: str, seconds: float, *, ready: Callable[[], T | None],
              wait: float, poll: float) -> T | None:
    """Return ready()'s result once it has one, or None when this caller holds the lease and must do the work.

    ready() reloads the row and returns the finished result (a fresh token, say) or None; it is asked
    again right after the lease is taken, so work that another process finished between the two looks
    is used rather than done twice. The caller that gets None does the work and releases the lease.

    :raises LeaseBusy: when another holder kept the lease past `wait` seconds.
    """
    deadline = time.monotonic() + wait
    while True:
        result = ready()
        if result is not None:
            return result
        if try_acquire(model, row_id, column, seconds):
            db.session.commit()
            return _ready_holding(model, row_id, column, ready)
        db.session.rollback()
        if time.monotonic() > deadline:
            raise LeaseBusy(f"the {column} of row {row_id} stayed taken for {wait:.0f} s")
        time.sleep(poll)


def _ready_holding(model, row_id: int, column: str, ready: Callable[[], T | None]) -> T | None:
    try:
        result = ready()
    except Exception:
        db.session.rollback()
        release(model, row_id, column)
        db.session.commit()
        raise
    if result is not None:
        release(model, row_id, column)
        db.session.commit()
    return result


def lease_seconds() -> float:
    """Return how long an engine lease lasts without renewal (LEASE_SECONDS)."""
    return current_app.config["LEASE_SECONDS"]


def renew_every() -> float:
    """Return how often a holder renews its leases: three times per lease, so two late renewals are harmless."""
    return lease_seconds() / 3


@dataclass(eq=False)
class Lease:
    """A lease this process holds: `column` of the rows `match` picks, kept fresh until let go of or lost.

    `match` names the holder (a token column) so that renewing never races; a lease without a token
    (`by_value`) is known by the column's own value and must have one renewer only, the heartbeat.
    """

    model: type
    match: dict
    column: str
    until: datetime
    seconds: float
    by_value: bool = False
    token_column: str | None = None
    lost: bool = False
    owner: int = field(default_factory=threading.get_ident)

    def _extend(self, until: datetime) -> bool:
        table = self.model.__table__
        conditions = [table.c[name] == value for name, value in self.match.items()]
        if self.by_value:
            conditions.append(table.c[self.column] == self.until)
        return db.session.execute(update(table).where(*conditions).values({self.column: until})).rowcount > 0

    def _settle(self, until: datetime, kept: bool) -> bool:
        if kept:
            self.until = until
        else:
            self.lost = True
            let_go(self)
        return kept

    def renew(self) -> bool:
        """Extend the lease in the caller's transaction if this holder still has it; return whether it does."""
        until = utcnow() + timedelta(seconds=self.seconds)
        return self._settle(until, self._extend(until))

    def release(self, values: dict | None = None) -> None:
        """Give the lease back (with other values) if this holder still has it, and stop renewing it.

        The token goes too, so that a renewal already under way cannot take the lease up again.
        """
        table = self.model.__table__
        cleared = {self.column: None, **({self.token_column: None} if self.token_column else {})}
        db.session.execute(update(table).where(*(table.c[name] == value for name, value in self.match.items()))
                           .values({**cleared, **(values or {})}))
        let_go(self)


def acquire(model, row_id: int, column: str, holder: str, *, values: dict | None = None) -> Lease | None:
    """Take the lease on row_id under a fresh holder token if free or expired; return it, or None if taken.

    The caller commits, so that other processes see the lease, and hands it to hold() to keep it fresh.
    """
    now, token, seconds = utcnow(), uuid.uuid4().hex, lease_seconds()
    until = now + timedelta(seconds=seconds)
    lease = getattr(model, column)
    result = db.session.execute(
        update(model)
        .where(model.id == row_id, or_(lease.is_(None), lease < now))
        .values({column: until, holder: token, **(values or {})})
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return Lease(model, {"id": row_id, holder: token}, column, until, seconds, token_column=holder)


_held: set[Lease] = set()
_held_lock = threading.Lock()


def hold(lease: Lease) -> Lease:
    """Have this process's heartbeat renew the lease until it is let go of (or found lost)."""
    with _held_lock:
        _held.add(lease)
    return lease


def let_go(lease: Lease) -> None:
    """Stop renewing the lease (it was released, ended, or lost)."""
    with _held_lock:
        _held.discard(lease)


def let_go_of_thread() -> None:
    """Stop renewing every lease the current thread took: its task ended, whatever it left behind."""
    me = threading.get_ident()
    with _held_lock:
        _held.difference_update([lease for lease in _held if lease.owner == me])


def renew_held() -> int:
    """Renew every lease this process holds, one short transaction each; return how many were lost.

    :raises SQLAlchemyError: when the database does not answer; the leases then stay as they were.
    """
    with _held_lock:
        held = list(_held)
    lost = 0
    for lease in held:
        until = utcnow() + timedelta(seconds=lease.seconds)
        try:
            kept = lease._extend(until)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        lost += not lease._settle(until, kept)
    return lost
