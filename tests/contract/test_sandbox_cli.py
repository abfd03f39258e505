"""Contract: `flask --app sandbox reset | seed | db-init` on a real database."""

import os
import subprocess
import sys
from pathlib import Path

from tests.plugins.sandbox_server import start_sandbox

ROOT = Path(__file__).resolve().parents[2]


def _flask(database_url, *args):
    env = {**os.environ, "SANDBOX_DATABASE_URL": database_url, "SANDBOX_DELIVERY_THREAD": "0"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "sandbox", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _counts(database_url):
    server = start_sandbox(database_url, DELIVERY_THREAD=False)
    try:
        members = server.directory(limit=1000)
    finally:
        server.stop()
    counts = {}
    for member in members:
        key = (member["domain"], member["kind"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_fresh_database_gets_the_demo_directory(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    assert "3 domains" in _flask(database_url, "db-init")
    counts = _counts(database_url)
    for domain in ("acme.example", "globex.example", "initech.example"):
        total = sum(v for (d, _), v in counts.items() if d == domain)
        assert 40 <= total <= 60


def test_seed_sizes_one_domain(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    output = _flask(database_url, "seed", "--users", "300", "--rooms", "20", "--domain", "globex.example")
    assert "globex.example" in output
    counts = _counts(database_url)
    assert counts[("globex.example", "user")] == 300
    assert counts[("globex.example", "room")] + counts[("globex.example", "equipment")] == 20
    assert counts[("globex.example", "shared")] == 15
    assert counts[("acme.example", "user")] == 40


def test_seed_refuses_an_unknown_domain(tmp_path):
    env = {**os.environ, "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sb.sqlite'}",
           "SANDBOX_DELIVERY_THREAD": "0"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "sandbox", "seed", "--domain", "nope.example"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "unknown domain" in result.stderr


def test_reset_empties_the_database(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'sb.sqlite'}"
    _flask(database_url, "seed", "--users", "10", "--rooms", "2")
    assert "emptied" in _flask(database_url, "reset")
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from members")).scalar() == 0
        assert connection.execute(text("select count(*) from domains")).scalar() == 0
        assert connection.execute(text("select client_id from clients")).scalars().all() == ["ecc-sandbox-client"]
    engine.dispose()
