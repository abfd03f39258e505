"""Short row leases: one process at a time may do a piece of upstream work for a row.

A lease is a `*_lease_until` timestamp column set with a single conditional UPDATE, which is atomic on
SQLite and PostgreSQL alike and works across processes and machines. It expires on its own, so a
process that dies while holding one blocks the row for at most the lease time.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update

from extensions import db
from models.base import utcnow


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
