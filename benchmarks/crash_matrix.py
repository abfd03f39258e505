"""Disturb whole bulk authorizations with crashes and outages; check that nothing is lost or duplicated.

    .venv/bin/python benchmarks/crash_matrix.py [--mailboxes 2000] [--only RUN ...] [--pause 15]
        [--per-second 50] [--per-minute 3000] [--timeout 0] [--keep-logs]

Each run is a full bulk authorization of N healthy mailboxes set up and started as
benchmarks/bulk_authorize.py does (the sandbox under gunicorn in benchmark mode, the console under
gunicorn, `flask worker`, an organization seeded with a connection and N mailboxes, signed in over
HTTP, the start form posted), on a PostgreSQL server and a Redis server of its own that this script
starts on free loopback ports (tests/private_services.py; never the machine's own). The console and
the workers use them through DATABASE_URL and REDIS_URL, as in production. The faults come when a
share of the mailboxes is authorized:

    worker-kill-once        SIGKILL the only worker at 30 %; start it again 2 s later
    worker-kill-twice       the same at 30 % and at 65 %
    two-workers-one-killed  two workers; SIGKILL one (worker0) at 30 %; the other one finishes alone
    gunicorn-kill           SIGKILL the console's gunicorn, master and workers, at 30 %; start it again
                            3 s later (callbacks fail meanwhile and the sandbox sends them again)
    redis-down-15s          SIGKILL Redis at 30 %; start it again on the same port after --pause seconds
                            (it keeps nothing on disk: the queue and the budget's counts are gone, as in a crash)
    postgres-down-15s       stop PostgreSQL with `-m immediate` at 30 %; start it again after --pause seconds

It prints one JSON line per run, then a summary line (`{"summary": true, ..., "ok", "not_ok"}`). Per run:

    authorized, lost        mailboxes authorized at the end; seeded mailboxes (all of them healthy) that are not
    duplicate_requests      mailboxes for which the sandbox accepted more delegated-access requests than one plus
                            the re-requests the console's own timeline explains. An attempt that ended
                            `exchange_interrupted` (its exchange was cut short, so the mailbox is asked again) or
                            `lost_authorization_revoked` (the account's grants were revoked so that only one
                            remains, so it is asked once more) is the designed recovery, not a duplicate, and
                            allows one more request each. Anything else counts, e.g. a batch sent again because
                            its sender died after the sandbox had accepted it. The sandbox keeps one code per
                            accepted request entry (every mailbox here is healthy), so codes are counted per email.
    duplicate_exchanges     codes exchanged successfully more than once at the sandbox (per account, grants made
                            beyond the codes used), plus attempts for which the console recorded two successful
                            exchanges (bulk_authorize.py's figure)
    extra_live_grants       from the sandbox's grants.json at the end: active grants beyond one per mailbox the
                            console holds as authorized, all of them for a mailbox it does not
    faults                  per fault: `fault`, `at_authorized` (mailboxes authorized when it came), `at_s` (since
                            the start form was posted), `down_s` (until it ended: the worker or gunicorn started
                            again, the server answering again; for two-workers-one-killed the kill itself) and
                            `resume_s`: seconds from its end until progress resumes, i.e. the next authorization on
                            a mailbox's timeline in the console's database, or the next delegated-access request
                            accepted or code exchanged at the sandbox, whichever comes first (null if none came);
                            and `next_request_s`: the same until the next delegated-access request alone (the
                            pump running again, the dead worker's leased work taken over; null when every batch
                            had been sent already)
    resume_s                the faults' `resume_s`, in order
    wall_s, floor_s, ratio  from posting the start form to the run being complete (outages included); the floor as
                            bulk_authorize.py computes it (ceil(N/50) + N calls at 80 % of the limits)
    ok                      every fault was inflicted; lost, duplicate_requests, duplicate_exchanges and
                            extra_live_grants are 0; and both resume_s and next_request_s are within 15 s of every
                            worker fault (the first three runs). An `error` (a timeout, a process that died) makes it false.

The sandbox's codes, grants and event log are read from its own SQLite file (read-only) once the run is
over. Exit status 1 when a run is not ok. Every process the script starts (PostgreSQL and Redis included)
is stopped at the end of its run, also on failure and on Ctrl-C, and the temporary folders are removed
(`--keep-logs` keeps the one with the processes' logs and prints where it is).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from bulk_authorize import extra_live_grants, floor_seconds, run_figures, start_run, start_services, wait_for_run
from bulk_setup import CONSOLE_COMMAND, ROOT, WORKER_COMMAND, Processes

sys.path.insert(0, str(ROOT))
from tests.private_services import PrivatePostgres, PrivateRedis, postgres_bin_dir  # noqa: E402

WORKER_RESTART_AFTER = 2.0  # seconds between killing a worker and starting it again
GUNICORN_RESTART_AFTER = 3.0
RESUME_LIMIT = 15.0  # a worker fault must be followed by progress within this many seconds
RECOVERY_KEYS = ("exchange_interrupted", "lost_authorization_revoked")  # re-requests by design
REQUEST_PATH = "/v1/service_account_authorizations"


@dataclass(frozen=True)
class Plan:
    """A disturbed run: how many workers, and which faults at which share of the mailboxes authorized."""

    workers: int
    faults: tuple[tuple[str, float], ...]


PLANS = {
    "worker-kill-once": Plan(1, (("kill_worker", 0.30),)),
    "worker-kill-twice": Plan(1, (("kill_worker", 0.30), ("kill_worker", 0.65))),
    "two-workers-one-killed": Plan(2, (("kill_worker_for_good", 0.30),)),
    "gunicorn-kill": Plan(1, (("kill_gunicorn", 0.30),)),
    "redis-down-15s": Plan(1, (("redis_down", 0.30),)),
    "postgres-down-15s": Plan(1, (("postgres_down", 0.30),)),
}
WORKER_FAULTS = ("kill_worker", "kill_worker_for_good")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=2000, help="mailboxes to authorize in each run")
    parser.add_argument("--only", action="append", choices=list(PLANS), metavar="RUN",
                        help=f"run only this one (repeatable): {', '.join(PLANS)}")
    parser.add_argument("--per-second", type=int, default=50, help="the application's limit per second")
    parser.add_argument("--per-minute", type=int, default=3000, help="the application's limit per minute")
    parser.add_argument("--pause", type=float, default=15, help="seconds Redis or PostgreSQL stays down")
    parser.add_argument("--timeout", type=float, default=0,
                        help="give a run up after this many seconds (0: 4 × floor + 120 + the outages)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and say where")
    args = parser.parse_args(argv)
    # What bulk_authorize.py's set-up reads, at its defaults; `log` there prints progress to stderr.
    args.share, args.callback_delay, args.worker_threads, args.json = 0.8, "0.05-0.5", 8, False
    return args


# The servers and processes of one run, and the faults ------------------------------------------------------


class Stage:
    """One run's processes and private servers, and the faults inflicted on them."""

    def __init__(self, args, processes: Processes, postgres: PrivatePostgres, redis: PrivateRedis, env: dict):
        self.args, self.processes, self.postgres, self.redis, self.env = args, processes, postgres, redis, env

    def inflict(self, kind: str) -> float:
        """Inflict the fault and undo it as planned; return when it ended (epoch seconds)."""
        return getattr(self, f"_{kind}")()

    def _kill_worker(self) -> float:
        self.processes.kill("worker0")
        time.sleep(WORKER_RESTART_AFTER)
        self.processes.start("worker0", WORKER_COMMAND, self.env)
        return time.time()

    def _kill_worker_for_good(self) -> float:
        self.processes.kill("worker0")
        return time.time()

    def _kill_gunicorn(self) -> float:
        self.processes.kill("console")  # the master's process group holds its workers
        time.sleep(GUNICORN_RESTART_AFTER)
        self.processes.start("console", CONSOLE_COMMAND, self.env)
        return time.time()

    def _redis_down(self) -> float:
        self.redis.stop()
        time.sleep(self.args.pause)
        self.redis.start()
        return time.time()

    def _postgres_down(self) -> float:
        self.postgres.stop("immediate")
        time.sleep(self.args.pause)
        self.postgres.start()
        return time.time()


def _engine(database_url: str):
    from sqlalchemy import create_engine

    return create_engine(database_url, pool_pre_ping=True)


def wait_authorized(database_url: str, run_id: int, target: int, deadline: float, processes: Processes) -> int | None:
    """Poll until at least target mailboxes are authorized; return how many, or None if the run ended first."""
    from sqlalchemy import text

    engine = _engine(database_url)
    try:
        while time.monotonic() < deadline:
            processes.check_alive()
            with engine.connect() as conn:
                count = conn.execute(text("SELECT count(*) FROM mailboxes WHERE status = 'authorized'")).scalar()
                status = conn.execute(text("SELECT status FROM authorization_runs WHERE id = :id"),
                                      {"id": run_id}).scalar()
            if count >= target:
                return count
            if status in ("completed", "cancelled", "paused"):
                return None
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise RuntimeError(f"run {run_id} did not reach {target} authorized mailboxes in time")


# What happened: the console's database and the sandbox's records -------------------------------------------


def _epoch(value) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def console_records(database_url: str, run_id: int, status: str) -> dict:
    """Return the run's figures, the re-requests its timelines explain, and when mailboxes became authorized."""
    from sqlalchemy import bindparam, text

    explained = text("SELECT lower(m.email), count(*) FROM authorization_attempts a "
                     "JOIN mailboxes m ON m.id = a.mailbox_id WHERE a.run_id = :id AND a.error_key IN :keys "
                     "GROUP BY lower(m.email)").bindparams(bindparam("keys", expanding=True))
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            figures = run_figures(conn, run_id, status)
            figures["explained"] = dict(conn.execute(explained, {"id": run_id, "keys": list(RECOVERY_KEYS)}).all())
            figures["progress"] = [_epoch(at) for at in conn.execute(text(
                "SELECT created_at FROM mailbox_events WHERE to_status = 'authorized'")).scalars()]
    finally:
        engine.dispose()
    return figures


def sandbox_records(path: Path) -> dict:
    """Read, from the sandbox's own database, per email its codes (one per accepted request entry), the codes
    used and the grants made, and when requests were accepted and codes exchanged."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        codes = {email: (issued, used) for email, issued, used in db.execute(
            "SELECT m.email, count(*), count(c.used_at) FROM codes c JOIN accounts a ON a.id = c.subject_id "
            "JOIN members m ON m.id = a.member_id WHERE c.kind = 'account' GROUP BY m.email")}
        grants = dict(db.execute(
            "SELECT m.email, count(*) FROM grants g JOIN accounts a ON a.id = g.subject_id "
            "AND a.client_id = g.client_id JOIN members m ON m.id = a.member_id WHERE g.subject_type = 'account' "
            "GROUP BY m.email"))
        requests = sorted(at for (at,) in db.execute(
            "SELECT at FROM events WHERE kind = 'request' AND method = 'POST' AND path = ? AND status = 202",
            (REQUEST_PATH,)))
        exchanges = [at for (at,) in db.execute(
            "SELECT used_at FROM codes WHERE kind = 'account' AND used_at IS NOT NULL")]
    db.close()
    return {"codes": codes, "grants": grants, "requests": requests, "progress": requests + exchanges}


def resume_seconds(ended: float, progress: list[float]) -> float | None:
    """Return the seconds from ended to the first progress after it (progress sorted), or None."""
    index = bisect.bisect_right(progress, ended)
    return round(progress[index] - ended, 1) if index < len(progress) else None


def outcome(n: int, console: dict, sandbox: dict, live_extra: int) -> dict:
    """Return the run's counts: lost, duplicate requests and exchanges, extra live grants."""
    explained = console["explained"]
    duplicate_requests = sum(1 for email, (issued, _) in sandbox["codes"].items()
                             if issued > 1 + explained.get(email.lower(), 0))
    twice_at_sandbox = sum(max(0, sandbox["grants"].get(email, 0) - used)
                           for email, (_, used) in sandbox["codes"].items())
    return {"authorized": console["authorized"], "lost": n - console["authorized"],
            "duplicate_requests": duplicate_requests,
            "duplicate_exchanges": twice_at_sandbox + console["duplicate_exchanges"],
            "extra_live_grants": live_extra}


# One disturbed run ----------------------------------------------------------------------------------------


def drive(args, name: str, stage: Stage, ready: dict, database_url: str, folder: Path) -> dict:
    """Start the run, inflict the plan's faults as it goes, wait for its end; return the run's JSON object."""
    n, plan = args.mailboxes, PLANS[name]
    floor = floor_seconds(n, args.per_second, args.per_minute, args.share)
    outages = sum(args.pause if kind in ("redis_down", "postgres_down") else 3 for kind, _ in plan.faults)
    started, began = time.time(), time.monotonic()
    deadline = began + (args.timeout or floor * 4 + 120 + outages)
    run_id = start_run(ready["console_url"], ready["org_id"], ready["admin_email"])
    faults = inflict_plan(name, stage, database_url, run_id, started, deadline)
    error, status = None, "unfinished"
    try:
        status = wait_for_run(database_url, run_id, max(1.0, deadline - time.monotonic()), stage.processes)["status"]
    except RuntimeError as exc:  # a timeout or a dead process: still count what happened
        error = str(exc)
    wall = time.monotonic() - began
    console = console_records(database_url, run_id, status)
    sandbox = sandbox_records(folder / "sandbox.sqlite")
    counts = outcome(n, console, sandbox, extra_live_grants(ready["sandbox_url"], console["authorized_emails"]))
    progress = sorted(console["progress"] + sandbox["progress"])
    for fault in faults:
        if "ended" in fault:
            ended = fault.pop("ended")
            fault["resume_s"] = resume_seconds(ended, progress)
            fault["next_request_s"] = resume_seconds(ended, sandbox["requests"])
    return {"run": name, "mailboxes": n, **counts, "resume_s": [f.get("resume_s") for f in faults],
            "faults": faults, "wall_s": round(wall, 1), "floor_s": round(floor, 1), "ratio": round(wall / floor, 3),
            "run_status": status, "workers": plan.workers, "ok": is_ok(counts, faults, error),
            **({"error": error} if error else {})}


def inflict_plan(name: str, stage: Stage, database_url: str, run_id: int, started: float,
                 deadline: float) -> list[dict]:
    """Inflict each of the plan's faults once its share of mailboxes is authorized; return what was done."""
    n, faults = stage.args.mailboxes, []
    for kind, share in PLANS[name].faults:
        reached = wait_authorized(database_url, run_id, math.ceil(share * n), deadline, stage.processes)
        if reached is None:
            faults.append({"fault": kind, "skipped": "the run was over first"})
            continue
        log(f"{name}: {kind} at {reached} authorized")
        at = time.time()
        ended = stage.inflict(kind)
        faults.append({"fault": kind, "at_authorized": reached, "at_s": round(at - started, 1),
                       "down_s": round(ended - at, 1), "ended": ended})
    return faults


def is_ok(counts: dict, faults: list[dict], error: str | None) -> bool:
    """Tell whether the run finished with nothing lost or duplicated, every fault inflicted, and progress
    resumed within RESUME_LIMIT of every worker fault."""
    clean = not any(counts[key] for key in ("lost", "duplicate_requests", "duplicate_exchanges", "extra_live_grants"))
    # Both the first progress and the pump's next batch (the dead worker's leased work taken over) count.
    resumed = all(f.get("resume_s") is not None and f["resume_s"] <= RESUME_LIMIT
                  and (f.get("next_request_s") is None or f["next_request_s"] <= RESUME_LIMIT)
                  for f in faults if f["fault"] in WORKER_FAULTS)
    return error is None and clean and resumed and not any("skipped" in f for f in faults)


def disturbed_run(args, name: str, folder: Path) -> dict:
    """Set one run up on fresh private servers, drive it, and stop everything it started."""
    folder.mkdir()
    processes, redis, postgres = Processes(folder), PrivateRedis(), None
    try:
        redis.start()
        postgres = PrivatePostgres(postgres_bin_dir())
        postgres.start()
        database_url = postgres.create_database("console")
        run_args = argparse.Namespace(**{**vars(args), "workers": PLANS[name].workers, "redis": redis.url(0),
                                         "postgres": postgres.url()})
        ready = start_services(run_args, folder, processes, database_url)
        stage = Stage(args, processes, postgres, redis, ready["env"])
        return drive(run_args, name, stage, ready, database_url, folder)
    finally:
        with uninterrupted():
            processes.stop_all()
            redis.close()
            if postgres is not None:
                postgres.close()


@contextmanager
def uninterrupted():
    """Hold Ctrl-C and TERM off while the processes are being stopped, so that none is left behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if postgres_bin_dir() is None:
        sys.exit("PostgreSQL's server programs (initdb, pg_ctl) are needed: apt-get install postgresql")
    names = [name for name in PLANS if not args.only or name in args.only]
    folder = Path(tempfile.mkdtemp(prefix="ecc-crash-"))
    # A TERM (or Ctrl-C) unwinds through `finally`, so that no process outlives the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    try:
        for name in names:
            log(f"{name}: {args.mailboxes:,} mailboxes")
            try:
                result = disturbed_run(args, name, folder / name)
            except Exception as exc:  # noqa: BLE001 - one broken run must not hide the others
                result = {"run": name, "mailboxes": args.mailboxes, "ok": False,
                          "error": f"{type(exc).__name__}: {exc}"}
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        if args.keep_logs:
            log(f"logs in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    failed = [r["run"] for r in results if not r["ok"]]
    print(json.dumps({"summary": True, "mailboxes": args.mailboxes, "runs": len(results), "ok": not failed,
                      "not_ok": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
