"""Finding mailboxes: the list's filter, keyset pages, per-status counts and the group names.

Every query here stays on an index at 100,000 mailboxes: the filters match the composite indexes
of `models.mailbox` (organization, status|kind|group|connection, email), the sorts follow an index
((organization, email), (organization, status, email), (organization, name, id), (organization,
updated_at, id)), pages are keyset pages (never OFFSET), and the summary bar is one grouped query:
over trigger-kept tallies for the whole organization, over covering indexes within a filter. Free
text (a substring of the email or name) is the one criterion that reads every row of the organization.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from operator import ge, gt, le, lt

from sqlalchemy import Select, and_, delete, func, insert, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload

from extensions import db
from models.mailbox import MAILBOX_KINDS, MAILBOX_STATUSES, Mailbox
from models.mailbox_tally import MailboxStatusTally
from models.organization import Organization
from services.mailboxes import failure_guide

log = logging.getLogger(__name__)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_QUERY_LENGTH = 200
MAX_GROUPS = 500
# Fold an organization's tally rows into one per status once there are more than this many.
FOLD_TALLIES_AT = 200
SORTS = {
    "email": (Mailbox.email,),
    "name": (Mailbox.name,),
    "status": (Mailbox.status, Mailbox.email),
    "updated": (Mailbox.updated_at,),
}
SORT_LABELS = {"email": "Email", "name": "Name", "status": "Status", "updated": "Last updated"}
DIRECTIONS = ("asc", "desc")


class InvalidFilter(ValueError):
    """A filter value the list does not know; the message says which and what is allowed."""


@dataclass(frozen=True)
class MailboxFilter:
    """What the mailbox list shows: the narrowing criteria and the order."""

    status: str | None = None
    kind: str | None = None
    group: str | None = None
    connection_id: int | None = None
    q: str | None = None
    # The cause of the last failure (services/mailboxes/failure_guide.py), e.g. from "Show these N".
    cause: str | None = None
    sort: str = "email"
    direction: str = "asc"

    @classmethod
    def from_args(cls, args: Mapping) -> MailboxFilter:
        """Parse request arguments (or stored criteria); :raises InvalidFilter: on an unknown value."""
        return cls(
            status=_choice(args, "status", MAILBOX_STATUSES),
            kind=_choice(args, "kind", MAILBOX_KINDS),
            group=_text(args, "group", 100),
            connection_id=_integer(args, "connection_id"),
            q=_text(args, "q", MAX_QUERY_LENGTH),
            cause=_text(args, "cause", 80),
            sort=_choice(args, "sort", tuple(SORTS)) or "email",
            direction=_choice(args, "direction", DIRECTIONS) or "asc",
        )

    def criteria(self) -> dict:
        """Return the narrowing criteria that are set (no order), e.g. to keep in a selection."""
        return {k: v for k, v in asdict(self).items() if v is not None and k not in ("sort", "direction")}

    def to_args(self, **changes) -> dict:
        """Return query arguments that reproduce this filter (defaults left out), with changes applied."""
        values = {**asdict(self), **changes}
        defaults = {"sort": "email", "direction": "asc"}
        return {k: v for k, v in values.items() if v not in (None, "") and defaults.get(k) != v}

    def without_status(self) -> MailboxFilter:
        """Return the same filter for every status (what the summary bar counts)."""
        return replace(self, status=None)

    @property
    def is_narrowed(self) -> bool:
        """Whether any criterion narrows the list (beyond the organization)."""
        return bool(self.criteria())


@dataclass(frozen=True)
class Page:
    """One page of the list and the opaque cursors of its neighbours (None at either end)."""

    rows: list[Mailbox]
    next_cursor: str | None
    prev_cursor: str | None


def _choice(args: Mapping, name: str, allowed: tuple[str, ...]) -> str | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise InvalidFilter(f"Unknown {name} {value[:40]!r}. Choose one of: {', '.join(allowed)}.")
    return value


def _text(args: Mapping, name: str, limit: int) -> str | None:
    value = str(args.get(name) or "").strip()
    if len(value) > limit:
        raise InvalidFilter(f"The {name} filter is longer than {limit} characters.")
    return value or None


def _integer(args: Mapping, name: str) -> int | None:
    value = str(args.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidFilter(f"The {name.replace('_', ' ')} must be a number.")
    return int(value)


def _conditions(organization: Organization, flt: MailboxFilter) -> list:
    clauses = [Mailbox.organization_id == organization.id]
    if flt.status:
        clauses.append(Mailbox.status == flt.status)
    if flt.kind:
        clauses.append(Mailbox.kind == flt.kind)
    if flt.group:
        clauses.append(Mailbox.group_name == flt.group)
    if flt.connection_id is not None:
        clauses.append(Mailbox.connection_id == flt.connection_id)
    if flt.cause:
        clauses.append(failure_guide.matches(Mailbox.last_error_key, flt.cause))
    if flt.q:
        clauses.append(
            or_(Mailbox.email.icontains(flt.q, autoescape=True), Mailbox.name.icontains(flt.q, autoescape=True))
        )
    return clauses


def filtered(organization: Organization, flt: MailboxFilter) -> Select:
    """Return a select of the organization's mailboxes matching flt (unordered)."""
    return select(Mailbox).where(*_conditions(organization, flt))


def _keys(flt: MailboxFilter) -> tuple:
    return (*SORTS[flt.sort], Mailbox.id)


def _order(flt: MailboxFilter, backwards: bool) -> list:
    descending = (flt.direction == "desc") != backwards
    return [key.desc() if descending else key.asc() for key in _keys(flt)]


def _beyond(keys: tuple, values: tuple, strict) -> object:
    """Return `keys > values` lexicographically (or `<`, by `strict`), spelled out for any database."""
    if len(keys) == 1:
        return strict(keys[0], values[0])
    return or_(strict(keys[0], values[0]), and_(keys[0] == values[0], _beyond(keys[1:], values[1:], strict)))


def _keyset(flt: MailboxFilter, values: tuple, backwards: bool):
    ascending = (flt.direction == "asc") != backwards
    strict, loose = (gt, ge) if ascending else (lt, le)
    keys = _keys(flt)
    # The redundant leading bound lets the planner start the index range scan at the cursor.
    return and_(loose(keys[0], values[0]), _beyond(keys, values, strict))


def _encode(marker: str, flt: MailboxFilter, row: Mailbox) -> str:
    values = [getattr(row, key.key) for key in _keys(flt)]
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([marker, flt.sort, flt.direction, plain], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str | None, flt: MailboxFilter) -> tuple[bool, tuple] | None:
    """Return (backwards, key values) of a cursor made for this sort; None for none or a foreign one."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        marker, sort, direction, values = json.loads(raw)
        keys = _keys(flt)
        if (sort, direction) != (flt.sort, flt.direction) or marker not in "np" or len(values) != len(keys):
            return None
        return marker == "p", tuple(_typed(key, value) for key, value in zip(keys, values, strict=True))
    except (ValueError, TypeError, binascii.Error):
        return None


def _typed(key, value):
    if key is Mailbox.updated_at:
        return datetime.fromisoformat(value)
    if key is Mailbox.id and not isinstance(value, int):
        raise TypeError("a cursor's id must be an integer")
    if key is not Mailbox.id and not isinstance(value, str):
        raise TypeError("a cursor's sort value must be text")
    return value


def page(organization: Organization, flt: MailboxFilter, after: str | None = None, size: int = PAGE_SIZE) -> Page:
    """Return the page of matching mailboxes after (or before) the cursor; a bad cursor starts over."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    position = _decode(after, flt)
    backwards = bool(position and position[0])
    query = filtered(organization, flt).order_by(*_order(flt, backwards)).limit(size + 1)
    if position:
        query = query.where(_keyset(flt, position[1], backwards))
    query = query.options(joinedload(Mailbox.connection))
    rows = list(db.session.scalars(query).unique())
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        return Page(rows, _cursor("n", flt, rows[-1:]), _cursor("p", flt, rows[:1]) if more else None)
    return Page(rows, _cursor("n", flt, rows[-1:]) if more else None, _cursor("p", flt, rows[:1]) if position else None)


def _cursor(marker: str, flt: MailboxFilter, rows: list[Mailbox]) -> str | None:
    return _encode(marker, flt, rows[0]) if rows else None


def status_counts(organization: Organization, flt: MailboxFilter) -> dict[str, int]:
    """Return {status: count} of mailboxes matching flt whatever their status: one grouped query.

    Narrowed by kind, group or connection, the count is an index-only scan of the matching entries
    (the (organization, kind|group|connection, status) indexes); for the whole organization it is a
    sum over the trigger-kept tallies (models/mailbox_tally.py), whatever the number of mailboxes.
    """
    criteria = flt.without_status()
    if criteria.is_narrowed:
        query = select(Mailbox.status, func.count()).where(*_conditions(organization, criteria))
        rows = db.session.execute(query.group_by(Mailbox.status)).all()
    else:
        rows = _tallies(organization)
    counts = dict.fromkeys(MAILBOX_STATUSES, 0)
    counts.update({status: int(count) for status, count in rows if status in counts})
    return counts


def _tallies(organization: Organization) -> list:
    query = (
        select(MailboxStatusTally.status, func.sum(MailboxStatusTally.delta), func.count())
        .where(MailboxStatusTally.organization_id == organization.id)
        .group_by(MailboxStatusTally.status)
    )
    rows = db.session.execute(query).all()
    if sum(pieces for _, _, pieces in rows) > FOLD_TALLIES_AT:
        fold_tallies(organization.id)
    return [(status, total) for status, total, _ in rows]


def fold_tallies(organization_id: int) -> None:
    """Replace an organization's tally rows by one per status, in a transaction of its own.

    Skipped when the database is busy (SQLite's single writer): the sums stay right, only longer.
    """
    table = MailboxStatusTally.__table__
    try:
        with db.engine.begin() as conn:
            gone = delete(table).where(table.c.organization_id == organization_id)
            totals: dict[str, int] = {}
            for status, delta in conn.execute(gone.returning(table.c.status, table.c.delta)):
                totals[status] = totals.get(status, 0) + delta
            rows = [{"organization_id": organization_id, "status": s, "delta": d} for s, d in totals.items() if d]
            if rows:
                conn.execute(insert(table), rows)
    except OperationalError:
        log.info("Tallies of organization %s not folded: the database is busy", organization_id)


def matching_count(counts: dict[str, int], flt: MailboxFilter) -> int:
    """Return how many mailboxes match flt, from the summary bar's counts (no further query)."""
    return counts.get(flt.status, 0) if flt.status else sum(counts.values())


def groups(organization: Organization) -> list[str]:
    """Return the organization's group names, sorted (for the group filter).

    A loose index scan: each step seeks the next name in (organization, group_name, ...) with min(),
    so the cost grows with the number of groups, not of mailboxes.
    """
    in_org = Mailbox.organization_id == organization.id
    first = select(func.min(Mailbox.group_name)).where(in_org).scalar_subquery()
    names = select(first.label("name")).cte("group_names", recursive=True)
    following = select(func.min(Mailbox.group_name)).where(in_org, Mailbox.group_name > names.c.name)
    names = names.union_all(select(following.scalar_subquery()).where(names.c.name.is_not(None)))
    query = select(names.c.name).where(names.c.name.is_not(None)).limit(MAX_GROUPS)
    return list(db.session.scalars(query))
