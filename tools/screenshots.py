"""Take the README's screenshots: `make screenshots` (or `.venv/bin/python tools/screenshots.py`).

Starts the console as `make run` does — web, sandbox and worker as separate processes — but on free
loopback ports, with a fresh SQLite database, queue and sandbox in a temporary folder (nothing of
instance/ is read or written). It records "Acme (demo data)" with an admin, lets the worker fill it in
through the sandbox (jobs/demo.py), signs in as that admin in Chromium and saves full-page PNGs of the
overview, the mailbox list, the run page and a failed mailbox's page at 1280 and 390 px wide into
docs/screenshots/. Chromium is Debian's package, driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
OUT = ROOT / "docs" / "screenshots"
WIDTHS = {1280: 900, 390: 844}  # width: viewport height (a laptop, a phone)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN_EMAIL = "admin@acme-demo.example"
# Settings of the caller's own console stay out of the one started here.
NOT_PASSED_ON = ("REDIS_", "DATABASE_", "CRONOFY_", "SANDBOX_", "QUEUE_", "MAIL_", "PUBLIC_BASE_URL", "FLASK_")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(folder: Path) -> dict[str, str]:
    """Return the settings of a console and sandbox whose every file lives in folder."""
    web, sandbox = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(NOT_PASSED_ON)}
    env.update({
        "FLASK_APP": "app", "APP_ENV": "development", "SECRET_KEY": secrets.token_urlsafe(32),
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'console.sqlite'}", "QUEUE_PATH": str(folder / "queue.sqlite"),
        "MAIL_FILE_PATH": str(folder / "outbox"), "PUBLIC_BASE_URL": f"http://127.0.0.1:{web}",
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox}", "WEB_PORT": str(web), "SANDBOX_PORT": str(sandbox),
        "SANDBOX_DATABASE_URL": f"sqlite:///{folder / 'sandbox.sqlite'}",
        # The directory `make run` gives acme.example (Procfile), with quicker callbacks.
        "SANDBOX_SEED_USERS": "300", "SANDBOX_SEED_ROOMS": "12", "SANDBOX_SEED_SHARED": "8",
        "SANDBOX_CALLBACK_DELAY": "0.2-1.0",
    })
    return env


def seed(env: dict[str, str]):
    """Migrate the database, record the demo organization and its admin; return (app, organization id, password)."""
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "SECRET_KEY", "TOKEN_ENCRYPTION_KEYS",
                                                 "QUEUE_PATH", "MAIL_FILE_PATH", "PUBLIC_BASE_URL", "SANDBOX_URL")})
    os.environ["APP_ENV"] = "development"
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db
    from models.user import ROLE_ORG_ADMIN, User
    from services.accounts import accounts
    from services.demo import acme

    app = create_app()
    password = secrets.token_urlsafe(15)
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        organization = acme.ensure_organization()
        db.session.add(User(email=ADMIN_EMAIL, name="Ada Acme", role=ROLE_ORG_ADMIN, organization=organization,
                            password_hash=accounts.hash_password(password)))
        db.session.commit()
        organization_id = organization.id
    return app, organization_id, password


def start(stack: ExitStack, folder: Path, env: dict[str, str], name: str, *args: str) -> None:
    """Start a process of the console (its output in folder/<name>.log), stopped when the stack closes."""
    log = stack.enter_context(open(folder / f"{name}.log", "wb"))
    process = subprocess.Popen([str(BIN / "flask"), *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop():
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)


def wait_until(predicate, timeout: float, what: str, folder: Path) -> None:
    """Poll predicate until it holds; on a timeout, show the processes' logs and stop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    for log in sorted(folder.glob("*.log")):
        print(f"--- {log.name} (last lines)", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-25:]), file=sys.stderr)
    raise SystemExit(f"Gave up waiting for {what} after {timeout:.0f} s.")


def demo_pages(app, organization_id: int) -> dict[str, str]:
    """Return the pages to take, by file name stem: overview, mailbox list, run page, a failed mailbox's page."""
    from sqlalchemy import select

    from extensions import db
    from models.authorization import AuthorizationRun
    from models.mailbox import Mailbox

    with app.app_context():
        run_id = db.session.scalar(select(AuthorizationRun.id)
                                   .where(AuthorizationRun.organization_id == organization_id))
        mailbox_id = db.session.scalar(
            select(Mailbox.id).where(Mailbox.organization_id == organization_id, Mailbox.status == "failed",
                                     Mailbox.last_error_key == "unable_to_grant_scope").order_by(Mailbox.id).limit(1)
        ) or db.session.scalar(select(Mailbox.id).where(Mailbox.organization_id == organization_id).limit(1))
        db.session.remove()
    base = f"/orgs/{organization_id}"
    return {"overview": base, "mailboxes": f"{base}/mailboxes", "run": f"{base}/runs/{run_id}",
            "mailbox": f"{base}/mailboxes/{mailbox_id}"}


def is_complete(app, organization_id: int) -> bool:
    from extensions import db
    from models.organization import Organization
    from services.demo import acme

    with app.app_context():
        try:
            return acme.is_complete(db.session.get(Organization, organization_id))
        finally:
            db.session.remove()


def take(base_url: str, pages: dict[str, str], password: str) -> list[Path]:
    """Sign in as the demo admin at each width and save a full-page PNG of every page; return the files."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Chromium is not installed (apt-get install -y chromium).")
    OUT.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        for width, height in WIDTHS.items():
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.goto(f"{base_url}/sign-in")
            page.get_by_label("Email").fill(ADMIN_EMAIL)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state("load")
            for stem, path in pages.items():
                page.goto(base_url + path, wait_until="load")
                page.wait_for_timeout(300)  # let the page's scripts settle (progress, toggles)
                target = OUT / f"{stem}-{width}.png"
                page.screenshot(path=str(target), full_page=True)
                saved.append(target)
            context.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (logs, databases).")
    options = parser.parse_args()
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="ecc-screenshots-"))
    env = environment(folder)
    app, organization_id, password = seed(env)
    with ExitStack() as stack:
        start(stack, folder, env, "sandbox", "--app", "sandbox", "run", "--host", "127.0.0.1",
              "--port", env["SANDBOX_PORT"], "--no-reload")
        start(stack, folder, env, "web", "run", "--host", "127.0.0.1", "--port", env["WEB_PORT"], "--no-reload")
        wait_until(lambda: requests.get(env["PUBLIC_BASE_URL"] + "/sign-in", timeout=2).ok, 30, "the console",
                   folder)
        start(stack, folder, env, "worker", "worker")
        wait_until(lambda: is_complete(app, organization_id), 180, "the demo data", folder)
        print(f"Demo data filled in after {time.monotonic() - began:.0f} s; taking screenshots.")
        saved = take(env["PUBLIC_BASE_URL"], demo_pages(app, organization_id), password)
    if not options.keep:
        shutil.rmtree(folder, ignore_errors=True)
    for path in saved:
        print(f"Saved {path.relative_to(ROOT)}")
    print(f"Done in {time.monotonic() - began:.0f} s.")


if __name__ == "__main__":
    main()
