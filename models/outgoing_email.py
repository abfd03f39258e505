"""Outgoing email: one row per message the console sends, with its delivery status.

The body carries a secret link (an invitation, a password reset, a setup link), so it is kept only
Fernet-encrypted (`services.platform.crypto`), only while it may still be needed: until the mail server
accepts it. A message written to the development outbox keeps it for the Outbox page.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, utcnow
from models.organization import Organization

QUEUED, SENT, FAILED = "queued", "sent", "failed"
STATUSES = (QUEUED, SENT, FAILED)
# What a message was for.
INVITATION, PASSWORD_RESET, SETUP_LINK = "invitation", "password_reset", "setup_link"
PURPOSES = (INVITATION, PASSWORD_RESET, SETUP_LINK)
# Where a sent message went: a mail server, or the outbox folder of a console without MAIL_SERVER.
SMTP, OUTBOX = "smtp", "outbox"


class OutgoingEmail(TimestampMixin, db.Model):
    """A message queued for sending, sent, or failed with its reason."""

    __tablename__ = "outgoing_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    setup_link_id: Mapped[int | None] = mapped_column(ForeignKey("setup_links.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED, index=True)
    transport: Mapped[str | None] = mapped_column(String(10))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set while a worker is handing the message to the server, so that two jobs never send it twice.
    sending_since: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organization: Mapped[Organization | None] = relationship()

    @property
    def is_sending(self) -> bool:
        """Whether a worker is handing the message to the mail server right now."""
        return self.status == QUEUED and self.sending_since is not None
