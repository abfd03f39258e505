"""Readiness of the web process's dependencies: the database and, when configured, Redis.

A probe asks every few seconds; each outage is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import logging

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from services.platform.outages import REDIS_UNREACHABLE, Outage

log = logging.getLogger(__name__)
# A probe must answer before its own timeout, even when Redis's host drops packets.
REDIS_TIMEOUT_SECONDS = 2.0
_database = Outage(log, "readiness: the database at {where} does not answer ({reason})",
                   "readiness: the database at {where} answers again")
_redis = Outage(log, "readiness: Redis at {where} does not answer ({reason})",
                "readiness: Redis at {where} answers again")
_clients: dict[str, redis.Redis] = {}


def database_state() -> str:
    """Return "ok" if the database answers a query, else "unreachable"."""
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        _database.failed(exc, where)
        return "unreachable"
    _database.answered(where)
    return "ok"


def redis_state(url: str) -> str:
    """Return "ok" if Redis at url answers a PING, else "unreachable"."""
    try:
        _client(url).ping()
    except REDIS_UNREACHABLE as exc:
        _redis.failed(exc, url)
        return "unreachable"
    _redis.answered(url)
    return "ok"


def _client(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                             socket_timeout=REDIS_TIMEOUT_SECONDS)
    return _clients[url]
