"""The task that fills in "Acme (demo data)" once the sandbox answers (services/demo does the steps).

`start_seeding()` is called when a worker starts (and by `flask demo seed`): it hands the demo
organization to `seed_demo`, which takes steps until one asks to wait (the bulk run, the sandbox not
answering yet), then schedules itself again. Each start writes a fresh chain token into the queue's
key-value store, and a task whose token is no longer the newest stops: however many workers start, or
how often, one chain of tasks carries the seed on. The steps themselves are worked out from the
database, so a chain cut short (a worker killed mid-seed) is resumed by the next one.
"""

from __future__ import annotations

import logging
import secrets

from flask import current_app

from extensions import db
from jobs.queue import PRIORITY_PUMP, bind, huey
from jobs.tasks import in_app_context, pump_run
from services.demo import acme, sandbox_admin

log = logging.getLogger(__name__)
MAX_STEPS = 12  # steps taken in one go before the task lets other work in
BACKOFF_BASE, BACKOFF_MAX = 1.0, 15.0  # seconds between tries while the sandbox does not answer
MAX_FAILED_TRIES = 20  # a step that keeps failing for minutes: give up until the next worker start


def _chain_key(organization_id: int) -> str:
    return f"demo-seed-chain:{organization_id}"


def _current(organization_id: int, chain: str) -> bool:
    return huey.get(_chain_key(organization_id), peek=True) == chain


def backoff(tries: int) -> float:
    """Return the wait before try number tries+1: 1, 2, 4, 8 s, then 15 s."""
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, tries - 1))


def start_seeding(organization_id: int, *, size: int = acme.DEFAULT_SIZE) -> str:
    """Start a new chain of seed_demo for the organization (ending any older one); return its token."""
    bind(current_app.config)
    chain = secrets.token_hex(8)
    huey.put(_chain_key(organization_id), chain)
    seed_demo(organization_id, chain, size, 0)
    return chain


def start_pending(size: int = acme.DEFAULT_SIZE) -> int | None:
    """Start seeding the demo organization if it exists and is not complete; return its id then."""
    organization = acme.find_organization()
    if organization is None or acme.is_complete(organization):
        return None
    start_seeding(organization.id, size=size)
    return organization.id


@huey.task(priority=PRIORITY_PUMP, name="seed_demo")
@in_app_context
def seed_demo(organization_id: int, chain: str, size: int, tries: int) -> None:
    """Take the demo organization's next steps; schedule itself again while the seed is not complete."""
    if not _current(organization_id, chain):
        return
    for _ in range(MAX_STEPS):
        try:
            step = acme.advance(organization_id, size=size)
        except (acme.DemoError, sandbox_admin.SandboxUnavailable, sandbox_admin.SandboxRefused) as exc:
            db.session.rollback()
            _try_later(organization_id, chain, size, tries + 1, exc)
            return
        db.session.commit()
        if step.pump_run is not None:
            pump_run(step.pump_run)
        log.log(logging.INFO if step.changed else logging.DEBUG, "Demo data: %s", step.summary)
        if step.done:
            return
        if step.wait is not None:
            seed_demo.schedule((organization_id, chain, size, 0), delay=step.wait, priority=PRIORITY_PUMP)
            return
    seed_demo(organization_id, chain, size, 0)


def _try_later(organization_id: int, chain: str, size: int, tries: int, exc: Exception) -> None:
    if tries > MAX_FAILED_TRIES:
        log.error("Demo data: giving up until the worker restarts: %s", exc)
        return
    wait = backoff(tries)
    if tries == 1 or not isinstance(exc, sandbox_admin.SandboxUnavailable):
        log.info("Demo data: %s Trying again in %.0f s.", exc, wait)
    seed_demo.schedule((organization_id, chain, size, tries), delay=wait, priority=PRIORITY_PUMP)
