"""Outages of the database or Redis: recognising them, naming them without secrets, and saying so once.

A web process or a worker meets an outage on every request or poll while it lasts; an `Outage`
turns that into one log line when it starts and one when the dependency answers again.
"""

from __future__ import annotations

import logging
import os
import threading
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from extensions import db

log = logging.getLogger(__name__)
# Redis refused, dropped or timed out a connection (a wrong password is a ConnectionError too).
REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
MAX_REASON = 120


def database_unreachable(exc: BaseException) -> bool:
    """Return whether exc says the database cannot be reached: down, restarting, connection lost or pool exhausted."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, OperationalError))


def give_back_session() -> None:
    """Remove the current database session, even one whose connection died with its transaction open.

    Closing such a session rolls back on the dead connection, which raises; that must not fail a
    request already answered (or a task already done).
    """
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        log.warning("the database session closed with an error (%s)", reason(exc))
        db.session.remove()  # the failed close invalidated the connection; this one only forgets the session


def masked_url(url: str) -> str:
    """Return url with its password, if it has one, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def reason(exc: BaseException) -> str:
    """Return what went wrong in a few lowercase words, e.g. "connection refused"."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    link: BaseException | None = cause
    while link is not None:
        if isinstance(link, OSError) and link.errno:
            return os.strerror(link.errno).lower()
        link = link.__cause__ or link.__context__
    lines = str(cause).strip().splitlines()
    if not lines:
        return type(cause).__name__
    # "connection to server at "127.0.0.1", port 5432 failed: Connection refused" -> "connection refused"
    return lines[0].rsplit(": ", 1)[-1].rstrip(".").lower()[:MAX_REASON]


class Outage:
    """Log `down` once (a warning) when a dependency stops answering and `back` once when it answers again.

    The messages are formats with `{where}` (a masked URL) and, for `down`, `{reason}`.
    """

    def __init__(self, logger: logging.Logger, down: str, back: str) -> None:
        self._logger, self._down, self._back = logger, down, back
        self._lock = threading.Lock()
        self.ongoing = False

    def failed(self, exc: BaseException, where: str) -> None:
        """Note that the dependency at where did not answer; log it if it answered until now."""
        with self._lock:
            if self.ongoing:
                return
            self.ongoing = True
        self._logger.warning(self._down.format(where=masked_url(where), reason=reason(exc)))

    def answered(self, where: str) -> None:
        """Note that the dependency at where answered; log it if it did not before."""
        if not self.ongoing:
            return
        with self._lock:
            if not self.ongoing:
                return
            self.ongoing = False
        self._logger.info(self._back.format(where=masked_url(where)))
