"""Portal links: how the vendor's product sends a customer's admin into the console (single use, short-lived)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.api_key import ApiKey
from models.base import utcnow
from models.organization import Organization

PORTAL_INTENTS = ("overview", "connect", "mailboxes", "runs")


class PortalLink(db.Model):
    """One link issued through the API; only a SHA-256 of its secret is kept."""

    __tablename__ = "portal_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    admin_email: Mapped[str] = mapped_column(String(254))
    intent: Mapped[str] = mapped_column(String(16))
    return_url: Mapped[str] = mapped_column(String(2000))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship()
    api_key: Mapped[ApiKey | None] = relationship()
