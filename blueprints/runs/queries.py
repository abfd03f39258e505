"""What the run pages read: a page of the run history and a keyset page of a run's outcomes.

Each page is one query (the mailbox columns come joined, never one query per row) on the indexes
of `models.authorization` (organization, created_at) and (run_id, status, id).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models.authorization import ATTEMPT_STATUSES, AuthorizationAttempt, AuthorizationRun
from models.mailbox import Mailbox
from models.organization import Organization
from services.mailboxes import failure_guide

HISTORY_PAGE_SIZE = 20
OUTCOMES_PAGE_SIZE = 50


@dataclass(frozen=True)
class HistoryPage:
    """One page of an organization's runs, newest first."""

    runs: list[AuthorizationRun]
    page: int
    pages: int


@dataclass(frozen=True)
class Outcome:
    """One row of the outcome table: the attempt, its mailbox and, when it failed, what to do."""

    attempt: AuthorizationAttempt
    email: str
    name: str
    mailbox_id: int
    guidance: failure_guide.Guidance | None


@dataclass(frozen=True)
class OutcomePage:
    """A keyset page of outcomes; `next_after` is the id to continue after, or None on the last page."""

    rows: list[Outcome]
    next_after: int | None


def history(organization: Organization, page: int) -> HistoryPage:
    """Return one page of the organization's runs, newest first."""
    total = db.session.scalar(select(func.count(AuthorizationRun.id))
                              .where(AuthorizationRun.organization_id == organization.id)) or 0
    pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    page = min(max(1, page), pages)
    query = (
        select(AuthorizationRun)
        .options(selectinload(AuthorizationRun.created_by))
        .where(AuthorizationRun.organization_id == organization.id)
        .order_by(AuthorizationRun.created_at.desc(), AuthorizationRun.id.desc())
        .limit(HISTORY_PAGE_SIZE)
        .offset((page - 1) * HISTORY_PAGE_SIZE)
    )
    return HistoryPage(list(db.session.scalars(query)), page, pages)


def status_filter(raw: str | None) -> str | None:
    """Return a known attempt status from a query argument, or None for every status."""
    return raw if raw in ATTEMPT_STATUSES else None


def outcomes(run: AuthorizationRun, *, status: str | None, after: int | None, provider: str | None) -> OutcomePage:
    """Return the run's outcomes with ids above `after`, optionally of one status, in id order."""
    query = (
        select(AuthorizationAttempt, Mailbox.email, Mailbox.name)
        .join(Mailbox, Mailbox.id == AuthorizationAttempt.mailbox_id)
        # A retried failure is replaced by its new attempt: show each mailbox's latest outcome.
        .where(AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.is_retried.is_(False))
        .order_by(AuthorizationAttempt.id)
        .limit(OUTCOMES_PAGE_SIZE + 1)
    )
    if status:
        query = query.where(AuthorizationAttempt.status == status)
    if after:
        query = query.where(AuthorizationAttempt.id > after)
    found = db.session.execute(query).all()
    rows = [_outcome(attempt, email, name, provider) for attempt, email, name in found[:OUTCOMES_PAGE_SIZE]]
    more = len(found) > OUTCOMES_PAGE_SIZE
    return OutcomePage(rows, rows[-1].attempt.id if more and rows else None)


def _outcome(attempt: AuthorizationAttempt, email: str, name: str, provider: str | None) -> Outcome:
    guidance = None
    if attempt.status == "failed":
        guidance = failure_guide.explain(attempt.error_key, attempt.error_description, provider)
    return Outcome(attempt, email, name or "", attempt.mailbox_id, guidance)
