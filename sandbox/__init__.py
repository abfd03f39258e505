"""The Cronofy Enterprise Connect sandbox: a standalone WSGI app speaking the upstream protocol.

Run it with `flask --app sandbox run --port 5055` or `gunicorn 'sandbox:create_app()'`.
It imports nothing of the console; the two meet only over HTTP.
"""

import atexit
import time
import weakref
from dataclasses import dataclass

from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError

from sandbox import pipeline
from sandbox.clients import ensure_demo_client
from sandbox.config import load_config
from sandbox.db import close_session, create_tables, default_database_url, make_engine, make_session_factory
from sandbox.delivery import DeliveryWorker
from sandbox.directory import is_empty, seed_all
from sandbox.errors import ApiError
from sandbox.eventlog import EventLog
from sandbox.ratelimit import RateLimiter
from sandbox.runtime import HangGate, RuntimeSettings


@dataclass
class SandboxState:
    """Everything the sandbox app holds beyond Flask: database, runtime settings, limiter, delivery."""

    config: dict
    engine: object
    Session: object
    settings: RuntimeSettings
    limiter: RateLimiter
    events: EventLog
    hangs: HangGate
    worker: DeliveryWorker | None = None

    def stop(self):
        """Stop callback delivery, write the buffered events and close the database connections."""
        if self.worker is not None:
            self.worker.stop()
        self.events.stop()
        self.engine.dispose()


def create_app(config=None):
    """Create the sandbox WSGI application."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    state = register_database(app)
    prepare_database(state, app.config)
    register_blueprints(app)
    register_hooks(app)
    register_cli(app)
    start_background(state, app.config)
    return app


def register_database(app):
    """Create the engine, session factory and runtime state."""
    url = app.config["SANDBOX_DATABASE_URL"] or default_database_url(app.instance_path)
    app.config["SANDBOX_DATABASE_URL"] = url
    engine = make_engine(url)
    factory = make_session_factory(engine)
    settings = RuntimeSettings(factory, app.config)
    state = SandboxState(config=app.config, engine=engine, Session=factory, settings=settings, limiter=RateLimiter(),
                         events=EventLog(factory, app.config["SANDBOX_EVENT_LOG_MAX"],
                                         app.config["SANDBOX_EVENT_FLUSH_SECONDS"]),
                         hangs=HangGate(settings, app.config["SANDBOX_MAX_HUNG_REQUESTS"]))
    app.extensions["sandbox"] = state
    app.teardown_appcontext(close_session)
    return state


def prepare_database(state, config, patience=300.0):
    """Create missing tables, the demo client and, on an empty database, the demo directory."""
    deadline = time.monotonic() + patience
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            create_tables(state.engine)
            with state.Session() as db:
                ensure_demo_client(db, config["SANDBOX_CLIENT_ID"], config["SANDBOX_CLIENT_SECRET"])
                if is_empty(db):
                    seed_all(db, config["SANDBOX_SEED_USERS"], config["SANDBOX_SEED_ROOMS"],
                             config["SANDBOX_SEED_SHARED"])
                db.commit()
            return
        except (IntegrityError, OperationalError):
            # Several gunicorn workers may start at once on a fresh database (one of them seeding a large
            # directory for a while); the others wait and retry.
            time.sleep(min(0.2 * attempt, 2.0))
    raise RuntimeError("could not prepare the sandbox database")


def register_blueprints(app):
    """Register the consent, OAuth, API, admin and event-log blueprints."""
    from sandbox.views import admin, api, consent, disruptions, events, oauth, push

    for module in (consent, oauth, api, push, admin, disruptions, events):
        app.register_blueprint(module.bp)
    app.add_template_filter(_format_time, "sandbox_time")


def _format_time(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def register_hooks(app):
    """Install the request pipeline and error handlers."""
    app.before_request(pipeline.before_request)
    app.after_request(pipeline.after_request)
    app.register_error_handler(ApiError, pipeline.handle_api_error)
    app.register_error_handler(Exception, pipeline.handle_unexpected)


def register_cli(app):
    """Add `flask --app sandbox reset | seed | db-init`."""
    from sandbox.cli import commands

    for command in commands:
        app.cli.add_command(command)


def start_background(state, config):
    """Start the event-log flusher and, unless switched off, the callback delivery thread."""
    state.events.start()
    state.worker = DeliveryWorker(state.Session, state.settings, state.events, config)
    if config["SANDBOX_DELIVERY_THREAD"]:
        state.worker.start()
    # A gunicorn worker leaves through sys.exit: write the buffered events before the process ends.
    atexit.register(_stop_at_exit, weakref.ref(state))


def _stop_at_exit(state_ref):
    state = state_ref()
    if state is not None:
        state.stop()
