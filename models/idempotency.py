"""What the API answered to a POST sent with an `Idempotency-Key`, so that a retry gets the same answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db
from models.base import utcnow


class IdempotencyRecord(db.Model):
    """One key of one API key; `status_code` is empty while the first request is still being handled."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_idempotency_records_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the method, the path and the body as sent.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    # The answer as sent, Fernet-encrypted: a portal link's answer carries a one-time link.
    response_encrypted: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
