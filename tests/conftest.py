"""Shared fixtures: app, client, runner, login_as, factories, a live server and a browser."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import g, request_started
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

pytest_plugins = [
    "tests.plugins.strict",
    "tests.plugins.network_guard",
    "tests.plugins.browser",
    "tests.plugins.sandbox_server",
    "tests.plugins.smtp_server",
]

from app import create_app  # noqa: E402
from extensions import db, limiter  # noqa: E402
from tests import factories  # noqa: E402
from tests.helpers import put_signed_in  # noqa: E402

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
_TEST_QUEUE_DIR = Path(tempfile.mkdtemp(prefix="ecc-test-queue-"))
atexit.register(shutil.rmtree, _TEST_QUEUE_DIR, ignore_errors=True)
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgresql", "postgres:"))


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests (row locks, concurrency) run in the PostgreSQL pass of the suite."""
    if ON_POSTGRES:
        return
    keep, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres_only") else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A migrated, empty database for this test session: PostgreSQL if TEST_DATABASE_URL says so."""
    if ON_POSTGRES:
        from config import _normalise_database_url

        url = _normalise_database_url(TEST_DATABASE_URL)
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'console.sqlite'}"
    app = create_app(_base_config(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def _base_config(url: str) -> dict:
    return {
        # Tasks enqueued by tests go to a queue of their own, never to the developer's instance folder.
        "QUEUE_PATH": str(_TEST_QUEUE_DIR / "queue.sqlite"),
        "QUEUE_NAME": "ecc-test-" + secrets.token_hex(6),
        # Email goes to an outbox folder of the test run's own, never over SMTP unless a test says so.
        "MAIL_SERVER": None,
        "MAIL_FILE_PATH": str(_TEST_QUEUE_DIR / "outbox"),
        "APP_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + secrets.token_hex(8),
        "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_KEY_PREFIX": "ecc-test-" + secrets.token_hex(6),
        "SERVER_NAME": None,
        # The plain `client` posts forms without tokens; `csrf_client` and `live_server` enforce CSRF.
        "WTF_CSRF_ENABLED": False,
    }


def _empty_tables() -> None:
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def app_config(request, database_url) -> dict:
    """The app's settings; a test overrides them with @pytest.mark.config(KEY=value)."""
    config = _base_config(database_url)
    for marker in reversed(list(request.node.iter_markers("config"))):
        config.update(marker.kwargs)
    return config


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    """Hash test passwords with small argon2 costs: the same code path, a fraction of the time."""
    from argon2 import PasswordHasher

    from services.accounts import accounts

    real = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("not-a-real-password-but-the-same-cost")
    yield
    accounts._hasher, accounts._DUMMY_HASH = real


def _fresh_request_globals(sender, **extra) -> None:
    """Give each test request an empty `g`, as production's per-request app context does.

    The `app` fixture keeps one app context for the whole test; without this, `g` (where Flask-Login
    caches the current user) would outlive a request and could hide a session that was signed out.
    """
    for key in list(g):
        g.pop(key)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    request_started.connect(_fresh_request_globals, app)
    with app.app_context():
        # Flask-Limiter keeps its first key prefix on the global limiter: with Redis every test
        # would share the sign-in counters, so each test starts from empty storage.
        limiter.reset()
        yield app
        _empty_tables()
        _drop_test_queue(app)
        db.session.remove()
        db.engine.dispose()


def _drop_test_queue(app) -> None:
    """Remove this test's Redis queue keys, if tasks were enqueued into one."""
    from jobs import queue

    if app.config.get("REDIS_URL") and queue._bound == queue._storage_key(app.config):
        queue.huey.storage.flush_all()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def login_as(client):
    """Sign a user in on the test client without going through the form."""

    def _login(user):
        with client.session_transaction() as session:
            put_signed_in(session, user)
        return user

    return _login


@pytest.fixture
def csrf_client(app_config, app):
    """A client of an app with CSRF protection on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app.test_client()


@pytest.fixture
def make_organization(app):
    return factories.make_organization


@pytest.fixture
def make_user(app):
    return factories.make_user


@pytest.fixture
def make_org_admin(app):
    return factories.make_org_admin


@pytest.fixture
def make_support_user(app):
    return factories.make_support_user


@pytest.fixture
def make_invitation(app):
    return factories.make_invitation


@pytest.fixture
def use_sandbox(app, sandbox):
    """Point the console at the test session's sandbox (real HTTP on loopback) and return the sandbox."""
    app.config.update(
        SANDBOX_MODE=True,
        SANDBOX_URL=sandbox.url,
        CRONOFY_CLIENT_ID=sandbox.client_id,
        CRONOFY_CLIENT_SECRET=sandbox.client_secret,
    )
    return sandbox


class LiveServer:
    """The app served over real HTTP on a loopback port, in a thread."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    app.config["WTF_CSRF_ENABLED"] = True
    server = LiveServer(app).start()
    app.config["PUBLIC_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of the test's own on a free loopback port, which the test may stop and start."""
    from tests.private_services import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture
def private_redis():
    """A Redis server of the test's own on a free loopback port, which the test may kill and start."""
    from tests.private_services import running_redis

    with running_redis() as server:
        yield server
