"""The console under the real gunicorn (`gunicorn wsgi:app -c gunicorn.conf.py`) on a free loopback port.

For what only the real server shows: several workers sharing state, its own error page for an error
that escapes the app, its logs. `served_env` builds the environment (development settings with every
secret and file given, so nothing lands in the repository's instance/), `prepare_database` migrates a
database and seeds it with the same keys, `Gunicorn` starts, waits for and stops the server, and
`fresh_request` sends one request over a new connection.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.private_services import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"
# Settings of the test run itself (its Redis, database, limits, server options) stay out of the served console.
_NOT_PASSED_ON = ("REDIS_", "DATABASE_", "CRONOFY_", "SANDBOX_", "SIGN_IN_", "GUNICORN_", "QUEUE_", "TEST_DATABASE_URL")


def served_env(folder: Path, **settings) -> dict:
    """Return the environment of a console whose files live in folder; settings (e.g. DATABASE_URL) come on top."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_NOT_PASSED_ON)}
    env.update({
        "APP_ENV": "development", "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "QUEUE_PATH": str(folder / "queue.sqlite"),
        "QUEUE_NAME": f"ecc-test-{secrets.token_hex(4)}", "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
    })
    env.update({key: str(value) for key, value in settings.items()})
    return env


def prepare_database(env: dict, seed=None):
    """Migrate env's DATABASE_URL and run seed() in an app with env's keys; return what seed returned."""
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db

    app = create_app({
        "APP_ENV": "testing", "TESTING": True, "SERVER_NAME": None, "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
        "SECRET_KEY": env["SECRET_KEY"], "TOKEN_ENCRYPTION_KEYS": env["TOKEN_ENCRYPTION_KEYS"].split(","),
        "QUEUE_PATH": env["QUEUE_PATH"], "QUEUE_NAME": env["QUEUE_NAME"],
        **({"PUBLIC_BASE_URL": env["PUBLIC_BASE_URL"]} if "PUBLIC_BASE_URL" in env else {}),
    })
    with app.app_context():
        upgrade()
        seeded = seed() if seed is not None else None
        db.session.remove()
        db.engine.dispose()
    return seeded


def fresh_request(method: str, url: str, **kwargs) -> requests.Response:
    """Send one request over a new connection (Connection: close), never through a proxy, following no redirect."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    with requests.Session() as http:
        http.trust_env = False
        return http.request(method, url, headers=headers, allow_redirects=False, timeout=kwargs.pop("timeout", 60),
                            **kwargs)


class Gunicorn:
    """The console served by gunicorn with env; its output goes to folder/gunicorn.log."""

    def __init__(self, env: dict, folder: Path, *options: str) -> None:
        self.url = f"http://{env['GUNICORN_BIND']}"
        self.log = folder / "gunicorn.log"
        command = [str(GUNICORN), "wsgi:app", "-c", "gunicorn.conf.py", "--no-control-socket", *options]
        with open(self.log, "ab") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def output(self) -> str:
        """Return everything gunicorn and the app wrote so far."""
        return self.log.read_text(errors="replace")

    def wait_until_answering(self, timeout: float = 60) -> Gunicorn:
        """Wait until /healthz answers; fail (and stop the server) if it exits or does not answer in time."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.output()}"
            try:
                fresh_request("GET", f"{self.url}/healthz", timeout=1)
                return self
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"gunicorn did not answer within {timeout} s:\n{self.output()}")
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL after 30 s)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
