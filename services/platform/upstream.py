"""The bridge from the app's configuration to the Flask-free Cronofy client.

In sandbox mode (no Cronofy credentials configured) every data center maps to the sandbox's one
base URL; otherwise to Cronofy's hosts for that data center (docs/cronofy-api.md §1).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app

from services.cronofy import DATA_CENTERS, CronofyClient, RetryPolicy, Upstream, upstream_for


DEFAULT_RETRY = RetryPolicy()


class UpstreamConfigError(ValueError):
    """The data center or upstream settings are unusable; the message is fit to show."""


def upstream(data_center: str) -> Upstream:
    """Return where and as whom to talk for data_center."""
    config = current_app.config
    try:
        return upstream_for(
            data_center,
            client_id=config["CRONOFY_CLIENT_ID"],
            client_secret=config["CRONOFY_CLIENT_SECRET"],
            sandbox_url=config["SANDBOX_URL"] if config["SANDBOX_MODE"] else None,
            connect_timeout=config["UPSTREAM_CONNECT_TIMEOUT"],
            read_timeout=config["UPSTREAM_READ_TIMEOUT"],
        )
    except ValueError as exc:
        known = ", ".join(DATA_CENTERS)
        raise UpstreamConfigError(f"Unknown data center {data_center!r}. Choose one of: {known}.") from exc


_local = threading.local()
CLIENTS_PER_THREAD = 8


def client_for(data_center: str, *, retry: RetryPolicy | None = None) -> CronofyClient:
    """Return a client for data_center, with the app's timeouts.

    Clients are kept per thread and per upstream, so that a worker exchanging thousands of codes
    reuses its HTTP connections instead of opening one per request.
    """
    key = (upstream(data_center), retry or DEFAULT_RETRY)
    cache: OrderedDict = getattr(_local, "clients", None) or OrderedDict()
    _local.clients = cache
    client = cache.get(key)
    if client is None:
        client = cache[key] = CronofyClient(key[0], retry=key[1])
        if len(cache) > CLIENTS_PER_THREAD:
            cache.popitem(last=False)[1].close()
    cache.move_to_end(key)
    return client


def client_secrets() -> tuple[str, ...]:
    """Return the client secrets that may sign Cronofy's callbacks (§3.11)."""
    return (current_app.config["CRONOFY_CLIENT_SECRET"],)


def callback_base_url() -> str:
    """Return the console's public base URL, from which callback and redirect URLs are built."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/")


def is_sandbox() -> bool:
    """Return whether the console talks to the built-in sandbox."""
    return bool(current_app.config["SANDBOX_MODE"])
