"""Tenant isolation: the one place that loads an org-scoped object and checks who may see it.

An organization's admin reaches only their own organization; any other id gives 404, never 403,
so that ids of other customers cannot be probed. Support staff reach every organization.
"""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from flask_login import current_user

from extensions import db
from models.organization import Organization

T = TypeVar("T")


def can_access(user, organization_id: int) -> bool:
    """Return whether user may see organization_id."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_support or user.organization_id == organization_id


def organization_or_404(org_id: int) -> Organization:
    """Return the organization if the signed-in user may see it, else abort with 404."""
    organization = db.session.get(Organization, org_id)
    if organization is None or not can_access(current_user, organization.id):
        abort(404)
    return organization


def scoped_or_404(model: type[T], object_id: int, organization: Organization) -> T:
    """Return model `object_id` if it belongs to `organization` (already authorized), else 404."""
    obj = db.session.get(model, object_id)
    if obj is None or getattr(obj, "organization_id", None) != organization.id:
        abort(404)
    return obj
