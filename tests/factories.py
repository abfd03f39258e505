"""`make_*` factories: build rows with sensible defaults, any field overridable."""

from __future__ import annotations

import itertools
from datetime import timedelta

from extensions import db
from models.base import utcnow
from models.invitation import Invitation
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, ROLE_SUPPORT, User
from services.accounts.accounts import hash_password

DEFAULT_PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organization(**overrides) -> Organization:
    n = next(_seq)
    fields = {"name": f"Organization {n}", "slug": f"organization-{n}", "data_center": "us"}
    fields.update(overrides)
    organization = Organization(**fields)
    db.session.add(organization)
    db.session.commit()
    return organization


def make_user(*, password: str = DEFAULT_PASSWORD, **overrides) -> User:
    n = next(_seq)
    fields = {"email": f"person{n}@customer.example", "name": f"Person {n}", "role": ROLE_ORG_ADMIN}
    fields.update(overrides)
    if fields["role"] == ROLE_ORG_ADMIN and "organization" not in fields and "organization_id" not in fields:
        fields["organization"] = make_organization()
    user = User(password_hash=hash_password(password) if password else None, **fields)
    db.session.add(user)
    db.session.commit()
    return user


def make_support_user(**overrides) -> User:
    overrides.setdefault("email", f"support{next(_seq)}@vendor.example")
    return make_user(role=ROLE_SUPPORT, **overrides)


def make_org_admin(organization: Organization | None = None, **overrides) -> User:
    if organization is not None:
        overrides["organization"] = organization
    return make_user(role=ROLE_ORG_ADMIN, **overrides)


def make_invitation(*, token_hash: str | None = None, **overrides) -> Invitation:
    n = next(_seq)
    fields = {
        "email": f"invitee{n}@customer.example",
        "role": ROLE_ORG_ADMIN,
        "token_hash": token_hash or f"{n:064x}",
        "expires_at": utcnow() + timedelta(days=7),
    }
    fields.update(overrides)
    if fields["role"] == ROLE_ORG_ADMIN and "organization" not in fields and "organization_id" not in fields:
        fields["organization"] = make_organization()
    invitation = Invitation(**fields)
    db.session.add(invitation)
    db.session.commit()
    return invitation
