"""Benchmark the vendor API's token endpoint under gunicorn, against the sandbox.

    .venv/bin/python benchmarks/api_tokens.py [--mailboxes 20] [--seconds 5] [--rounds 3] [--threads 8]
        [--burst 200] [--postgres URL] [--redis URL] [--json]

It starts the sandbox and the console under gunicorn (and one `flask worker`) on a fresh database, seeds
an organization connected through the sandbox's consent page, creates an API key, and authorizes N
mailboxes through the API itself (`POST /organizations/{id}/runs`, polled with `GET /runs/{id}`). Then:

1. Throughput: `POST /mailboxes/{id}/access-token` for tokens that need no refresh, and `GET /healthz`,
   measured alternately (`--rounds` rounds of `--seconds` each, `--threads` clients), so that other load
   on the machine hits both alike. `ratio` = tokens per second / healthz per second (goal ≥ 0.5).
2. One refresh for many: the token of one mailbox is made to expire, then `--burst` concurrent requests
   ask for it. `upstream_refreshes` counts the sandbox's logged `POST /oauth/token` calls meanwhile (goal
   exactly 1) and `distinct_tokens` the different tokens answered (goal 1).

Prints one JSON object as its last line. Every process it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from bulk_setup import (
    BIN, CONSOLE_COMMAND, ROOT, WORKER_COMMAND, Processes, console_env, free_port, fresh_database, healthy_emails,
    sandbox_env, seed, wait_http,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=20, help="authorized mailboxes the requests spread over")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured stretch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of tokens and healthz")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients while measuring throughput")
    parser.add_argument("--burst", type=int, default=200, help="concurrent requests for one expired token")
    parser.add_argument("--postgres", help="PostgreSQL server URL; a fresh database is created on it")
    parser.add_argument("--redis", help="Redis URL (the rate limits and the queue), as in production")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    # What bulk_setup's environments read.
    args.per_second, args.per_minute, args.share = 50, 3000, 0.8
    args.callback_delay, args.worker_threads = "0.05-0.2", 8
    return args


def log(args, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


def _in_console(env: dict, work):
    """Run work(app) in an app context of the console, with the benchmark's environment."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from app import create_app
    from extensions import db

    app = create_app()
    with app.app_context():
        try:
            return work(app)
        finally:
            db.session.remove()
            db.engine.dispose()


def _create_key(app) -> str:
    from extensions import db
    from services.accounts import api_keys

    secret = api_keys.create_key("Benchmark", ["mailboxes:read", "runs:write", "tokens:read"]).secret
    db.session.commit()
    return secret


def _authorize_all(args, api: requests.Session, console_url: str, org_id: int) -> list[int]:
    started = api.post(f"{console_url}/api/v1/organizations/{org_id}/runs", timeout=30,
                       json={"action": "authorize", "mailboxes": "all_unauthorized"})
    started.raise_for_status()
    run_id = started.json()["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = api.get(f"{console_url}/api/v1/runs/{run_id}", timeout=30).json()
        if run["status"] in ("completed", "cancelled"):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"run {run_id} did not finish within 300 s")
    listed = api.get(f"{console_url}/api/v1/organizations/{org_id}/mailboxes", timeout=30,
                     params={"status": "authorized", "limit": 200}).json()["data"]
    if len(listed) < args.mailboxes:
        raise RuntimeError(f"only {len(listed)} of {args.mailboxes} mailboxes were authorized")
    return [int(m["id"]) for m in listed]


def _throughput(args, url_of, method: str, key: str) -> float:
    """Requests per second of `--threads` clients for `--seconds`; every answer must be 200."""
    stop = time.monotonic() + args.seconds
    counts, errors = [0] * args.threads, []

    def client(index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        while time.monotonic() < stop:
            response = session.request(method, url_of(), timeout=30)
            if response.status_code != 200:
                errors.append(response.status_code)
                return
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.threads)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{method} {url_of()} answered {errors[0]}")
    return sum(counts) / (time.monotonic() - began)


def _expire(mailbox_id: int):
    def work(app):
        from extensions import db
        from models.base import utcnow
        from models.mailbox import Mailbox

        db.session.get(Mailbox, mailbox_id).access_token_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    return work


def _burst(args, console_url: str, sandbox_url: str, key: str, mailbox_id: int, env: dict) -> dict:
    newest = requests.get(f"{sandbox_url}/sandbox/events.json", params={"limit": 1}, timeout=30).json()
    since = newest["events"][0]["id"] if newest.get("events") else 0
    _in_console(env, _expire(mailbox_id))
    url = f"{console_url}/api/v1/mailboxes/{mailbox_id}/access-token"
    gate = threading.Barrier(args.burst)

    def ask(_):
        gate.wait()
        return requests.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    with ThreadPoolExecutor(args.burst) as pool:
        answers = list(pool.map(ask, range(args.burst)))
    time.sleep(1.5)  # the sandbox writes its event log in the background
    events = requests.get(f"{sandbox_url}/sandbox/events.json", timeout=30,
                          params={"path": "/oauth/token", "method": "POST", "limit": 5000}).json()["events"]
    return {"burst": args.burst, "answered_200": sum(a.status_code == 200 for a in answers),
            "distinct_tokens": len({a.json().get("access_token") for a in answers if a.status_code == 200}),
            "upstream_refreshes": sum(1 for e in events if e["id"] > since)}


def measure(args, folder: Path, processes: Processes) -> dict:
    with fresh_database(args, folder) as database_url:
        sandbox_url, console_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        log(args, f"Starting the sandbox at {sandbox_url} and the console at {console_url} (logs in {folder})")
        processes.start("sandbox", [str(BIN / "gunicorn"), "sandbox:create_app()", "-b", urlsplit(sandbox_url).netloc,
                                    "-w", "1", "--threads", "8", "--timeout", "300"], sandbox_env(args, folder))
        wait_http(f"{sandbox_url}/sandbox/admin/faults", processes, timeout=600)
        env = {**console_env(args, folder, database_url, sandbox_url, console_url),
               "API_RATE_LIMIT": "10000000 per minute"}
        subprocess.run([str(BIN / "flask"), "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
        org_id, _ = seed(env, sandbox_url, healthy_emails(sandbox_url, args.mailboxes))
        key = _in_console(env, _create_key)
        processes.start("console", CONSOLE_COMMAND, env)
        processes.start("worker", WORKER_COMMAND, env)
        wait_http(f"{console_url}/healthz", processes)
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        log(args, f"Authorizing {args.mailboxes} mailboxes through the API")
        ids = _authorize_all(args, api, console_url, org_id)
        for mailbox_id in ids:  # every token fresh and cached before measuring
            api.post(f"{console_url}/api/v1/mailboxes/{mailbox_id}/access-token", timeout=30).raise_for_status()
        tokens, health = [], []
        for round_number in range(args.rounds):
            log(args, f"Round {round_number + 1} of {args.rounds}")
            tokens.append(_throughput(
                args, lambda: f"{console_url}/api/v1/mailboxes/{random.choice(ids)}/access-token", "POST", key))
            health.append(_throughput(args, lambda: f"{console_url}/healthz", "GET", key))
        log(args, f"{args.burst} concurrent requests for one expired token")
        burst = _burst(args, console_url, sandbox_url, key, ids[0], env)
    token_rate, health_rate = statistics.median(tokens), statistics.median(health)
    return {"benchmark": "api_tokens", "database": "postgresql" if args.postgres else "sqlite",
            "redis": bool(args.redis),
            "mailboxes": args.mailboxes, "threads": args.threads, "seconds_per_round": args.seconds,
            "rounds": args.rounds, "tokens_per_s": round(token_rate, 1), "healthz_per_s": round(health_rate, 1),
            "ratio": round(token_rate / health_rate, 3), "ratio_goal": 0.5, **burst}


def main(argv=None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="ecc-bench-"))
    processes = Processes(folder)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = measure(args, folder, processes)
    finally:
        processes.stop_all()
    if not args.json:
        print(f"tokens {result['tokens_per_s']}/s vs healthz {result['healthz_per_s']}/s: ratio {result['ratio']}; "
              f"{result['burst']} requests for an expired token caused {result['upstream_refreshes']} refresh(es), "
              f"{result['distinct_tokens']} distinct token(s)", file=sys.stderr)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
