"""The sign-in throttle holds across real gunicorn workers without Redis: every worker shares one count.

A penetration test found each worker counting on its own (80 wrong passwords in 9 s got 50 answers).
This starts the console under gunicorn with four workers and no REDIS_URL, on a fresh database, sends
bursts of wrong passwords over new connections (so that they land on several workers) and counts the
answers that got past the throttle.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests import factories
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.gunicorn_server import Gunicorn, fresh_request, prepare_database, served_env
from tests.helpers import scratch_postgres_database

WORKERS = 4
PER_ADDRESS, PER_ACCOUNT = 10, 5
BURST = 30


@pytest.fixture(params=["sqlite", "postgresql"] if ON_POSTGRES else ["sqlite"])
def fresh_database(request, tmp_path):
    """An empty database of its own: a SQLite file, or (in the PostgreSQL pass) a new database on that server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'console.sqlite'}"
        return
    with scratch_postgres_database(TEST_DATABASE_URL, "ecc_throttle") as url:
        yield url


def _gunicorn_env(database_url: str, folder: Path) -> dict:
    return served_env(
        folder, DATABASE_URL=database_url, TRUSTED_PROXY_COUNT=1, SIGN_IN_RATE_LIMIT=f"{PER_ADDRESS} per minute",
        SIGN_IN_ACCOUNT_RATE_LIMIT=f"{PER_ACCOUNT} per minute", GUNICORN_WORKERS=WORKERS, GUNICORN_THREADS=4,
        GUNICORN_ACCESSLOG=folder / "access.log",
    )


class Console(Gunicorn):
    """The console under gunicorn; `pids(request)` tells which workers answered, say, "POST /sign-in"."""

    def __init__(self, env: dict, folder: Path, email: str):
        # The pid in the access log shows which worker answered.
        super().__init__(env, folder, "--access-logformat", "%(p)s %(m)s %(U)s %(s)s")
        self.email = email  # a support user's, whose password the attempts get wrong
        self.access_log = folder / "access.log"

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
                fresh_request("GET", f"{self.url}/healthz")
            except requests.ConnectionError:
                time.sleep(0.2)


@pytest.fixture
def console(fresh_database, tmp_path):
    env = _gunicorn_env(fresh_database, tmp_path)
    email = prepare_database(env, lambda: factories.make_support_user().email)
    running = Console(env, tmp_path, email)
    try:
        running.wait_for_every_worker()
        yield running
    finally:
        running.stop()


def _burst(console: Console, attempts: list[tuple[str, str]]) -> list[requests.Response]:
    """POST a wrong password for every (email, client address) at once; return the answers in order."""
    page = fresh_request("GET", f"{console.url}/sign-in")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)

    def attempt(pair):
        email, address = pair
        return fresh_request("POST", f"{console.url}/sign-in", cookies=page.cookies,
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
