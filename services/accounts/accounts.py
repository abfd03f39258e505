"""Accounts: passwords, sign-in and the session user."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email

from extensions import db
from models.base import utcnow
from models.user import ROLE_ORG_ADMIN, ROLE_SUPPORT, User
from services.accounts import sessions
from services.platform import audit

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 120
_hasher = PasswordHasher()
# Verifying against this keeps sign-in time the same for unknown emails.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-cost")


class AccountError(ValueError):
    """An account operation was refused; the message is fit to show the person."""


def normalize_email(raw: str) -> str:
    """Return the canonical form of an address; :raises AccountError: if it is not an address."""
    try:
        result = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise AccountError(f"That is not a valid email address: {exc}") from exc
    local, _, domain = result.normalized.rpartition("@")
    return f"{local.lower()}@{domain.lower()}"


def hash_password(password: str) -> str:
    """Return an argon2id hash of password."""
    return _hasher.hash(password)


def check_password_strength(password: str, email: str = "") -> None:
    """:raises AccountError: if password is too weak to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if email and password.lower() == email.lower():
        raise AccountError("Your password must not be your email address.")


def verify_password(user: User | None, password: str) -> bool:
    """Return whether password matches user's hash, spending the same time when there is no user."""
    stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and user is not None and user.password_hash is not None


def find_user_by_email(email: str) -> User | None:
    """Return the user with this address (any case of the domain), if any."""
    try:
        email = normalize_email(email)
    except AccountError:
        return None
    return db.session.scalar(db.select(User).where(User.email == email))


def authenticate(email: str, password: str) -> User | None:
    """Return the active user whose email and password match, and record the sign-in time."""
    user = find_user_by_email(email)
    if not verify_password(user, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_sign_in_at = utcnow()
    db.session.flush()
    return user


def load_session_user(session_id: str) -> User | None:
    """Flask-Login loader: `id:auth_version`; older versions and inactive users are signed out."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.is_active or user.auth_version != int(version):
        return None
    return user


def _check_may_manage(user: User, actor: User | None) -> None:
    """Support (or an operator on the command line, actor None) manages anyone; an admin only their org's admins."""
    if actor is None or actor.is_support:
        return
    if user.role != ROLE_ORG_ADMIN or user.organization_id != actor.organization_id:
        raise AccountError("You can only manage admins of your own organization.")


def deactivate_user(user: User, *, actor: User | None) -> None:
    """Stop user from signing in and sign out their open sessions; actor None is the command line.

    :raises AccountError: if actor is user, or actor may not manage user.
    """
    if actor is not None and actor.id == user.id:
        raise AccountError("You cannot deactivate your own account.")
    _check_may_manage(user, actor)
    if not user.is_active:
        return
    user.is_active = False
    user.auth_version += 1
    db.session.flush()
    sessions.end_user_sessions(user, "deactivated")
    audit.record(
        "user.deactivated", actor=actor, organization=user.organization, target=user, details={"email": user.email}
    )


def reactivate_user(user: User, *, actor: User | None) -> None:
    """Let a deactivated user sign in again; :raises AccountError: if actor may not manage user."""
    _check_may_manage(user, actor)
    if user.is_active:
        return
    user.is_active = True
    db.session.flush()
    audit.record(
        "user.reactivated", actor=actor, organization=user.organization, target=user, details={"email": user.email}
    )


def create_support_user(email: str, *, name: str, password: str) -> User:
    """Create an active support account; :raises AccountError: for a bad or taken email, long name, weak password."""
    email = normalize_email(email)
    name = (name or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise AccountError(f"Keep the name under {MAX_NAME_LENGTH} characters.")
    if find_user_by_email(email) is not None:
        raise AccountError(f"{email} already has an account.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Keep the password under {MAX_PASSWORD_LENGTH} characters.")
    check_password_strength(password, email)
    user = User(email=email, name=name, role=ROLE_SUPPORT, organization_id=None, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", actor=None, target=user, details={"email": email, "role": ROLE_SUPPORT})
    return user
