"""Values and filters every template can use."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, g, has_request_context, request
from flask_login import current_user

from extensions import db


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


# Which navigation entry a page belongs to, by endpoint (a blueprint's name stands for all its pages).
_NAV_SECTIONS = {
    "organizations.overview": "overview", "organizations.admins": "admins", "mailboxes": "mailboxes",
    "runs": "runs", "connections": "connections", "onboarding": "connections", "support.index": "organizations",
    "support.new_organization": "organizations",
}


def _nav_section() -> str | None:
    endpoint = request.endpoint or ""
    return _NAV_SECTIONS.get(endpoint) or _NAV_SECTIONS.get(endpoint.partition(".")[0])


def _support_organization():
    """The organization whose page a support person is on (support may see every one), or None."""
    org_id = (request.view_args or {}).get("org_id")
    if not isinstance(org_id, int):
        return None
    from models.organization import Organization

    # Already in the session's identity map: the view loaded it through tenancy.organization_or_404.
    return db.session.get(Organization, org_id)


def navigation_context() -> dict:
    """Expose the organization whose navigation the bar shows, and the page's place in it.

    An admin always sees their own organization's; support staff see an organization's navigation
    (the same as its admins') on any of its pages, and the organizations list elsewhere.
    """
    user = current_user
    organization = None
    in_request = has_request_context()
    if in_request and getattr(user, "is_authenticated", False):
        organization = _support_organization() if user.is_support else user.organization
    organizations = [organization] if organization is not None else []
    # Set by services.platform.tenancy.organization_or_404 for support staff on an organization's pages.
    return {
        "nav_organization": organization,
        "nav_organizations": organizations,
        "nav_section": _nav_section() if in_request else None,
        "support_access": g.get("support_access"),
    }


def init_app(app: Flask) -> None:
    from services.platform.wording import plural, sentence

    app.add_template_filter(plural, "plural")
    app.add_template_filter(sentence, "sentence")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(provider_label, "provider_label")
    app.context_processor(navigation_context)
