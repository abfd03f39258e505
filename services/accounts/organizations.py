"""Organizations: creation, their admins and the numbers on the overview."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func

from extensions import db
from models.base import utcnow
from models.invitation import Invitation
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, User
from services.accounts.invitations import IssuedInvitation, create_invitation
from services.platform import events

DATA_CENTER_CODES = ("us", "au", "ca", "de", "sg", "uk")
# Names from the data-center table of docs/cronofy-api.md section 1.
DATA_CENTER_LABELS = {
    "us": "United States",
    "au": "Australia",
    "ca": "Canada",
    "de": "Germany",
    "sg": "Singapore",
    "uk": "United Kingdom",
}


class OrganizationError(ValueError):
    """An organization operation was refused; the message is fit to show."""


class DuplicateExternalId(OrganizationError):
    """Another organization already carries this external id."""


MAX_EXTERNAL_ID_LENGTH = 200


@dataclass(frozen=True)
class OrganizationSummary:
    admins: int
    pending_invitations: int


def slugify(name: str) -> str:
    """Return a URL-friendly slug for name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "organization"


def _unique_slug(name: str) -> str:
    base = slugify(name)
    slug, counter = base, 2
    while db.session.scalar(db.select(Organization.id).where(Organization.slug == slug)) is not None:
        slug, counter = f"{base}-{counter}", counter + 1
    return slug


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise OrganizationError("Give the organization a name.")
    if len(name) > 120:
        raise OrganizationError("Keep the organization's name under 120 characters.")
    return name


def _clean_external_id(external_id: str | None, organization: Organization | None = None) -> str | None:
    """None clears it; otherwise 1 to 200 characters, used by no other organization."""
    if external_id is None:
        return None
    external_id = external_id.strip()
    if not external_id or len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise OrganizationError(f"An external id has 1 to {MAX_EXTERNAL_ID_LENGTH} characters.")
    holder = find_by_external_id(external_id)
    if holder is not None and holder is not organization:
        raise DuplicateExternalId(f"Another organization already has the external id {external_id!r}.")
    return external_id


def find_by_external_id(external_id: str) -> Organization | None:
    return db.session.scalar(db.select(Organization).where(Organization.external_id == external_id))


def create_organization(name: str, data_center: str = "us", *, external_id: str | None = None) -> Organization:
    """Create an organization; :raises OrganizationError: for an empty name, an unknown data center or an
    external id another organization has (DuplicateExternalId)."""
    name = _clean_name(name)
    if data_center not in DATA_CENTER_CODES:
        raise OrganizationError(f"Unknown data center {data_center!r}; choose one of {', '.join(DATA_CENTER_CODES)}.")
    external_id = _clean_external_id(external_id)
    organization = Organization(name=name, slug=_unique_slug(name), data_center=data_center, external_id=external_id)
    db.session.add(organization)
    db.session.flush()
    events.record("organization.created", organization_id=organization.id, subject_type="organization",
                  subject_id=organization.id)
    return organization


UNSET = object()


def update_organization(organization: Organization, *, name=UNSET, external_id=UNSET) -> dict:
    """Change the name and/or external id (None clears it); return what changed as {field: [old, new]}.

    The data center is fixed once the organization exists: tokens and consent live there.
    """
    changes = {}
    if name is not UNSET:
        name = _clean_name(name)
        if name != organization.name:
            changes["name"] = [organization.name, name]
    if external_id is not UNSET:
        external_id = _clean_external_id(external_id, organization)
        if external_id != organization.external_id:
            changes["external_id"] = [organization.external_id, external_id]
    for field, (_old, new) in changes.items():
        setattr(organization, field, new)
    db.session.flush()
    return changes


def list_organizations(*, external_id: str | None = None, slug: str | None = None, only_id: int | None = None,
                       after_id: int | None = None, limit: int = 50) -> list[Organization]:
    """Organizations by id, filtered; limit + 1 rows are fetched by callers that page."""
    query = db.select(Organization).order_by(Organization.id).limit(limit)
    if external_id is not None:
        query = query.where(Organization.external_id == external_id)
    if slug is not None:
        query = query.where(Organization.slug == slug)
    if only_id is not None:
        query = query.where(Organization.id == only_id)
    if after_id is not None:
        query = query.where(Organization.id > after_id)
    return list(db.session.scalars(query))


def data_center_choices() -> list[tuple[str, str]]:
    """Return (code, label) pairs for a data-center select, in DATA_CENTER_CODES order."""
    return [(code, f"{DATA_CENTER_LABELS[code]} ({code.upper()})") for code in DATA_CENTER_CODES]


def invite_admin(organization: Organization, *, email: str, invited_by: User) -> IssuedInvitation:
    """Invite an admin to the organization; :raises InvitationError: with a message to show."""
    return create_invitation(email=email, role=ROLE_ORG_ADMIN, organization=organization, invited_by=invited_by)


def admins_of(organization: Organization) -> list[User]:
    """Return the organization's admins, active ones first."""
    return list(
        db.session.scalars(
            db.select(User)
            .where(User.organization_id == organization.id, User.role == ROLE_ORG_ADMIN)
            .order_by(User.is_active.desc(), User.email)
        )
    )


def open_invitations(organization: Organization) -> list[Invitation]:
    """Return invitations to the organization that can still be accepted."""
    return list(
        db.session.scalars(
            db.select(Invitation)
            .where(
                Invitation.organization_id == organization.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def summary(organization: Organization) -> OrganizationSummary:
    """Return the counts shown on the overview."""
    admins = db.session.scalar(
        db.select(func.count(User.id)).where(
            User.organization_id == organization.id, User.role == ROLE_ORG_ADMIN, User.is_active.is_(True)
        )
    )
    return OrganizationSummary(admins=admins or 0, pending_invitations=len(open_invitations(organization)))
