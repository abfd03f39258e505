"""The Huey queue, bound to the app's configuration when it is first used.

Huey's task decorators need an instance at import time, but the storage (a SQLite file in the
instance folder, or Redis when REDIS_URL is set) is only known once an app's config is. So the
module holds one `ConsoleHuey` whose storage starts as a guard that refuses to enqueue, and
`bind(config)` swaps in the real storage made by `make_storage(config)` — from the web process
on the first enqueue, and from `flask worker` at start. Nothing reads the environment here.
"""

from __future__ import annotations

import threading
from pathlib import Path

from huey import Huey
from huey.storage import BaseStorage, PriorityRedisStorage, SqliteStorage

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
        return PriorityRedisStorage(name, url=config["REDIS_URL"])
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
