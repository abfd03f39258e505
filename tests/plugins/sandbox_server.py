"""Pytest plugin: the Cronofy sandbox served over real HTTP on a loopback port.

Register it with `pytest_plugins = ["tests.plugins.sandbox_server"]`. Fixtures:
- `sandbox_server` (session): one sandbox for the whole run, fresh SQLite database, short callback delays;
- `sandbox` (function): the same server, with faults and limits put back after the test.
The session sandbox starts with generous rate limits so that many tests can share it; tests about the real
limits set them with `sandbox.set_limits(per_second=50, per_minute=500)`.
"""

import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

TEST_CONFIG = {
    "CALLBACK_DELAY": "0.01-0.05",
    "DELIVERY_POLL": 0.01,
    "CALLBACK_RETRY_BASE": 0.05,
    "CALLBACK_TIMEOUT": 2.0,
    "SETTINGS_CACHE_SECONDS": 0.0,
    "RATE_PER_SECOND": 100_000,
    "RATE_PER_MINUTE": 1_000_000,
}


class SandboxServer:
    """A running sandbox: its base URL, demo credentials and helpers for its admin endpoints."""

    def __init__(self, app, server, thread):
        self.app = app
        self._server = server
        self._thread = thread
        self.url = f"http://127.0.0.1:{server.server_port}"
        self.client_id = app.config["SANDBOX_CLIENT_ID"]
        self.client_secret = app.config["SANDBOX_CLIENT_SECRET"]
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only, never through a proxy

    def _admin(self, method, path, **kwargs):
        response = self.http.request(method, f"{self.url}/sandbox/admin/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults):
        """Switch faults on (error_rate, latency_ms, burst_429, retry_after, hang_seconds, ...); return all."""
        return self._admin("PUT", "faults", json=faults)

    def reset_faults(self):
        """Switch every fault off."""
        return self._admin("DELETE", "faults")

    def set_limits(self, per_second=None, per_minute=None, **limits):
        """Change the rate limits (and code_ttl, *_token_ttl, callback_delay, window, retry_after)."""
        changes = {"per_second": per_second, "per_minute": per_minute, **limits}
        return self._admin("PUT", "limits", json={k: v for k, v in changes.items() if v is not None})

    def reset_limits(self):
        """Put the limits back to the server's start-up values."""
        return self._admin("DELETE", "limits")

    def events(self, **filters):
        """Return logged events, newest first (filters: kind, method, path, status, client, limit)."""
        response = self.http.get(f"{self.url}/sandbox/events.json", params=filters, timeout=10)
        response.raise_for_status()
        return response.json()["events"]

    def directory(self, **filters):
        """Return directory members (filters: domain, kind, trait — "none" for members that succeed)."""
        return self._admin("GET", "directory.json", params=filters)["members"]

    def grants(self, **filters):
        """Return the delegated accounts with active_grants and total_grants (filters: email, domain, status)."""
        return self._admin("GET", "grants.json", params=filters)["accounts"]

    def stop(self):
        """Stop serving, stop callback delivery and release the database."""
        self._server.shutdown()
        self._thread.join(10)
        self._server.server_close()
        self.app.extensions["sandbox"].stop()


def start_sandbox(database_url, **config):
    """Start a sandbox on a free loopback port in a background thread and return its SandboxServer.

    Keyword arguments override the test configuration; None removes a test default.
    """
    from sandbox import create_app

    settings = {**TEST_CONFIG, "DATABASE_URL": database_url, **config}
    app = create_app({key: value for key, value in settings.items() if value is not None})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http",
                              daemon=True)
    thread.start()
    running = SandboxServer(app, server, thread)
    _wait_until_up(running)
    return running


def _wait_until_up(running, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            running.http.get(f"{running.url}/sandbox/admin/faults", timeout=1).raise_for_status()
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    """Serve one sandbox for the whole test session."""
    path = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite"
    running = start_sandbox(f"sqlite:///{path}")
    yield running
    running.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """Give a test the session sandbox and switch its faults off and limits back afterwards."""
    yield sandbox_server
    sandbox_server.reset_faults()
    sandbox_server.reset_limits()
