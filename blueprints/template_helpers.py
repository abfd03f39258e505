"""Values and filters every template can use."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, g
from flask_login import current_user


def format_datetime(value: datetime | None, missing: str = "—") -> str:
    """Render an aware datetime as UTC, e.g. 2026-11-28 20:15 UTC."""
    if value is None:
        return missing
    return value.strftime("%Y-%m-%d %H:%M UTC")


def provider_label(key: str | None) -> str:
    """Render a provider key (google, microsoft_graph, exchange_ews) as its product name."""
    from services.onboarding.providers import provider

    found = provider(key)
    return found.label if found else (key or "—")


def navigation_context() -> dict:
    """Expose the signed-in user's organization (for admins) to the navigation bar."""
    user = current_user
    organization = None
    if getattr(user, "is_authenticated", False) and not user.is_support:
        organization = user.organization
    # Set by services.platform.tenancy.organization_or_404 for support staff on an organization's pages.
    return {"nav_organization": organization, "support_access": g.get("support_access")}


def init_app(app: Flask) -> None:
    from services.platform.wording import plural, sentence

    app.add_template_filter(plural, "plural")
    app.add_template_filter(sentence, "sentence")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(provider_label, "provider_label")
    app.context_processor(navigation_context)
