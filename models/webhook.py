"""Webhook endpoints of the vendor, their signing secrets, and every delivery and attempt to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, utcnow
from models.event import EventId
from models.organization import Organization


class WebhookEndpoint(TimestampMixin, db.Model):
    """Where events are POSTed: a URL, the event types it wants (empty: all), maybe one organization."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    # Space-separated event types; empty means every type.
    event_types: Mapped[str] = mapped_column(Text, default="")
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                        index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Why it was disabled when the console did it (410 Gone, failing for 5 days); empty when a person did.
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # Since when every attempt has failed (None after any success).
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))

    organization: Mapped[Organization | None] = relationship()
    secrets: Mapped[list[WebhookSecret]] = relationship(back_populates="endpoint", cascade="all, delete-orphan",
                                                        order_by="WebhookSecret.id.desc()")

    @property
    def event_type_list(self) -> list[str]:
        return self.event_types.split()

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.id} {self.url}>"


class WebhookSecret(db.Model):
    """A signing secret (`whsec_…`, Fernet-encrypted); a rotated-out one signs on until expires_at."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]

    endpoint: Mapped[WebhookEndpoint] = relationship(back_populates="secrets")


class WebhookDelivery(db.Model):
    """One event for one endpoint: pending until delivered, retried on the Standard Webhooks schedule."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", "redelivery", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        # The sender's claim: one endpoint's due deliveries, oldest due first.
        Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # 0 for the first delivery; a person's "redeliver" adds one with the next number.
    redelivery: Mapped[int] = mapped_column(default=0)
    # pending (waiting for its next attempt), sending, succeeded, failed (no attempts left or endpoint disabled)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    endpoint: Mapped[WebhookEndpoint] = relationship()


class WebhookAttempt(db.Model):
    """One HTTP attempt of a delivery: when, the status code, how long, the start of the answer, the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
                                             index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    # At most 2 KB of the answer, as text.
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    succeeded: Mapped[bool] = mapped_column(default=False)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class WebhookDispatchCursor(db.Model):
    """How far the dispatcher has turned events into deliveries (one row), and who is doing it now."""

    __tablename__ = "webhook_dispatch_cursor"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    claimed_until: Mapped[datetime | None]
