"""Setting up the bulk-authorization benchmark: its processes, a fresh database, the seeded organization.

Used by benchmarks/bulk_authorize.py and benchmarks/crash_matrix.py; see their docstrings.
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
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DOMAIN = "acme.example"
PASSWORD = "benchmark passphrase, long enough"
CONSOLE_COMMAND = [str(BIN / "gunicorn"), "wsgi:app", "-c", "gunicorn.conf.py"]
WORKER_COMMAND = [str(BIN / "flask"), "worker"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



# Processes --------------------------------------------------------------------------------------------------


class Processes:
    """Every child process the benchmark starts; `stop_all` ends them (TERM, then KILL) in reverse order."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        output = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.children.append((name, process))
        return process

    def stop_all(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def kill(self, name: str) -> None:
        """SIGKILL the named process with its process group, as a crash would, and forget it."""
        for entry in [child for child in self.children if child[0] == name]:
            process = entry[1]
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # the whole group is gone already
                pass
            process.wait(10)
            self.children.remove(entry)

    def check_alive(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.folder / (name + '.log')}")


def wait_http(url: str, processes: Processes, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def sandbox_env(args, folder: Path) -> dict:
    # Enough users that about 85% of them (the healthy ones, see sandbox/directory.py) cover N.
    users = int(args.mailboxes / 0.8) + 100
    return {**os.environ, "SANDBOX_DATABASE_URL": f"sqlite:///{folder / 'sandbox.sqlite'}",
            "SANDBOX_RATE_PER_SECOND": str(args.per_second), "SANDBOX_RATE_PER_MINUTE": str(args.per_minute),
            "SANDBOX_CALLBACK_DELAY": args.callback_delay, "SANDBOX_SEED_USERS": str(users),
            "SANDBOX_DELIVERY_POLL": "0.05", "SANDBOX_DELIVERY_CONCURRENCY": "8",
            "SANDBOX_EVENT_LOG_MAX": str(args.mailboxes * 12 + 10_000), "SANDBOX_SETTINGS_CACHE_SECONDS": "1"}


def console_env(args, folder: Path, database_url: str, sandbox_url: str, console_url: str) -> dict:
    env = {**os.environ, "APP_ENV": "development", "FLASK_APP": "app", "DATABASE_URL": database_url,
           "SECRET_KEY": secrets.token_urlsafe(32), "TOKEN_ENCRYPTION_KEYS": _fernet_key(),
           "SANDBOX_URL": sandbox_url, "PUBLIC_BASE_URL": console_url,
           "CRONOFY_RATE_LIMIT_PER_SECOND": str(args.per_second),
           "CRONOFY_RATE_LIMIT_PER_MINUTE": str(args.per_minute), "CRONOFY_RATE_BUDGET_SHARE": str(args.share),
           "QUEUE_PATH": str(folder / "queue.sqlite"), "QUEUE_NAME": f"bench-{secrets.token_hex(4)}",
           "WORKER_THREADS": str(args.worker_threads), "RECOVER_INTERVAL_SECONDS": "5",
           "SIGN_IN_RATE_LIMIT": "100 per minute", "GUNICORN_ACCESSLOG": "/dev/null",
           "GUNICORN_BIND": urlsplit(console_url).netloc, "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "16"}
    for name in ("CRONOFY_CLIENT_ID", "CRONOFY_CLIENT_SECRET", "REDIS_URL"):
        env.pop(name, None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    return env


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@contextmanager
def fresh_database(args, folder: Path):
    """Yield the URL of an empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if not args.postgres:
        yield f"sqlite:///{folder / 'console.sqlite'}"
        return
    from sqlalchemy import create_engine, text

    name = f"ecc_bulk_bench_{secrets.token_hex(4)}"
    parts = urlsplit(args.postgres)
    server = create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


# Seeding ----------------------------------------------------------------------------------------------------


def healthy_emails(sandbox_url: str, count: int) -> list[str]:
    """Return `count` addresses of users of the sandbox directory that authorize normally."""
    emails, offset = [], 0
    while len(emails) < count:
        page = requests.get(f"{sandbox_url}/sandbox/admin/directory.json", timeout=30, params={
            "domain": DOMAIN, "kind": "user", "trait": "none", "limit": 1000, "offset": offset}).json()["members"]
        if not page:
            raise RuntimeError(f"the sandbox directory has only {len(emails)} healthy users, {count} needed")
        emails += [member["email"] for member in page]
        offset += len(page)
    return emails[:count]


def seed(env: dict, sandbox_url: str, emails: list[str]) -> tuple[int, str]:
    """Create the organization, its admin, its connection and mailboxes; return (org id, admin email)."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert

    from app import create_app
    from extensions import db
    from models.base import utcnow
    from models.mailbox import Mailbox
    from models.user import ROLE_ORG_ADMIN, User
    from services.accounts import accounts, organizations

    app = create_app()
    with app.app_context():
        organization = organizations.create_organization("Benchmark Organization")
        admin = User(email="bench.admin@acme.example", name="Bench Admin", role=ROLE_ORG_ADMIN,
                     organization=organization, password_hash=accounts.hash_password(PASSWORD))
        db.session.add(admin)
        db.session.commit()
        _connect(organization, sandbox_url, env["PUBLIC_BASE_URL"])
        now = utcnow()
        rows = [{"organization_id": organization.id, "email": email, "name": email.split("@")[0], "kind": "user",
                 "source": "import", "status": "new", "status_changed_at": now, "created_at": now,
                 "updated_at": now} for email in emails]
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(Mailbox), rows[start:start + 5000])
        db.session.commit()
        result = organization.id, admin.email
        db.engine.dispose()
    return result


def _connect(organization, sandbox_url: str, console_url: str) -> None:
    """Approve the sandbox's consent page as the domain admin, then record the connection."""
    from extensions import db
    from services.connections import connections
    from services.platform import upstream

    redirect_uri = f"{console_url}/connect/callback"
    scope = "service_account/accounts/manage service_account/resources/manage"
    delegated = "read_account list_calendars read_events create_event delete_event read_free_busy"
    params = {"response_type": "code", "client_id": "ecc-sandbox-client", "redirect_uri": redirect_uri,
              "scope": scope, "delegated_scope": delegated, "state": "bench"}
    answer = requests.post(f"{sandbox_url}/enterprise_connect/oauth/authorize", allow_redirects=False, timeout=30,
                           data={**params, "domain": DOMAIN, "provider": "", "decision": "approve"})
    code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"]).group(1)
    client = upstream.client_for(organization.data_center)
    tokens = client.exchange_code(code, redirect_uri)
    connections.record_connection(organization=organization, tokens=tokens, info=client.userinfo(tokens.access_token),
                                  provider="google", data_center=organization.data_center, requested_scope=scope,
                                  requested_delegated_scope=delegated, actor=None)
    db.session.commit()
