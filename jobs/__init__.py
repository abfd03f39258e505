"""Background jobs: the only package that knows Huey.

Callers commit first, then enqueue with these helpers; tasks take ids only. The queue is bound to
the current app's configuration on first use (see jobs/queue.py).
"""

from __future__ import annotations

import logging

from flask import current_app

from jobs.queue import bind
from services.platform.outages import REDIS_UNREACHABLE

log = logging.getLogger(__name__)


def _tasks():
    from jobs import tasks

    bind(current_app.config)
    return tasks


def enqueue_pump(run_id: int) -> None:
    """Ask a worker to send the run's next batches (after the caller's commit)."""
    _tasks().pump_run(run_id)


def enqueue_exchange(receipt_id: int) -> None:
    """Ask a worker to exchange a stored callback's code; a lost enqueue is picked up by recover()."""
    try:
        _tasks().exchange_callback(receipt_id)
    except Exception:  # noqa: BLE001 - the receipt is committed; the periodic recover() re-enqueues it
        log.exception("Could not enqueue the exchange of callback receipt %s; recovery will retry it", receipt_id)


def enqueue_recover() -> None:
    """Ask a worker to look for stalled runs, unexchanged callbacks and stale requests now."""
    _tasks().recover()


def queue_state() -> str:
    """Return "ok" when the job queue answers (it counts the waiting tasks), "unreachable" when Redis does not."""
    try:
        bind(current_app.config).storage.queue_size()
    except REDIS_UNREACHABLE:
        return "unreachable"
    return "ok"
