"""Where each organization stands in onboarding, and its mailboxes per status: three GROUP BY queries for any
number of organizations (the vendor API's organization resources; pages that list organizations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.sql import ColumnElement

from extensions import db
from models.authorization import AuthorizationRun
from models.connection import Connection
from models.mailbox import MAILBOX_STATUSES, Mailbox
from models.organization import Organization

ONBOARDING_STATES = ("not_connected", "connected", "importing", "authorizing", "ready", "needs_attention")
ACTIVE_RUN_STATUSES = ("running", "awaiting_confirmation", "paused")
STATE_LABELS = {
    "not_connected": "Not connected",
    "connected": "Connected, no mailboxes yet",
    "importing": "Bringing in mailboxes",
    "authorizing": "Authorizing",
    "ready": "Ready",
    "needs_attention": "Needs attention",
}


@dataclass(frozen=True)
class OrganizationState:
    state: str
    mailbox_counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def mailbox_total(self) -> int:
        return sum(self.mailbox_counts.values())


def states_for(organization_ids) -> dict[int, OrganizationState]:
    """Return the state of each organization id given (ids that do not exist are simply absent)."""
    ids = list(organization_ids)
    if not ids:
        return {}
    connections: dict[int, set[str]] = {}
    for organization_id, status in db.session.execute(
            select(Connection.organization_id, Connection.status).where(Connection.organization_id.in_(ids))
            .group_by(Connection.organization_id, Connection.status)):
        connections.setdefault(organization_id, set()).add(status)
    counts: dict[int, dict[str, int]] = {i: dict.fromkeys(MAILBOX_STATUSES, 0) for i in ids}
    for organization_id, status, count in db.session.execute(
            select(Mailbox.organization_id, Mailbox.status, func.count()).where(Mailbox.organization_id.in_(ids))
            .group_by(Mailbox.organization_id, Mailbox.status)):
        counts[organization_id][status] = count
    running = set(db.session.scalars(
        select(AuthorizationRun.organization_id).where(AuthorizationRun.organization_id.in_(ids),
                                                       AuthorizationRun.status.in_(ACTIVE_RUN_STATUSES))
        .group_by(AuthorizationRun.organization_id)))
    return {i: OrganizationState(_state(connections.get(i, set()), counts[i], i in running), counts[i]) for i in ids}


def _state(connection_statuses: set[str], counts: dict[str, int], has_active_run: bool) -> str:
    """The first that applies: a broken connection, nothing connected, a run under way, failures, then progress."""
    if "needs_reauth" in connection_statuses:
        return "needs_attention"
    if "active" not in connection_statuses:
        return "not_connected"
    if has_active_run:
        return "authorizing"
    if counts.get("failed", 0) or counts.get("needs_attention", 0):
        return "needs_attention"
    current = sum(n for status, n in counts.items() if status != "revoked")
    if current == 0:
        return "connected"
    return "ready" if counts.get("authorized", 0) == current else "importing"


def state_expression(organization_id=Organization.id) -> ColumnElement[str]:
    """Return the onboarding state of `organization_id` as one SQL CASE of EXISTS tests (the rules of _state).

    The branches are tried in order and stop at the first that holds, so an organization with a run under
    way costs three index probes and no count of its mailboxes: cheap enough for every transaction that
    writes an event (organization.state_changed), where states_for's GROUP BYs would not be.
    """
    def connection(status: str):
        return exists().where(Connection.organization_id == organization_id, Connection.status == status)

    def mailboxes(*condition):
        return exists().where(Mailbox.organization_id == organization_id, *condition)

    run = exists().where(AuthorizationRun.organization_id == organization_id,
                         AuthorizationRun.status.in_(ACTIVE_RUN_STATUSES))
    return case(
        (connection("needs_reauth"), literal("needs_attention")),
        (~connection("active"), literal("not_connected")),
        (run, literal("authorizing")),
        (mailboxes(Mailbox.status.in_(("failed", "needs_attention"))), literal("needs_attention")),
        (~mailboxes(Mailbox.status != "revoked"), literal("connected")),
        (mailboxes(and_(Mailbox.status != "revoked", Mailbox.status != "authorized")), literal("importing")),
        else_=literal("ready"),
    )


def state_of(organization_id: int) -> str | None:
    """Return one organization's onboarding state in a single statement (None if it does not exist)."""
    return db.session.scalar(select(state_expression()).where(Organization.id == organization_id))
