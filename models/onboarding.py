"""The connection wizard's server-side state, setup links for a colleague, and consent attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, utcnow
from models.connection import Connection
from models.organization import Organization
from models.user import User

WIZARD_STATUSES = ("draft", "connecting", "completed", "abandoned")
WIZARD_STEPS = ("provider", "checklist", "scopes", "review", "verify")


class WizardSession(TimestampMixin, db.Model):
    """One run of the connection wizard, kept on the server so that it can be left and resumed."""

    __tablename__ = "wizard_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'connecting', 'completed', 'abandoned')", name="status_known"),
        Index("ix_wizard_sessions_org_status", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Set when the wizard re-authorizes an existing connection instead of adding one.
    reconnect_connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    # The connection the wizard produced, once consent succeeded.
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    step: Mapped[str] = mapped_column(String(20), default="provider")
    provider: Mapped[str | None] = mapped_column(String(32))
    data_center: Mapped[str | None] = mapped_column(String(8))
    checklist_done: Mapped[list] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    delegated_scope: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    completed_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship()
    created_by: Mapped[User | None] = relationship()
    reconnect_connection: Mapped[Connection | None] = relationship(foreign_keys=[reconnect_connection_id])
    connection: Mapped[Connection | None] = relationship(foreign_keys=[connection_id])

    @property
    def is_open(self) -> bool:
        """Whether the wizard can still be edited and connected."""
        return self.status in ("draft", "connecting")

    def __repr__(self) -> str:
        return f"<WizardSession {self.id} {self.status} {self.step}>"


class SetupLink(TimestampMixin, db.Model):
    """A single-use, expiring link that hands the connect step to a colleague without an account."""

    __tablename__ = "setup_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    wizard_session_id: Mapped[int] = mapped_column(ForeignKey("wizard_sessions.id"), index=True)
    # Only a SHA-256 of the random part of the link is kept.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organization: Mapped[Organization] = relationship()
    wizard_session: Mapped[WizardSession] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    @property
    def status(self) -> str:
        """One of pending, used, revoked or expired."""
        if self.used_at:
            return "used"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= utcnow():
            return "expired"
        return "pending"


class ConsentAttempt(TimestampMixin, db.Model):
    """One trip to the consent page: the single-use `state` and exactly what was asked for."""

    __tablename__ = "consent_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    wizard_session_id: Mapped[int] = mapped_column(ForeignKey("wizard_sessions.id"), index=True)
    setup_link_id: Mapped[int | None] = mapped_column(ForeignKey("setup_links.id"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Only a SHA-256 of the state is kept; the browser session holds the state itself.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    data_center: Mapped[str] = mapped_column(String(8))
    scope: Mapped[str] = mapped_column(Text)
    delegated_scope: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # pending, connected, denied, invalid_scope, refused, failed or timed_out; withdrawn or discarded
    # when revoking the setup link or discarding the wizard ended the attempt before it came back;
    # superseded when a newer attempt of the same wizard started (only the newest may complete).
    outcome: Mapped[str] = mapped_column(String(20), default="pending")
    error_key: Mapped[str | None] = mapped_column(String(64))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))

    organization: Mapped[Organization] = relationship()
    wizard_session: Mapped[WizardSession] = relationship()
    setup_link: Mapped[SetupLink | None] = relationship()
    started_by: Mapped[User | None] = relationship()
