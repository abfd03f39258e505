"""The dependency rules of style.md hold: layers, a Flask-free client, a sandbox apart from the console."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("blueprints", "services", "models", "jobs", "sandbox", "templates", "static")
MARKER = re.compile(r"\b(TODO|FIXME|XXX)\b|NotImplementedError")


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_unfinished_markers_in_reachable_code():
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".html", ".js", ".css")]
    files += [ROOT / name for name in ("app.py", "config.py", "extensions.py", "cli.py", "wsgi.py")]
    found = [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
             if MARKER.search(line)]
    assert not found, f"unfinished markers in code a user can reach: {found[:10]}"
