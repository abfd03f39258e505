"""When a failed webhook is tried again: the Standard Webhooks schedule, jittered, and the receiver's Retry-After.

After the first attempt (immediately) a delivery is retried 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
20 h and 24 h after each failure, about three days in all; after the tenth failure it has failed for
good (a person can redeliver it). Each delay is spread by ±JITTER so that deliveries which failed
together (an endpoint that was down) do not all come back in the same second. A receiver that answers
429 or 503 with `Retry-After` (seconds or an HTTP date) is not tried before it asks, but a Retry-After
longer than the schedule's longest step is capped there, so a mistaken header cannot park a delivery
for a year.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

SCHEDULE = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=5),
    timedelta(hours=10), timedelta(hours=14), timedelta(hours=20), timedelta(hours=24),
)
# The first attempt plus one per step of the schedule.
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.1
RETRY_AFTER_CAP = SCHEDULE[-1]
RETRY_AFTER_STATUSES = frozenset({429, 503})


def delay_after(failures: int, *, rng: Callable[[], float]) -> timedelta | None:
    """Return how long to wait after the `failures`-th failed attempt, or None when no attempt is left.

    rng returns a number in [0, 1) (random.random); the delay is the schedule's step times 1 ± JITTER.
    """
    if failures < 1:
        return timedelta(0)
    if failures > len(SCHEDULE):
        return None
    return SCHEDULE[failures - 1] * (1 - JITTER + 2 * JITTER * rng())


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Return the wait a `Retry-After` header asks for (seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = max(when - now, timedelta(0))
    return min(wait, RETRY_AFTER_CAP)


def next_attempt(failures: int, status: int | None, headers: dict[str, str], now: datetime, *,
                 rng: Callable[[], float]) -> datetime | None:
    """Return when to try again after a failed attempt (the later of the schedule and Retry-After), or None."""
    delay = delay_after(failures, rng=rng)
    if delay is None:
        return None
    if status in RETRY_AFTER_STATUSES:
        asked = retry_after(headers.get("retry-after"), now)
        if asked is not None:
            delay = max(delay, asked)
    return now + delay
