"""Configuration read from the environment.

Every setting an operator may change is an environment variable documented in the README. In
development the secret key and the token-encryption key are generated once into the instance
folder; in production their absence stops start-up with a message that says what to set.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet

DEFAULT_SANDBOX_URL = "http://127.0.0.1:5055"
DEFAULT_SANDBOX_CLIENT_ID = "ecc-sandbox-client"
DEFAULT_SANDBOX_CLIENT_SECRET = "ecc-sandbox-secret"


class ConfigurationError(RuntimeError):
    """A required setting is missing or malformed; the message tells the operator what to set."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}.") from exc


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}.") from exc


def _normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres URLs, as hosting platforms hand them out."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _read_or_create(path: Path, make) -> str:
    """Return the secret stored at path, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def build_config(instance_path: str, environment: str | None = None) -> dict:
    """Return the settings for this process, read from the environment."""
    env = environment or _env("APP_ENV", "development")
    if env not in ("development", "production", "testing"):
        raise ConfigurationError("APP_ENV must be development, production or testing.")
    instance = Path(instance_path)
    is_production = env == "production"
    redis_url = _env("REDIS_URL")
    database_url = _env("DATABASE_URL", f"sqlite:///{instance / 'console.sqlite'}")
    return {
        "APP_ENV": env,
        "DEBUG": False,
        "TESTING": env == "testing",
        **_secret_settings(env, instance),
        "SQLALCHEMY_DATABASE_URI": _normalise_database_url(database_url),
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        "REDIS_URL": redis_url,
        **_upstream_settings(),
        **_engine_settings(instance),
        **_web_settings(is_production, redis_url),
        **_mail_settings(instance),
        **_api_settings(),
        # Webhook URLs on loopback and private networks (local receivers): development and tests only.
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": _env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", env != "production"),
        **_webhook_settings(),
        # Events older than this are pruned by the worker (the events API and redeliveries reach back this far).
        "EVENT_RETENTION_DAYS": _event_retention_days(),
    }


def _event_retention_days() -> int:
    days = _env_int("EVENT_RETENTION_DAYS", 30)
    if days < 1:
        raise ConfigurationError("EVENT_RETENTION_DAYS must be at least 1.")
    return days


def _webhook_settings() -> dict:
    """Delivering webhooks (services/webhooks/delivery.py): the overall timeout and how many requests at once."""
    timeout = _env_float("WEBHOOK_TIMEOUT_SECONDS", 15.0)
    per_endpoint = _env_int("WEBHOOK_MAX_PARALLEL_PER_ENDPOINT", 4)
    threads = _env_int("WEBHOOK_SENDER_THREADS", 8)
    if timeout <= 0 or per_endpoint < 1 or threads < 1:
        raise ConfigurationError("WEBHOOK_TIMEOUT_SECONDS must be positive; WEBHOOK_MAX_PARALLEL_PER_ENDPOINT "
                                 "and WEBHOOK_SENDER_THREADS at least 1.")
    return {
        # Connecting, sending and reading the whole answer, together (the specification suggests 15-30 s).
        "WEBHOOK_TIMEOUT_SECONDS": timeout,
        "WEBHOOK_MAX_PARALLEL_PER_ENDPOINT": per_endpoint,
        "WEBHOOK_SENDER_THREADS": threads,
    }


def engine_options(database_url: str) -> dict:
    """Pool options; SQLite waits up to 30 s for the single writer (web, worker) instead of 5."""
    if database_url.startswith("sqlite"):
        return {"pool_pre_ping": True, "connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _secret_settings(env: str, instance: Path) -> dict:
    """SECRET_KEY and TOKEN_ENCRYPTION_KEYS: required in production, generated once in development."""
    secret_key = _env("SECRET_KEY")
    token_keys = _env("TOKEN_ENCRYPTION_KEYS")
    if env == "production":
        missing = [n for n, v in (("SECRET_KEY", secret_key), ("TOKEN_ENCRYPTION_KEYS", token_keys)) if not v]
        if missing:
            raise ConfigurationError(
                "Production start-up needs " + " and ".join(missing) + ". "
                "Generate a secret key with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` and a "
                "token key with `flask keys generate`; see the README's hosting section."
            )
    elif env == "development":
        secret_key = secret_key or _read_or_create(instance / "secret_key", lambda: secrets.token_urlsafe(48))
        token_keys = token_keys or _read_or_create(instance / "token_keys", lambda: Fernet.generate_key().decode())
    return {
        "SECRET_KEY": secret_key,
        "TOKEN_ENCRYPTION_KEYS": [k.strip() for k in (token_keys or "").split(",") if k.strip()],
    }


def _upstream_settings() -> dict:
    """Cronofy (or sandbox) credentials, hosts, timeouts and the application's rate limits."""
    client_id = _env("CRONOFY_CLIENT_ID")
    client_secret = _env("CRONOFY_CLIENT_SECRET")
    if bool(client_id) != bool(client_secret):
        raise ConfigurationError("Set both CRONOFY_CLIENT_ID and CRONOFY_CLIENT_SECRET, or neither (sandbox mode).")
    return {
        "SANDBOX_MODE": not client_id,
        "SANDBOX_URL": _env("SANDBOX_URL", DEFAULT_SANDBOX_URL).rstrip("/"),
        "CRONOFY_CLIENT_ID": client_id or _env("SANDBOX_CLIENT_ID", DEFAULT_SANDBOX_CLIENT_ID),
        "CRONOFY_CLIENT_SECRET": client_secret or _env("SANDBOX_CLIENT_SECRET", DEFAULT_SANDBOX_CLIENT_SECRET),
        "CRONOFY_DATA_CENTER": _env("CRONOFY_DATA_CENTER", "us"),
        "PUBLIC_BASE_URL": _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "UPSTREAM_CONNECT_TIMEOUT": _env_float("CRONOFY_CONNECT_TIMEOUT", 5.0),
        "UPSTREAM_READ_TIMEOUT": _env_float("CRONOFY_READ_TIMEOUT", 15.0),
        # Delegated-access callbacks without Cronofy-HMAC-SHA256 are refused unless this is set (§3.11).
        "CALLBACKS_ALLOW_UNSIGNED": _env("CALLBACKS_ALLOW_UNSIGNED", "false").lower() in ("1", "true", "yes"),
        "RATE_LIMIT_PER_SECOND": _env_int("CRONOFY_RATE_LIMIT_PER_SECOND", 50),
        "RATE_LIMIT_PER_MINUTE": _env_int("CRONOFY_RATE_LIMIT_PER_MINUTE", 500),
        "RATE_BUDGET_SHARE": _env_float("CRONOFY_RATE_BUDGET_SHARE", 0.8),
    }


def _engine_settings(instance: Path) -> dict:
    """The bulk engine (jobs/, services/engine/scheduler.py); 0 for MAX_IN_FLIGHT derives it from the budget."""
    return {
        "MAX_IN_FLIGHT": _env_int("MAX_IN_FLIGHT", 0),
        "STALE_REQUEST_MINUTES": _env_float("STALE_REQUEST_MINUTES", 30.0),
        "SEND_MAX_TRIES": _env_int("SEND_MAX_TRIES", 5),
        "SEND_RETRY_BASE_SECONDS": _env_float("SEND_RETRY_BASE_SECONDS", 1.0),
        "WORKER_THREADS": _env_int("WORKER_THREADS", 8),
        "QUEUE_PATH": _env("QUEUE_PATH", str(instance / "queue.sqlite")),
        "QUEUE_NAME": _env("QUEUE_NAME", "ecc"),
        "RECOVER_INTERVAL_SECONDS": _env_float("RECOVER_INTERVAL_SECONDS", 5.0),
        "PUMP_WINDOW_SECONDS": _env_float("PUMP_WINDOW_SECONDS", 20.0),
        "LEASE_SECONDS": _lease_seconds(),
    }


def _lease_seconds() -> float:
    """Return how long a worker's pump lease and batch and exchange claims last unless it renews them."""
    seconds = _env_float("LEASE_SECONDS", 10.0)
    if seconds < 1:
        raise ConfigurationError("LEASE_SECONDS must be at least 1.")
    return seconds


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}.")


def _mail_settings(instance: Path) -> dict:
    """Email (services/platform/mail.py): SMTP when MAIL_SERVER is set, else the outbox folder support reads."""
    use_tls, use_ssl = _env_bool("MAIL_USE_TLS"), _env_bool("MAIL_USE_SSL")
    if use_tls and use_ssl:
        raise ConfigurationError("Set MAIL_USE_TLS (STARTTLS, usually port 587) or MAIL_USE_SSL (port 465), not both.")
    return {
        "MAIL_SERVER": _env("MAIL_SERVER"),
        "MAIL_PORT": _env_int("MAIL_PORT", 465 if use_ssl else 587 if use_tls else 25),
        "MAIL_USERNAME": _env("MAIL_USERNAME"),
        "MAIL_PASSWORD": _env("MAIL_PASSWORD"),
        "MAIL_USE_TLS": use_tls,
        "MAIL_USE_SSL": use_ssl,
        "MAIL_DEFAULT_SENDER": _env("MAIL_DEFAULT_SENDER", "Enterprise Connect Console <no-reply@localhost>"),
        "MAIL_TIMEOUT": _env_float("MAIL_TIMEOUT", 10.0),
        # Without MAIL_SERVER every message is written here instead (Flask-Mailman's file backend).
        "MAIL_FILE_PATH": _env("MAIL_FILE_PATH", str(instance / "outbox")),
    }


def _api_settings() -> dict:
    """The vendor's JSON API: its OpenAPI document (flask-smorest) and the per-key request limit."""
    return {
        "API_TITLE": "Enterprise Connect Console API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_RATE_LIMIT": _env("API_RATE_LIMIT", "600 per minute;20 per second"),
        "PORTAL_LINK_TTL_MINUTES": _env_int("PORTAL_LINK_TTL_MINUTES", 5),
        # Where portal links may send an admin back: shell-style patterns, comma-separated.
        "PORTAL_RETURN_URLS": [p.strip() for p in (_env("PORTAL_RETURN_URLS") or "").split(",") if p.strip()],
        "VENDOR_NAME": _env("VENDOR_NAME", "your product"),
    }


def _session_settings() -> dict:
    """How long a signed-in session lasts: an absolute limit, and a shorter one without activity."""
    lifetime_hours = _env_int("SESSION_LIFETIME_HOURS", 12)
    idle_minutes = _env_int("SESSION_IDLE_MINUTES", 120)
    if lifetime_hours < 1 or idle_minutes < 1:
        raise ConfigurationError("SESSION_LIFETIME_HOURS and SESSION_IDLE_MINUTES must be at least 1.")
    return {
        "SESSION_LIFETIME_HOURS": lifetime_hours,
        "SESSION_IDLE_MINUTES": idle_minutes,
        # The signed cookie itself stops being accepted after the same absolute lifetime.
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=lifetime_hours),
    }


def _throttle_storage(redis_url: str | None) -> str:
    """Return the sign-in throttle's storage URI: Redis backed by the database, or the database alone."""
    return f"ecc+{redis_url}" if redis_url else "ecc+db://"


def _web_settings(is_production: bool, redis_url: str | None) -> dict:
    """Sessions, cookies, throttling, link lifetimes and upload limits."""
    return {
        "SETUP_LINK_TTL_HOURS": _env_int("SETUP_LINK_TTL_HOURS", 72),
        "SUPPORT_ACCESS_MINUTES": _env_int("SUPPORT_ACCESS_MINUTES", 60),
        **_session_settings(),
        "CONSENT_STATE_TTL_MINUTES": _env_int("CONSENT_STATE_TTL_MINUTES", 30),
        "INVITATION_TTL_HOURS": _env_int("INVITATION_TTL_HOURS", 24 * 7),
        "PASSWORD_RESET_TTL_HOURS": _env_int("PASSWORD_RESET_TTL_HOURS", 24),
        "SIGN_IN_RATE_LIMIT": _env("SIGN_IN_RATE_LIMIT", "10 per minute;50 per hour"),
        "SIGN_IN_ACCOUNT_RATE_LIMIT": _env("SIGN_IN_ACCOUNT_RATE_LIMIT", "5 per minute;20 per hour"),
        # Counts in Redis, and in the database while Redis does not answer; without Redis in the database
        # (services/platform/throttle_store.py): every worker shares them either way.
        "RATELIMIT_STORAGE_URI": _throttle_storage(redis_url),
        # No X-RateLimit-* headers: they would tell which sign-in limit (address or account) was reached.
        "RATELIMIT_HEADERS_ENABLED": False,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": is_production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": is_production,
        "PREFERRED_URL_SCHEME": "https" if is_production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "BOOTSTRAP_SERVE_LOCAL": True,
        "MAX_CONTENT_LENGTH": _env_int("MAX_UPLOAD_BYTES", 25 * 1024 * 1024),
        # Mailbox imports: 100,000 rows of ordinary addresses and names take 7-10 MiB.
        "IMPORT_MAX_BYTES": _env_int("IMPORT_MAX_BYTES", 20 * 1024 * 1024),
        "IMPORT_MAX_ROWS": _env_int("IMPORT_MAX_ROWS", 100_000),
        "TRUSTED_PROXY_COUNT": _env_int("TRUSTED_PROXY_COUNT", 0),
    }
