"""A `limits` storage in the application's database: the sign-in throttle's counts when there is no Redis.

Why it exists. Flask-Limiter's ``memory://`` storage counts in each process, so behind gunicorn every
worker kept its own count and "10 per minute" let up to 10 attempts per worker through (a penetration
test got 50 answers out of 80 wrong passwords in 9 seconds). Without ``REDIS_URL`` the counts live in the
``rate_limit_counters`` table instead (``ecc+db://``, set in config.py), which every worker on every
machine using the database shares.

How it counts. Each hit is a single ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (SQLite ≥ 3.35 and
PostgreSQL; one statement for all the windows an API request counts in), which also starts a new window when
the stored one has run out, so hits from any number of processes and threads are counted exactly, with no
read-then-write race. It runs on the current app's engine (the same database and pool options as the app),
in transactions of its own, so a view that rolls its session back does not undo a count. It serves
Flask-Limiter's fixed-window strategy (the default ``RATELIMIT_STRATEGY``); the moving and sliding windows
refuse this storage at start-up. About one write in fifty also deletes the windows that have run out, so the
table holds only live counts.

With Redis. ``REDIS_URL`` makes the scheme ``ecc+redis://…`` (``RedisOrDatabaseStorage``): the counts
live in Redis, and while Redis does not answer, in the database, so that sign-in goes on under the same
limits, shared by every worker (Flask-Limiter's own fallback counts in each process's memory). Each
process tries Redis again every few seconds and goes back to it once it answers; until the windows
counted in the database run out, their counts are added to Redis's, so the outage gives nobody a
fresh allowance on its way out (the hits Redis counted before it went down are out of reach, though).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from datetime import timedelta

from limits.errors import ConfigurationError
from limits.storage import RedisStorage, Storage
from redis.exceptions import RedisError
from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from models.base import utcnow
from models.rate_limit import KEY_LENGTH, RateLimitCounter
from services.platform.outages import Outage

log = logging.getLogger(__name__)
SCHEME = "ecc+db"
REDIS_SCHEMES = ["ecc+redis", "ecc+rediss"]
# How long a process counts in the database before it tries Redis again.
REDIS_RETRY_SECONDS = 5.0
# A sign-in must not hang on a Redis host that drops packets (options from RATELIMIT_STORAGE_OPTIONS win).
REDIS_TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
# The share of writes that also delete the windows that have run out.
PURGE_SHARE = 0.02
_counters = RateLimitCounter.__table__
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
# limits' incr_expire.lua over several keys: ARGV[1] the amount, ARGV[i + 1] the expiry of KEYS[i]. A window's
# first hit sets its expiry, so each counter is a fixed window exactly as RedisStorage.incr keeps it.
_INCR_MANY = """
local amount = tonumber(ARGV[1])
local counts = {}
for i, key in ipairs(KEYS) do
    local current = redis.call("incrby", key, amount)
    if tonumber(current) == amount then
        redis.call("expire", key, ARGV[i + 1])
    end
    counts[i] = current
end
return counts
"""


class DatabaseStorage(Storage):
    """Fixed-window counters in rate_limit_counters, on the current app's database."""

    STORAGE_SCHEME = [SCHEME]

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add amount to key's window (a new one of expiry seconds if it ran out) and return its count."""
        return self.incr_many([(key, expiry)], amount)[0]

    def incr_many(self, windows: list[tuple[str, int]], amount: int = 1) -> list[int]:
        """Add amount to each (key, expiry) window (distinct keys) in one statement and transaction; return their
        counts in order.

        The API counts a request against each of its key's limits (a second's and a minute's): one write
        transaction instead of one per limit, which on SQLite is the request's largest cost.
        """
        now = utcnow()
        stored = [_stored(key) for key, _ in windows]
        with db.engine.begin() as conn:
            rows = conn.execute(_hit_rows(conn.dialect.name, [
                {"key": key, "hits": amount, "expires_at": now + timedelta(seconds=expiry)}
                for key, (_, expiry) in zip(stored, windows, strict=True)
            ], now)).all()
        if random.random() < PURGE_SHARE:
            purge_expired()
        counts = {row.key: row.hits for row in rows}
        return [counts[key] for key in stored]

    def get(self, key: str) -> int:
        """Return the count of key's live window, 0 when there is none."""
        row = _live_window(key)
        return row.hits if row else 0

    def get_expiry(self, key: str) -> float:
        """Return when key's window ends (epoch seconds); now when there is no live window."""
        row = _live_window(key)
        return row.expires_at.timestamp() if row else time.time()

    def check(self) -> bool:
        """Return whether the database answers."""
        try:
            with db.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int:
        """Delete every counter (the table holds nothing else) and return how many there were."""
        with db.engine.begin() as conn:
            return conn.execute(delete(_counters)).rowcount

    def clear(self, key: str) -> None:
        """Delete key's counter, so that its limit starts again from nothing."""
        with db.engine.begin() as conn:
            conn.execute(delete(_counters).where(_counters.c.key == _stored(key)))


class RedisOrDatabaseStorage(Storage):
    """Fixed-window counters in Redis; in the database while Redis does not answer."""

    STORAGE_SCHEME = REDIS_SCHEMES

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.redis_url = uri.removeprefix("ecc+")
        self.redis = RedisStorage(self.redis_url, **{**REDIS_TIMEOUTS, **options})
        self.database = DatabaseStorage()
        self._outage = Outage(log, "sign-in throttle: Redis at {where} does not answer ({reason}); counting in the "
                                   "database until it does", "sign-in throttle: Redis at {where} answers again; "
                                   "counting there")
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._database_until = 0.0  # when the last window counted in the database runs out (epoch seconds)
        self._incr_many = None

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add amount to key's window and return its count, in Redis or, while it does not answer, the database."""
        hits = self._in_redis(lambda: self.redis.incr(key, expiry, amount))
        if hits is None:
            with self._lock:
                self._database_until = max(self._database_until, time.time() + expiry)
            return self.database.incr(key, expiry, amount)
        return hits + self._counted_in_database(key)

    def incr_many(self, windows: list[tuple[str, int]], amount: int = 1) -> list[int]:
        """Add amount to each (key, expiry) window in one Redis call (one script); return their counts in order.

        While Redis does not answer, in the database, in one transaction.
        """
        keys = [self.redis.prefixed_key(key) for key, _ in windows]
        counts = self._in_redis(lambda: self._incr_script()(keys, [amount, *(expiry for _, expiry in windows)]))
        if counts is None:
            with self._lock:
                self._database_until = max(self._database_until, time.time() + max(e for _, e in windows))
            return self.database.incr_many(windows, amount)
        return [int(hits) + self._counted_in_database(key) for hits, (key, _) in zip(counts, windows, strict=True)]

    def _incr_script(self):
        """Return the registered script (registered once; redis-py loads it again if Redis restarted)."""
        if self._incr_many is None:
            self._incr_many = self.redis.get_connection().register_script(_INCR_MANY)
        return self._incr_many

    def get(self, key: str) -> int:
        """Return the count of key's live window."""
        hits = self._in_redis(lambda: self.redis.get(key))
        return self.database.get(key) if hits is None else hits + self._counted_in_database(key)

    def get_expiry(self, key: str) -> float:
        """Return when key's window ends (epoch seconds)."""
        expiry = self._in_redis(lambda: self.redis.get_expiry(key))
        return self.database.get_expiry(key) if expiry is None else expiry

    def check(self) -> bool:
        """Return whether Redis or, failing it, the database answers."""
        return self.redis.check() or self.database.check()

    def reset(self) -> int:
        """Forget every count, in Redis (if it answers) and in the database."""
        return (self._in_redis(self.redis.reset) or 0) + self.database.reset()

    def clear(self, key: str) -> None:
        """Forget key's count, in Redis (if it answers) and in the database."""
        self._in_redis(lambda: self.redis.clear(key))
        self.database.clear(key)

    def _in_redis(self, call):
        """Return what call returns from Redis; None while Redis does not answer (tried again now and then)."""
        if self._outage.ongoing and time.monotonic() < self._retry_at:
            return None
        try:
            value = call()
        except RedisError as exc:
            self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            self._outage.failed(exc, self.redis_url)
            return None
        self._outage.answered(self.redis_url)
        return value

    def _counted_in_database(self, key: str) -> int:
        """Return what the database still counts for key from an outage, so that its hits stay counted."""
        return self.database.get(key) if time.time() < self._database_until else 0


def purge_expired() -> int:
    """Delete the counters whose window has run out and return how many."""
    with db.engine.begin() as conn:
        return conn.execute(delete(_counters).where(_counters.c.expires_at <= utcnow())).rowcount


def _hit_rows(dialect: str, rows: list[dict], now):
    """Return one statement counting a hit in each row's window (restarting expired ones), returning key and hits."""
    try:
        insert = _INSERTS[dialect]
    except KeyError:
        raise ConfigurationError(f"{SCHEME}:// counts on SQLite or PostgreSQL, not on {dialect}") from None
    statement = insert(_counters).values(rows)
    expired = _counters.c.expires_at <= now
    fresh = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_counters.c.key],
        set_={
            "hits": case((expired, fresh.hits), else_=_counters.c.hits + fresh.hits),
            "expires_at": case((expired, fresh.expires_at), else_=_counters.c.expires_at),
        },
    ).returning(_counters.c.key, _counters.c.hits)


def _live_window(key: str):
    with db.engine.connect() as conn:
        return conn.execute(
            select(_counters.c.hits, _counters.c.expires_at)
            .where(_counters.c.key == _stored(key), _counters.c.expires_at > utcnow())
        ).first()


def _stored(key: str) -> str:
    """Return key, or a digest of it when it is longer than the column (keys can carry submitted text)."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
