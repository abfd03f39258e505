"""A connection: one service account of an organization, with its encrypted tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin
from models.organization import Organization
from models.user import User

CONNECTION_STATUSES = ("pending", "active", "needs_reauth", "revoked")


class Connection(TimestampMixin, db.Model):
    """A service account (one domain, one provider) authorized through Enterprise Connect."""

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("organization_id", "service_account_id", name="uq_connections_org_service_account"),
        CheckConstraint("status IN ('pending', 'active', 'needs_reauth', 'revoked')", name="status_known"),
        Index("ix_connections_org_status", "organization_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    provider: Mapped[str] = mapped_column(String(32))
    data_center: Mapped[str] = mapped_column(String(8))
    domain: Mapped[str | None] = mapped_column(String(253))
    service_account_id: Mapped[str | None] = mapped_column(String(64))
    service_account_email: Mapped[str | None] = mapped_column(String(254))
    upstream_provider_name: Mapped[str | None] = mapped_column(String(32))
    requested_scope: Mapped[str] = mapped_column(Text, default="")
    requested_delegated_scope: Mapped[str] = mapped_column(Text, default="")
    granted_scope: Mapped[str] = mapped_column(Text, default="")
    granted_delegated_scope: Mapped[str] = mapped_column(Text, default="")
    # Fernet ciphertexts (services.platform.crypto); never plaintext, never rendered.
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    last_refreshed_at: Mapped[datetime | None]
    # A short lease so that only one process refreshes the tokens at a time (refresh tokens rotate).
    refresh_lease_until: Mapped[datetime | None]
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    connected_at: Mapped[datetime | None]
    disconnected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    disconnected_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    organization: Mapped[Organization] = relationship()
    connected_by: Mapped[User | None] = relationship(foreign_keys=[connected_by_id])
    disconnected_by: Mapped[User | None] = relationship(foreign_keys=[disconnected_by_id])

    @property
    def label(self) -> str:
        """A short name for lists: the domain once known."""
        return self.domain or f"Connection {self.id}"

    def scopes(self, which: str = "granted_scope") -> tuple[str, ...]:
        """Return one of the space-separated scope columns as a tuple."""
        return tuple((getattr(self, which) or "").split())

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.status} {self.domain}>"
