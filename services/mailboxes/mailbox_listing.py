"""The vendor API's listing of an organization's mailboxes: filters and keyset pages by id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from extensions import db
from models.mailbox import Mailbox
from models.organization import Organization


def list_mailboxes(organization: Organization, *, status: str | None = None, kind: str | None = None,
                   group: str | None = None, email: str | None = None, updated_since: datetime | None = None,
                   after_id: int | None = None, limit: int = 50) -> list[Mailbox]:
    """Up to limit mailboxes by id; `email` matches the address whatever its case."""
    query = select(Mailbox).where(Mailbox.organization_id == organization.id).order_by(Mailbox.id).limit(limit)
    if status is not None:
        query = query.where(Mailbox.status == status)
    if kind is not None:
        query = query.where(Mailbox.kind == kind)
    if group is not None:
        query = query.where(Mailbox.group_name == group)
    if email is not None:
        query = query.where(func.lower(Mailbox.email) == email.strip().lower())
    if updated_since is not None:
        query = query.where(Mailbox.updated_at >= updated_since)
    if after_id is not None:
        query = query.where(Mailbox.id > after_id)
    return list(db.session.scalars(query))


def find_mailbox(organization_ids: int | None, mailbox_id: int) -> Mailbox | None:
    """The mailbox with this id, if it belongs to organization_ids (None: any organization)."""
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is None or (organization_ids is not None and mailbox.organization_id != organization_ids):
        return None
    return mailbox


def find_by_email(organization: Organization, email: str) -> Mailbox | None:
    return db.session.scalar(select(Mailbox).where(Mailbox.organization_id == organization.id,
                                                   func.lower(Mailbox.email) == email.strip().lower()))
