"""Configuration of the sandbox: defaults, overridden by SANDBOX_* environment variables, then by the factory's dict."""

import os

DEFAULTS = {
    "DATABASE_URL": None,  # None means sqlite:///<instance_path>/sandbox.sqlite
    "CLIENT_ID": "ecc-sandbox-client",
    "CLIENT_SECRET": "ecc-sandbox-secret",
    "RATE_PER_SECOND": 50,
    "RATE_PER_MINUTE": 500,
    "RATE_WINDOW": "fixed",
    "RATE_RETRY_AFTER": False,
    "CODE_TTL": 600,
    "SA_TOKEN_TTL": 1800,
    "ACCOUNT_TOKEN_TTL": 3600,
    "BENCHMARK": False,
    "CALLBACK_DELAY": "1-4",
    "CALLBACK_TIMEOUT": 5.0,
    "CALLBACK_RETRY_BASE": 2.0,
    "CALLBACK_MAX_ATTEMPTS": 8,
    "DELIVERY_THREAD": True,
    "DELIVERY_POLL": 0.2,
    "DELIVERY_CONCURRENCY": 8,
    "SEED_USERS": 40,
    "SEED_ROOMS": 8,
    "SEED_SHARED": 4,
    "ROTATE_REFRESH_TOKENS": True,
    "SA_REVOKE_CASCADES": False,
    "ERROR_DESCRIPTION_ON_REDIRECT": True,
    "RESOURCES_INCLUDE_SHARED": True,
    "EVENT_LOG_MAX": 20000,
    "EVENT_FLUSH_SECONDS": 0.1,  # how often buffered events are written; readers in the process flush first
    "SETTINGS_CACHE_SECONDS": 0.5,
    "MAX_HUNG_REQUESTS": 4,  # per process; keep it below the server's threads (gunicorn --threads 8: at most 6)
}

_BOOL_TRUE = {"1", "true", "yes", "on"}
# Benchmark mode: callbacks within milliseconds, unless the delay or poll interval is set explicitly.
BENCHMARK_DEFAULTS = {"CALLBACK_DELAY": "0.005-0.05", "DELIVERY_POLL": 0.02}


def _coerce(default, raw):
    """Convert an environment string to the type of its default."""
    if isinstance(default, bool):
        return raw.strip().lower() in _BOOL_TRUE
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load_config(overrides=None):
    """Return the sandbox settings as a dict keyed SANDBOX_<NAME>."""
    config, explicit = {}, set()
    for name, default in DEFAULTS.items():
        raw = os.environ.get(f"SANDBOX_{name}")
        config[f"SANDBOX_{name}"] = default if raw is None else _coerce(default, raw)
        if raw is not None:
            explicit.add(f"SANDBOX_{name}")
    for key, value in (overrides or {}).items():
        config[_config_key(key)] = value
        explicit.add(_config_key(key))
    if config["SANDBOX_BENCHMARK"]:
        for name, value in BENCHMARK_DEFAULTS.items():
            if f"SANDBOX_{name}" not in explicit:
                config[f"SANDBOX_{name}"] = value
    return config


def _config_key(key):
    """Prefix bare sandbox names (RATE_PER_SECOND) so both spellings work; keep Flask's own keys."""
    if key.startswith("SANDBOX_") or key in {"TESTING", "SECRET_KEY", "SERVER_NAME"}:
        return key
    return f"SANDBOX_{key}"


def parse_delay(spec):
    """Parse a delay distribution like "1-4" (uniform) or "0.5" (fixed) into (low, high) seconds."""
    text = str(spec).strip()
    if "-" in text[1:]:
        low, high = text.split("-", 1)
        low_f, high_f = float(low), float(high)
    else:
        low_f = high_f = float(text)
    if low_f < 0 or high_f < low_f:
        raise ValueError(f"bad delay distribution {spec!r}")
    return low_f, high_f
