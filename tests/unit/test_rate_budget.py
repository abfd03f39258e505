"""The shared rate budget: moving windows in memory and in the real Redis, shared across workers."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from services.platform.rate_budget import BudgetTimeoutError, RateBudget, effective_limit
from tests.plugins.strict import require

REDIS_URL = "redis://127.0.0.1:6379/15"
# Timestamps are taken just after acquire returns, a hair after the limiter's
# own; this slack keeps scheduling jitter from faking a violation.
SLACK = 0.02


@pytest.fixture
def budget_key() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def redis_url(budget_key):
    """The real Redis (db 15); afterwards delete only this test's keys."""
    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.ConnectionError:
        require(False, f"Redis is not running at {REDIS_URL}")
    yield REDIS_URL
    for key in conn.scan_iter(match=f"*cronofy-budget/{budget_key}*"):
        conn.delete(key)
    conn.close()


@pytest.fixture(params=["memory", "redis"])
def storage_url(request):
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


def _max_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps[i:] if t < start + window - SLACK) for i, start in enumerate(stamps))


def test_effective_limits_are_the_floor_of_the_share_and_at_least_one():
    assert effective_limit(50, 0.8) == 40
    assert effective_limit(500, 0.8) == 400
    assert effective_limit(7, 0.5) == 3
    assert effective_limit(5, 0.01) == 1
    budget = RateBudget()
    assert (budget.per_second, budget.per_minute) == (40, 400)


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match="share"):
        RateBudget(share=share)


def test_acquires_never_exceed_either_window(storage_url, budget_key):
    budget = RateBudget(per_second=5, per_minute=8, share=1, storage_url=storage_url, key=budget_key)
    started = time.monotonic()
    stamps = []
    for _ in range(8):
        budget.acquire(timeout=3)
        stamps.append(time.monotonic())
    assert _max_in_any_window(stamps, 1.0) == 5
    # The per-second window made the sixth wait for the first to age out.
    assert 0.9 <= stamps[5] - started < 1.6
    # The minute window is now full: the ninth must wait about a minute, and says so.
    with pytest.raises(BudgetTimeoutError) as caught:
        budget.acquire(timeout=0.5)
    assert 57 < caught.value.retry_after <= 60
    assert 57 < budget.try_acquire() <= 60


def test_try_acquire_takes_a_slot_or_says_how_long_to_wait(storage_url, budget_key):
    budget = RateBudget(per_second=2, per_minute=10, share=1, storage_url=storage_url, key=budget_key)
    assert budget.try_acquire() == 0.0
    assert budget.try_acquire() == 0.0
    wait = budget.try_acquire()
    assert 0.9 < wait <= 1.0
    assert budget.try_acquire() > 0  # asking again took nothing


def test_cost_counts_several_hits_and_cannot_exceed_a_window(budget_key):
    budget = RateBudget(per_second=5, per_minute=12, share=1, key=budget_key)
    assert budget.try_acquire(cost=4) == 0.0
    assert budget.try_acquire(cost=2) > 0
    assert budget.try_acquire(cost=1) == 0.0
    with pytest.raises(ValueError, match="cost"):
        budget.try_acquire(cost=6)


def test_two_budgets_on_one_redis_share_the_limit(redis_url, budget_key):
    worker_a = RateBudget(per_second=5, per_minute=12, share=1, storage_url=redis_url, key=budget_key)
    worker_b = RateBudget(per_second=5, per_minute=12, share=1, storage_url=redis_url, key=budget_key)
    for _ in range(3):
        worker_a.acquire(timeout=0.1)
    for _ in range(2):
        worker_b.acquire(timeout=0.1)
    assert worker_a.try_acquire() > 0
    assert worker_b.try_acquire() > 0
    other_app = RateBudget(per_second=5, per_minute=12, share=1, storage_url=redis_url, key=f"{budget_key}-other")
    assert other_app.try_acquire() == 0.0


def test_budgets_with_different_shares_still_count_together(redis_url, budget_key):
    # During a rolling config change workers may disagree on the share; the count stays one.
    generous = RateBudget(per_second=10, per_minute=100, share=1, storage_url=redis_url, key=budget_key)
    strict = RateBudget(per_second=10, per_minute=100, share=0.3, storage_url=redis_url, key=budget_key)
    for _ in range(3):
        generous.acquire(timeout=0.1)
    assert strict.try_acquire() > 0


def test_concurrent_workers_on_redis_stay_within_the_windows(redis_url, budget_key):
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        budget = RateBudget(per_second=4, per_minute=7, share=1, storage_url=redis_url, key=budget_key)
        for _ in range(2):
            budget.acquire(timeout=3)
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(stamps) == 6
    assert _max_in_any_window(stamps, 1.0) == 4


def test_hook_spends_the_budget_before_each_request(budget_key):
    budget = RateBudget(per_second=3, per_minute=10, share=1, key=budget_key)
    hook = budget.as_hook(timeout=0.1)
    for _ in range(3):
        hook()
    with pytest.raises(BudgetTimeoutError):
        hook()


def test_waiting_threads_of_one_process_take_turns_instead_of_polling_the_store(redis_url, budget_key):
    # A full window makes callers wait; if each waiting thread asked Redis again whenever a slot freed,
    # a busy worker would hammer Redis (each look at a window is a script over its list).
    budget = RateBudget(per_second=4, per_minute=1000, share=1, storage_url=redis_url, key=budget_key)
    calls = {"n": 0}
    for name in ("test", "hit", "get_window_stats"):
        real = getattr(budget._limiter, name)

        def counted(*args, _real=real, **kwargs):
            calls["n"] += 1
            return _real(*args, **kwargs)

        setattr(budget._limiter, name, counted)
    threads = [threading.Thread(target=budget.acquire, kwargs={"timeout": 10}) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    # Taking turns: 16 successful tries ask 4 times each (test and hit, both windows) and the 12 that
    # waited were refused about once (3 asks): about 100. Sixteen threads polling on their own ask over 150.
    assert calls["n"] <= 120
