"""Fixtures for the engine: a sandbox-connected organization, its mailboxes, and a real worker."""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import insert, select

import jobs
from extensions import db
from jobs.cli import LeaseHeartbeat, RecoverTicker, build_consumer
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.mailbox import Mailbox
from services.engine import runs
from services.platform import leases
from tests.contract.sandbox_support import DELEGATED_SCOPE
from tests.helpers import connect_sandbox

FAST = {
    "RATE_LIMIT_PER_SECOND": 1000,
    "RATE_LIMIT_PER_MINUTE": 100_000,
    "SEND_RETRY_BASE_SECONDS": 0.05,
    "PUMP_WINDOW_SECONDS": 3.0,
    "RECOVER_INTERVAL_SECONDS": 0.5,
    "SEND_MAX_TRIES": 3,
    "UPSTREAM_READ_TIMEOUT": 2.0,
}


@pytest.fixture
def engine(app, use_sandbox, live_server, tmp_path):
    """The app pointed at the sandbox, its callbacks served over loopback HTTP, with its own queue."""
    app.config.update(FAST, QUEUE_PATH=str(tmp_path / "queue.sqlite"), QUEUE_NAME=f"ecc-test-{secrets.token_hex(4)}")
    return use_sandbox


@pytest.fixture(autouse=True)
def _let_go_of_leases():
    """Leases the test's own thread took (pumps and exchanges called directly) are not renewed after it."""
    yield
    leases.let_go_of_thread()


@pytest.fixture
def worker(app, engine):
    """A real Huey consumer with four worker threads (the recovery ticker, the lease heartbeat) in this process."""
    consumer = build_consumer(app, 4, handle_signals=False)
    consumer.start()
    ticker = RecoverTicker(app, app.config["RECOVER_INTERVAL_SECONDS"]).start()
    heartbeat = LeaseHeartbeat(app).start()
    yield consumer
    heartbeat.stop()
    ticker.stop()
    consumer.stop(graceful=True)


@pytest.fixture
def admin(make_org_admin):
    return make_org_admin()


@pytest.fixture
def connection(admin, engine):
    connection, _ = connect_sandbox(admin.organization, engine, actor=admin)
    return connection


def add_mailboxes(organization, emails, status="new"):
    """Insert mailboxes with these addresses and commit; return their ids."""
    now = utcnow()
    rows = [{"organization_id": organization.id, "email": email, "name": email.split("@")[0], "kind": "user",
             "source": "import", "status": status, "status_changed_at": now, "created_at": now, "updated_at": now}
            for email in emails]
    ids = db.session.execute(insert(Mailbox).returning(Mailbox.id), rows).scalars().all()
    db.session.commit()
    return ids


def directory_emails(sandbox, domain="acme.example", **filters):
    """Return the addresses of the sandbox directory's members of domain."""
    return [m["email"] for m in sandbox.directory(domain=domain, limit=1000, **filters)]


def start(admin, connection, *, ids=None, scope=DELEGATED_SCOPE, enqueue=True, **options):
    """Start a run over the organization's mailboxes (or ids), commit, enqueue its pump; return its id."""
    organization = admin.organization
    query = select(Mailbox.id).where(Mailbox.organization_id == organization.id)
    if ids is not None:
        query = query.where(Mailbox.id.in_(ids))
    run = runs.start_run(organization, connection=connection, mailbox_ids_select=query, scope=scope,
                         actor=admin, source="test", **options)
    db.session.commit()
    if enqueue:
        jobs.enqueue_pump(run.id)
    return run.id


def fresh(model, row_id):
    """Return the row as the database has it now."""
    db.session.expire_all()
    return db.session.get(model, row_id)


def wait_for(predicate, timeout=30.0, message="condition"):
    """Poll predicate (with a fresh session) until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        db.session.rollback()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def wait_status(run_id, *statuses, timeout=30.0):
    """Wait until the run reaches one of statuses; return it."""
    return wait_for(lambda: (r := db.session.get(AuthorizationRun, run_id)) and r.status in statuses and r,
                    timeout, f"run {run_id} to become {'/'.join(statuses)}")


def attempt_counts(run_id):
    """Return {status: count} of the run's attempts."""
    db.session.expire_all()
    rows = db.session.execute(select(AuthorizationAttempt.status, db.func.count())
                              .where(AuthorizationAttempt.run_id == run_id)
                              .group_by(AuthorizationAttempt.status)).all()
    return dict(rows)


def latest_event_id(sandbox) -> int:
    """Return the id of the sandbox's newest logged event (0 when none)."""
    newest = sandbox.events(limit=1)
    return newest[0]["id"] if newest else 0


def events_since(sandbox, since: int, **filters) -> list[dict]:
    """Return the sandbox's events after event id since, oldest first."""
    return sorted((e for e in sandbox.events(limit=5000, **filters) if e["id"] > since), key=lambda e: e["id"])


def worker_env(app, live_server, **extra) -> dict:
    """Return the environment of a `flask worker` subprocess sharing this test's database, queue and sandbox."""
    import os

    config = app.config
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRONOFY_", "SANDBOX_", "DATABASE_URL"))}
    env.update({
        "FLASK_APP": "app", "APP_ENV": "testing", "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": config["SECRET_KEY"], "TOKEN_ENCRYPTION_KEYS": ",".join(config["TOKEN_ENCRYPTION_KEYS"]),
        "SANDBOX_URL": config["SANDBOX_URL"], "SANDBOX_CLIENT_ID": config["CRONOFY_CLIENT_ID"],
        "SANDBOX_CLIENT_SECRET": config["CRONOFY_CLIENT_SECRET"], "PUBLIC_BASE_URL": live_server.url,
        "QUEUE_PATH": config["QUEUE_PATH"], "QUEUE_NAME": config["QUEUE_NAME"], "WORKER_THREADS": "4",
        "PUMP_WINDOW_SECONDS": "2", "RECOVER_INTERVAL_SECONDS": "1", "CRONOFY_READ_TIMEOUT": "2",
        "CRONOFY_RATE_LIMIT_PER_SECOND": "1000", "CRONOFY_RATE_LIMIT_PER_MINUTE": "100000",
    })
    if config.get("REDIS_URL"):
        env["REDIS_URL"] = config["REDIS_URL"]
    else:
        env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def spawn_worker(env: dict, log_path):
    """Start `flask worker` as a real process; return its Popen."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with open(log_path, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "flask", "worker"], cwd=root, env=env, stdout=handle,
                                stderr=subprocess.STDOUT)
