"""Per-client rate limits (50 requests/s and 500/min by default, §5), in fixed or sliding windows.

Counters live in the process: run one gunicorn worker with several threads so that every
request of a client is counted by the same limiter.
"""

import threading
import time
from collections import deque


class RateLimiter:
    """Count every request of each client and tell when one goes over a window's limit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._fixed = {}
        self._sliding = {}
        self._hits = 0

    def hit(self, client_key, limits, now=None):
        """Record one request; return the seconds until the exceeded window frees up, or None."""
        now = time.time() if now is None else now
        windows = ((1.0, limits["per_second"]), (60.0, limits["per_minute"]))
        with self._lock:
            self._hits += 1
            if self._hits % 1000 == 0:
                self._forget_idle(now)
            if limits["window"] == "sliding":
                return self._hit_sliding(client_key, windows, now)
            return self._hit_fixed(client_key, windows, now)

    def _hit_fixed(self, client_key, windows, now):
        exceeded = None
        for length, limit in windows:
            start = int(now // length)
            key = (client_key, length)
            window_start, count = self._fixed.get(key, (start, 0))
            if window_start != start:
                window_start, count = start, 0
            count += 1
            self._fixed[key] = (window_start, count)
            if count > limit:
                exceeded = max(exceeded or 0.0, (window_start + 1) * length - now)
        return exceeded

    def _hit_sliding(self, client_key, windows, now):
        exceeded = None
        for length, limit in windows:
            key = (client_key, length)
            stamps = self._sliding.get(key)
            if stamps is None or stamps.maxlen != limit:
                stamps = deque(stamps or (), maxlen=limit)
                self._sliding[key] = stamps
            # A full log whose oldest stamp is inside the window means `limit` requests already happened.
            if len(stamps) == limit and stamps[0] > now - length:
                exceeded = max(exceeded or 0.0, stamps[0] + length - now)
            stamps.append(now)
        return exceeded

    def clear(self):
        """Forget every counter (when the limits change, counting starts afresh)."""
        with self._lock:
            self._fixed.clear()
            self._sliding.clear()

    def _forget_idle(self, now):
        # Drop the counters of clients idle for over a minute, so memory stays flat.
        for key in [k for k, (start, _) in self._fixed.items() if (start + 1) * k[1] < now - 60]:
            del self._fixed[key]
        for key in [k for k, stamps in self._sliding.items() if not stamps or stamps[-1] < now - 60]:
            del self._sliding[key]
