"""What the run pages read: a page of the run history, and a run's snapshot (services/read_models/run_snapshot.py).

Each page is one query (the mailbox columns come joined, never one query per row) on the indexes
of `models.authorization` (organization, created_at) and (run_id, status, id).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models.authorization import ATTEMPT_STATUSES, AuthorizationRun
from models.organization import Organization
from services.read_models.run_snapshot import RunSnapshot, run_snapshot

HISTORY_PAGE_SIZE = 20
OUTCOMES_PAGE_SIZE = 50


@dataclass(frozen=True)
class HistoryPage:
    """One page of an organization's runs, newest first."""

    runs: list[AuthorizationRun]
    page: int
    pages: int


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


def cause_filter(raw: str | None) -> str | None:
    """Return a cause named by a query argument (any error key, bounded), or None for every cause."""
    raw = (raw or "").strip()
    return raw[:80] or None


def snapshot(run: AuthorizationRun, *, status: str | None, cause: str | None, after: int | None) -> RunSnapshot:
    """Return the run page's one read: counts, causes and a keyset page of rows (of a status or a cause)."""
    return run_snapshot(run, status=status, cause=cause, after=after, size=OUTCOMES_PAGE_SIZE,
                        provider=run.connection.provider)
