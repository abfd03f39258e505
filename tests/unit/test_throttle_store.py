"""The database storage of the sign-in throttle: exact counts under concurrency, windows that run out."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from config import build_config
from extensions import db, limiter
from models.rate_limit import RateLimitCounter
from services.platform import throttle_store
from services.platform.throttle_store import DatabaseStorage


def _stored_keys() -> list[str]:
    return sorted(db.session.scalars(select(RateLimitCounter.key)))


def _wait_past(storage: DatabaseStorage, key: str) -> None:
    time.sleep(max(0.0, storage.get_expiry(key) - time.time()) + 0.05)


def test_hits_from_many_threads_are_each_counted_once(app):
    storage = DatabaseStorage()
    seen: list[int] = []
    lock = threading.Lock()

    def hit_many():
        with app.app_context():
            counts = [storage.incr("LIMITER/sign-in/198.51.100.7", 60) for _ in range(15)]
        with lock:
            seen.extend(counts)

    threads = [threading.Thread(target=hit_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(seen) == list(range(1, 121))  # every hit saw its own count: none lost, none doubled
    assert storage.get("LIMITER/sign-in/198.51.100.7") == 120


def test_a_window_counts_until_it_runs_out_then_starts_again(app):
    storage = DatabaseStorage()
    before = time.time()
    assert [storage.incr("k", 1) for _ in range(3)] == [1, 2, 3]
    first_end = storage.get_expiry("k")
    assert before + 1 <= first_end <= time.time() + 1
    assert storage.incr("k", 1, amount=2) == 5
    assert storage.get_expiry("k") == first_end  # later hits do not stretch the window
    _wait_past(storage, "k")
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1
    assert storage.get_expiry("k") > first_end + 30


def test_several_windows_are_counted_in_one_call_each_on_its_own_clock(app):
    storage = DatabaseStorage()
    long_key = "api/" + "x" * 400  # longer than the column: stored as a digest, still counted under its name
    assert storage.incr_many([("second", 1), ("minute", 60), (long_key, 60)]) == [1, 1, 1]
    assert storage.incr_many([("second", 1), ("minute", 60), (long_key, 60)], amount=2) == [3, 3, 3]
    _wait_past(storage, "second")
    # The second's window ran out and starts again; the minute's goes on counting.
    assert storage.incr_many([("second", 1), ("minute", 60)]) == [1, 4]
    assert storage.get(long_key) == 3 and storage.get("minute") == 4


def test_clear_forgets_one_key_and_reset_forgets_all(app):
    storage = DatabaseStorage()
    storage.incr("a", 60)
    storage.incr("b", 60)
    storage.incr("b", 60)
    storage.clear("a")
    assert (storage.get("a"), storage.get("b")) == (0, 2)
    assert storage.reset() == 1
    assert storage.get("b") == 0
    assert _stored_keys() == []


def test_windows_that_ran_out_are_deleted_as_hits_come_in(app, monkeypatch):
    storage = DatabaseStorage()
    storage.incr("short", 1)
    storage.incr("long", 60)
    _wait_past(storage, "short")
    monkeypatch.setattr(throttle_store, "PURGE_SHARE", 1.0)
    storage.incr("new", 60)
    assert _stored_keys() == ["long", "new"]


def test_keys_longer_than_the_column_are_counted_apart(app):
    storage = DatabaseStorage()
    one, other = "LIMITER/account:" + "x" * 500, "LIMITER/account:" + "x" * 499 + "y"
    assert [storage.incr(one, 60), storage.incr(one, 60), storage.incr(other, 60)] == [1, 2, 1]
    assert db.session.scalar(select(func.max(func.length(RateLimitCounter.key)))) <= 255


def test_storage_reports_the_database_health(app):
    assert DatabaseStorage().check() is True


def test_counts_live_in_the_database_unless_redis_is_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert build_config(str(tmp_path), "testing")["RATELIMIT_STORAGE_URI"] == "ecc+db://"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    # Redis, with the database behind it while Redis does not answer.
    assert build_config(str(tmp_path), "testing")["RATELIMIT_STORAGE_URI"] == "ecc+redis://127.0.0.1:6379/0"


@pytest.mark.config(RATELIMIT_STORAGE_URI="ecc+db://", SIGN_IN_RATE_LIMIT="2 per minute")
def test_the_sign_in_throttle_counts_in_the_database(app, client):
    assert isinstance(limiter.storage, DatabaseStorage)
    statuses = [client.post("/sign-in", data={"email": f"x{n}@customer.example", "password": "wrong"}).status_code
                for n in range(3)]
    assert statuses == [401, 401, 429]
    assert db.session.scalar(select(func.count()).select_from(RateLimitCounter)) > 0
