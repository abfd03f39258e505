"""What support staff see and do across organizations, and support access with a recorded reason."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, or_

from extensions import db
from models.audit import AuditEvent
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, User
from services.accounts import organizations
from services.accounts.invitations import IssuedInvitation, create_invitation
from services.platform import audit
from services.platform.tenancy import ACCESS_ENDED, ACCESS_STARTED, SupportAccess

PAGE_SIZE = 25
MAX_SEARCH_LENGTH = 120
MIN_REASON_LENGTH = 10
MAX_REASON_LENGTH = 500


class SupportError(ValueError):
    """A support operation was refused; the message is fit to show."""


@dataclass(frozen=True)
class OrganizationRow:
    organization: Organization
    admins: int


@dataclass(frozen=True)
class OrganizationPage:
    """One page of the organization list."""

    rows: list[OrganizationRow]
    page: int
    pages: int
    total: int
    query: str

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_filter(query: str):
    pattern = f"%{_escape_like(query.lower())}%"
    return or_(func.lower(Organization.name).like(pattern, escape="\\"), Organization.slug.like(pattern, escape="\\"))


def organization_page(query: str = "", page: int = 1, per_page: int = PAGE_SIZE) -> OrganizationPage:
    """Return one page of organizations whose name or slug contains query, with active admin counts.

    Pages past the end are clamped to the last page, so a stale link still shows something.
    """
    query = (query or "").strip()[:MAX_SEARCH_LENGTH]
    where = [_search_filter(query)] if query else []
    total = db.session.scalar(db.select(func.count(Organization.id)).where(*where)) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    admin_count = (
        db.select(User.organization_id, func.count(User.id).label("n"))
        .where(User.role == ROLE_ORG_ADMIN, User.is_active.is_(True))
        .group_by(User.organization_id)
        .subquery()
    )
    result = db.session.execute(
        db.select(Organization, func.coalesce(admin_count.c.n, 0))
        .outerjoin(admin_count, admin_count.c.organization_id == Organization.id)
        .where(*where)
        .order_by(func.lower(Organization.name), Organization.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = [OrganizationRow(organization=org, admins=n) for org, n in result]
    return OrganizationPage(rows=rows, page=page, pages=pages, total=total, query=query)


def create_organization_with_admin(
    *, name: str, data_center: str, admin_email: str, actor: User
) -> tuple[Organization, IssuedInvitation]:
    """Create an organization and invite its first admin; the caller rolls back if this raises.

    :raises OrganizationError: for a bad name or data center.
    :raises InvitationError: for a bad email or one that already has an account.
    """
    _require_support(actor)
    organization = organizations.create_organization(name, data_center)
    audit.record(
        "organization.created",
        actor=actor,
        organization=organization,
        target=organization,
        details={"name": organization.name, "data_center": organization.data_center},
    )
    issued = create_invitation(
        email=admin_email, role=ROLE_ORG_ADMIN, organization=organization, invited_by=actor
    )
    return organization, issued


def _require_support(actor: User) -> None:
    if not getattr(actor, "is_support", False):
        raise SupportError("Only the vendor's support staff can do this.")


def check_reason(reason: str) -> str:
    """Return the reason stripped; :raises SupportError: if it is shorter than 10 or longer than 500 characters."""
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise SupportError(f"Say why you need access in at least {MIN_REASON_LENGTH} characters.")
    if len(reason) > MAX_REASON_LENGTH:
        raise SupportError(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return reason


def start_access(organization: Organization, *, actor: User, reason: str) -> AuditEvent:
    """Record that support staff start acting on the organization's behalf, and why.

    The returned event is the grant; `services.platform.tenancy.remember_support_access` keeps it in the session.
    :raises SupportError: if actor is not support staff or the reason is missing, short or long.
    """
    _require_support(actor)
    reason = check_reason(reason)
    return audit.record(ACCESS_STARTED, actor=actor, organization=organization, reason=reason)


def end_access(access: SupportAccess, *, actor: User) -> AuditEvent:
    """Record the end of a support access, so that its grant stops working everywhere."""
    _require_support(actor)
    started = db.session.get(AuditEvent, access.event_id)
    return audit.record(
        ACCESS_ENDED, actor=actor, organization=started.organization, target=started, reason=access.reason
    )


def recent_accesses(organization: Organization, limit: int = 5) -> list[AuditEvent]:
    """Return the latest support accesses to the organization, newest first."""
    return audit.recent_for_organization(organization.id, limit, action=ACCESS_STARTED)
