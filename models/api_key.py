"""API keys: how the vendor's own services authenticate to the JSON API (only a hash is kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import utcnow
from models.organization import Organization
from models.user import User

# What a key may do.
API_SCOPES = (
    "organizations:read",
    "organizations:write",
    "mailboxes:read",
    "mailboxes:write",
    "runs:write",
    "tokens:read",
    "events:read",
    "webhooks:write",
)


class ApiKey(db.Model):
    """One key of the vendor: a name, its scopes, maybe one organization; the key itself is never stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The first characters of the key (`ecc_live_` and 8 more), shown in lists and used to revoke it.
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(Text, default="")
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                        index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    organization: Mapped[Organization | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix}>"
