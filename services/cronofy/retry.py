"""The one retry/backoff policy of the Cronofy client."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import CronofyError, RateLimitedError, UnavailableError


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``max_attempts=1`` leaves retries to the caller.

    ``sleep`` and ``random`` are injectable so tests (and callers with their own
    clocks) never wait for real.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def backoff(self, attempt: int) -> float:
        """Return the full-jitter delay after the given failed attempt (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return self.random() * ceiling

    def delay_for(self, error: CronofyError, attempt: int, *, may_resend: bool) -> float | None:
        """Return how long to wait before retrying after error, or None to give up.

        ``may_resend`` says whether resending cannot repeat an effect upstream
        (an idempotent request, or one that provably never left this process).
        A 429 is always safe to resend: the upstream refused it unprocessed.
        """
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitedError):
            return self._rate_limited_delay(error, attempt)
        if isinstance(error, UnavailableError) and may_resend:
            return self.backoff(attempt)
        return None

    def _rate_limited_delay(self, error: RateLimitedError, attempt: int) -> float | None:
        if error.retry_after is None:
            return self.backoff(attempt)
        # A wait longer than we would ever sleep is the caller's to schedule.
        return error.retry_after if error.retry_after <= self.max_delay else None
