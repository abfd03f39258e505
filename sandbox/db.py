"""The sandbox's own SQLAlchemy engine and session handling (no Flask-SQLAlchemy, no console imports)."""

import os

from flask import current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from sandbox.models import Base


def default_database_url(instance_path):
    """Return the SQLite URL of the sandbox database in the instance folder."""
    os.makedirs(instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(instance_path, 'sandbox.sqlite')}"


def make_engine(url):
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, future=True)
    kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if url in ("sqlite://", "sqlite:///:memory:"):
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets the web threads read while the delivery thread writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine):
    """Return a session factory bound to the engine."""
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def create_tables(engine):
    """Create missing tables."""
    Base.metadata.create_all(engine)


def drop_tables(engine):
    """Drop every sandbox table."""
    Base.metadata.drop_all(engine)


def session():
    """Return the request's session, opening one on first use."""
    if "sandbox_session" not in g:
        g.sandbox_session = current_app.extensions["sandbox"].Session()
    return g.sandbox_session


def close_session(_exc=None):
    """Close the request's session at teardown."""
    db_session = g.pop("sandbox_session", None)
    if db_session is not None:
        db_session.close()
