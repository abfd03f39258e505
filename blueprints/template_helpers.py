"""Values and filters every template can use."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_login import current_user


def format_datetime(value: datetime | None, missing: str = "—") -> str:
    """Render an aware datetime as UTC, e.g. 2026-11-28 20:15 UTC."""
    if value is None:
        return missing
    return value.strftime("%Y-%m-%d %H:%M UTC")


def navigation_context() -> dict:
    """Expose the signed-in user's organization (for admins) to the navigation bar."""
    user = current_user
    organization = None
    if getattr(user, "is_authenticated", False) and not user.is_support:
        organization = user.organization
    return {"nav_organization": organization}


def init_app(app: Flask) -> None:
    app.add_template_filter(format_datetime, "datetime")
    app.context_processor(navigation_context)
