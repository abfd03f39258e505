"""What a run's page shows, read as one snapshot: summary, tab badges, failures by cause and the rows.

The counts per status, the failures per cause, the current wave's pace and one keyset page of rows come
from a single SELECT (a UNION ALL of its parts), so they all see the same state of the attempts on any
database: PostgreSQL gives a statement one snapshot, SQLite reads a statement in one transaction. The
summary can then never contradict the badges or the rows while the workers change them; the page and
its polling fragment render the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, String, cast, func, literal_column, null, select, union_all

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.mailbox import Mailbox
from services.engine import runs
from services.engine.runs import RunProgress
from services.mailboxes import failure_guide
from services.mailboxes.failure_guide import Guidance
from services.read_models.failures import CauseGroup, fold

A = AuthorizationAttempt


@dataclass(frozen=True)
class Outcome:
    """One row of the run's table: the attempt's mailbox and status, and its failure's cause."""

    attempt_id: int
    mailbox_id: int
    email: str
    name: str
    status: str
    state: str
    cause: Guidance | None


@dataclass(frozen=True)
class RunSnapshot:
    """The run page's numbers and rows, all from one read."""

    progress: RunProgress
    causes: list[CauseGroup]
    rows: list[Outcome]
    next_after: int | None

    @property
    def unfixable(self) -> list[CauseGroup]:
        """Return the causes of failure that a retry as it is cannot fix."""
        return [group for group in self.causes if not group.retryable]

    @property
    def unfixable_count(self) -> int:
        """Return how many failures have a cause a retry as it is cannot fix."""
        return sum(group.count for group in self.unfixable)

    @property
    def retryable_count(self) -> int:
        """Return how many failures a retry as it is may fix."""
        return sum(group.count for group in self.causes if group.retryable)

    def cause(self, cause: str | None) -> CauseGroup | None:
        """Return the group of a cause, or None."""
        return next((group for group in self.causes if group.cause == cause), None)


def _blank(*types):
    return [cast(null(), kind) for kind in types]


def _legs(run: AuthorizationRun, *, status: str | None, cause: str | None, after: int | None, size: int):
    current = (A.run_id == run.id, A.is_retried.is_(False))
    counts = (select(literal_column("'count'").label("part"), A.status, func.count(A.id).label("n"),
                     *_blank(Integer, Integer, String, String, String, String, String))
              .where(*current).group_by(A.status))
    causes = (select(literal_column("'cause'"), cast(null(), String), func.count(A.id),
                     *_blank(Integer, Integer, String, String), A.error_key, func.max(A.error_description),
                     cast(null(), String))
              .where(*current, A.status == "failed").group_by(A.error_key))
    pace = runs.wave_finished_query(run).with_only_columns(
        literal_column("'pace'"), cast(null(), String), func.count(A.id),
        *_blank(Integer, Integer, String, String, String, String, String)).select_from(A)
    page = (select(A.status, A.id, A.mailbox_id, Mailbox.email, Mailbox.name, A.error_key, A.error_description,
                   A.state)
            .join(Mailbox, Mailbox.id == A.mailbox_id).where(*current).order_by(A.id).limit(size + 1))
    if cause:
        page = page.where(A.status == "failed", failure_guide.matches(A.error_key, cause))
    elif status:
        page = page.where(A.status == status)
    if after:
        page = page.where(A.id > after)
    page = page.subquery()
    rows = select(literal_column("'row'"), page.c.status, cast(null(), Integer), page.c.id, page.c.mailbox_id,
                  page.c.email, page.c.name, page.c.error_key, page.c.error_description, page.c.state)
    return union_all(counts, causes, pace, rows)


def run_snapshot(run: AuthorizationRun, *, status: str | None = None, cause: str | None = None,
                 after: int | None = None, size: int = 50, provider: str | None = None) -> RunSnapshot:
    """Read the run's counts, causes, pace and the page of rows after `after` (of a status or a cause) at once."""
    found = db.session.execute(_legs(run, status=status, cause=cause, after=after, size=size)).all()
    counts, failures, finished, page = {}, [], 0, []
    for part, row_status, n, attempt_id, mailbox_id, email, name, key, description, state in found:
        if part == "count":
            counts[row_status] = int(n)
        elif part == "cause":
            failures.append((key, n, description))
        elif part == "pace":
            finished = int(n)
        else:
            page.append(Outcome(attempt_id, mailbox_id, email, name or "", row_status, state,
                                failure_guide.explain(key, description, provider) if row_status == "failed" else None))
    page.sort(key=lambda outcome: outcome.attempt_id)
    more = len(page) > size
    page = page[:size]
    return RunSnapshot(runs.progress_from(run, counts, finished), fold(failures, provider), page,
                       page[-1].attempt_id if more and page else None)
