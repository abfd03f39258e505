"""Outages, in process: a database or a Redis that stops answering, and what people and probes then see.

The database tests run the console on a PostgreSQL server of their own (tests/private_services.py),
stopped as a crash would stop it; the Redis tests on a Redis server of their own, killed the same way.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import contextmanager

import pytest
import redis
from cryptography.fernet import Fernet
from sqlalchemy import event, func, select, text

from app import create_app
from extensions import db
from jobs.queue import WaitingRedisStorage
from models.rate_limit import RateLimitCounter
from services.platform import readiness, throttle_store
from tests import factories
from tests.factories import DEFAULT_PASSWORD
from tests.private_services import PrivatePostgres, PrivateRedis, free_port, running_postgres

UNAVAILABLE = ("The console cannot reach its database just now. Nothing you saved was lost; this page will work "
               "again by itself once the database is back — try again in a minute.")


# The database ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL server of this module's own, holding a migrated database; yield (server, url)."""
    with running_postgres() as server:
        url = server.create_database("console")
        app = _console(server, url)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.engine.dispose()
        yield server, url


def _console(server: PrivatePostgres, url: str):
    return create_app({
        "APP_ENV": "testing", "TESTING": True, "SERVER_NAME": None, "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": secrets.token_urlsafe(32), "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "REDIS_URL": None, "RATELIMIT_STORAGE_URI": "ecc+db://", "RATELIMIT_KEY_PREFIX": secrets.token_hex(6),
        "QUEUE_PATH": str(server.folder / "queue.sqlite"), "WTF_CSRF_ENABLED": False,
    })


@pytest.fixture
def console(private_postgres):
    """The console on the private server, with no app context held between requests (as under gunicorn)."""
    app = _console(*private_postgres)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def signed_in(console):
    """A test client signed in as an organization admin through the form; yield (client, organization id)."""
    with console.app_context():
        admin = factories.make_org_admin()
        email, organization_id = admin.email, admin.organization_id
    client = console.test_client()
    assert client.post("/sign-in", data={"email": email, "password": DEFAULT_PASSWORD}).status_code == 302
    assert client.get(f"/orgs/{organization_id}").status_code == 200
    return client, organization_id


@contextmanager
def database_down(private_postgres):
    """Stop the database as a crash would for the block, then start it again."""
    server, _ = private_postgres
    server.stop("immediate")
    try:
        yield
    finally:
        server.start()


@contextmanager
def connection_attempts(app):
    """Count, in a list of one number, how often the app tries to connect to its database during the block."""
    counted = [0]

    def count(*_args):
        counted[0] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "do_connect", count)
    try:
        yield counted
    finally:
        event.remove(engine, "do_connect", count)


def _is_unavailable_page(response) -> bool:
    page = response.get_data(as_text=True)
    return (response.status_code == 503 and response.mimetype == "text/html" and UNAVAILABLE in page
            and "navbar" in page and "Enterprise Connect Console" in page and response.headers["Retry-After"] == "60")


def test_a_signed_in_page_is_a_503_page_while_the_database_is_down_and_the_session_survives(
        console, signed_in, private_postgres):
    client, organization_id = signed_in
    with database_down(private_postgres), connection_attempts(console) as attempts:
        response = client.get(f"/orgs/{organization_id}")
        assert _is_unavailable_page(response), response.get_data(as_text=True)[:500]
        assert attempts == [1]  # the session's one read; the page itself reads nothing
        assert "Sign out" not in response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers  # the person is not signed out
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get(f"/orgs/{organization_id}").status_code == 200


def test_probes_answer_alike_whatever_cookie_they_carry(console, signed_in, private_postgres):
    client, _ = signed_in
    anonymous = console.test_client()
    with database_down(private_postgres):
        for browser in (client, anonymous):
            response = browser.get("/readyz")
            assert response.status_code == 503
            assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
            assert browser.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok"}


def test_signing_in_while_the_database_is_down_says_it_is_unavailable(console, signed_in, private_postgres):
    client, _ = signed_in
    with console.app_context():
        email = factories.make_org_admin().email
    newcomer = console.test_client()
    with database_down(private_postgres), connection_attempts(console) as attempts:
        assert _is_unavailable_page(newcomer.post("/sign-in", data={"email": email, "password": DEFAULT_PASSWORD}))
        assert attempts == [1]  # the throttle's count
        assert _is_unavailable_page(client.get("/sign-in"))
    assert newcomer.post("/sign-in", data={"email": email, "password": DEFAULT_PASSWORD}).status_code == 302


def test_a_callback_while_the_database_is_down_gets_a_503_so_that_cronofy_sends_it_again(console, private_postgres):
    sender = console.test_client()
    with database_down(private_postgres):
        response = sender.post(f"/callbacks/delegated/{secrets.token_urlsafe(24)}", json={"code": "x", "state": "y"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert response.get_json() == {"error": "database_unavailable", "message": UNAVAILABLE}


def test_a_connection_lost_with_its_transaction_open_does_not_fail_the_answer(private_postgres, caplog):
    """Closing the session rolls back on the dead connection, after the view: that must not replace its answer."""
    server, url = private_postgres
    app = _console(server, url)

    def read_then_lose_the_database():
        db.session.execute(text("SELECT 1"))
        server.stop("immediate")
        return "done"

    app.add_url_rule("/read-then-lose-the-database", view_func=read_then_lose_the_database)
    try:
        response = app.test_client().get("/read-then-lose-the-database")
    finally:
        server.start()
        with app.app_context():
            db.engine.dispose()
    assert (response.status_code, response.get_data(as_text=True)) == (200, "done")
    assert "the database session closed with an error" in caplog.text


# Redis ----------------------------------------------------------------------------------------------------



@pytest.fixture
def app_config(app_config, private_redis, monkeypatch):
    """The usual test app, with REDIS_URL at this test's own Redis (config.py derives the throttle's storage)."""
    monkeypatch.setenv("REDIS_URL", private_redis.url())
    return {**app_config, "REDIS_URL": private_redis.url()}


def _attempt(client, n: int, address: str = "198.51.100.7") -> int:
    return client.post("/sign-in", data={"email": f"guess{n}@customer.example", "password": "wrong"},
                       environ_base={"REMOTE_ADDR": address}).status_code


def _redis_counts(server: PrivateRedis) -> int:
    with redis.Redis.from_url(server.url()) as conn:
        return len(conn.keys("LIMITS*"))


def _logged(caplog, logger: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger]


@pytest.mark.config(SIGN_IN_RATE_LIMIT="3 per minute", SIGN_IN_ACCOUNT_RATE_LIMIT="100 per minute")
def test_sign_in_counts_in_the_database_while_redis_is_down_under_the_same_limit(
        app, client, private_redis, caplog, monkeypatch):
    monkeypatch.setattr(throttle_store, "REDIS_RETRY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, logger="services.platform.throttle_store")
    assert _attempt(client, 1) == 401 and _redis_counts(private_redis) > 0
    private_redis.stop()
    assert [_attempt(client, n) for n in range(2, 6)] == [401, 401, 401, 429]
    assert db.session.scalar(select(func.count()).select_from(RateLimitCounter)) > 0
    private_redis.start()
    assert _attempt(client, 6) == 429  # what the database counted during the outage still counts
    assert _attempt(client, 7, address="203.0.113.9") == 401 and _redis_counts(private_redis) > 0
    where = private_redis.url()
    assert _logged(caplog, "services.platform.throttle_store") == [
        f"sign-in throttle: Redis at {where} does not answer (connection refused); counting in the database until "
        "it does",
        f"sign-in throttle: Redis at {where} answers again; counting there",
    ]


def test_readyz_names_redis_and_the_queue_while_redis_is_down(app, client, private_redis, caplog):
    caplog.set_level(logging.INFO, logger="services.platform.readiness")
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok", "redis": "ok", "queue": "ok"}
    private_redis.stop()
    for _ in range(3):
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json() == {"status": "unavailable", "database": "ok", "redis": "unreachable",
                                       "queue": "unreachable"}
    private_redis.start()
    assert client.get("/readyz").status_code == 200
    where = private_redis.url()
    assert _logged(caplog, "services.platform.readiness") == [
        f"readiness: Redis at {where} does not answer (connection refused)",
        f"readiness: Redis at {where} answers again",
    ]


def test_a_password_in_the_redis_url_never_reaches_a_log(app, caplog):
    password = secrets.token_urlsafe(12)
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.INFO)
    throttle = throttle_store.RedisOrDatabaseStorage("ecc+" + url)
    assert throttle.incr("LIMITER/sign-in/198.51.100.7", 60) == 1  # counted in the database instead
    queue = WaitingRedisStorage("ecc-test-masking", url)
    assert queue.dequeue() is None and queue.blocking is False
    assert readiness.redis_state(url) == "unreachable"
    assert password not in caplog.text
    assert caplog.text.count(f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}") == 3, caplog.text


def test_several_api_windows_count_in_one_redis_call_and_in_the_database_while_redis_is_down(
        app, private_redis, monkeypatch):
    monkeypatch.setattr(throttle_store, "REDIS_RETRY_SECONDS", 0.0)
    storage = throttle_store.RedisOrDatabaseStorage("ecc+" + private_redis.url())
    windows = [("api/k/second", 1), ("api/k/minute", 60)]
    assert storage.incr_many(windows) == [1, 1]
    assert storage.incr_many(windows, amount=2) == [3, 3]
    with redis.Redis.from_url(private_redis.url()) as conn:
        assert 0 < conn.ttl(storage.redis.prefixed_key("api/k/minute")) <= 60  # the first hit set the window
    private_redis.stop()
    assert storage.incr_many(windows) == [1, 1]  # counted in the database meanwhile
    private_redis.start()  # an empty Redis (no persistence): its three hits before the outage are gone
    # Back in Redis, the database's count of the outage is added until its window runs out, so the outage
    # gives the key no fresh allowance.
    assert storage.incr_many(windows)[1] == 2
    assert storage.get("api/k/minute") == 2
