"""`flask worker`: run the Huey consumer inside the app, plus the recovery ticker, the lease heartbeat and the
webhook sender."""

from __future__ import annotations

import logging
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from huey.consumer import Consumer

from jobs.queue import bind, waiting_on

log = logging.getLogger(__name__)


class WorkerConsumer(Consumer):
    """A consumer that leaves signal handlers alone when it runs inside another program (tests)."""

    def __init__(self, *args, handle_signals: bool = True, **kwargs):
        self._handle_signals = handle_signals
        super().__init__(*args, **kwargs)

    def _set_signal_handlers(self):
        if self._handle_signals:
            super()._set_signal_handlers()


class _Background:
    """A daemon thread running a subclass's `_run` until `stop()`, which `_run` notices through `self._stop`."""

    name = "background"

    def __init__(self, app: Flask, interval: float) -> None:
        self._app, self._interval = app, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class RecoverTicker(_Background):
    """Enqueue recover() at start and every interval, so a restarted worker resumes at once."""

    name = "recover-ticker"

    def _run(self) -> None:
        from jobs import tasks

        while True:
            try:
                with self._app.app_context():
                    tasks.recover()
            except Exception as exc:  # noqa: BLE001 - a queue hiccup must not end the ticker
                if not waiting_on(exc):
                    log.exception("Could not enqueue recovery")
            if self._stop.wait(self._interval):
                return


class LeaseHeartbeat(_Background):
    """Renew every lease this process holds (services/platform/leases.py) every third of LEASE_SECONDS."""

    name = "lease-heartbeat"

    def __init__(self, app: Flask) -> None:
        super().__init__(app, app.config["LEASE_SECONDS"] / 3)
        self._failing = False

    def _run(self) -> None:
        from extensions import db
        from services.platform import leases

        while not self._stop.wait(self._interval):
            try:
                with self._app.app_context():
                    try:
                        leases.renew_held()
                    finally:
                        db.session.remove()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the heartbeat
                self._note(exc)
            else:
                self._note(None)

    def _note(self, exc: Exception | None) -> None:
        """Log the first failed renewal of an outage and the first good one after it, nothing in between."""
        if exc is not None and not self._failing:
            log.warning("Could not renew this worker's leases (%s); retrying every %.1f s",
                        type(exc).__name__, self._interval)
        elif exc is None and self._failing:
            log.info("This worker renews its leases again")
        self._failing = exc is not None


class WebhookSender(_Background):
    """Every interval, turn new events into webhook deliveries and start the ones that are due.

    The requests run on the sender's own thread pool (services/webhooks/delivery.py), so a slow
    receiver never holds this loop; while the database does not answer, one line says so and the
    loop carries on, and the deliveries it could not settle are sent again once it answers.
    """

    name = "webhook-sender"
    # A pause between rounds, so that attempts finishing one after the other are claimed for together.
    _SETTLE = 0.01

    def __init__(self, app: Flask, interval: float = 0.5) -> None:
        from services.webhooks.delivery import Sender

        super().__init__(app, interval)
        self.sender = Sender(app)
        self._failing = False

    def _run(self) -> None:
        while True:
            try:
                started = self.sender.tick()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the sender
                self._note(exc)
                started = 0
            else:
                self._note(None)
            # Again as soon as a thread is free (an attempt finished), else every interval: a busy endpoint's
            # next deliveries start when its previous ones end, not half a second later.
            if started < self.sender.threads:
                self.sender.wait_for_work(self._interval)
            if self._stop.wait(self._SETTLE):
                return

    def _note(self, exc: Exception | None) -> None:
        """Log the first failed round of a streak and the first good one after it, nothing in between."""
        from services.platform.outages import database_unreachable

        if exc is not None and not self._failing:
            if database_unreachable(exc):
                log.warning("Webhook sender: the database does not answer (%s); retrying", type(exc).__name__)
            else:
                log.exception("Webhook sender round failed; retrying")
        elif exc is None and self._failing:
            log.info("Webhook sender carries on")
        self._failing = exc is not None

    def stop(self) -> None:
        super().stop()
        self.sender.close()


def build_consumer(app: Flask, workers: int | None = None, *, handle_signals: bool = True) -> WorkerConsumer:
    """Bind the queue and the tasks to app and return a thread-pool consumer."""
    from jobs import tasks

    huey = bind(app.config)
    tasks.set_app(app)
    _prefer_wal(app)
    return WorkerConsumer(
        huey, workers=workers or app.config["WORKER_THREADS"], worker_type="thread", periodic=False,
        initial_delay=0.05, backoff=1.2, max_delay=0.5, handle_signals=handle_signals,
    )


def _prefer_wal(app: Flask) -> None:
    """On SQLite, switch the database file to WAL (a lasting property of the file).

    With the web process, the callback endpoint and several worker threads writing at once, the
    default rollback journal makes readers and writers wait on each other; WAL lets reads go on
    during a write, so a callback is stored in milliseconds.
    """
    from sqlalchemy import text

    from extensions import db

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                connection.execute(text("PRAGMA journal_mode=WAL"))


def _start_demo_seeding() -> None:
    """Hand the demo organization `flask demo seed` recorded to the queue: it fills in once the sandbox answers."""
    from jobs import demo

    try:
        if demo.start_pending() is not None:
            click.echo("Filling in the demo organization once the sandbox answers.")
    except Exception as exc:  # noqa: BLE001 - the demo must never keep the worker from starting
        if not waiting_on(exc):
            log.exception("Could not start filling in the demo organization")


@click.command("worker")
@click.option("-w", "--workers", type=int, default=None, help="Worker threads (default: WORKER_THREADS).")
@with_appcontext
def worker_command(workers: int | None) -> None:
    """Run the job queue's consumer: bulk runs, callback exchanges and recovery."""
    app = current_app._get_current_object()
    consumer = build_consumer(app, workers)
    _start_demo_seeding()
    ticker = RecoverTicker(app, app.config["RECOVER_INTERVAL_SECONDS"]).start()
    heartbeat = LeaseHeartbeat(app).start()
    webhooks = WebhookSender(app).start()
    click.echo(f"Worker started with {consumer.workers} threads.")
    try:
        consumer.run()
    finally:
        webhooks.stop()
        heartbeat.stop()
        ticker.stop()
