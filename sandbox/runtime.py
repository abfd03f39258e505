"""Runtime settings shared by every process through the database: faults and limits, with a short cache."""

import json
import threading
import time

from sqlalchemy import update

from sandbox.config import parse_delay
from sandbox.models import Counter, Setting

FAULT_DEFAULTS = {
    "error_rate": 0.0,
    "latency_ms": 0,
    "burst_429": 0,
    "retry_after": 0,
    "hang_seconds": 0.0,
    "duplicate_callbacks": False,
    "out_of_order_callbacks": False,
    "callback_failure_rate": 0.0,
    "notifications_off": False,
}


def limit_defaults(config):
    """Return the limits as configured at start-up."""
    return {
        "per_second": config["SANDBOX_RATE_PER_SECOND"],
        "per_minute": config["SANDBOX_RATE_PER_MINUTE"],
        "window": config["SANDBOX_RATE_WINDOW"],
        "retry_after": config["SANDBOX_RATE_RETRY_AFTER"],
        "code_ttl": config["SANDBOX_CODE_TTL"],
        "sa_token_ttl": config["SANDBOX_SA_TOKEN_TTL"],
        "account_token_ttl": config["SANDBOX_ACCOUNT_TOKEN_TTL"],
        "callback_delay": str(config["SANDBOX_CALLBACK_DELAY"]),
    }


class InvalidSetting(ValueError):
    """A runtime setting with a wrong name or value; carries 422-style errors."""

    def __init__(self, errors):
        super().__init__("invalid settings")
        self.errors = errors


def _fraction(value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError
    return value


def _non_negative(kind):
    def convert(value):
        if isinstance(value, bool):
            raise ValueError
        value = kind(value)
        if value < 0:
            raise ValueError
        return value
    return convert


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError
    return value


def _positive_int(value):
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError
    return int(value)


def _window(value):
    if value not in ("fixed", "sliding"):
        raise ValueError
    return value


def _delay(value):
    parse_delay(value)
    return str(value)


FAULT_TYPES = {
    "error_rate": _fraction, "latency_ms": _non_negative(int), "burst_429": _non_negative(int),
    "retry_after": _non_negative(int), "hang_seconds": _non_negative(float),
    "duplicate_callbacks": _boolean, "out_of_order_callbacks": _boolean,
    "callback_failure_rate": _fraction, "notifications_off": _boolean,
}
LIMIT_TYPES = {
    "per_second": _positive_int, "per_minute": _positive_int, "window": _window, "retry_after": _boolean,
    "code_ttl": _non_negative(float), "sa_token_ttl": _positive_int, "account_token_ttl": _positive_int,
    "callback_delay": _delay,
}


def validate(changes, types):
    """Convert a partial update; raise InvalidSetting with per-field errors."""
    if not isinstance(changes, dict):
        raise InvalidSetting({"body": [{"key": "errors.invalid", "description": "must be a JSON object"}]})
    clean, errors = {}, {}
    for key, value in changes.items():
        if key not in types:
            errors[key] = [{"key": "errors.unknown", "description": "unknown setting"}]
            continue
        try:
            clean[key] = types[key](value)
        except (TypeError, ValueError):
            errors[key] = [{"key": "errors.invalid", "description": "invalid value"}]
    if errors:
        raise InvalidSetting(errors)
    return clean


class RuntimeSettings:
    """Faults and limits read from the settings table, cached briefly per process."""

    def __init__(self, session_factory, config):
        self._session_factory = session_factory
        self._defaults = {"faults": dict(FAULT_DEFAULTS), "limits": limit_defaults(config)}
        self._cache_seconds = config["SANDBOX_SETTINGS_CACHE_SECONDS"]
        self._cache = {}
        self._lock = threading.Lock()

    def get(self, name):
        """Return the current faults or limits dict."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached and now - cached[0] < self._cache_seconds:
                return cached[1]
        value = self._load(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def _load(self, name):
        with self._session_factory() as db:
            row = db.get(Setting, name)
            stored = json.loads(row.value) if row else {}
            value = {**self._defaults[name], **stored}
            if name == "faults":
                counter = db.get(Counter, "burst_429")
                value["burst_429"] = counter.value if counter else 0
        return value

    def update(self, name, changes):
        """Merge validated changes into faults or limits and return the result."""
        with self._session_factory() as db:
            row = db.get(Setting, name) or Setting(key=name, value="{}")
            stored = {**json.loads(row.value), **changes}
            if name == "faults" and "burst_429" in stored:
                self._set_counter(db, "burst_429", stored.pop("burst_429"))
            row.value = json.dumps(stored)
            db.add(row)
            db.commit()
        with self._lock:
            self._cache.pop(name, None)
        return self.get(name)

    def reset(self, name):
        """Put faults or limits back to their start-up values."""
        with self._session_factory() as db:
            row = db.get(Setting, name)
            if row:
                db.delete(row)
            if name == "faults":
                self._set_counter(db, "burst_429", 0)
            db.commit()
        with self._lock:
            self._cache.pop(name, None)
        return self.get(name)

    @staticmethod
    def _set_counter(db, name, value):
        counter = db.get(Counter, name) or Counter(name=name, value=0)
        counter.value = int(value)
        db.add(counter)

    def take_burst(self):
        """Consume one request of the 429 burst; tell whether this request must get a 429."""
        if self.get("faults")["burst_429"] <= 0:
            return False
        with self._session_factory() as db:
            result = db.execute(update(Counter).where(Counter.name == "burst_429", Counter.value > 0)
                                .values(value=Counter.value - 1))
            db.commit()
        with self._lock:
            self._cache.pop("faults", None)
        return result.rowcount == 1


class HangGate:
    """The hang_seconds fault: at most `limit` requests of this process hang at once.

    Each hung request holds a server thread; a cap below the server's thread count keeps threads free for the
    admin pages, so that the fault can always be switched off. A hang follows the fault as it changes: it
    ends `hang_seconds` (as now set) after it began, at once when the fault is switched off.
    """

    POLL_SECONDS = 0.1

    def __init__(self, settings, limit):
        self._settings = settings
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None

    def hang(self, seconds):
        """Hold the calling thread while the fault lasts; tell whether it hung (False: every slot was taken)."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            return False
        try:
            started = time.monotonic()
            while (remaining := started + seconds - time.monotonic()) > 0:
                time.sleep(min(self.POLL_SECONDS, remaining))
                seconds = self._settings.get("faults")["hang_seconds"]
            return True
        finally:
            self._slots.release()
