"""Benchmark webhook delivery during a bulk authorization: every event delivered, once, signed, promptly.

    .venv/bin/python benchmarks/webhooks.py [--mailboxes 2000] [--fail-rates 0,0.3] [--postgres URL] [--json]

For each failure rate it sets up what benchmarks/bulk_authorize.py does (the sandbox and the console
under gunicorn, one `flask worker`, a fresh database, N seeded mailboxes), creates one webhook endpoint
subscribed to every event type, pointing at a receiver under gunicorn (benchmarks/webhook_receiver.py)
that verifies every signature with the reference library, and starts the bulk run as a person would.
Once the run is done and no delivery is waiting, it compares the `mailbox.authorized` events in the
console's log with what the receiver accepted:

- `events`, `delivered` (ids answered 2xx), `lost` (events never answered 2xx), `signature_failures`,
  `duplicates` (ids answered 2xx more than once; at-least-once allows them, receivers deduplicate);
- `delay_p50_s`, `delay_p95_s`, `delay_max_s`: from the event's commit-time `created_at` to the 2xx arrival;
- `run_ratio`: the bulk run's wall time over its rate-limit floor with webhooks on (goal ≤ 1.1);
- `requests_503`: the receiver's failures (with a fail rate, 30 % of its requests, never twice for one id).

Prints one JSON object as its last line. Every process it started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from bulk_authorize import floor_seconds, start_run, start_services, wait_for_run
from bulk_setup import BIN, Processes, free_port, fresh_database, wait_http


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=2000)
    parser.add_argument("--fail-rates", default="0,0.3", help="the receiver's 503 shares, one scenario each")
    parser.add_argument("--postgres", help="PostgreSQL server URL; a fresh database is created on it per scenario")
    parser.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for deliveries after the run")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    # What bulk_setup's environments read (bulk_authorize's defaults).
    args.per_second, args.per_minute, args.share = 50, 3000, 0.8
    args.callback_delay, args.worker_threads, args.workers, args.redis, args.timeout = "0.05-0.5", 8, 1, None, 0
    return args


def log(args, message: str) -> None:
    if not args.json:
        print(message, file=sys.stderr, flush=True)


def create_endpoint(url: str) -> str:
    """Create the endpoint in the console's database (the environment seed() set up); return its secret."""
    from app import create_app
    from extensions import db
    from services.webhooks import endpoints

    app = create_app()
    with app.app_context():
        issued = endpoints.create_endpoint(url, description="benchmark receiver")
        db.session.commit()
        secret = issued.secret
        db.engine.dispose()
    return secret


def wait_drained(database_url: str, timeout: float) -> float:
    """Wait until no delivery is pending or being sent (and the dispatcher caught up); return the seconds waited."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            with engine.connect() as conn:
                waiting = conn.execute(text("SELECT count(*) FROM webhook_deliveries "
                                            "WHERE status IN ('pending', 'sending')")).scalar()
                behind = conn.execute(text("SELECT count(*) FROM events WHERE id > coalesce((SELECT last_event_id "
                                           "FROM webhook_dispatch_cursor), 0)")).scalar()
            if not waiting and not behind:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise RuntimeError(f"deliveries were still waiting after {timeout:.0f} s")


def authorized_events(database_url: str) -> dict[str, float]:
    """Return {event id: created_at as a Unix time} of every mailbox.authorized event."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, created_at FROM events WHERE type = 'mailbox.authorized'")).all()
    finally:
        engine.dispose()
    return {str(row.id): _as_time(row.created_at) for row in rows}


def _as_time(value) -> float:
    """A stored time as a Unix time: SQLite hands back text (UTC), PostgreSQL an aware datetime."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


def figures(events: dict[str, float], received: list[dict]) -> dict:
    accepted: dict[str, list[float]] = {}
    for line in received:
        if line["status"] == 200 and line["verified"]:
            accepted.setdefault(line["id"], []).append(line["at"])
    delays = [min(accepted[i]) - at for i, at in events.items() if i in accepted]
    return {
        "events": len(events), "delivered": sum(1 for i in events if i in accepted),
        "lost": sum(1 for i in events if i not in accepted),
        "signature_failures": sum(1 for line in received if not line["verified"]),
        "duplicates": sum(len(accepted[i]) - 1 for i in events if i in accepted),
        "requests": len(received), "requests_503": sum(1 for line in received if line["status"] == 503),
        "delay_p50_s": round(percentile(delays, 0.5), 3), "delay_p95_s": round(percentile(delays, 0.95), 3),
        "delay_max_s": round(max(delays, default=0.0), 3),
    }


def scenario(args, fail_rate: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="ecc-bench-webhooks-"))
    processes = Processes(folder)
    try:
        with fresh_database(args, folder) as database_url:
            ready = start_services(args, folder, processes, database_url)
            receiver_url = f"http://127.0.0.1:{free_port()}"
            secret = create_endpoint(f"{receiver_url}/hooks")
            received_log = folder / "received.jsonl"
            processes.start("receiver", [str(BIN / "gunicorn"), "webhook_receiver:app", "--pythonpath", "benchmarks",
                                         "-b", receiver_url.removeprefix("http://"), "-w", "1", "--threads", "16"],
                            {**os.environ, "RECEIVER_SECRET": secret, "RECEIVER_LOG": str(received_log),
                             "RECEIVER_FAIL_RATE": str(fail_rate)})
            wait_http(receiver_url, processes)
            floor = floor_seconds(args.mailboxes, args.per_second, args.per_minute, args.share)
            log(args, f"Fail rate {fail_rate:.0%}: authorizing {args.mailboxes:,} mailboxes (floor {floor:.1f} s)")
            started = time.monotonic()
            run_id = start_run(ready["console_url"], ready["org_id"], ready["admin_email"])
            run = wait_for_run(database_url, run_id, floor * 4 + 120, processes)
            wall = time.monotonic() - started
            drained = wait_drained(database_url, args.drain_timeout)
            events = authorized_events(database_url)
            received = [json.loads(line) for line in received_log.read_text().splitlines() if line]
    finally:
        processes.stop_all()
    return {"fail_rate": fail_rate, "run_status": run["status"], "run_wall_s": round(wall, 1),
            "floor_s": round(floor, 1), "run_ratio": round(wall / floor, 3),
            "drained_after_run_s": round(drained, 1), **figures(events, received)}


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = [scenario(args, float(rate)) for rate in args.fail_rates.split(",")]
    result = {"mailboxes": args.mailboxes, "database": "postgresql" if args.postgres else "sqlite",
              "scenarios": results}
    if not args.json:
        for r in results:
            print(f"fail {r['fail_rate']:.0%}: {r['delivered']}/{r['events']} mailbox.authorized delivered, lost "
                  f"{r['lost']}, signature failures {r['signature_failures']}, duplicates {r['duplicates']}, "
                  f"p95 delay {r['delay_p95_s']} s; run ratio {r['run_ratio']}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
