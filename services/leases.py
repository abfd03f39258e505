"""Short row leases: one process at a time may do a piece of upstream work for a row.

A lease is a `*_lease_until` timestamp column set with a single conditional UPDATE, which is atomic on
SQLite and PostgreSQL alike and works across processes and machines. It expires on its own, so a
process that dies while holding one blocks the row for at most the lease time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import or_, update

from extensions import db
from models.base import utcnow

T = TypeVar("T")


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
