"""What a batch's answer does: its mailboxes requested, the batch put back for later, failed with the
upstream's reason, or the run paused. Putting a batch back is fenced by its own claim (`sending` under
its `batch_key`), so a pump never requeues attempts that another pump has taken over and is sending.
"""

from __future__ import annotations

import random
import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.connection import Connection
from services.cronofy import CronofyError, ForbiddenError, InvalidRequestError, UnavailableError
from services.engine import attempts, run_clock
from services.platform import events

_ENTRY_INDEX = re.compile(r"^service_account_authorizations\[(\d+)\]")


def backoff(tries: int) -> float:
    """Return a jittered exponential delay for the given try (1-based)."""
    base = current_app.config.get("SEND_RETRY_BASE_SECONDS", 1.0)
    return min(60.0, base * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


def mark_requested(batch: list[AuthorizationAttempt]) -> None:
    """Record the 202 of a batch and commit."""
    attempts.mark_requested([a.id for a in batch])
    db.session.commit()


def release(batch: list[AuthorizationAttempt], *, delay: float = 0.0, count_try: bool = False) -> None:
    """Put a batch back in the queue (due after delay); the try counts only when the upstream failed."""
    due = utcnow() + timedelta(seconds=delay) if delay else None
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_([a.id for a in batch]), AuthorizationAttempt.status == "sending",
               AuthorizationAttempt.batch_key == batch[0].batch_key)
        .values(status="queued", claimed_until=None, batch_key=None, next_try_at=due,
                send_tries=AuthorizationAttempt.send_tries - (0 if count_try else 1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def pause_and_release(run: AuthorizationRun, batch, reason: str) -> None:
    """Put the batch back and pause the run with the reason."""
    release(batch)
    pause(run.id, reason)


def pause(run_id: int, reason: str) -> None:
    """Pause a running run with a reason shown to the admin (the engine's own pauses), stopping its clock."""
    clock = db.session.execute(select(AuthorizationRun.active_seconds, AuthorizationRun.running_since)
                               .where(AuthorizationRun.id == run_id)).one_or_none()
    if clock is None:
        return
    since = AuthorizationRun.running_since
    paused = db.session.execute(
        # Only the run as read: running, on the same stretch of its clock (else someone else changed it).
        update(AuthorizationRun).where(AuthorizationRun.id == run_id, AuthorizationRun.status == "running",
                                       since.is_(None) if clock.running_since is None else since == clock.running_since)
        .values(pause_reason=reason, **run_clock.paused_values(clock.active_seconds, clock.running_since, utcnow()))
        .returning(AuthorizationRun.organization_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if paused is not None:
        events.record("run.paused", organization_id=paused, subject_type="run", subject_id=run_id)
    db.session.commit()


def connection_trouble(run: AuthorizationRun, batch, exc: Exception) -> None:
    """Pause the run if its connection is gone; otherwise resend the batch later, or fail it."""
    connection = db.session.get(Connection, run.connection_id, populate_existing=True)
    if connection is None or connection.status != "active":
        return pause_and_release(run, batch, f"{exc} Reconnect it, then resume this run.")
    _retry_or_fail(batch, "connection_unavailable", str(exc))


def settle_error(run: AuthorizationRun, batch, exc: CronofyError) -> None:
    """Act on the upstream's refusal of a batch: resend later, pause the run, or fail its mailboxes."""
    if isinstance(exc, UnavailableError):
        return _retry_or_fail(batch, exc.error_key or "upstream_unavailable", _unavailable_words(exc))
    if isinstance(exc, ForbiddenError):
        return pause_and_release(run, batch, f"Cronofy refused the request: {exc.description} "
                                              "Reconnect with the needed permissions, then resume.")
    if isinstance(exc, InvalidRequestError) and _fail_named_entries(batch, exc):
        return None
    for attempt in batch:
        attempts.fail(attempt, exc.error_key or f"http_{exc.status}", exc.description)
    db.session.commit()


def _unavailable_words(exc: UnavailableError) -> str:
    if exc.error_key == "timeout":
        return "Cronofy did not answer in time, several times in a row."
    return f"Cronofy was unavailable, several times in a row ({exc.description})."


def _retry_or_fail(batch: list[AuthorizationAttempt], key: str, description: str) -> None:
    """Resend later with jittered exponential backoff; after SEND_MAX_TRIES, fail with the reason."""
    limit = current_app.config["SEND_MAX_TRIES"]
    spent = [a for a in batch if a.send_tries >= limit]
    for attempt in spent:
        if _still_sending(attempt):
            attempts.fail(attempt, key, description)
    db.session.commit()
    rest = [a for a in batch if a.send_tries < limit]
    if rest:
        release(rest, delay=backoff(max(a.send_tries for a in rest)), count_try=True)


def _still_sending(attempt: AuthorizationAttempt) -> bool:
    """Tell whether the attempt is still in this batch (not requeued and taken by another pump meanwhile)."""
    key = attempt.batch_key
    db.session.refresh(attempt)
    return attempt.status == "sending" and attempt.batch_key == key


def _fail_named_entries(batch: list[AuthorizationAttempt], exc: InvalidRequestError) -> bool:
    """For a 422 naming single entries, fail those and resend the rest; return False if none is named."""
    named: dict[int, str] = {}
    for field_name, entries in exc.errors.items():
        match = _ENTRY_INDEX.match(field_name)
        if match is None:
            return False
        described = "; ".join(str(e.get("description") or e.get("key")) for e in entries if isinstance(e, dict))
        named[int(match.group(1))] = f"{field_name}: {described}"
    if not named:
        return False
    for index, attempt in enumerate(batch):
        if index in named:
            attempts.fail(attempt, exc.error_key or "invalid_request", named[index])
    db.session.commit()
    release([a for i, a in enumerate(batch) if i not in named])
    return True
