"""Support's list of organizations: each one's onboarding state and its mailboxes per status.

One query per page, whatever the number of organizations: the counts come from GROUP BY subqueries
(mailboxes per status, connections, open wizards, active admins) joined to the organizations, and the
state is a CASE over them, so the list sorts and pages in the database by any column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import case, func, or_, select

from extensions import db
from models.connection import Connection
from models.mailbox import MAILBOX_STATUSES, Mailbox
from models.onboarding import WizardSession
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, User

PAGE_SIZE = 25
MAX_SEARCH_LENGTH = 120
OPEN_WIZARD_STATUSES = ("draft", "connecting")

# Onboarding states, in the order an organization goes through them (the state column sorts by it).
STATES = ("not_started", "wizard_in_progress", "disconnected", "connection_needs_attention",
          "mailboxes_need_attention", "connected")
STATE_LABELS = {
    "not_started": "Not started",
    "wizard_in_progress": "Wizard in progress",
    "disconnected": "Disconnected",
    "connection_needs_attention": "Connection needs attention",
    "mailboxes_need_attention": "Connected, mailboxes need attention",
    "connected": "Connected",
}
STATE_BADGES = {
    "not_started": "light", "wizard_in_progress": "info", "disconnected": "secondary",
    "connection_needs_attention": "warning", "mailboxes_need_attention": "warning", "connected": "success",
}
SORTS = ("name", "state", "mailboxes", *MAILBOX_STATUSES)
DIRECTIONS = ("asc", "desc")


@dataclass(frozen=True)
class OrganizationListRow:
    organization: Organization
    state: str
    admins: int
    mailbox_counts: dict[str, int]

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def state_badge(self) -> str:
        return STATE_BADGES[self.state]

    @property
    def mailbox_total(self) -> int:
        return sum(self.mailbox_counts.values())


@dataclass(frozen=True)
class OrganizationList:
    """One page of the list, and how it is searched and sorted."""

    rows: list[OrganizationListRow]
    page: int
    pages: int
    total: int
    query: str
    sort: str
    direction: str

    def args(self, **changes) -> dict:
        """The query arguments of this view (defaults left out), with changes applied."""
        current = {"q": self.query, "sort": self.sort, "dir": self.direction, **changes}
        defaults = {"q": "", "sort": "name", "dir": "asc"}
        return {key: value for key, value in current.items() if value != defaults[key]}

    def sort_args(self, column: str) -> dict:
        """The arguments of the column header's link: sort by it, or flip the order if it is the sort."""
        if column == self.sort:
            return self.args(dir="desc" if self.direction == "asc" else "asc")
        return self.args(sort=column, dir="desc" if column in MAILBOX_STATUSES or column == "mailboxes" else "asc")

    def aria_sort(self, column: str) -> str | None:
        if column != self.sort:
            return None
        return "ascending" if self.direction == "asc" else "descending"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_filter(query: str):
    pattern = f"%{_escape_like(query.lower())}%"
    return or_(func.lower(Organization.name).like(pattern, escape="\\"), Organization.slug.like(pattern, escape="\\"))


def _subqueries():
    mailboxes = (
        select(Mailbox.organization_id.label("organization_id"), func.count().label("total"),
               *[func.sum(case((Mailbox.status == status, 1), else_=0)).label(status) for status in MAILBOX_STATUSES])
        .group_by(Mailbox.organization_id).subquery("mailbox_counts")
    )
    connections = (
        select(Connection.organization_id.label("organization_id"), func.count().label("total"),
               func.sum(case((Connection.status == "active", 1), else_=0)).label("active"),
               func.sum(case((Connection.status == "needs_reauth", 1), else_=0)).label("needs_reauth"))
        .group_by(Connection.organization_id).subquery("connection_counts")
    )
    wizards = (
        select(WizardSession.organization_id.label("organization_id"), func.count().label("open"))
        .where(WizardSession.status.in_(OPEN_WIZARD_STATUSES))
        .group_by(WizardSession.organization_id).subquery("open_wizards")
    )
    admins = (
        select(User.organization_id.label("organization_id"), func.count().label("total"))
        .where(User.role == ROLE_ORG_ADMIN, User.is_active.is_(True))
        .group_by(User.organization_id).subquery("admin_counts")
    )
    return mailboxes, connections, wizards, admins


def _state_rank(mailboxes, connections, wizards):
    """The state as its index in STATES: a broken connection first, then a working one, then the wizard."""
    rank = STATES.index
    failing = func.coalesce(mailboxes.c.failed, 0) + func.coalesce(mailboxes.c.needs_attention, 0)
    return case(
        (func.coalesce(connections.c.needs_reauth, 0) > 0, rank("connection_needs_attention")),
        (func.coalesce(connections.c.active, 0) > 0,
         case((failing > 0, rank("mailboxes_need_attention")), else_=rank("connected"))),
        (func.coalesce(wizards.c.open, 0) > 0, rank("wizard_in_progress")),
        (func.coalesce(connections.c.total, 0) > 0, rank("disconnected")),
        else_=rank("not_started"),
    )


def organization_list(query: str = "", page: int = 1, sort: str = "name", direction: str = "asc",
                      per_page: int = PAGE_SIZE) -> OrganizationList:
    """Return one page of organizations whose name or slug contains query, sorted by sort.

    Unknown sorts and directions fall back to the name, ascending; pages past the end are clamped to
    the last page, so a stale link still shows something.
    """
    query = (query or "").strip()[:MAX_SEARCH_LENGTH]
    sort = sort if sort in SORTS else "name"
    direction = direction if direction in DIRECTIONS else "asc"
    where = [_search_filter(query)] if query else []
    total = db.session.scalar(select(func.count(Organization.id)).where(*where)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)

    mailboxes, connections, wizards, admins = _subqueries()
    state = _state_rank(mailboxes, connections, wizards).label("state_rank")
    counts = [func.coalesce(mailboxes.c[status], 0).label(status) for status in MAILBOX_STATUSES]
    sort_keys = {"name": func.lower(Organization.name), "state": state,
                 "mailboxes": func.coalesce(mailboxes.c.total, 0), **{c.name: c for c in counts}}
    key = sort_keys[sort]
    statement = (
        select(Organization, state, func.coalesce(admins.c.total, 0), *counts)
        .outerjoin(mailboxes, mailboxes.c.organization_id == Organization.id)
        .outerjoin(connections, connections.c.organization_id == Organization.id)
        .outerjoin(wizards, wizards.c.organization_id == Organization.id)
        .outerjoin(admins, admins.c.organization_id == Organization.id)
        .where(*where)
        .order_by(key.desc() if direction == "desc" else key.asc(), func.lower(Organization.name), Organization.id)
        .limit(per_page).offset((page - 1) * per_page)
    )
    rows = [
        OrganizationListRow(organization=organization, state=STATES[state_rank], admins=admin_count,
                            mailbox_counts=dict(zip(MAILBOX_STATUSES, status_counts)))
        for organization, state_rank, admin_count, *status_counts in db.session.execute(statement)
    ]
    return OrganizationList(rows=rows, page=page, pages=pages, total=total, query=query, sort=sort, direction=direction)
