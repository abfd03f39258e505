"""Recording audit events. Services call `record`; the caller's transaction commits it."""

from __future__ import annotations

from flask import g, has_request_context

from extensions import db
from models.audit import AuditEvent
from services.platform import tenancy


def record(
    action: str,
    *,
    actor=None,
    organization=None,
    target=None,
    details: dict | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Add an audit event for action; `target` is any model instance with an id.

    When support staff act on an organization and no reason is given, the reason of their active
    support access to it is recorded, so every change made on a customer's behalf says why.
    """
    if reason is None and organization is not None and getattr(actor, "is_support", False):
        reason = tenancy.active_support_reason(organization.id, actor)
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        organization_id=getattr(organization, "id", None),
        target_type=type(target).__name__ if target is not None else None,
        target_id=str(target.id) if target is not None else None,
        details={**request_context(), **(details or {})},
        reason=reason,
    )
    db.session.add(event)
    db.session.flush()
    return event


def set_request_context(**details) -> None:
    """Add details to every event recorded during this request (e.g. that it came through a portal link)."""
    g.audit_context = {**g.get("audit_context", {}), **details}


def request_context() -> dict:
    return dict(g.get("audit_context", {})) if has_request_context() else {}


def recent_for_organization(organization_id: int, limit: int = 20, *, action: str | None = None) -> list[AuditEvent]:
    """Return the newest audit events of an organization, optionally only those of one action."""
    query = db.select(AuditEvent).where(AuditEvent.organization_id == organization_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(
        db.session.scalars(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit))
    )
