"""Failures grouped by cause, for the "Failures by cause" panel of the run page, the mailbox list and the overview.

Each cause appears once, with how many failed, the provider's own words (one example), the plain cause
and fix of the failure guide and its checklist link, so that 10,000 failures with four causes read as
four explanations. The counting is one GROUP BY in the database (on the error key); only the handful of
groups it returns are folded in Python (other spellings of the same cause join their cause's group).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationAttempt as A
from models.authorization import AuthorizationRun
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.mailboxes import failure_guide
from services.mailboxes.failure_guide import Guidance
from services.platform import audit


@dataclass(frozen=True)
class CauseGroup:
    """The failures of one cause: how many, what the provider said, and what to do (`guidance`)."""

    cause: str
    count: int
    error_key: str | None
    message: str | None
    guidance: Guidance

    @property
    def anchor(self) -> str:
        """Return the id rows link to (`#cause-…`)."""
        return failure_guide.anchor(self.cause)

    @property
    def retryable(self) -> bool:
        """Return whether a retry as it is can help with this cause."""
        return self.guidance.retryable


def fold(rows: Iterable[tuple[str | None, int, str | None]], provider: str | None) -> list[CauseGroup]:
    """Turn (error key, count, an example message) rows into one group per cause, the largest first."""
    merged: dict[str, list] = {}
    for key, count, message in rows:
        cause = failure_guide.cause_of(key)
        group = merged.setdefault(cause, [0, key, message, 0])
        group[0] += int(count)
        if int(count) > group[3]:  # the spelling and words of the largest part stand for the group
            group[1], group[2], group[3] = key, message or group[2], int(count)
    groups = [CauseGroup(cause, count, key, message, failure_guide.explain(key, message, provider))
              for cause, (count, key, message, _) in merged.items()]
    return sorted(groups, key=lambda g: (-g.count, g.guidance.name))


def mailbox_failures(organization: Organization) -> list[CauseGroup]:
    """Return the organization's failed mailboxes grouped by the cause of their last failure (one query)."""
    rows = db.session.execute(
        select(Mailbox.last_error_key, func.count(Mailbox.id), func.max(Mailbox.last_error_description),
               _provider(organization))
        .where(Mailbox.organization_id == organization.id, Mailbox.status == "failed")
        .group_by(Mailbox.last_error_key)
    ).all()
    provider = rows[0][3] if rows else None
    return fold(((key, count, message) for key, count, message, _ in rows), provider)


def _provider(organization: Organization):
    """The provider whose checklist the organization's failures link to: its first active connection's."""
    return (select(Connection.provider).where(Connection.organization_id == organization.id)
            .order_by((Connection.status != "active"), Connection.id).limit(1).scalar_subquery())


def failed_with(organization: Organization, cause: str):
    """Return a select of the ids of the organization's failed mailboxes whose last failure has this cause."""
    return select(Mailbox.id).where(Mailbox.organization_id == organization.id, Mailbox.status == "failed",
                                    failure_guide.matches(Mailbox.last_error_key, cause))


def record_group_export(organization: Organization, *, actor, count: int, cause: str, run_id: int | None) -> None:
    """Audit an export of one group of failures (what was asked for and how many rows)."""
    audit.record("mailboxes.exported", actor=actor, organization=organization,
                 details={"count": count, "cause": cause, "run_id": run_id})


def run_failures(run: AuthorizationRun, provider: str | None) -> list[CauseGroup]:
    """Return a run's failed attempts (the latest of each mailbox) grouped by cause."""
    rows = db.session.execute(
        select(A.error_key, func.count(A.id), func.max(A.error_description))
        .where(A.run_id == run.id, A.is_retried.is_(False), A.status == "failed").group_by(A.error_key)
    ).all()
    return fold(rows, provider) if rows else []


def run_failed_with(run: AuthorizationRun, cause: str | None):
    """Return a select of the ids of the mailboxes whose latest attempt in the run failed (with this cause)."""
    query = select(A.mailbox_id).where(A.run_id == run.id, A.is_retried.is_(False), A.status == "failed")
    return query if cause is None else query.where(failure_guide.matches(A.error_key, cause))
