"""What support staff see across organizations."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func

from extensions import db
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, User


@dataclass(frozen=True)
class OrganizationRow:
    organization: Organization
    admins: int


def organization_rows() -> list[OrganizationRow]:
    """Return every organization with its count of active admins, in one query."""
    admin_count = (
        db.select(User.organization_id, func.count(User.id).label("n"))
        .where(User.role == ROLE_ORG_ADMIN, User.is_active.is_(True))
        .group_by(User.organization_id)
        .subquery()
    )
    rows = db.session.execute(
        db.select(Organization, func.coalesce(admin_count.c.n, 0))
        .outerjoin(admin_count, admin_count.c.organization_id == Organization.id)
        .order_by(Organization.name)
    )
    return [OrganizationRow(organization=org, admins=n) for org, n in rows]
