"""The Huey queue, bound to the app's configuration when it is first used.

Huey's task decorators need an instance at import time, but the storage (a SQLite file in the
instance folder, or Redis when REDIS_URL is set) is only known once an app's config is. So the
module holds one `ConsoleHuey` whose storage starts as a guard that refuses to enqueue, and
`bind(config)` swaps in the real storage made by `make_storage(config)` — from the web process
on the first enqueue, and from `flask worker` at start. Nothing reads the environment here.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from huey import Huey
from huey.storage import BaseStorage, PriorityRedisStorage, SqliteStorage

from services.platform.outages import REDIS_UNREACHABLE, Outage

log = logging.getLogger(__name__)

# Priorities: exchanges beat interactive single actions beat the bulk pump (design.md "Queue").
PRIORITY_EXCHANGE = 100
PRIORITY_INTERACTIVE = 50
PRIORITY_PUMP = 10


class QueueNotConfigured(RuntimeError):
    """A task was enqueued before any app configuration was bound to the queue."""


class _Unbound(BaseStorage):
    """Refuse to lose tasks silently before `bind()`."""

    def enqueue(self, data, priority=None):
        raise QueueNotConfigured("The job queue is not bound to an app configuration yet (jobs.queue.bind).")

    def dequeue(self):
        return None


class ConsoleHuey(Huey):
    """A Huey whose storage is chosen from the app's config by `bind()`."""

    def get_storage(self, **kwargs):
        return _Unbound(self.name)


class WaitingRedisStorage(PriorityRedisStorage):
    """The Redis queue, whose outages a worker logs once each (when it starts and ends), not once per poll.

    While Redis does not answer, a poll finds nothing and reports a non-blocking storage, so Huey's
    worker threads back off between polls as they do on an empty SQLite queue.
    """

    def __init__(self, name: str, url: str) -> None:
        self.url = url
        self.outage = Outage(log, "waiting for Redis at {where} ({reason}); retrying",
                             "Redis at {where} answers again; carrying on")
        super().__init__(name, url=url)

    @property
    def blocking(self) -> bool:
        """Whether a poll waits for a task: not while Redis does not answer (Huey's worker then backs off)."""
        return self._blocking and not self.outage.ongoing

    @blocking.setter
    def blocking(self, value: bool) -> None:
        self._blocking = value

    def dequeue(self):
        """Return the next task's data; None while Redis does not answer."""
        try:
            data = super().dequeue()
        except REDIS_UNREACHABLE as exc:
            self.outage.failed(exc, self.url)
            return None
        self.outage.answered(self.url)
        return data

    def read_schedule(self, ts):
        """Return the scheduled tasks now due; none while Redis does not answer."""
        try:
            due = super().read_schedule(ts)
        except REDIS_UNREACHABLE as exc:
            self.outage.failed(exc, self.url)
            return []
        self.outage.answered(self.url)
        return due


def waiting_on(exc: BaseException) -> bool:
    """Return whether exc is the Redis queue not answering, noting it (logged once per outage)."""
    storage = huey.storage
    if not isinstance(exc, REDIS_UNREACHABLE) or not isinstance(storage, WaitingRedisStorage):
        return False
    storage.outage.failed(exc, storage.url)
    return True


huey = ConsoleHuey("ecc", results=False, utc=True)
_bound: tuple | None = None
_bind_lock = threading.Lock()


def _storage_key(config) -> tuple:
    return (config.get("REDIS_URL"), queue_path(config), config.get("QUEUE_NAME", "ecc"))


def queue_path(config) -> str:
    """Return the SQLite queue file (QUEUE_PATH; config.py defaults it into the instance folder)."""
    return str(config["QUEUE_PATH"])


def make_storage(config) -> BaseStorage:
    """Return the queue storage: PriorityRedis when REDIS_URL is set, else SQLite in the instance folder."""
    name = config.get("QUEUE_NAME", "ecc")
    if config.get("REDIS_URL"):
        return WaitingRedisStorage(name, config["REDIS_URL"])
    path = Path(queue_path(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStorage(name, filename=str(path))


def bind(config) -> Huey:
    """Point the queue at the storage config describes (once per distinct setting) and return it."""
    global _bound
    key = _storage_key(config)
    with _bind_lock:
        if _bound != key:
            huey.storage = make_storage(config)
            _bound = key
    return huey
