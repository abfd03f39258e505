"""Tables of the sandbox: clients, the fake directory, authorizations, tokens, codes, callbacks and the event log."""

from datetime import datetime, timezone

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow():
    """Return the current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the sandbox tables."""


class Client(Base):
    """A registered API client (the vendor application)."""

    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    secrets: Mapped[str] = mapped_column(Text)  # comma-separated active secrets (§3.11)
    name: Mapped[str] = mapped_column(String(120), default="")
    redirect_uris: Mapped[str] = mapped_column(Text, default="")  # newline-separated
    allow_loopback: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Domain(Base):
    """A seeded customer domain with its calendar back-end."""

    __tablename__ = "domains"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    organization: Mapped[str] = mapped_column(String(120))
    provider: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(80))
    region: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(4))
    postal_code: Mapped[str] = mapped_column(String(20))
    street: Mapped[str] = mapped_column(String(120))
    lat: Mapped[float] = mapped_column(Float)
    long: Mapped[float] = mapped_column(Float)


class Member(Base):
    """A mailbox of a domain's directory: user, room, equipment or shared mailbox."""

    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    trait: Mapped[str | None] = mapped_column(String(30), nullable=True)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    building_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    floor_name: Mapped[str | None] = mapped_column(String(20), nullable=True)
    floor_section: Mapped[str | None] = mapped_column(String(20), nullable=True)
    __table_args__ = (Index("ix_members_domain_kind", "domain_id", "kind"),)


class ServiceAccount(Base):
    """A service-account authorization granted by a domain administrator (§3.1)."""

    __tablename__ = "service_accounts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ser_...
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(Text)
    delegated_scope: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Account(Base):
    """A delegated account obtained through a service account (§3.3)."""

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # acc_...
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    service_account_id: Mapped[str] = mapped_column(ForeignKey("service_accounts.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    profile_id: Mapped[str] = mapped_column(String(40), unique=True)  # pro_...
    scope: Mapped[str] = mapped_column(Text)
    profile_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (UniqueConstraint("client_id", "member_id", name="uq_accounts_client_member"),)


class Grant(Base):
    """One authorization: a refresh token family for a service account or an account."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(20))  # service_account | account
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(Text)
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessToken(Base):
    """An access token (stored as a SHA-256 digest only)."""

    __tablename__ = "access_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[float] = mapped_column(Float)  # epoch seconds
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Code(Base):
    """A single-use authorization code (§3.1 and §3.3.1), stored as a digest."""

    __tablename__ = "codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))  # service_account | account
    subject_id: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Callback(Base):
    """An outgoing delegated-access callback waiting for, or done with, delivery."""

    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(40))  # code | <error_key>
    due_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_callbacks_status_due", "status", "due_at"),)


class Event(Base):
    """One line of the event log: a request received or a callback sent."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(20))  # request | callback
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(300))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    client_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    detail: Mapped[str] = mapped_column(String(300), default="")
    __table_args__ = (Index("ix_events_kind", "kind"),)


class Setting(Base):
    """A runtime setting shared by every process (faults and limits as JSON)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Counter(Base):
    """An integer decremented atomically across processes (the 429 burst)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Channel(Base):
    """A push notification channel of a delegated account (§3.11); closed channels are kept, marked."""

    __tablename__ = "channels"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # chn_...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(80))
    callback_url: Mapped[str] = mapped_column(Text)
    filters: Mapped[str] = mapped_column(Text, default="{}")  # JSON, echoed as given
    created_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_channels_account_open", "account_id", "closed_at"),)


class ProfileState(Base):
    """What happened to an account's calendar profile: a disconnection (from a moment on) and data changes.

    A table of its own rather than columns of `accounts`, so that an existing sandbox database gains it
    through `create_all` without a migration.
    """

    __tablename__ = "profile_states"
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    disconnected_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # may lie ahead: scheduled
    disconnect_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    calendar_version: Mapped[int] = mapped_column(Integer, default=0)
    calendar_changed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
