"""Selections held on the server, so that a bulk action can cover far more than one page of the list.

A selection is either the rows an admin ticked (`ids`) or the criteria of a filter (`filter`),
meaning every mailbox matching it when the action runs. `resolve` turns either into a select of
mailbox ids that the database evaluates; nothing loads 100,000 ids into Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Select, delete, func, select

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox
from models.organization import Organization
from models.selection import MailboxSelection
from services.mailboxes.mailbox_query import MailboxFilter, filtered

SELECTION_TTL = timedelta(hours=24)
MAX_TICKED = 1000


class SelectionError(ValueError):
    """A selection cannot be made or used; the message says why."""


def create_selection(
    organization: Organization,
    *,
    user,
    mailbox_ids: Iterable[int] | None = None,
    flt: MailboxFilter | None = None,
) -> MailboxSelection:
    """Keep the ticked mailboxes (`mailbox_ids`) or every mailbox matching `flt` for 24 hours.

    :raises SelectionError: when nothing of this organization was ticked, or too many were.
    """
    _forget_expired(organization)
    now = utcnow()
    selection = MailboxSelection(
        organization_id=organization.id, user_id=getattr(user, "id", None), created_at=now,
        expires_at=now + SELECTION_TTL,
    )
    if flt is not None:
        selection.mode, selection.criteria = "filter", flt.criteria()
    else:
        selection.mode, selection.mailbox_ids = "ids", _own_ids(organization, mailbox_ids or ())
    db.session.add(selection)
    db.session.flush()
    return selection


def _own_ids(organization: Organization, mailbox_ids: Iterable[int]) -> list[int]:
    wanted = sorted({int(i) for i in mailbox_ids})
    if not wanted:
        raise SelectionError("Tick at least one mailbox, or select every mailbox matching the filter.")
    if len(wanted) > MAX_TICKED:
        raise SelectionError(f"Tick at most {MAX_TICKED:,} mailboxes, or select every mailbox matching a filter.")
    query = select(Mailbox.id).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(wanted))
    found = sorted(db.session.scalars(query))
    if not found:
        raise SelectionError("None of the ticked mailboxes exist any more.")
    return found


def _forget_expired(organization: Organization) -> None:
    db.session.execute(
        delete(MailboxSelection).where(
            MailboxSelection.organization_id == organization.id, MailboxSelection.expires_at < utcnow()
        )
    )


def is_expired(selection: MailboxSelection) -> bool:
    """Return whether the selection is past its 24 hours."""
    return selection.expires_at <= utcnow()


def filter_of(selection: MailboxSelection) -> MailboxFilter | None:
    """Return the filter a `filter` selection stands for (None for ticked rows)."""
    return MailboxFilter.from_args(selection.criteria or {}) if selection.mode == "filter" else None


def resolve(selection: MailboxSelection, organization: Organization | None = None) -> Select:
    """Return a select of the ids of the selected mailboxes that still exist, for the database to evaluate."""
    organization = organization or db.session.get(Organization, selection.organization_id)
    if organization is None or organization.id != selection.organization_id:
        raise SelectionError("This selection belongs to another organization.")
    flt = filter_of(selection)
    if flt is not None:
        return filtered(organization, flt).with_only_columns(Mailbox.id)
    return select(Mailbox.id).where(
        Mailbox.organization_id == organization.id, Mailbox.id.in_(selection.mailbox_ids or [])
    )


def count(selection: MailboxSelection) -> int:
    """Return how many mailboxes the selection covers now."""
    return db.session.scalar(select(func.count()).select_from(resolve(selection).subquery()))


def describe(selection: MailboxSelection) -> str:
    """Return what the selection is, in words, e.g. "every mailbox with status failed, kind user"."""
    flt = filter_of(selection)
    if flt is None:
        return "the ticked mailboxes"
    if not flt.is_narrowed:
        return "every mailbox"
    labels = {"connection_id": "connection", "q": "matching"}
    parts = [f"{labels.get(name, name)} {value}" for name, value in flt.criteria().items()]
    return "every mailbox with " + ", ".join(parts)
