"""Mailboxes (users, shared mailboxes, resources) and the timeline of what happened to each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, utcnow
from models.connection import Connection
from models.organization import Organization

MAILBOX_STATUSES = ("new", "queued", "requested", "authorized", "failed", "needs_attention", "revoked")
MAILBOX_KINDS = ("user", "shared", "resource")
MAILBOX_SOURCES = ("import", "resource_sync", "manual")


class Mailbox(TimestampMixin, db.Model):
    """One calendar mailbox of an organization and where its delegated authorization stands."""

    __tablename__ = "mailboxes"
    __table_args__ = (
        UniqueConstraint("organization_id", "email", name="uq_mailboxes_org_email"),
        CheckConstraint(
            "status IN ('new', 'queued', 'requested', 'authorized', 'failed', 'needs_attention', 'revoked')",
            name="status_known",
        ),
        CheckConstraint("kind IN ('user', 'shared', 'resource')", name="kind_known"),
        # Keyset pagination and the per-status summary stay index-only at 100,000 mailboxes.
        Index("ix_mailboxes_org_status_email", "organization_id", "status", "email"),
        Index("ix_mailboxes_org_kind_email", "organization_id", "kind", "email"),
        Index("ix_mailboxes_org_group_email", "organization_id", "group_name", "email"),
        Index("ix_mailboxes_org_connection_email", "organization_id", "connection_id", "email"),
        # The list also sorts by name and by last update, index-ordered like the email sorts above.
        Index("ix_mailboxes_org_name", "organization_id", "name", "id"),
        Index("ix_mailboxes_org_updated", "organization_id", "updated_at", "id"),
        # The summary bar counts per status within the other filters: index-only scans of the matches.
        Index("ix_mailboxes_org_kind_status", "organization_id", "kind", "status"),
        Index("ix_mailboxes_org_group_status", "organization_id", "group_name", "status"),
        Index("ix_mailboxes_org_connection_status", "organization_id", "connection_id", "status"),
        # One vendor id per mailbox of an organization; an index, not a constraint, so SQLite adds it in place.
        Index("uq_mailboxes_org_external_id", "organization_id", "external_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    # The name resource sync last saw upstream (§3.9); `name` follows it unless an admin gave another.
    upstream_name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="user")
    group_name: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16), default="import")
    status: Mapped[str] = mapped_column(String(20), default="new")
    # Resource details from GET /v1/resources (docs/cronofy-api.md §3.9).
    capacity: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(String(300))
    # The latest failure, with the key from upstream and the words shown to the admin.
    last_error_key: Mapped[str | None] = mapped_column(String(80))
    last_error_description: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_at: Mapped[datetime | None]
    authorized_at: Mapped[datetime | None]
    # The delegated account (§3.3.2); tokens are Fernet ciphertexts, never plaintext.
    account_id: Mapped[str | None] = mapped_column(String(64))
    profile_id: Mapped[str | None] = mapped_column(String(64))
    provider_name: Mapped[str | None] = mapped_column(String(32))
    granted_scope: Mapped[str | None] = mapped_column(Text)
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at: Mapped[datetime | None]
    refresh_lease_until: Mapped[datetime | None]
    # Set when an exchange of this mailbox's code was cut short: Cronofy may hold an authorization
    # whose tokens never arrived. The next exchange that names the account revokes the account's
    # authorizations and asks once more, so that exactly one remains (services/engine/exchange.py).
    lost_grant_suspected_at: Mapped[datetime | None]
    # The vendor's own id for this mailbox's user, set through the API (unique within the organization).
    external_id: Mapped[str | None] = mapped_column(String(200))
    # The latest access token handed to the vendor's API (when, and to which key); the token itself is not kept.
    token_fetched_at: Mapped[datetime | None]
    token_fetched_by: Mapped[str | None] = mapped_column(String(24))  # the API key's prefix
    token_fetch_count: Mapped[int] = mapped_column(default=0, server_default="0")

    organization: Mapped[Organization] = relationship()
    connection: Mapped[Connection | None] = relationship()

    def __repr__(self) -> str:
        return f"<Mailbox {self.id} {self.status}>"


class MailboxEvent(db.Model):
    """One entry on a mailbox's timeline: a transition or a notable fact, with who or what caused it."""

    __tablename__ = "mailbox_events"
    __table_args__ = (Index("ix_mailbox_events_mailbox_created", "mailbox_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The `state` correlation id of the authorization attempt, where there is one.
    state: Mapped[str | None] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
