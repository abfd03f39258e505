"""An organization: one customer of the vendor, connecting its calendars."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import TimestampMixin


class Organization(TimestampMixin, db.Model):
    """A customer organization; every org-scoped row points here."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    data_center: Mapped[str] = mapped_column(String(8), default="us")
    # The vendor's own id for this customer, set through the API; unique when set.
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    # The onboarding state last announced by an organization.state_changed event.
    announced_state: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.slug}>"
