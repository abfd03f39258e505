"""Rate-limit counters in the database, for the sign-in throttle when there is no Redis.

Written only by `services.platform.throttle_store` (a storage for the `limits` library): one row per limit key
and fixed window, shared by every web worker on the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from extensions import db

KEY_LENGTH = 255


class RateLimitCounter(db.Model):
    """The hits counted for one limit key in its current window, which ends at expires_at."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    hits: Mapped[int]
    expires_at: Mapped[datetime]
