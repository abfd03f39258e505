"""The sign-in throttle holds across real gunicorn workers without Redis: every worker shares one count.

A penetration test found each worker counting on its own (80 wrong passwords in 9 s got 50 answers).
This starts the console under gunicorn with four workers and no REDIS_URL, on a fresh database, sends
bursts of wrong passwords over new connections (so that they land on several workers) and counts the
answers that got past the throttle.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from flask_migrate import upgrade

from app import create_app
from extensions import db
from tests import factories
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.helpers import scratch_postgres_database

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
WORKERS = 4
PER_ADDRESS, PER_ACCOUNT = 10, 5
BURST = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"] if ON_POSTGRES else ["sqlite"])
def fresh_database(request, tmp_path):
    """An empty database of its own: a SQLite file, or (in the PostgreSQL pass) a new database on that server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'console.sqlite'}"
        return
    with scratch_postgres_database(TEST_DATABASE_URL, "ecc_throttle") as url:
        yield url


def _migrate_with_a_user(database_url: str, folder: Path) -> str:
    """Migrate the database, add a support user and return its email."""
    app = create_app({"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "x" * 32,
                      "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                      "QUEUE_PATH": str(folder / "queue.sqlite")})
    with app.app_context():
        upgrade()
        email = factories.make_support_user().email
        db.session.remove()
        db.engine.dispose()
    return email


def _gunicorn_env(database_url: str, folder: Path, port: int) -> dict:
    """Development settings with every secret and file given, so nothing lands in the repository's instance/."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "DATABASE_", "CRONOFY_", "SIGN_IN_", "GUNICORN_", "QUEUE_"))}
    env.update({
        "APP_ENV": "development", "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "DATABASE_URL": database_url,
        "QUEUE_PATH": str(folder / "queue.sqlite"), "TRUSTED_PROXY_COUNT": "1",
        "SIGN_IN_RATE_LIMIT": f"{PER_ADDRESS} per minute", "SIGN_IN_ACCOUNT_RATE_LIMIT": f"{PER_ACCOUNT} per minute",
        "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(WORKERS), "GUNICORN_THREADS": "4",
        "GUNICORN_ACCESSLOG": str(folder / "access.log"),
    })
    return env


class Console:
    """The console under gunicorn; `pids(request)` tells which workers answered, say, "POST /sign-in"."""

    def __init__(self, env: dict, folder: Path, email: str):
        self.url = f"http://{env['GUNICORN_BIND']}"
        self.email = email  # a support user's, whose password the attempts get wrong
        self.access_log = folder / "access.log"
        with open(folder / "gunicorn.log", "ab") as output:  # the child keeps its own copy
            self.process = subprocess.Popen(
                # The pid in the access log shows which worker answered; no control socket in the shared home.
                [str(GUNICORN), "wsgi:app", "-c", "gunicorn.conf.py", "--access-logformat", "%(p)s %(m)s %(U)s %(s)s",
                 "--no-control-socket"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def pids(self, request: str) -> set[str]:
        if not self.access_log.exists():
            return set()
        lines = self.access_log.read_text().splitlines()
        return {line.split()[0] for line in lines if f" {request} " in line}

    def wait_for_every_worker(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.pids("GET /healthz")) < WORKERS:
            assert self.process.poll() is None, "gunicorn exited; see gunicorn.log"
            assert time.monotonic() < deadline, "not every gunicorn worker answered in time"
            try:
                _post_or_get("GET", f"{self.url}/healthz")
            except requests.ConnectionError:
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _post_or_get(method: str, url: str, **kwargs) -> requests.Response:
    # A new session per request: a new connection each time (Connection: close), never through a proxy.
    with requests.Session() as http:
        http.trust_env = False
        return http.request(method, url, headers={"Connection": "close", **kwargs.pop("headers", {})},
                            allow_redirects=False, timeout=60, **kwargs)


@pytest.fixture
def console(fresh_database, tmp_path):
    email = _migrate_with_a_user(fresh_database, tmp_path)
    running = Console(_gunicorn_env(fresh_database, tmp_path, _free_port()), tmp_path, email)
    try:
        running.wait_for_every_worker()
        yield running
    finally:
        running.stop()


def _burst(console: Console, attempts: list[tuple[str, str]]) -> list[requests.Response]:
    """POST a wrong password for every (email, client address) at once; return the answers in order."""
    page = _post_or_get("GET", f"{console.url}/sign-in")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)

    def attempt(pair):
        email, address = pair
        return _post_or_get("POST", f"{console.url}/sign-in", cookies=page.cookies,
                            headers={"X-Forwarded-For": address},
                            data={"csrf_token": token, "email": email, "password": "not the password at all"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(attempt, attempts))


def _statuses(answers: list[requests.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def test_both_sign_in_limits_hold_across_gunicorn_workers_without_redis(console):
    by_address = _burst(console, [(f"guess{n}@customer.example", "198.51.100.7") for n in range(BURST)])
    by_account = _burst(console, [(console.email, f"203.0.113.{n + 1}") for n in range(BURST)])
    assert len(console.pids("POST /sign-in")) > 1, "the attempts all reached one worker; the test proves nothing"
    assert _statuses(by_address) == [401] * PER_ADDRESS + [429] * (BURST - PER_ADDRESS)
    assert _statuses(by_account) == [401] * PER_ACCOUNT + [429] * (BURST - PER_ACCOUNT)
    throttled = [answer for answer in by_address + by_account if answer.status_code == 429]
    assert len({answer.text for answer in throttled}) == 1
    assert "Too many sign-in attempts. Wait a minute, then try again." in throttled[0].text
