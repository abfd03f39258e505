"""Prebuilt statements for the paths that run once per mailbox of a bulk run.

On a small machine, building a SQLAlchemy statement, computing its cache key and passing it through
the ORM session's bulk-update machinery costs two to four times the database round trip itself. A
statement built once, with bind parameters, and executed on the session's own connection (so in the
same transaction) skips all of that: the callback endpoint and the exchange use these. ORM objects
already loaded in the session do not see such writes, so these paths read plain rows, not objects.
"""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Result

from extensions import db


def execute(statement, params: dict | list[dict] | None = None) -> Result:
    """Run a prebuilt statement in the session's transaction, bypassing the ORM."""
    return db.session.connection().execute(statement, params)


@functools.lru_cache(maxsize=64)
def update_by_id(model, columns: tuple[str, ...]):
    """Return `UPDATE <model> SET col = :p_col, ... WHERE id = :p_id` for these columns, built once."""
    return (update(model.__table__)
            .where(model.__table__.c.id == bindparam("p_id"))
            .values({name: bindparam(f"p_{name}") for name in columns}))


def set_by_id(model, row_id: int, values: dict) -> int:
    """Update one row's columns by id with a prebuilt statement; return how many rows changed."""
    statement = update_by_id(model, tuple(sorted(values)))
    return execute(statement, {"p_id": row_id, **{f"p_{k}": v for k, v in values.items()}}).rowcount
