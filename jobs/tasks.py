"""Huey tasks: plain functions taking ids, each run inside an app context the worker built."""

from __future__ import annotations

import functools
import logging
import time

from flask import Flask, current_app

from extensions import db
from jobs.queue import PRIORITY_EXCHANGE, PRIORITY_PUMP, huey, waiting_on
from services.engine import exchange, recovery, scheduler
from services.mailboxes.mailbox_import.commit import expire_stale_previews
from services.platform import event_retention, leases, outages

log = logging.getLogger(__name__)
_app: Flask | None = None
# Pruning the event log: enqueued by recover() once an hour per worker process (and at its start).
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_CHUNKS_PER_TASK = 100
_next_prune = 0.0
_database = outages.Outage(log, "waiting for the database at {where} ({reason}); retrying",
                           "the database at {where} answers again; carrying on")


def set_app(app: Flask) -> None:
    """Name the app whose context every task runs in (the worker calls this at start)."""
    global _app
    _app = app


def _task_app() -> Flask:
    return _app if _app is not None else current_app._get_current_object()


def in_app_context(func):
    """Run a task body in a fresh app context and always give its database session back.

    A database or queue that does not answer ends the task with one log line per outage, not a
    traceback per task: recover() picks its work up again once they answer.
    """

    @functools.wraps(func)
    def run(*args):
        app = _task_app()
        where = app.config["SQLALCHEMY_DATABASE_URI"]
        with app.app_context():
            try:
                value = func(*args)
            except Exception as exc:
                if not _waiting_on(exc, where):
                    raise
                return None
            finally:
                leases.let_go_of_thread()  # whatever the task left behind lapses instead of being renewed
                outages.give_back_session()
        _database.answered(where)
        return value

    return run


def _waiting_on(exc: Exception, database_url: str) -> bool:
    """Return whether exc is the database or the queue not answering, noting it (logged once per outage)."""
    if outages.database_unreachable(exc):
        _database.failed(exc, database_url)
        return True
    return waiting_on(exc)


@huey.task(priority=PRIORITY_PUMP, name="pump_run")
@in_app_context
def pump_run(run_id: int) -> None:
    """Send the run's batches for a while; enqueue itself again while work remains."""
    if scheduler.pump(run_id):
        pump_run(run_id)


@huey.task(priority=PRIORITY_EXCHANGE, name="exchange_callback")
@in_app_context
def exchange_callback(receipt_id: int) -> None:
    """Exchange a stored callback's code (or record its error); reschedule itself on a transient failure."""
    step = exchange.process_receipt(receipt_id)
    if step.retry_in is not None:
        exchange_callback.schedule((receipt_id,), delay=step.retry_in, priority=PRIORITY_EXCHANGE)
    if step.pump_run is not None:
        pump_run(step.pump_run)


@huey.task(priority=PRIORITY_EXCHANGE, name="recover")
@in_app_context
def recover() -> None:
    """Pick up what crashed or vanished: stalled pumps, unexchanged callbacks, stale requests."""
    found = recovery.recover()
    # Housekeeping on the same timer: abandoned import previews expire after a day.
    expired_previews = expire_stale_previews()
    db.session.commit()
    for run_id, wait in found.runs:
        _hand_back(pump_run, run_id, wait, PRIORITY_PUMP)
    for receipt_id, wait in found.receipts:
        _hand_back(exchange_callback, receipt_id, wait, PRIORITY_EXCHANGE)
    if expired_previews:
        log.info("Recovery: %d abandoned import previews expired", expired_previews)
    _prune_if_due()
    # Each stalled item is handed back (and so reported) once: recovery marks it queued until picked up.
    if found.receipts:
        log.info("Recovery: re-enqueued %s whose exchange stalled (worker gone)", _counted(found.receipts, "callback"))
    if found.runs:
        log.info("Recovery: re-enqueued %s whose pump stalled (worker gone)", _counted(found.runs, "run"))
    if found.stale:
        log.info("Recovery: %d requests never got their callback; marked failed (no_callback)", found.stale)


def _prune_if_due() -> None:
    """Enqueue prune_events() when this process has not for PRUNE_EVERY_SECONDS (the consumer runs no
    periodic tasks of Huey's own: recover()'s timer drives housekeeping)."""
    global _next_prune
    now = time.monotonic()
    if now >= _next_prune:
        _next_prune = now + PRUNE_EVERY_SECONDS
        prune_events()


@huey.task(priority=PRIORITY_PUMP, name="prune_events")
@in_app_context
def prune_events() -> int:
    """Delete the events older than EVENT_RETENTION_DAYS, a chunk per commit; return how many went."""
    pruned = 0
    for _ in range(PRUNE_CHUNKS_PER_TASK):
        removed = event_retention.prune_chunk()
        db.session.commit()
        pruned += removed
        if removed < event_retention.CHUNK:
            break
    else:
        prune_events()  # more than one task's share is past retention: carry on in a fresh task
    if pruned:
        log.info("Housekeeping: %d events older than %d days pruned", pruned,
                 current_app.config["EVENT_RETENTION_DAYS"])
    return pruned


def _counted(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _hand_back(task, item_id: int, wait: float, priority: int) -> None:
    """Enqueue the task for item_id now, or for when the lease it waits on lapses."""
    if wait > 0:
        task.schedule((item_id,), delay=wait, priority=priority)
    else:
        task(item_id)
