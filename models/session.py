"""Signed-in sessions, recorded on the server so that signing out really ends them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from extensions import db
from models.base import utcnow
from models.user import User

END_REASONS = ("signed_out", "password_changed", "deactivated", "replaced", "expired")


class UserSession(db.Model):
    """One browser's signed-in session; the cookie carries only a random token whose SHA-256 is `token_hash`."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('signed_out', 'password_changed', 'deactivated', 'replaced', "
            "'expired')",
            name="end_reason_known",
        ),
        Index("ix_user_sessions_user_ended", "user_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The absolute end, however active the session is; idleness ends it earlier (services/accounts/sessions.py).
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(20))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ip_address: Mapped[str] = mapped_column(String(45), default="")
    # One-time values shown on the next page (an invitation link just issued), Fernet-encrypted JSON,
    # so that no secret travels in the readable cookie.
    stash_encrypted: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship()
