"""`flask worker` through outages: one log line when it starts waiting for Redis or the database, one when
that answers again, no traceback per poll, and work enqueued afterwards still runs.

Each test runs a real worker process against a server of its own (tests/private_services.py) and
takes that server away as a crash would.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import time

import pytest
import redis

from tests import factories
from tests.gunicorn_server import prepare_database, served_env
from tests.jobs.conftest import add_mailboxes, directory_emails, spawn_worker, start, wait_status, worker_env
from tests.plugins.strict import require
from tests.private_services import PrivateRedis


def _wait_for_line(log, pattern: str, worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, log.read_text(errors="replace")):
        assert worker.poll() is None, f"the worker exited:\n{log.read_text(errors='replace')}"
        assert time.monotonic() < deadline, f"no {pattern!r} in the worker's log:\n{log.read_text(errors='replace')}"
        time.sleep(0.1)


def _stop(worker) -> None:
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)
        raise


class GuardedRedis(PrivateRedis):
    """A private Redis that asks for a password, as production ones do."""

    password = secrets.token_urlsafe(12)

    def start(self) -> None:
        super().start()
        with redis.Redis(host="127.0.0.1", port=self.port) as conn:
            conn.config_set("requirepass", self.password)

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/{db}"


@pytest.fixture
def guarded_redis():
    require(shutil.which("redis-server") is not None, "redis-server for the worker's Redis outage test")
    server = GuardedRedis()
    server.start()
    yield server
    server.close()


def test_the_worker_waits_out_a_redis_outage_and_runs_what_is_enqueued_after_it(
        guarded_redis, app, admin, connection, engine, live_server, tmp_path):
    # guarded_redis comes first, so that it outlives the app, whose teardown empties the test's queue in it.
    app.config["REDIS_URL"] = guarded_redis.url()
    log = tmp_path / "worker.log"
    # Development settings log at INFO, as in production; recovery only at start, so that the queue is idle.
    worker = spawn_worker(worker_env(app, live_server, APP_ENV="development", RECOVER_INTERVAL_SECONDS=3600), log)
    masked = re.escape(f"redis://:***@127.0.0.1:{guarded_redis.port}/0")
    try:
        _wait_for_line(log, "Huey consumer started", worker)
        time.sleep(0.5)
        guarded_redis.stop()
        _wait_for_line(log, f"waiting for Redis at {masked}", worker)
        time.sleep(2)  # every thread polls a few times meanwhile
        guarded_redis.start()
        _wait_for_line(log, f"Redis at {masked} answers again", worker)
        ids = add_mailboxes(admin.organization, directory_emails(engine, trait="none")[:3])
        run_id = start(admin, connection, ids=ids)
        wait_status(run_id, "completed", timeout=60)
    finally:
        _stop(worker)
    output = log.read_text(errors="replace")
    # The reason is what the worker met first: a poll cut short ("connection closed by server") or a refusal.
    assert len(re.findall(f"waiting for Redis at {masked} \\(.+\\); retrying", output)) == 1, output
    assert len(re.findall(f"Redis at {masked} answers again; carrying on", output)) == 1, output
    assert "Traceback" not in output and guarded_redis.password not in output, output



def test_the_worker_waits_out_a_database_outage_in_two_log_lines(private_postgres, tmp_path):
    database_url = private_postgres.create_database("console")
    # Recovery every half second: each run is a task that reads the database.
    env = served_env(tmp_path, DATABASE_URL=database_url, FLASK_APP="app", RECOVER_INTERVAL_SECONDS=0.5,
                     WORKER_THREADS=2)
    prepare_database(env, factories.make_organization)
    log = tmp_path / "worker.log"
    worker = spawn_worker(env, log)
    where = re.escape(database_url)
    try:
        _wait_for_line(log, "Executing jobs.tasks.recover", worker)
        private_postgres.stop("immediate")
        _wait_for_line(log, f"waiting for the database at {where}", worker)
        time.sleep(2)  # several recoveries meet the outage meanwhile
        private_postgres.start()
        _wait_for_line(log, f"the database at {where} answers again", worker)
    finally:
        _stop(worker)
    output = log.read_text(errors="replace")
    assert len(re.findall(f"waiting for the database at {where} \\(.+\\); retrying", output)) == 1, output
    assert len(re.findall(f"the database at {where} answers again; carrying on", output)) == 1, output
    assert "Traceback" not in output, output
