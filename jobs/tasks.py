"""Huey tasks: plain functions taking ids, each run inside an app context the worker built."""

from __future__ import annotations

import functools
import logging

from flask import Flask, current_app

from extensions import db
from jobs.queue import PRIORITY_EXCHANGE, PRIORITY_PUMP, huey
from services import exchange, recovery, scheduler
from services.mailbox_import.commit import expire_stale_previews

log = logging.getLogger(__name__)
_app: Flask | None = None


def set_app(app: Flask) -> None:
    """Name the app whose context every task runs in (the worker calls this at start)."""
    global _app
    _app = app


def _task_app() -> Flask:
    return _app if _app is not None else current_app._get_current_object()


def in_app_context(func):
    """Run a task body in a fresh app context and always give its database session back."""

    @functools.wraps(func)
    def run(*args):
        with _task_app().app_context():
            try:
                return func(*args)
            finally:
                db.session.remove()

    return run


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
    for run_id in found.run_ids:
        pump_run(run_id)
    for receipt_id in found.receipt_ids:
        exchange_callback(receipt_id)
    if expired_previews:
        log.info("Recovery: %d abandoned import previews expired", expired_previews)
    if found.run_ids or found.receipt_ids or found.stale:
        log.info("Recovery: %d runs, %d callbacks re-enqueued; %d stale requests failed",
                 len(found.run_ids), len(found.receipt_ids), found.stale)
