"""The event log: every state change the vendor's services hear about, once, in commit order.

An event is written in the transaction of the change it describes (services/platform/events.py), so a
rolled-back change leaves no event and a committed one always has its event. Ids grow in commit order
(the writer serializes the insert of events with the commit), so a reader paging `after=<id>` never
skips an event that commits later with a smaller id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import utcnow

# On SQLite an INTEGER PRIMARY KEY is the rowid (autoincrementing); BIGINT is not.
EventId = BigInteger().with_variant(Integer, "sqlite")


class Event(db.Model):
    """One change: its type, its organization, its subject (with the vendor's external id) and the subject's data."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_organization_id_id", "organization_id", "id"),
        Index("ix_events_type_id", "type", "id"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # mailbox, connection, run, organization or webhook_endpoint
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_external_id: Mapped[str | None] = mapped_column(String(255))
    # The subject as the API returns it at the moment of the change.
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type}>"
