"""The revoke half of the engine: one budgeted revocation per queued attempt of a revoke run."""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.mailbox import Mailbox
from services.engine import attempts
from services.mailboxes.mailbox_revocation import MailboxRevocationError, revoke_mailbox
from services.platform import rate_budget
from services.platform.rate_budget import BudgetTimeoutError



def _next_queued(run: AuthorizationRun) -> int | None:
    return db.session.scalar(
        select(AuthorizationAttempt.id).where(AuthorizationAttempt.run_id == run.id,
                                              AuthorizationAttempt.status == "queued")
        .order_by(AuthorizationAttempt.id).limit(1)
    )


def revoke_next(run: AuthorizationRun) -> bool:
    """Revoke the next queued mailbox of the run through the rate budget; return False when none is due."""
    attempt_id = _next_queued(run)
    if attempt_id is None:
        return False
    if not attempts.claim(attempt_id, ("queued",), "sending", seconds=attempts.step_seconds()):
        db.session.rollback()
        return True
    db.session.commit()
    try:
        rate_budget.budget().acquire(timeout=rate_budget.BUDGET_WAIT)
    except BudgetTimeoutError:
        attempts.claim(attempt_id, ("sending",), "queued", seconds=0)
        db.session.commit()
        return True
    _revoke(db.session.get(AuthorizationAttempt, attempt_id), run)
    return True


def _revoke(attempt: AuthorizationAttempt, run: AuthorizationRun) -> None:
    mailbox = db.session.get(Mailbox, attempt.mailbox_id)
    try:
        revoke_mailbox(mailbox, actor=run.created_by)
    except MailboxRevocationError as exc:
        db.session.rollback()
        attempt = db.session.get(AuthorizationAttempt, attempt.id)
        attempts.end(attempt, "failed", error_key="revoke_failed", error_description=str(exc))
    else:
        attempts.end(attempt, "revoked")
    db.session.commit()
