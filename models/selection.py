"""Mailbox selections held on the server: ticked rows, or every mailbox matching a filter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import utcnow

SELECTION_MODES = ("ids", "filter")


class MailboxSelection(db.Model):
    """A set of mailboxes an admin picked for a bulk action; it lives for a day.

    `ids` mode keeps the ticked rows' ids; `filter` mode keeps the filter's criteria, so that "every
    mailbox matching" means the matching mailboxes at the time of the action, however many there are.
    """

    __tablename__ = "mailbox_selections"
    __table_args__ = (
        CheckConstraint("mode IN ('ids', 'filter')", name="mode_known"),
        Index("ix_mailbox_selections_org_expires", "organization_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    mode: Mapped[str] = mapped_column(String(8))
    mailbox_ids: Mapped[list] = mapped_column(JSON, default=list)
    criteria: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"<MailboxSelection {self.id} {self.mode}>"
