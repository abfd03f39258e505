"""Tenant isolation: the one place that loads an org-scoped object and checks who may see it.

An organization's admin reaches only their own organization; any other id gives 404, never 403,
so that ids of other customers cannot be probed. Support staff reach every organization, and may
look freely; to change anything (any request other than GET/HEAD/OPTIONS) they need an active
support access for that organization, started with a recorded reason (see `services.accounts.support`).
The grant lives in the session as the id of its `support.access_started` audit event and is
checked against that row on every request, so it expires, ends and belongs to one person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

from flask import abort, current_app, flash, g, has_request_context, redirect, request, session, url_for
from flask_login import current_user
from sqlalchemy import and_, exists
from sqlalchemy.orm import aliased

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.organization import Organization

T = TypeVar("T")

ACCESS_STARTED = "support.access_started"
ACCESS_ENDED = "support.access_ended"
DEFAULT_SUPPORT_ACCESS_MINUTES = 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_KEY = "support_access"


@dataclass(frozen=True)
class SupportAccess:
    """An active support access: who may act on an organization's behalf, why, and until when."""

    event_id: int
    organization_id: int
    organization_name: str
    user_id: int
    reason: str
    started_at: datetime
    expires_at: datetime


def can_access(user, organization_id: int) -> bool:
    """Return whether user may see organization_id."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_support or user.organization_id == organization_id


def organization_or_404(org_id: int, *, support_grant_required: bool = True) -> Organization:
    """Return the organization if the signed-in user may see it, else abort with 404.

    For support staff on a state-changing request without an active support access, abort with
    a redirect to the page that asks for the reason. Only that page itself passes
    `support_grant_required=False`.
    """
    organization = db.session.get(Organization, org_id)
    if organization is None or not can_access(current_user, organization.id):
        abort(404)
    # Kept for the banner of this request's page (see the organizations blueprint's context processor).
    g.support_access = active_support_access(organization.id, current_user)
    if current_user.is_support and support_grant_required and g.support_access is None:
        if request.method not in SAFE_METHODS:
            abort(_redirect_to_access_page(organization))
    return organization


def scoped_or_404(model: type[T], object_id: int, organization: Organization) -> T:
    """Return model `object_id` if it belongs to `organization` (already authorized), else 404."""
    obj = db.session.get(model, object_id)
    if obj is None or getattr(obj, "organization_id", None) != organization.id:
        abort(404)
    return obj


def support_access_minutes() -> int:
    """Return how long a support access lasts (setting SUPPORT_ACCESS_MINUTES, default 60)."""
    return int(current_app.config.get("SUPPORT_ACCESS_MINUTES", DEFAULT_SUPPORT_ACCESS_MINUTES))


def active_support_access(organization_id: int, user) -> SupportAccess | None:
    """Return user's unexpired, unended support access to organization_id held in this session."""
    if not has_request_context() or not getattr(user, "is_support", False):
        return None
    event_id = session.get(_SESSION_KEY, {}).get(str(organization_id))
    if not isinstance(event_id, int):
        return None
    ttl = timedelta(minutes=support_access_minutes())
    event = db.session.scalar(_active_grant_query(event_id, organization_id, user.id, utcnow() - ttl))
    if event is None:
        return None
    return SupportAccess(
        event_id=event.id,
        organization_id=organization_id,
        organization_name=event.organization.name,
        user_id=user.id,
        reason=event.reason or "",
        started_at=event.created_at,
        expires_at=event.created_at + ttl,
    )


def _active_grant_query(event_id: int, organization_id: int, user_id: int, started_after: datetime):
    ended = aliased(AuditEvent)
    return db.select(AuditEvent).where(
        AuditEvent.id == event_id,
        AuditEvent.action == ACCESS_STARTED,
        AuditEvent.organization_id == organization_id,
        AuditEvent.actor_id == user_id,
        AuditEvent.created_at > started_after,
        ~exists().where(
            and_(
                ended.action == ACCESS_ENDED,
                ended.target_type == "AuditEvent",
                ended.target_id == str(event_id),
            )
        ),
    )


def active_support_reason(organization_id: int, user) -> str | None:
    """Return the reason of user's active support access to organization_id, if any (None outside a request)."""
    access = active_support_access(organization_id, user)
    return access.reason if access else None


def remember_support_access(event: AuditEvent) -> None:
    """Keep a just-started support access (its audit event) in the session."""
    grants = dict(session.get(_SESSION_KEY, {}))
    grants[str(event.organization_id)] = event.id
    session[_SESSION_KEY] = grants


def forget_support_access(organization_id: int) -> None:
    """Drop the session's support access to organization_id."""
    grants = dict(session.get(_SESSION_KEY, {}))
    grants.pop(str(organization_id), None)
    session[_SESSION_KEY] = grants


def _redirect_to_access_page(organization: Organization):
    flash(
        f"To change anything in {organization.name}, first record why you are acting on its behalf.",
        "warning",
    )
    query = urlencode({"next": _return_path(organization)})
    return redirect(url_for("support.access", org_id=organization.id) + "?" + query)


def _return_path(organization: Organization) -> str:
    """Return the local page to come back to once access is granted: the page the form was on."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    if request.url_rule is not None and "GET" in (request.url_rule.methods or ()):
        return request.path
    return url_for("organizations.overview", org_id=organization.id)
