"""The shared rate budget in front of every budgeted Cronofy call (no Flask).

Cronofy limits each application to 50 requests/second and 500 requests/minute,
counted over every customer org and every worker (§5 of docs/cronofy-api.md). A
``RateBudget`` takes a configurable share of both limits and makes every caller,
in every process, wait its turn: Redis holds the shared count when a
``redis://`` URL is given; otherwise the count lives in this process, which is
right only when a single worker makes budgeted calls.

Why the moving window. The ``limits`` library offers three strategies:

- fixed window counts per calendar second/minute and resets at the boundary, so
  a full window just before the boundary plus a full one just after lets through
  twice the limit within one real second or minute: a 429 storm at exactly the
  moment a bulk run is busiest;
- the sliding-window counter approximates the previous window by weighting its
  count, which can under-count a burst near the boundary;
- the moving window records a timestamp per hit and admits a hit only when fewer
  than ``limit`` hits fall within the last ``window`` seconds. That is the
  exact sliding count the upstream enforces, so no interval of one second or one
  minute ever holds more than the budget. It costs one list entry per hit (at
  most 500 for the minute window), which is cheap.

Hits are recorded with each process's own wall clock, so machines sharing Redis
must keep their clocks in sync (NTP); the share left as headroom also absorbs
small skews.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable

from flask import current_app

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

# The shortest nap between two looks at a full window, so a waiter never spins.
MIN_WAIT = 0.005


class BudgetTimeoutError(TimeoutError):
    """The budget could not be acquired within the caller's timeout."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Rate budget exhausted; next slot in {retry_after:.2f} s")
        self.retry_after = retry_after


class _SharedSecond(RateLimitItemPerSecond):
    # limits puts the amount in the storage key; leave it out so budgets with
    # different shares (say, during a rolling config change) still share one count.
    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join(["cronofy-budget", *map(str, identifiers), "second"])


class _SharedMinute(RateLimitItemPerMinute):
    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        return "/".join(["cronofy-budget", *map(str, identifiers), "minute"])


def effective_limit(limit: int, share: float) -> int:
    """Return floor(limit × share), never below 1."""
    return max(1, math.floor(limit * share))


class RateBudget:
    """A per-second and per-minute moving-window budget shared by every worker."""

    def __init__(
        self,
        per_second: int = 50,
        per_minute: int = 500,
        share: float = 0.8,
        storage_url: str | None = None,
        key: str = "cronofy",
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("RateBudget share must be in (0, 1]")
        if per_second < 1 or per_minute < 1:
            raise ValueError("RateBudget limits must be positive")
        self.key = key
        self.per_second = effective_limit(per_second, share)
        self.per_minute = effective_limit(per_minute, share)
        self._windows: tuple[RateLimitItem, ...] = (
            _SharedSecond(self.per_second),
            _SharedMinute(self.per_minute),
        )
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url or "memory://"))
        self._turn = threading.Lock()

    def __repr__(self) -> str:
        return f"RateBudget(per_second={self.per_second}, per_minute={self.per_minute}, key={self.key!r})"

    def try_acquire(self, cost: int = 1) -> float:
        """Take cost from both windows and return 0, or return the seconds to wait first.

        :raises ValueError: when cost can never fit in a window.
        """
        largest = min(self.per_second, self.per_minute)
        if not 1 <= cost <= largest:
            raise ValueError(f"cost must be between 1 and {largest}, got {cost}")
        # Report the longest wait among full windows, so a caller sleeps once.
        waits = [self._wait(w, cost) for w in self._windows if not self._limiter.test(w, self.key, cost=cost)]
        if waits:
            return max(waits)
        # The short window goes first: if the long one then refuses (another
        # worker won the race), the wasted hit only blocks one second, and
        # over-counting never lets more requests through.
        for window in self._windows:
            if not self._limiter.hit(window, self.key, cost=cost):
                return self._wait(window, cost)
        return 0.0

    def acquire(self, cost: int = 1, *, timeout: float | None = None) -> None:
        """Block until both windows admit cost hits, then take them.

        Within a process one caller at a time asks the shared store; the others wait their turn here.
        Otherwise every waiting thread would wake at the same instant a slot frees, one would win and
        the rest would ask again, so a busy worker's threads would poll Redis hundreds of times a second.

        :raises BudgetTimeoutError: when the wait would outlast timeout seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._turn.acquire(timeout=-1 if deadline is None else max(0.0, timeout)):
            raise BudgetTimeoutError(MIN_WAIT)
        try:
            while wait := self.try_acquire(cost):
                if deadline is not None and time.monotonic() + wait > deadline:
                    raise BudgetTimeoutError(wait)
                time.sleep(wait)
        finally:
            self._turn.release()

    def as_hook(self, *, cost: int = 1, timeout: float | None = None) -> Callable[[], None]:
        """Return a callable for ``CronofyClient(before_request=...)``."""
        return functools.partial(self.acquire, cost, timeout=timeout)

    def _wait(self, window: RateLimitItem, cost: int) -> float:
        # Moving window: reset_time is when the oldest hit leaves the window,
        # the earliest moment a slot frees (with cost > 1, the loop looks again).
        stats = self._limiter.get_window_stats(window, self.key)
        if stats.remaining >= cost:
            return MIN_WAIT
        return max(MIN_WAIT, stats.reset_time - time.time())


# How long a budgeted call waits for a slot before giving its work back to the queue.
BUDGET_WAIT = 5.0
_budgets: dict[tuple, RateBudget] = {}
_budgets_lock = threading.Lock()


def budget() -> RateBudget:
    """Return this process's handle on the shared rate budget (Redis-backed when REDIS_URL is set)."""
    config = current_app.config
    key = (config["RATE_LIMIT_PER_SECOND"], config["RATE_LIMIT_PER_MINUTE"], config["RATE_BUDGET_SHARE"],
           config.get("REDIS_URL"), budget_key())
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = RateBudget(key[0], key[1], key[2], storage_url=key[3], key=key[4])
        return _budgets[key]


def budget_key() -> str:
    """Return the budget's key: the application (client id), within this deployment's queue namespace."""
    config = current_app.config
    return f"{config.get('QUEUE_NAME', 'ecc')}:{config['CRONOFY_CLIENT_ID']}"
