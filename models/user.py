"""People who sign in: the vendor's support staff and organizations' admins."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin
from models.organization import Organization

ROLE_SUPPORT = "support"
ROLE_ORG_ADMIN = "org_admin"
ROLES = (ROLE_SUPPORT, ROLE_ORG_ADMIN)


class User(UserMixin, TimestampMixin, db.Model):
    """A person with a password; org admins belong to exactly one organization."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('support', 'org_admin')", name="role_known"),
        CheckConstraint(
            "(role = 'support' AND organization_id IS NULL) OR (role = 'org_admin' AND organization_id IS NOT NULL)",
            name="role_matches_organization",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Support staff who also manage the vendor's API keys (the vendor settings page).
    is_vendor_admin: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    last_sign_in_at: Mapped[datetime | None]
    # Bumped on password change and deactivation so that older sessions stop working.
    auth_version: Mapped[int] = mapped_column(default=1)

    organization: Mapped[Organization | None] = relationship()

    @property
    def is_support(self) -> bool:
        return self.role == ROLE_SUPPORT

    def get_id(self) -> str:
        return f"{self.id}:{self.auth_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"
