"""Invitations: signed, expiring, single-use links through which a person creates their account.

The link carries `{invitation id, random secret}` signed with the app's SECRET_KEY; only the
SHA-256 of the secret is stored, so a database dump does not hand out working links. The link is
emailed to the invitee (`services.platform.mail`, its text encrypted until the mail server has it) and
shown once to whoever invited them.

An organization's admin must not learn which emails have accounts elsewhere: inviting one looks
exactly like inviting a new person, and the invitation can never be accepted (an account belongs
to one organization), so whoever opens it is refused with a message that names no account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update

from extensions import db
from models.base import utcnow
from models.invitation import Invitation
from models.organization import Organization
from models.outgoing_email import INVITATION, OutgoingEmail
from models.user import ROLE_ORG_ADMIN, ROLE_SUPPORT, ROLES, User
from services.platform import audit, mail
from services.accounts.accounts import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    AccountError,
    check_password_strength,
    find_user_by_email,
    hash_password,
    normalize_email,
)

SALT = "ecc.invitation.v1"

# Why a link cannot be used; views map these to 404 (invalid) or 410 (gone).
INVALID, EXPIRED, USED, REVOKED = "invalid", "expired", "used", "revoked"
LINK_PROBLEMS = (INVALID, EXPIRED, USED, REVOKED)
# Shown to whoever submits an invitation whose email already has an account: it names no account,
# organization or reason, as the inviting admin may not know that the account exists.
UNUSABLE = ("This invitation cannot be used to create an account. If you already have an account, sign in with it; "
            "otherwise ask whoever invited you for a new invitation.")
# Why a submitted profile was refused: the form field to show the message next to, or a general refusal.
NAME, PASSWORD, REFUSED = "name", "password", "refused"


class InvitationError(AccountError):
    """An invitation cannot be created, resolved or accepted; the message is fit to show."""

    def __init__(self, message: str, kind: str = REFUSED):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    url: str
    # The message that carries the link to the invitee, sent once the caller commits.
    email: OutgoingEmail | None = None


def public_url(endpoint: str, **values) -> str:
    """Return PUBLIC_BASE_URL joined with the path of endpoint (works without a request, e.g. in the CLI)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_target(role: str, organization: Organization | None, invited_by: User | None) -> None:
    if role not in ROLES:
        raise InvitationError(f"Unknown role {role!r}.")
    if role == ROLE_SUPPORT and organization is not None:
        raise InvitationError("Support staff do not belong to an organization.")
    if role == ROLE_ORG_ADMIN and organization is None:
        raise InvitationError("An organization admin must be invited to an organization.")
    if invited_by is None or invited_by.is_support:
        return
    if role != ROLE_ORG_ADMIN or invited_by.organization_id != organization.id:
        raise InvitationError("You can only invite admins of your own organization.")


def _may_know_of(account: User, inviter: User | None) -> bool:
    """Tell whether the inviter may be told that account exists: support staff and the CLI see every
    organization, an organization's admin only their own."""
    return inviter is None or inviter.is_support or account.organization_id == inviter.organization_id


def _revoke_pending(email: str, organization: Organization | None) -> None:
    same_org = (
        Invitation.organization_id.is_(None)
        if organization is None
        else Invitation.organization_id == organization.id
    )
    db.session.execute(
        update(Invitation)
        .where(Invitation.email == email, same_org, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )


def create_invitation(
    *, email: str, role: str, organization: Organization | None, invited_by: User | None
) -> IssuedInvitation:
    """Create an invitation and its link; an older pending one for the same email and organization is revoked.

    :raises InvitationError: for an invalid email, an email that already has an account the inviter
        may know of (see `_may_know_of`), or a role and organization that do not match (or that the
        inviter may not grant).
    """
    try:
        email = normalize_email(email)
    except AccountError as exc:
        raise InvitationError(str(exc)) from exc
    _check_target(role, organization, invited_by)
    existing = find_user_by_email(email)
    if existing is not None and _may_know_of(existing, invited_by):
        raise InvitationError(f"{email} already has an account.")
    _revoke_pending(email, organization)
    secret = secrets.token_urlsafe(32)
    ttl = timedelta(hours=current_app.config.get("INVITATION_TTL_HOURS", 24 * 7))
    invitation = Invitation(
        email=email,
        role=role,
        organization_id=organization.id if organization else None,
        token_hash=_hash(secret),
        expires_at=utcnow() + ttl,
        invited_by_id=invited_by.id if invited_by else None,
    )
    db.session.add(invitation)
    db.session.flush()
    token = _serializer().dumps({"i": invitation.id, "s": secret})
    audit.record(
        "invitation.created",
        actor=invited_by,
        organization=organization,
        target=invitation,
        details={"email": email, "role": role},
    )
    url = public_url("auth.accept_invitation", token=token)
    return IssuedInvitation(invitation=invitation, url=url, email=_email_invitation(invitation, url, invited_by))


def _email_invitation(invitation: Invitation, url: str, invited_by: User | None) -> OutgoingEmail:
    """Queue the message that brings the link to the invitee (sent after the caller's commit)."""
    organization = invitation.organization
    subject = (f"You are invited to administer {organization.name}" if organization
               else "You are invited to join the support staff") + " in Enterprise Connect Console"
    return mail.queue(
        to=invitation.email, subject=subject, template="invitation", purpose=INVITATION,
        context={"organization": organization.name if organization else None, "url": url,
                 "inviter": (invited_by.name or invited_by.email) if invited_by else None,
                 "expires_at": invitation.expires_at},
        organization=organization, invitation=invitation, actor=invited_by,
    )


def _load(token: str) -> Invitation | None:
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int) or not isinstance(payload.get("s"), str):
        return None
    invitation = db.session.get(Invitation, payload["i"])
    if invitation is None or not hmac.compare_digest(invitation.token_hash, _hash(payload["s"])):
        return None
    return invitation


def resolve_invitation(token: str) -> Invitation:
    """Return the pending invitation behind token.

    :raises InvitationError: with kind invalid (tampered or malformed), used, revoked or expired.
    """
    invitation = _load(token or "")
    if invitation is None:
        raise InvitationError(
            "This invitation link is not valid. Check that you copied the whole link, or ask for a new invitation.",
            INVALID,
        )
    status = invitation.status
    if status == "accepted":
        raise InvitationError("This invitation has already been used. Sign in with your email and password.", USED)
    if status == "revoked":
        raise InvitationError("This invitation was withdrawn. Ask whoever invited you for a new one.", REVOKED)
    if status == "expired":
        raise InvitationError("This invitation has expired. Ask whoever invited you for a new one.", EXPIRED)
    return invitation


def _check_profile(invitation: Invitation, name: str, password: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvitationError("Tell us your name.", NAME)
    if len(name) > MAX_NAME_LENGTH:
        raise InvitationError(f"Keep your name under {MAX_NAME_LENGTH} characters.", NAME)
    if len(password or "") > MAX_PASSWORD_LENGTH:
        raise InvitationError(f"Keep your password under {MAX_PASSWORD_LENGTH} characters.", PASSWORD)
    try:
        check_password_strength(password or "", invitation.email)
    except AccountError as exc:
        raise InvitationError(str(exc), PASSWORD) from exc
    return name


def _claim(invitation: Invitation) -> None:
    """Mark the invitation accepted unless another request got there first (a conditional UPDATE)."""
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InvitationError("This invitation has already been used. Sign in with your email and password.", USED)
    db.session.refresh(invitation)


def accept_invitation(token: str, *, name: str, password: str) -> User:
    """Create the invitee's account from a valid link; the link works once, even under a race.

    :raises InvitationError: for a bad link (see `resolve_invitation`), an empty or overlong
        name, a weak password, or an email that has an account (made meanwhile, or elsewhere before
        the invitation): the existing account is never changed and the message does not say so.
    """
    invitation = resolve_invitation(token)
    name = _check_profile(invitation, name, password)
    if find_user_by_email(invitation.email) is not None:
        raise InvitationError(UNUSABLE, USED)
    _claim(invitation)
    user = User(
        email=invitation.email,
        name=name,
        role=invitation.role,
        organization_id=invitation.organization_id,
        password_hash=hash_password(password),
    )
    db.session.add(user)
    db.session.flush()
    audit.record("invitation.accepted", actor=user, organization=invitation.organization, target=invitation)
    return user


def revoke_invitation(invitation: Invitation, *, actor: User) -> None:
    """Withdraw a pending invitation so that its link stops working.

    :raises InvitationError: if it was already accepted or actor may not manage it.
    """
    if not actor.is_support and actor.organization_id != invitation.organization_id:
        raise InvitationError("You can only withdraw invitations to your own organization.")
    if invitation.accepted_at is not None:
        raise InvitationError("This invitation was already accepted; deactivate the account instead.")
    if invitation.revoked_at is not None:
        return
    invitation.revoked_at = utcnow()
    db.session.flush()
    audit.record(
        "invitation.revoked",
        actor=actor,
        organization=invitation.organization,
        target=invitation,
        details={"email": invitation.email},
    )
