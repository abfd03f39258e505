"""Benchmark a bulk authorization end to end against the sandbox, and compare it with the rate-limit floor.

    .venv/bin/python benchmarks/bulk_authorize.py --mailboxes 2000 [--json] [--naive]
        [--per-second 50] [--per-minute 3000] [--share 0.8] [--callback-delay 0.05-0.5]
        [--workers 1] [--postgres URL] [--redis URL]

It starts the sandbox under gunicorn in benchmark mode (the given rate limits, millisecond callback
delays, a directory big enough for N healthy mailboxes), the console under gunicorn with PUBLIC_BASE_URL
at its port (so callbacks reach it) and `flask worker` processes, on a fresh SQLite file (or a fresh
PostgreSQL database created for the run and dropped after it). It seeds an organization with an admin,
a connection made through the sandbox's consent page and N mailboxes from the sandbox directory, signs
in over HTTP and starts the run by posting the start form, as a person would. It polls until the run
is done and prints one JSON object as its last line. Every process it started is stopped at the end,
also on failure or Ctrl-C.

`floor_s` is what the configured limits allow: ceil(N/50) batch requests plus N code exchanges, at the
console's share of the application's per-second and per-minute limits. The console's budget and the
sandbox's limits are set from the same numbers, so raising them keeps both sides consistent.
`--naive` then authorizes the same mailboxes the way Cronofy's sample apps do: one request per
mailbox, in sequence, each code exchanged as its callback arrives.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import requests
from bulk_setup import (
    BIN, CONSOLE_COMMAND, DOMAIN, PASSWORD, ROOT, WORKER_COMMAND, Processes, console_env, free_port, fresh_database,
    healthy_emails, sandbox_env, seed, wait_http,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

BATCH = 50  # mailboxes per delegated-access request (§3.3)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, required=True, help="how many mailboxes to authorize")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--naive", action="store_true", help="also run the sample-app way, for comparison")
    parser.add_argument("--per-second", type=int, default=50, help="the application's limit per second")
    parser.add_argument("--per-minute", type=int, default=3000, help="the application's limit per minute")
    parser.add_argument("--share", type=float, default=0.8, help="the console's share of those limits")
    parser.add_argument("--callback-delay", default="0.05-0.5", help="seconds before each callback, e.g. 0.05-0.5")
    parser.add_argument("--workers", type=int, default=1, help="`flask worker` processes (2 needs --redis)")
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--postgres", help="PostgreSQL server URL; a fresh database is created on it")
    parser.add_argument("--redis", help="Redis URL for the queue and the shared rate budget")
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (0: 4 × floor)")
    args = parser.parse_args(argv)
    if args.workers > 1 and not args.redis:
        parser.error("several workers share one rate budget only through Redis: add --redis URL")
    return args


def log(args, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


def floor_seconds(n: int, per_second: float, per_minute: float, share: float) -> float:
    """Return the least time the limits allow for ceil(n/50) requests plus n exchanges."""
    calls = math.ceil(n / BATCH) + n
    return max(calls / (per_second * share), calls / (per_minute * share) * 60)


# Driving the console as a person would -----------------------------------------------------------------------


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    return found.group(1)


def start_run(console_url: str, org_id: int, email: str) -> int:
    """Sign in, open the start form for everything not yet authorized, post it; return the run id."""
    http = requests.Session()
    http.trust_env = False
    page = http.get(f"{console_url}/sign-in", timeout=30).text
    signed_in = http.post(f"{console_url}/sign-in", allow_redirects=False, timeout=30,
                          data={"csrf_token": _token(page), "email": email, "password": PASSWORD})
    if signed_in.status_code != 302:
        raise RuntimeError(f"sign-in failed ({signed_in.status_code})")
    url = f"{console_url}/orgs/{org_id}/runs/new?everything=1"
    form = http.get(url, timeout=60).text
    scope = re.search(r'name="scope" id="scope-1" value="([^"]+)"', form).group(1)
    posted = http.post(url, allow_redirects=False, timeout=300, data={
        "csrf_token": _token(form), "scope": scope, "continue_mode": "auto", "failure_threshold": "20"})
    found = re.search(r"/runs/(\d+)$", posted.headers.get("Location", ""))
    if posted.status_code != 302 or not found:
        raise RuntimeError(f"starting the run failed ({posted.status_code})")
    return int(found.group(1))


class RssSampler:
    """Sample the resident memory of the worker processes (and their children) every 0.2 s."""

    def __init__(self, pids: list[int]):
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, process) -> float:
        try:
            family = [process, *process.children(recursive=True)]
            return sum(p.memory_info().rss for p in family) / 2**20
        except psutil.Error:
            return 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mb = max([self.peak_mb, *(self._rss(p) for p in self.processes)])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def wait_for_run(database_url: str, run_id: int, timeout: float, processes: Processes) -> dict:
    """Poll the console's database until the run ends; return its final figures."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            processes.check_alive()
            with engine.connect() as conn:
                status = conn.execute(text("SELECT status FROM authorization_runs WHERE id = :id"),
                                      {"id": run_id}).scalar()
                if status in ("completed", "cancelled", "paused"):
                    return run_figures(conn, run_id, status)
            time.sleep(0.25)
    finally:
        engine.dispose()
    raise RuntimeError(f"run {run_id} did not finish within {timeout:.0f} s")


def run_figures(conn, run_id: int, status: str) -> dict:
    """Return the run's final figures from the console's database: authorized mailboxes, duplicates."""
    from sqlalchemy import text

    def one(sql):
        return conn.execute(text(sql), {"id": run_id}).scalar() or 0

    emails = conn.execute(text("SELECT email FROM mailboxes WHERE status = 'authorized'")).scalars()
    authorized = {email.lower() for email in emails}
    return {
        "status": status,
        "finished_at": conn.execute(text("SELECT finished_at FROM authorization_runs WHERE id = :id"),
                                    {"id": run_id}).scalar(),
        "authorized": len(authorized), "authorized_emails": authorized,
        # A mailbox requested twice in the run, or one attempt's code exchanged twice.
        "duplicate_requests": one("SELECT count(*) FROM (SELECT mailbox_id FROM authorization_attempts "
                                  "WHERE run_id = :id GROUP BY mailbox_id HAVING count(*) > 1) AS twice"),
        "duplicate_exchanges": one("SELECT count(*) FROM (SELECT r.attempt_id FROM callback_receipts r "
                                   "JOIN authorization_attempts a ON a.id = r.attempt_id WHERE a.run_id = :id "
                                   "AND r.outcome = 'authorized' GROUP BY r.attempt_id HAVING count(*) > 1) AS twice"),
    }


def extra_live_grants(sandbox_url: str, authorized: set[str]) -> int:
    """Count, from the sandbox's records, the live upstream grants beyond one per mailbox the console holds as
    authorized: all of them for a mailbox it does not hold as authorized."""
    accounts = requests.get(f"{sandbox_url}/sandbox/admin/grants.json", params={"domain": DOMAIN, "status": "active"},
                            timeout=300).json()["accounts"]
    return sum(max(0, account["active_grants"] - 1) if account["email"] in authorized else account["active_grants"]
               for account in accounts)


def count_events(sandbox_url: str, since: float, until: float, **filters) -> int:
    """Count the sandbox's logged requests matching filters between two times."""
    total, before = 0, None
    while True:
        params = {"kind": "request", "limit": 500, **filters, **({"before": before} if before else {})}
        page = requests.get(f"{sandbox_url}/sandbox/events.json", params=params, timeout=30).json()
        events = page["events"]
        total += sum(1 for e in events if since <= e["at"] <= until)
        if not page["next_before"] or (events and events[-1]["at"] < since):
            return total
        before = page["next_before"]


# The sample-app way ----------------------------------------------------------------------------------------


class NaiveSampleApp:
    """Cronofy's sample apps: one delegated request per mailbox, in sequence; each callback's code is
    exchanged right away in the callback handler. A 429 is waited out (Retry-After, else 1 s) and retried,
    so that nothing is lost and the comparison is about time."""

    def __init__(self, sandbox_url: str):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per callback is noise here
        self.sandbox_url = sandbox_url
        self.http = requests.Session()
        self.http.trust_env = False
        self.authorized: set[str] = set()
        self.http_429 = 0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._callback, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _post(self, path: str, **kwargs) -> requests.Response:
        while True:
            response = self.http.post(f"{self.sandbox_url}{path}", timeout=30, **kwargs)
            if response.status_code != 429:
                return response
            with self._lock:
                self.http_429 += 1
            time.sleep(float(response.headers.get("Retry-After") or 1))

    @Request.application
    def _callback(self, request):
        result = (request.get_json(silent=True) or {}).get("authorization", {})
        email = request.args.get("email", "")
        if result.get("code") and email not in self.authorized:
            answer = self._post("/oauth/token", json={
                "client_id": "ecc-sandbox-client", "client_secret": "ecc-sandbox-secret",
                "grant_type": "authorization_code", "code": result["code"], "redirect_uri": request.url})
            if answer.status_code == 200:
                with self._lock:
                    self.authorized.add(email)
        return Response("OK")

    def service_account_token(self) -> str:
        redirect_uri = f"{self.url}/connected"
        params = {"response_type": "code", "client_id": "ecc-sandbox-client", "redirect_uri": redirect_uri,
                  "scope": "service_account/accounts/manage", "delegated_scope": "read_only", "state": "naive"}
        answer = self.http.post(f"{self.sandbox_url}/enterprise_connect/oauth/authorize", allow_redirects=False,
                                timeout=30, data={**params, "domain": DOMAIN, "provider": "", "decision": "approve"})
        code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"]).group(1)
        return self._post("/oauth/token", json={
            "client_id": "ecc-sandbox-client", "client_secret": "ecc-sandbox-secret", "grant_type": "authorization_code",
            "code": code, "redirect_uri": redirect_uri}).json()["access_token"]

    def run(self, emails: list[str], timeout: float) -> dict:
        token = self.service_account_token()
        started = time.monotonic()
        for email in emails:
            self._post("/v1/service_account_authorizations", headers={"Authorization": f"Bearer {token}"}, json={
                "email": email, "scope": "read_only", "state": secrets.token_urlsafe(12),
                "callback_url": f"{self.url}/callback?email={email}"})
        deadline = started + timeout
        while len(self.authorized) < len(emails) and time.monotonic() < deadline:
            time.sleep(0.1)
        wall = time.monotonic() - started
        self._server.shutdown()
        return {"wall_s": round(wall, 1), "http_429": self.http_429, "lost": len(emails) - len(self.authorized)}


# The run ----------------------------------------------------------------------------------------------------


def start_services(args, folder: Path, processes: Processes, database_url: str) -> dict:
    """Start the sandbox, migrate and seed the console, start it and its workers; return what the run needs."""
    sandbox_url, console_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    log(args, f"Starting the sandbox at {sandbox_url} (logs in {folder})")
    processes.start("sandbox", [str(BIN / "gunicorn"), "sandbox:create_app()", "-b", urlsplit(sandbox_url).netloc,
                                "-w", "1", "--threads", "8", "--timeout", "300"], sandbox_env(args, folder))
    wait_http(f"{sandbox_url}/sandbox/admin/faults", processes, timeout=600)
    env = console_env(args, folder, database_url, sandbox_url, console_url)
    subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    emails = healthy_emails(sandbox_url, args.mailboxes)
    log(args, f"Seeding {args.mailboxes:,} mailboxes and a connection")
    org_id, admin_email = seed(env, sandbox_url, emails)
    processes.start("console", CONSOLE_COMMAND, env)
    workers = [processes.start(f"worker{i}", WORKER_COMMAND, env) for i in range(args.workers)]
    wait_http(f"{console_url}/healthz", processes)
    return {"sandbox_url": sandbox_url, "console_url": console_url, "org_id": org_id, "admin_email": admin_email,
            "worker_pids": [w.pid for w in workers], "emails": emails, "env": env}


def measure(args, folder: Path, processes: Processes) -> dict:
    """Run the whole benchmark and return the result object."""
    n = args.mailboxes
    floor = floor_seconds(n, args.per_second, args.per_minute, args.share)
    with fresh_database(args, folder) as database_url:
        ready = start_services(args, folder, processes, database_url)
        log(args, f"Authorizing {n:,} mailboxes; the limits allow it in {floor:.1f} s at best")
        with RssSampler(ready["worker_pids"]) as rss:
            since, started = time.time(), time.monotonic()
            run_id = start_run(ready["console_url"], ready["org_id"], ready["admin_email"])
            figures = wait_for_run(database_url, run_id, args.timeout or floor * 4 + 120, processes)
            wall, until = time.monotonic() - started, time.time()
        # Before the naive run, which authorizes the same mailboxes again with the same client.
        duplicates = {"extra_live_grants": extra_live_grants(ready["sandbox_url"], figures["authorized_emails"]),
                      "duplicate_requests": figures["duplicate_requests"],
                      "duplicate_exchanges": figures["duplicate_exchanges"]}
        result = {
            "mailboxes": n, "wall_s": round(wall, 1), "floor_s": round(floor, 1), "ratio": round(wall / floor, 3),
            "http_429": count_events(ready["sandbox_url"], since, until, status=429),
            "lost": n - figures["authorized"], "duplicates": sum(duplicates.values()), **duplicates,
            "worker_peak_rss_mb": round(rss.peak_mb, 1), "run_status": figures["status"],
            "limits": {"per_second": args.per_second, "per_minute": args.per_minute, "share": args.share,
                       "callback_delay": args.callback_delay},
            "workers": args.workers, "database": "postgresql" if args.postgres else "sqlite",
            "queue": "redis" if args.redis else "sqlite",
        }
        if args.naive:
            log(args, "Now the sample-app way, one mailbox at a time")
            naive = NaiveSampleApp(ready["sandbox_url"]).run(ready["emails"], timeout=floor * 10 + 300)
            result["naive"] = {**naive, "ratio": round(naive["wall_s"] / floor, 3)}
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    processes = Processes(folder)
    # A TERM (or Ctrl-C) unwinds through `finally`, so that no process outlives the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = measure(args, folder, processes)
    finally:
        processes.stop_all()
    if not args.json:
        print(f"{result['mailboxes']:,} mailboxes in {result['wall_s']} s; floor {result['floor_s']} s "
              f"(ratio {result['ratio']}); 429s {result['http_429']}; lost {result['lost']}; "
              f"duplicates {result['duplicates']} (extra live grants {result['extra_live_grants']}, requests "
              f"{result['duplicate_requests']}, exchanges {result['duplicate_exchanges']}); "
              f"worker peak RSS {result['worker_peak_rss_mb']} MB")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
