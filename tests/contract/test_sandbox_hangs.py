"""Contract: the hang_seconds fault never takes the threads the admin API needs to switch it off.

With a long hang and more concurrent API requests than the server can hold, the admin endpoints still answer
at once and can switch the fault off; the hung requests then finish. Checked on the tests' server (werkzeug,
a thread per request, where hung requests used to hold every pooled database connection) and on gunicorn's
gthread worker as the benchmarks run it (a fixed number of threads).
"""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from tests.contract.sandbox_support import bearer, connect_service_account, http
from tests.plugins.sandbox_server import start_sandbox

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
HANG = 30.0
AT_ONCE = "answered at once"


class HungRequests:
    """`count` concurrent GET /v1/userinfo calls, each on its own connection; records (status, body, seconds)."""

    def __init__(self, url, token, count):
        self.results = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._call, args=(url, token), daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _call(self, url, token):
        started = time.monotonic()
        try:
            response = http().get(f"{url}/v1/userinfo", headers=bearer(token), timeout=HANG + 30)
            result = (response.status_code, response.json()["error_description"], time.monotonic() - started)
        except requests.RequestException as exc:
            result = (None, repr(exc), time.monotonic() - started)
        with self._lock:
            self.results.append(result)

    def wait_for(self, count, timeout):
        """Wait until `count` calls answered (or the timeout passed); return how many did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.results) >= count:
                    break
            time.sleep(0.02)
        with self._lock:
            return len(self.results)

    def join(self, timeout):
        """Wait for every call; return the results."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            return list(self.results)


def _timed(method, url, **kwargs):
    started = time.monotonic()
    response = http().request(method, url, timeout=1.0, **kwargs)
    return response, time.monotonic() - started


def _check_admin_survives_a_long_hang(url, token, concurrent, max_hung):
    """Hang more requests than the server can hold; the admin answers at once, switches the fault off, and every
    request then finishes."""
    response, _ = _timed("PUT", f"{url}/sandbox/admin/faults", json={"hang_seconds": HANG})
    assert response.status_code == 200
    calls = HungRequests(url, token, concurrent)
    # Requests past the cap answer at once, which tells that the cap's worth of requests hang now.
    calls.wait_for(concurrent - max_hung, timeout=5.0)

    response, elapsed = _timed("GET", f"{url}/sandbox/admin/faults")
    assert response.status_code == 200 and response.json()["hang_seconds"] == HANG and elapsed < 1.0
    response, elapsed = _timed("DELETE", f"{url}/sandbox/admin/faults")
    assert response.status_code == 200 and response.json()["hang_seconds"] == 0.0 and elapsed < 1.0
    switched_off = time.monotonic()

    results = calls.join(timeout=10.0)
    assert len(results) == concurrent and time.monotonic() - switched_off < 5.0
    assert {status for status, _, _ in results} == {504}
    hung = [seconds for _, description, seconds in results if AT_ONCE not in description]
    at_once = [seconds for _, description, seconds in results if AT_ONCE in description]
    assert len(hung) == max_hung and len(at_once) == concurrent - max_hung
    assert max(at_once) < 5.0
    response = http().get(f"{url}/v1/userinfo", headers=bearer(token), timeout=5)
    assert response.status_code == 200


def test_admin_answers_and_switches_a_long_hang_off_on_the_test_server(sandbox, sa_token):
    # 24 requests: more than the 15 database connections the pool allows, more than the cap of 4.
    _check_admin_survives_a_long_hang(sandbox.url, sa_token["access_token"], concurrent=24, max_hung=4)


@pytest.fixture
def hang_free_sandbox(tmp_path):
    """A sandbox where no request may hang."""
    server = start_sandbox(f"sqlite:///{tmp_path / 'sandbox.sqlite'}", MAX_HUNG_REQUESTS=0)
    yield server
    server.stop()


def test_with_no_hang_allowed_the_fault_answers_504_at_once(hang_free_sandbox):
    token = connect_service_account(hang_free_sandbox)["access_token"]
    hang_free_sandbox.set_faults(hang_seconds=HANG)
    started = time.monotonic()
    response = http().get(f"{hang_free_sandbox.url}/v1/userinfo", headers=bearer(token), timeout=5)
    assert response.status_code == 504 and time.monotonic() - started < 1.0
    assert response.json()["error"] == "gateway_timeout" and AT_ONCE in response.json()["error_description"]


@pytest.fixture
def gunicorn_sandbox(tmp_path):
    """The sandbox under gunicorn with 4 gthread threads and room for 2 hung requests, as the benchmarks run it."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SANDBOX_")}
    env.update({"SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sandbox.sqlite'}", "SANDBOX_MAX_HUNG_REQUESTS": "2",
                "SANDBOX_SEED_USERS": "8", "SANDBOX_SEED_ROOMS": "4", "SANDBOX_SEED_SHARED": "1",
                "SANDBOX_SETTINGS_CACHE_SECONDS": "0.1", "SANDBOX_DELIVERY_THREAD": "0"})
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen([str(GUNICORN), "sandbox:create_app()", "-b", f"127.0.0.1:{port}", "-w", "1",
                                    "--threads", "4", "--timeout", "120"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, tmp_path / "gunicorn.log")
        yield SimpleNamespace(url=url, client_id="ecc-sandbox-client", client_secret="ecc-sandbox-secret")
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url, process, log_path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if http().get(f"{url}/sandbox/admin/faults", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not answer in time")


def test_admin_answers_and_switches_a_long_hang_off_under_gunicorn_gthread(gunicorn_sandbox):
    token = connect_service_account(gunicorn_sandbox)["access_token"]
    # 10 requests against 4 threads: without the cap every thread would hang for 30 s.
    _check_admin_survives_a_long_hang(gunicorn_sandbox.url, token, concurrent=10, max_hung=2)
