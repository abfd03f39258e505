"""Fixtures for the event log's tests: the engine's (a sandbox, a real worker) and a reader of the log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models.event import Event
from tests.jobs.conftest import _let_go_of_leases, admin, connection, engine, worker  # noqa: F401 - fixtures


@pytest.fixture
def logged():
    """Return the committed events (of the given types, all if none), oldest first, read afresh."""
    def _logged(*types):
        db.session.expire_all()
        query = select(Event).order_by(Event.id)
        if types:
            query = query.where(Event.type.in_(types))
        return list(db.session.scalars(query))
    return _logged
