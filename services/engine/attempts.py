"""Authorization attempts: creating them in bulk, ending them, and how long a step of upstream work may take.

An attempt is live (queued, sending, requested, exchanging) while `live_mailbox_id` holds its mailbox's
id; the unique constraint on that column means a mailbox never has two live attempts, whichever worker
or web process tries to create the second one.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.mailbox import Mailbox, MailboxEvent
from services.mailboxes.mailbox_states import can_transition, transition
from services.platform import rate_budget, statements, upstream
from services.platform.crypto import cipher_for

LIVE = ("queued", "sending", "requested", "exchanging")
FINISHED = ("authorized", "revoked", "failed", "cancelled")
CALLBACK_PATH = "/callbacks/delegated/"



def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a callback token is looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_correlation() -> dict[str, str]:
    """Return a fresh unguessable state, encrypted callback URL and token hash for one attempt."""
    token = secrets.token_urlsafe(24)
    url = f"{upstream.callback_base_url()}{CALLBACK_PATH}{token}"
    return {
        "state": secrets.token_urlsafe(24),
        "callback_token_hash": hash_token(token),
        "callback_url_encrypted": cipher_for(current_app.config).encrypt(url),
    }


def callback_url_of(attempt) -> str:
    """Return the callback URL (with its secret) of an attempt or of a row holding callback_url_encrypted."""
    return cipher_for(current_app.config).decrypt(attempt.callback_url_encrypted)


def _insert_ignoring_conflicts(rows: list[dict]):
    # A mailbox that gained a live attempt meanwhile (another run, another admin) is skipped by the
    # unique live_mailbox_id; both dialects support ON CONFLICT DO NOTHING and RETURNING.
    dialect = db.session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert if dialect == "sqlite" else insert
    statement = builder(AuthorizationAttempt)
    if hasattr(statement, "on_conflict_do_nothing"):
        statement = statement.on_conflict_do_nothing()
    return db.session.execute(statement.returning(AuthorizationAttempt.mailbox_id), rows).scalars().all()


def insert_attempts(run: AuthorizationRun, mailboxes: Sequence[tuple[int, str]], first_index: int) -> set[int]:
    """Create one queued attempt per (mailbox id, status); return the mailbox ids that got one."""
    if not mailboxes:
        return set()
    now = utcnow()
    rows = []
    for offset, (mailbox_id, status) in enumerate(mailboxes):
        in_canary = run.canary_size and first_index + offset < run.canary_size
        rows.append({
            "run_id": run.id, "organization_id": run.organization_id, "connection_id": run.connection_id,
            "mailbox_id": mailbox_id, "live_mailbox_id": mailbox_id, "status": "queued",
            "wave": 1 if in_canary or not run.canary_size else 2, "scope": run.scope, "prior_status": status,
            "send_tries": 0, "is_retried": False, "created_at": now, "updated_at": now, **new_correlation(),
        })
    return set(_insert_ignoring_conflicts(rows))


def queue_mailboxes(organization_id: int, mailboxes: Iterable[tuple[int, str]], *, actor, summary: str) -> None:
    """Move mailboxes to queued in one UPDATE, with one timeline event each (bulk form of transition())."""
    movable = [(mid, status) for mid, status in mailboxes if can_transition(status, "queued")]
    if not movable:
        return
    now = utcnow()
    db.session.execute(
        update(Mailbox)
        .where(Mailbox.id.in_([mid for mid, _ in movable]))
        .values(status="queued", status_changed_at=now, updated_at=now,
                last_error_key=None, last_error_description=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(insert(MailboxEvent), [
        {"mailbox_id": mid, "organization_id": organization_id, "kind": "queued", "from_status": status,
         "to_status": "queued", "actor_id": getattr(actor, "id", None), "summary": summary, "details": {},
         "created_at": now}
        for mid, status in movable
    ])


def mark_requested(attempt_ids: Sequence[int]) -> int:
    """Record a 202 for a batch in three statements; return how many moved.

    Attempts whose callback already arrived (out of order) keep their newer status, and only
    mailboxes still queued move to requested, each with its timeline event carrying the state.
    """
    now = utcnow()
    moved = db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id.in_(attempt_ids), AuthorizationAttempt.status == "sending")
        .values(status="requested", requested_at=now, claimed_until=None, next_try_at=None, updated_at=now)
        .returning(AuthorizationAttempt.mailbox_id, AuthorizationAttempt.state, AuthorizationAttempt.run_id,
                   AuthorizationAttempt.id)
        .execution_options(synchronize_session=False)
    ).all()
    by_mailbox = {row[0]: row for row in moved}
    if not by_mailbox:
        return 0
    requested = db.session.execute(
        update(Mailbox)
        .where(Mailbox.id.in_(list(by_mailbox)), Mailbox.status == "queued")
        .values(status="requested", status_changed_at=now, requested_at=now, updated_at=now)
        .returning(Mailbox.id, Mailbox.organization_id)
        .execution_options(synchronize_session=False)
    ).all()
    if requested:
        db.session.execute(insert(MailboxEvent), [
            {"mailbox_id": mid, "organization_id": org_id, "kind": "requested", "from_status": "queued",
             "to_status": "requested", "actor_id": None, "state": by_mailbox[mid][1],
             "summary": "Delegated access requested from Cronofy",
             "details": {"run_id": by_mailbox[mid][2], "attempt_id": by_mailbox[mid][3]}, "created_at": now}
            for mid, org_id in requested
        ])
    return len(moved)


def end(attempt: AuthorizationAttempt, status: str, *, error_key=None, error_description=None) -> None:
    """Finish an attempt: it stops being live, so its mailbox may get a new one."""
    attempt.status = status
    attempt.live_mailbox_id = None
    attempt.claimed_until = None
    attempt.claim_token = None
    attempt.finished_at = utcnow()
    attempt.error_key = error_key
    attempt.error_description = error_description


_END_AUTHORIZED = (
    update(AuthorizationAttempt.__table__)
    .where(AuthorizationAttempt.__table__.c.id == bindparam("p_attempt"),
           AuthorizationAttempt.__table__.c.status == "exchanging",
           AuthorizationAttempt.__table__.c.claim_token == bindparam("p_token"))
    .values(status="authorized", live_mailbox_id=None, claimed_until=None, claim_token=None,
            finished_at=bindparam("p_now"),
            error_key=None, error_description=None, updated_at=bindparam("p_changed"),
            callback_at=func.coalesce(AuthorizationAttempt.__table__.c.callback_at, bindparam("p_arrived")))
)


def end_authorized(attempt_id: int, now, claim_token: str | None) -> bool:
    """Finish an attempt whose exchange claim_token holds as authorized, in one prebuilt UPDATE (cf. end()).

    Return False when the claim is no longer that token's (another worker took the exchange over).
    """
    result = statements.execute(
        _END_AUTHORIZED, {"p_attempt": attempt_id, "p_now": now, "p_changed": now, "p_arrived": now,
                          "p_token": claim_token})
    return result.rowcount == 1


def fail(attempt: AuthorizationAttempt, error_key: str, description: str, *, summary: str | None = None) -> None:
    """End an attempt as failed and move its mailbox to failed with the same reason."""
    end(attempt, "failed", error_key=error_key, error_description=description)
    mailbox = db.session.get(Mailbox, attempt.mailbox_id)
    if mailbox is not None and mailbox.status != "failed" and can_transition(mailbox.status, "failed"):
        transition(mailbox, "failed", kind="authorization_failed", state=attempt.state,
                   summary=summary or description, error_key=error_key, error_description=description,
                   details={"attempt_id": attempt.id, "run_id": attempt.run_id})
    elif mailbox is not None and mailbox.status == "failed":
        mailbox.last_error_key, mailbox.last_error_description = error_key, description


def request_again(attempt: AuthorizationAttempt, *, summary: str, once_per_run: bool = True) -> bool:
    """Give a failed attempt's mailbox one fresh attempt in the same run, sent in the current wave.

    Only while the run goes on, and (unless once_per_run is False) once per mailbox and run; return
    whether a new attempt was made.
    """
    run = attempt.run
    if run is None or run.action != "authorize" or run.status not in ("running", "awaiting_confirmation", "paused"):
        return False
    already = once_per_run and db.session.scalar(select(func.count(AuthorizationAttempt.id)).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.mailbox_id == attempt.mailbox_id,
        AuthorizationAttempt.is_retried.is_(True)))
    mailbox = db.session.get(Mailbox, attempt.mailbox_id)
    if already or mailbox is None:
        return False
    db.session.flush()
    if not insert_attempts(run, [(mailbox.id, mailbox.status)], 0):
        return False
    attempt.is_retried = True
    db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.mailbox_id == mailbox.id,
               AuthorizationAttempt.status == "queued")
        .values(wave=run.current_wave).execution_options(synchronize_session=False)
    )
    queue_mailboxes(run.organization_id, [(mailbox.id, mailbox.status)], actor=None, summary=summary)
    return True


def claim(attempt_id: int, from_statuses: Sequence[str], to_status: str, *, seconds: float) -> bool:
    """Move an attempt from one of from_statuses to to_status with a claim; return whether this caller won."""
    now = utcnow()
    result = db.session.execute(
        update(AuthorizationAttempt)
        .where(AuthorizationAttempt.id == attempt_id, AuthorizationAttempt.status.in_(from_statuses))
        .values(status=to_status, claimed_until=now + timedelta(seconds=seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def max_in_flight() -> int:
    """Return how many requested attempts may wait for callbacks at once.

    Every code that arrives must be exchanged within its 10 minutes (§3.1); at the budget's per-minute
    rate, four minutes' worth of exchanges leaves more than half the lifetime as margin.
    """
    configured = current_app.config.get("MAX_IN_FLIGHT") or 0
    return configured if configured > 0 else rate_budget.budget().per_minute * 4


def step_seconds() -> float:
    """Return the longest one step of upstream work may take: a budget wait and two timed-out reads."""
    return rate_budget.BUDGET_WAIT + 2 * current_app.config["UPSTREAM_READ_TIMEOUT"] + 5.0
