"""Time the mailbox list page at 1,000 and at 100,000 mailboxes, on SQLite (and PostgreSQL when given).

For each database, one fresh migrated database per size: an organization with two connections and N
mailboxes bulk-inserted (mixed statuses, kinds, groups). The list page is then rendered through the Flask
test client, signed in, `--runs` times for each of a few filter combinations (and a keyset page deep in
the list), the two sizes alternately so that other load on the machine hits both alike. Prints one JSON
object: per database, the median server time of the page at each size (pooled over the combinations, and
per combination) and the ratio 100,000 / 1,000, which must stay under 2 (design.md "Scale targets");
exits 1 otherwise.

Usage: .venv/bin/python benchmarks/mailbox_list.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
(or BENCH_POSTGRES_URL). On PostgreSQL it creates and finally drops its own databases, ecc_bench_1000 and
ecc_bench_100000, through the maintenance database `postgres`; it never touches the database named in the
URL (e.g. `test`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app  # noqa: E402
from extensions import db  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.connection import Connection  # noqa: E402
from models.mailbox import MAILBOX_STATUSES, Mailbox  # noqa: E402
from services.accounts import sessions  # noqa: E402
from models.organization import Organization  # noqa: E402
from models.user import ROLE_ORG_ADMIN, User  # noqa: E402

BENCH_DATABASE = "ecc_bench"
SIZES = (1_000, 100_000)
LIMIT_RATIO = 2.0
# What admins do on the list: the default view, a status from the summary bar, kind and group filters with
# other sorts, a connection, and a page deep in the list (keyset, so no cheaper or dearer than the first).
COMBINATIONS = {
    "default": {},
    "status": {"status": "failed"},
    "kind_by_name": {"kind": "resource", "sort": "name"},
    "group_by_update": {"group": "Group 07", "sort": "updated", "direction": "desc"},
    "connection_by_status": {"connection_id": "{connection}", "sort": "status"},
    "deep_page": {"after": "{deep_cursor}"},
}


def parse_args():
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server URL (any database on it; ecc_bench is created next to it)")
    parser.add_argument("--runs", type=int, default=15, help="timed renders per combination (default 15)")
    return parser.parse_args()


def sqlite_databases(folder: str) -> dict[int, str]:
    """Return a fresh SQLite URL per size, in folder."""
    return {size: f"sqlite:///{folder}/bench-{size}.sqlite" for size in SIZES}


def postgres_databases(server_url: str) -> tuple[dict[int, str], object]:
    """Create a fresh database per size (ecc_bench_1000, ...) on the server; return their URLs and a dropper."""
    url = make_url(server_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    maintenance = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    names = {size: f"{BENCH_DATABASE}_{size}" for size in SIZES}

    def drop() -> None:
        with maintenance.connect() as conn:
            for name in names.values():
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        maintenance.dispose()

    drop()
    with maintenance.connect() as conn:
        for name in names.values():
            conn.execute(text(f"CREATE DATABASE {name}"))
    return {size: url.set(database=name).render_as_string(hide_password=False) for size, name in names.items()}, drop


def make_app(url: str):
    """Return the console app on url, with the settings a test run uses."""
    return create_app({
        "APP_ENV": "testing", "TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": secrets.token_hex(16), "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "SERVER_NAME": None,
    })


def seed(size: int) -> tuple[User, list[int]]:
    """Create the organization, its admin and connections, and `size` mailboxes; return (admin, connection ids)."""
    organization = Organization(name="Bench", slug="bench", data_center="us")
    db.session.add(organization)
    db.session.flush()
    admin = User(email="admin@bench.example", name="Admin", role=ROLE_ORG_ADMIN, organization_id=organization.id)
    connections = [Connection(organization_id=organization.id, provider="google", data_center="us",
                              status="active", domain=f"site{n}.bench.example") for n in range(2)]
    db.session.add_all([admin, *connections])
    db.session.flush()
    ids = [c.id for c in connections]
    now = utcnow()
    for start in range(0, size, 10_000):
        rows = [_row(organization.id, ids, n, now) for n in range(start, min(start + 10_000, size))]
        db.session.execute(insert(Mailbox), rows)
    db.session.commit()
    return admin, ids


def _row(organization_id: int, connection_ids: list[int], n: int, now) -> dict:
    status = MAILBOX_STATUSES[n % len(MAILBOX_STATUSES)]
    kind = ("user", "user", "user", "shared", "resource")[n % 5]
    return {
        "organization_id": organization_id, "connection_id": connection_ids[n % 2],
        "email": f"person{(n * 7919) % 1_000_003:07d}.{n}@site{n % 2}.bench.example", "name": f"Person {n:06d}",
        "kind": kind, "group_name": f"Group {n % 40:02d}", "source": "import", "status": status,
        "last_error_description": "Outside the delegation policy" if status == "failed" else None,
        "status_changed_at": now, "created_at": now, "updated_at": now,
    }


def analyze(url: str) -> None:
    """Refresh the planner statistics, as autovacuum (or SQLite's ANALYZE) would after a big import."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE mailboxes" if url.startswith("postgresql") else "ANALYZE"))


def page_urls(organization_id: int, connection_ids: list[int]) -> dict[str, str]:
    """Return the URL of each combination (the deep page's cursor comes from walking ten pages in)."""
    base = f"/orgs/{organization_id}/mailboxes"
    cursor = _deep_cursor(pages=10)
    urls = {}
    for name, args in COMBINATIONS.items():
        filled = {k: v.format(connection=connection_ids[1], deep_cursor=cursor) for k, v in args.items()}
        urls[name] = base + ("?" + "&".join(f"{k}={v}" for k, v in filled.items()) if filled else "")
    return urls


def _deep_cursor(pages: int) -> str:
    from services.mailboxes import mailbox_query
    from services.mailboxes.mailbox_query import MailboxFilter

    organization = db.session.scalar(db.select(Organization))
    cursor = None
    for _ in range(pages):
        cursor = mailbox_query.page(organization, MailboxFilter(), cursor).next_cursor
    return cursor


class Subject:
    """One seeded database of one size, with a signed-in client and the URLs to time."""

    def __init__(self, url: str, size: int):
        self.app = make_app(url)
        with self.app.app_context():
            from flask_migrate import upgrade

            upgrade()
            admin, connection_ids = seed(size)
            analyze(url)
            self.client = self.app.test_client()
            started = sessions.start_session(admin)
            db.session.commit()
            with self.client.session_transaction() as session:
                session["_user_id"], session["_fresh"], session["_sid"] = admin.get_id(), True, started.token
            self.urls = page_urls(admin.organization_id, connection_ids)

    def close(self) -> None:
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def measure(urls_by_size: dict[int, str], runs: int) -> dict:
    """Seed a database per size and time the page, alternating sizes so that load on the machine hits both alike."""
    subjects = {size: Subject(url, size) for size, url in urls_by_size.items()}
    try:
        for subject in subjects.values():
            warm_up(subject, runs=2)
        times = {size: {name: [] for name in COMBINATIONS} for size in SIZES}
        for _ in range(runs):
            for name in COMBINATIONS:
                for size in SIZES:
                    times[size][name].append(time_page(subjects[size], name))
    finally:
        for subject in subjects.values():
            subject.close()
    return summarize(times)


def time_page(subject: Subject, name: str) -> float:
    """Render one combination once; return the server time in milliseconds."""
    started = time.perf_counter()
    response = subject.client.get(subject.urls[name])
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or b"data-mailbox=" not in response.data:
        raise SystemExit(f"{subject.urls[name]} answered {response.status_code} without rows")
    return elapsed


def warm_up(subject: Subject, runs: int) -> None:
    """Render every combination `runs` times untimed (caches, compiled statements, templates)."""
    for name in COMBINATIONS:
        for _ in range(runs):
            time_page(subject, name)


def summarize(times: dict[int, dict[str, list[float]]]) -> dict:
    """Return the medians per size (pooled and per combination) and the ratios of the largest to the smallest."""
    small, large = SIZES
    pooled = {size: statistics.median([t for samples in times[size].values() for t in samples]) for size in SIZES}
    by_name = {size: {n: round(statistics.median(s), 2) for n, s in times[size].items()} for size in SIZES}
    return {
        f"median_ms_at_{small}": round(pooled[small], 2), f"median_ms_at_{large}": round(pooled[large], 2),
        "ratio": round(pooled[large] / pooled[small], 2),
        "ratio_by_combination": {n: round(by_name[large][n] / by_name[small][n], 2) for n in COMBINATIONS},
        "by_combination_ms": {str(size): by_name[size] for size in SIZES},
    }


def main() -> int:
    """Run the benchmark, print the JSON report and return the exit status."""
    args = parse_args()
    # A root handler keeps Alembic's env.py from configuring its INFO logging: stdout carries only the JSON.
    logging.basicConfig(level=logging.WARNING)
    report = {"page": "mailboxes.index", "runs_per_combination": args.runs, "limit_ratio": LIMIT_RATIO,
              "databases": {}}
    with tempfile.TemporaryDirectory(prefix="ecc-bench-") as folder:
        report["databases"]["sqlite"] = measure(sqlite_databases(folder), args.runs)
    if args.postgres:
        urls, drop = postgres_databases(args.postgres)
        try:
            report["databases"]["postgresql"] = measure(urls, args.runs)
        finally:
            drop()
    report["passed"] = all(result["ratio"] < LIMIT_RATIO for result in report["databases"].values())
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
