"""Mailbox imports: a stored preview of an uploaded list, its rows, and what committing it did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.organization import Organization
from models.user import User

IMPORT_SOURCES = ("csv", "paste")
IMPORT_MODES = ("add", "full")
IMPORT_STATUSES = ("preview", "committed", "discarded", "expired")
ROW_OUTCOMES = ("add", "present", "update", "problem", "warning", "leaver")


class MailboxImport(db.Model):
    """One upload or pasted list: a preview until an admin commits or discards it."""

    __tablename__ = "mailbox_imports"
    __table_args__ = (
        CheckConstraint("source IN ('csv', 'paste')", name="source_known"),
        CheckConstraint("mode IN ('add', 'full')", name="mode_known"),
        CheckConstraint("status IN ('preview', 'committed', 'discarded', 'expired')", name="status_known"),
        Index("ix_mailbox_imports_org_created", "organization_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(8))
    filename: Mapped[str | None] = mapped_column(String(255))
    # "full": the list is every mailbox in scope, so mailboxes absent from it are leavers.
    mode: Mapped[str] = mapped_column(String(8), default="add")
    status: Mapped[str] = mapped_column(String(12), default="preview")
    delimiter: Mapped[str] = mapped_column(String(12), default="comma")
    row_count: Mapped[int] = mapped_column(default=0)
    add_count: Mapped[int] = mapped_column(default=0)
    present_count: Mapped[int] = mapped_column(default=0)
    update_count: Mapped[int] = mapped_column(default=0)
    problem_count: Mapped[int] = mapped_column(default=0)
    warning_count: Mapped[int] = mapped_column(default=0)
    leaver_count: Mapped[int] = mapped_column(default=0)
    # How the file was read (the codec) and the domains its rows were checked against; None for a
    # preview made before these were recorded.
    encoding: Mapped[str | None] = mapped_column(String(40))
    checked_domains: Mapped[list | None] = mapped_column(JSON)
    # What the commit did (the preview's counts may differ if mailboxes changed in between).
    added_count: Mapped[int | None]
    # Addresses outside the domains that the commit did not import (the admin did not tick them in).
    outside_left_out_count: Mapped[int | None]
    updated_count: Mapped[int | None]
    removed_count: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None]
    committed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship()
    connection: Mapped[Connection | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    def __repr__(self) -> str:
        return f"<MailboxImport {self.id} {self.status}>"


class MailboxImportRow(db.Model):
    """One row of an import's preview, or one leaver (a mailbox absent from a full list)."""

    __tablename__ = "mailbox_import_rows"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('add', 'present', 'update', 'problem', 'warning', 'leaver')", name="outcome_known"
        ),
        Index("ix_mailbox_import_rows_import_outcome_row", "import_id", "outcome", "row_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("mailbox_imports.id", ondelete="CASCADE"))
    # The record's number in the file, the header being row 1; leavers have none.
    row_number: Mapped[int | None]
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16), default="user")
    group_name: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    # The existing mailbox an update or a leaver refers to. Not a foreign key on purpose: removing
    # mailboxes must not touch (or scan) old previews; commit checks the id still belongs to the org.
    mailbox_id: Mapped[int | None]
