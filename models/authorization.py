"""Bulk authorization: runs, per-mailbox attempts, and the callbacks Cronofy sends for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import TimestampMixin, utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from models.user import User

RUN_STATUSES = ("running", "awaiting_confirmation", "paused", "cancelled", "completed")
ATTEMPT_STATUSES = (
    "queued",      # waiting for a batch
    "sending",     # claimed by a worker, part of a batch in flight
    "requested",   # upstream answered 202; waiting for the callback
    "exchanging",  # a callback with a code arrived; the exchange is claimed
    "authorized",  # tokens stored
    "failed",      # the upstream, the callback or the exchange said no (error_key, error_description)
    "cancelled",   # the run was cancelled before this attempt was sent
    "revoked",     # (revoke runs) the mailbox's authorization was revoked
)


class AuthorizationRun(TimestampMixin, db.Model):
    """One bulk authorization (or revocation) started by a person over a set of mailboxes."""

    __tablename__ = "authorization_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'awaiting_confirmation', 'paused', 'cancelled', 'completed')", name="status_known"
        ),
        CheckConstraint("action IN ('authorize', 'revoke')", name="action_known"),
        Index("ix_authorization_runs_org_created", "organization_id", "created_at"),
        Index("ix_authorization_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16), default="authorize")
    status: Mapped[str] = mapped_column(String(24), default="running")
    # The delegated scope asked for (within the connection's delegated_scope).
    scope: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")  # e.g. "selection of 1,204", "group sales"
    total: Mapped[int] = mapped_column(default=0)
    # Staged rollout: a canary wave first, then the rest (automatically or on confirmation).
    canary_size: Mapped[int | None]
    auto_continue: Mapped[bool] = mapped_column(default=True)
    failure_threshold: Mapped[float] = mapped_column(default=0.2)
    current_wave: Mapped[int] = mapped_column(default=1)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    # The run's clock (services/engine/run_clock.py), so that rates leave pauses out: the seconds spent
    # running before `running_since` (when the current stretch of running began; None while not running),
    # and where the current wave's clock starts (a wall time, and the run's active seconds then).
    active_seconds: Mapped[float] = mapped_column(default=0.0, server_default="0")
    running_since: Mapped[datetime | None]
    wave_started_at: Mapped[datetime | None]
    wave_active_offset: Mapped[float] = mapped_column(default=0.0, server_default="0")
    # Only one worker pumps a run at a time (services/platform/leases.py): the holder's token, renewed while it pumps.
    pump_lease_until: Mapped[datetime | None]
    pump_holder: Mapped[str | None] = mapped_column(String(32))
    # A pump job is in the queue until then (handed over or re-enqueued): recover() leaves the run to it.
    pump_requeued_until: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship()
    connection: Mapped[Connection] = relationship()
    created_by: Mapped[User | None] = relationship()


class AuthorizationAttempt(TimestampMixin, db.Model):
    """One try at authorizing (or revoking) one mailbox, correlated with its callback by `state`."""

    __tablename__ = "authorization_attempts"
    __table_args__ = (
        UniqueConstraint("state", name="uq_authorization_attempts_state"),
        UniqueConstraint("callback_token_hash", name="uq_authorization_attempts_callback_token_hash"),
        # At most one live attempt per mailbox: two workers can never request a mailbox twice.
        UniqueConstraint("live_mailbox_id", name="uq_authorization_attempts_live_mailbox_id"),
        Index("ix_authorization_attempts_run_status", "run_id", "status", "id"),
        Index("ix_authorization_attempts_run_wave_status", "run_id", "wave", "status"),
        Index("ix_authorization_attempts_mailbox_created", "mailbox_id", "created_at"),
        Index("ix_authorization_attempts_status_due", "status", "next_try_at"),
        Index("ix_authorization_attempts_status_requested", "status", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("authorization_runs.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    wave: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The mailbox id while the attempt is queued/sending/requested/exchanging, NULL once it ends;
    # unique, so a mailbox has at most one live attempt (NULLs never collide, on SQLite or PostgreSQL).
    live_mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    # Random, unguessable; sent as `state` and echoed in the callback (docs/cronofy-api.md §3.3).
    state: Mapped[str] = mapped_column(String(64))
    # The callback URL carries a per-attempt secret; the callback is looked up by its SHA-256. The full
    # URL is kept, Fernet-encrypted like codes, because the exchange must send it back as redirect_uri
    # (§3.3.2); services.engine.attempts.callback_url_of opens it.
    callback_token_hash: Mapped[str] = mapped_column(String(64))
    callback_url_encrypted: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    batch_key: Mapped[str | None] = mapped_column(String(40))
    send_tries: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    # Names the worker holding an exchange's claim, so that only it renews the claim or finishes the attempt.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # An exchange job for this attempt's callback is in the queue until then (a retry, or recover()).
    requeued_until: Mapped[datetime | None]
    requested_at: Mapped[datetime | None]
    callback_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error_key: Mapped[str | None] = mapped_column(String(80))
    error_description: Mapped[str | None] = mapped_column(Text)
    # The mailbox's status before the run queued it, so a cancel can put it back.
    prior_status: Mapped[str | None] = mapped_column(String(20))
    # A failed attempt that "retry failed" replaced with a new one; progress counts only the newest.
    is_retried: Mapped[bool] = mapped_column(default=False)

    run: Mapped[AuthorizationRun | None] = relationship()
    mailbox: Mapped[Mailbox] = relationship(foreign_keys=[mailbox_id])


class CallbackReceipt(db.Model):
    """A callback as received, stored before answering 2xx; the worker exchanges its code later."""

    __tablename__ = "callback_receipts"
    __table_args__ = (Index("ix_callback_receipts_pending", "processed_at", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("authorization_attempts.id", ondelete="SET NULL"), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str | None] = mapped_column(String(128))
    # The one-time code, Fernet-encrypted; error callbacks carry none.
    code_encrypted: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(80))
    error_key: Mapped[str | None] = mapped_column(String(80))
    error_description: Mapped[str | None] = mapped_column(Text)
    hmac_status: Mapped[str] = mapped_column(String(16), default="absent")  # absent | valid
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(24))  # authorized | failed | duplicate | superseded | ...
    details: Mapped[dict] = mapped_column(JSON, default=dict)
