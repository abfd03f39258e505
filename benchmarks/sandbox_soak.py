"""Soak the Cronofy sandbox under gunicorn and check that its memory and threads stay flat.

Starts `gunicorn 'sandbox:create_app()'` on a loopback port with a fresh SQLite database, drives it with a
bounded mix of real protocol traffic (consent, code exchange, delegated batches answered by callbacks to a
local receiver, delegated code exchange, userinfo, resources, free/busy, refresh, revoke and bad requests)
for --minutes, samples the RSS and thread count of the gunicorn workers, stops everything and prints one
JSON object. Usage: .venv/bin/python benchmarks/sandbox_soak.py --minutes 2
"""

import argparse
import json
import logging
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[1]
SA_SCOPE = "service_account/accounts/manage service_account/resources/manage"
DELEGATED = "read_account list_calendars read_events read_free_busy"
REDIRECT = "http://127.0.0.1:5000/onboarding/callback"


def parse_args():
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="how long to drive load (default 20)")
    parser.add_argument("--rate", type=float, default=40.0, help="target requests per second (default 40)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1)")
    parser.add_argument("--drivers", type=int, default=4, help="load-generating threads (default 4)")
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="sampling interval (default 5)")
    parser.add_argument("--rss-tolerance", type=float, default=0.15, help="allowed RSS growth after warm-up")
    return parser.parse_args()


def free_port():
    """Return a free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """A loopback callback receiver that queues the codes it gets."""

    def __init__(self):
        self.codes = queue.Queue(maxsize=10_000)
        self.count = 0
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @Request.application
    def _app(self, request):
        self.count += 1
        body = json.loads(request.get_data() or b"{}").get("authorization", {})
        if "code" in body and not self.codes.full():
            self.codes.put((body["code"], request.url))
        return Response("OK")

    def stop(self):
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def start_gunicorn(args, port, database, log):
    """Start gunicorn serving the sandbox and wait until it answers; its stderr goes to `log`."""
    env = {**os.environ, "SANDBOX_DATABASE_URL": f"sqlite:///{database}", "SANDBOX_CALLBACK_DELAY": "0.005-0.05",
           "SANDBOX_RATE_PER_SECOND": "100000", "SANDBOX_RATE_PER_MINUTE": "10000000",
           "SANDBOX_DELIVERY_POLL": "0.05", "SANDBOX_SA_TOKEN_TTL": "60", "SANDBOX_ACCOUNT_TOKEN_TTL": "60"}
    command = [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--threads", str(args.threads),
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "sandbox:create_app()"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/sandbox/admin/faults", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    log.seek(0)
    raise SystemExit("gunicorn did not start: " + log.read().decode(errors="replace")[-2000:])


def sample(process):
    """Return (total RSS bytes, total threads) of the gunicorn workers."""
    rss = threads = 0
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            rss += child.memory_info().rss
            threads += child.num_threads()
        except psutil.NoSuchProcess:
            continue
    return rss, threads


class Driver:
    """Generate a bounded mix of protocol traffic and count requests and unexpected answers."""

    def __init__(self, base, receiver, pace):
        self.base, self.receiver, self.pace = base, receiver, pace
        self.http = requests.Session()
        self.http.trust_env = False
        self.requests = 0
        self.errors = {}
        self.sa = None
        self.accounts = []
        self.emails = []

    def call(self, method, path, expect, **kwargs):
        """Make one paced request; record it as an error unless its status is expected."""
        self.pace()
        self.requests += 1
        try:
            response = self.http.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        except requests.RequestException as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            return None
        if response.status_code not in expect:
            key = f"{method} {path.split('?')[0]} {response.status_code}"
            self.errors[key] = self.errors.get(key, 0) + 1
        return response

    def creds(self, **fields):
        """Return a token request body with the demo client's credentials."""
        return {"client_id": "ecc-sandbox-client", "client_secret": "ecc-sandbox-secret", **fields}

    def connect(self):
        """Run the consent and the SA code exchange."""
        params = {"response_type": "code", "client_id": "ecc-sandbox-client", "redirect_uri": REDIRECT,
                  "scope": SA_SCOPE, "delegated_scope": DELEGATED, "state": "soak"}
        self.call("GET", "/enterprise_connect/oauth/authorize", (200,), params=params)
        answer = self.call("POST", "/enterprise_connect/oauth/authorize", (302,), allow_redirects=False,
                           data={**params, "domain": random.choice(["acme.example", "globex.example"]),
                                 "decision": "approve"})
        if answer is None or answer.status_code != 302:
            return
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        tokens = self.call("POST", "/oauth/token", (200,),
                           json=self.creds(grant_type="authorization_code", code=code, redirect_uri=REDIRECT))
        if tokens is not None and tokens.ok:
            self.sa = tokens.json()
            listed = self.call("GET", "/sandbox/admin/directory.json?domain=acme.example&kind=user&limit=40", (200,))
            self.emails = [m["email"] for m in listed.json()["members"]] if listed is not None else []

    def step(self):
        """Run one random operation of the mix."""
        if self.sa is None or random.random() < 0.02:
            self.connect()
            return
        roll = random.random()
        if roll < 0.25:
            self.delegate()
        elif roll < 0.5:
            self.exchange_callback_code()
        elif roll < 0.65:
            self.use_account()
        elif roll < 0.75:
            self.call("GET", "/v1/resources?include_details=capacity%20location", (200, 401), headers=self.bearer())
        elif roll < 0.85:
            self.refresh()
        else:
            self.bad_request()

    def bearer(self, token=None):
        """Return the Authorization header for the SA (or a given) token."""
        return {"Authorization": f"Bearer {token or self.sa['access_token']}"}

    def delegate(self):
        """Ask for delegated access to a small batch of mailboxes."""
        emails = random.sample(self.emails, min(5, len(self.emails))) if self.emails else []
        batch = [{"email": e, "scope": "read_events list_calendars", "callback_url": f"{self.receiver.url}/cb/soak?m={i}",
                  "state": f"s{i}"} for i, e in enumerate(emails)] or [
            {"email": "someone@acme.example", "scope": "read_events", "callback_url": f"{self.receiver.url}/cb"}]
        self.call("POST", "/v1/service_account_authorizations", (202, 401), headers=self.bearer(),
                  json={"service_account_authorizations": batch})

    def exchange_callback_code(self):
        """Exchange one code received by callback for an account token."""
        try:
            code, url = self.receiver.codes.get_nowait()
        except queue.Empty:
            return
        tokens = self.call("POST", "/oauth/token", (200, 400),
                           json=self.creds(grant_type="authorization_code", code=code, redirect_uri=url))
        if tokens is not None and tokens.ok:
            self.accounts = (self.accounts + [tokens.json()])[-20:]

    def use_account(self):
        """Read calendars or free/busy with an account token, sometimes revoking it."""
        if not self.accounts:
            return
        account = random.choice(self.accounts)
        path = random.choice(["/v1/calendars", "/v1/free_busy", "/v1/userinfo"])
        self.call("GET", path, (200, 401), headers=self.bearer(account["access_token"]))
        if random.random() < 0.1:
            self.call("POST", "/oauth/token/revoke", (200,), json=self.creds(token=account["refresh_token"]))
            self.accounts.remove(account)

    def refresh(self):
        """Refresh the SA token (rotating the refresh token)."""
        answer = self.call("POST", "/oauth/token", (200,),
                           json=self.creds(grant_type="refresh_token", refresh_token=self.sa["refresh_token"]))
        if answer is not None and answer.ok:
            self.sa = {**self.sa, **answer.json()}

    def bad_request(self):
        """Send something wrong; the documented 4xx is expected, never a 500."""
        choice = random.randrange(4)
        if choice == 0:
            self.call("POST", "/oauth/token", (400,), data=b"{broken", headers={"Content-Type": "application/json"})
        elif choice == 1:
            self.call("GET", "/v1/userinfo", (401,), headers=self.bearer("nonsense"))
        elif choice == 2:
            self.call("POST", "/v1/service_account_authorizations", (422,), headers=self.bearer(), json={"email": 1})
        else:
            self.call("GET", "/v1/nowhere", (404,))


def pacer(rate):
    """Return a thread-safe function that sleeps to keep all callers at `rate` requests per second."""
    lock = threading.Lock()
    next_at = [time.monotonic()]

    def pace():
        with lock:
            now = time.monotonic()
            next_at[0] = max(next_at[0] + 1.0 / rate, now)
            wait = next_at[0] - now
        if wait > 0:
            time.sleep(wait)
    return pace


def drive(drivers, stop):
    """Run a driver until the stop event is set."""
    def run(driver):
        while not stop.is_set():
            try:
                driver.step()
            except (KeyError, ValueError) as exc:
                driver.errors[type(exc).__name__] = driver.errors.get(type(exc).__name__, 0) + 1
    threads = [threading.Thread(target=run, args=(d,), daemon=True) for d in drivers]
    for thread in threads:
        thread.start()
    return threads


def verdict(samples, warm_index, errors, tolerance):
    """Judge the run: no errors, RSS and threads flat after warm-up."""
    base_rss, base_threads = samples[warm_index][1], samples[warm_index][2]
    end_rss, end_threads = samples[-1][1], samples[-1][2]
    rss_ok = end_rss <= base_rss * (1 + tolerance) + 4 * 2 ** 20
    threads_ok = end_threads <= base_threads + 2
    return "pass" if rss_ok and threads_ok and not errors else "fail"


def main():
    """Run the soak and print its JSON report."""
    args = parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the receiver's access log would drown the report
    port, receiver = free_port(), Receiver()
    with tempfile.TemporaryDirectory(prefix="sandbox-soak-") as tmp, open(Path(tmp) / "gunicorn.log", "w+b") as log:
        process = start_gunicorn(args, port, Path(tmp) / "sandbox.sqlite", log)
        stop, samples = threading.Event(), []
        drivers = [Driver(f"http://127.0.0.1:{port}", receiver, pacer(args.rate / args.drivers))
                   for _ in range(args.drivers)]
        started = time.monotonic()
        try:
            threads = drive(drivers, stop)
            end_at = started + args.minutes * 60
            while time.monotonic() < end_at and process.poll() is None:
                samples.append((round(time.monotonic() - started, 1), *sample(process)))
                time.sleep(min(args.sample_seconds, max(0.0, end_at - time.monotonic())))
            samples.append((round(time.monotonic() - started, 1), *sample(process)))
        finally:
            stop.set()
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
            receiver.stop()
        for thread in threads:
            thread.join(35)
        log.seek(0)
        server_log = log.read().decode(errors="replace")
    report(args, samples, drivers, receiver, started, server_log)


def report(args, samples, drivers, receiver, started, server_log):
    """Print the JSON summary."""
    errors = {}
    for driver in drivers:
        for key, count in driver.errors.items():
            errors[key] = errors.get(key, 0) + count
    warm = min(len(samples) - 1, max(1, len(samples) // 5))  # the first fifth is warm-up
    mib = 2 ** 20
    print(json.dumps({
        "minutes": args.minutes, "seconds": round(time.monotonic() - started, 1),
        "requests": sum(d.requests for d in drivers), "callbacks_received": receiver.count,
        "errors": sum(errors.values()), "error_kinds": errors,
        "rss_mib": {"start": round(samples[0][1] / mib, 1), "after_warmup": round(samples[warm][1] / mib, 1),
                    "end": round(samples[-1][1] / mib, 1), "peak": round(max(s[1] for s in samples) / mib, 1)},
        "threads": {"start": samples[0][2], "after_warmup": samples[warm][2], "end": samples[-1][2],
                    "peak": max(s[2] for s in samples)},
        "server_tracebacks": server_log.count("Traceback"),
        "server_log_tail": server_log[-3000:] if "Traceback" in server_log else "",
        "samples": len(samples),
        "verdict": verdict(samples, warm, errors, args.rss_tolerance) if "Traceback" not in server_log else "fail",
    }, indent=2))


if __name__ == "__main__":
    main()
