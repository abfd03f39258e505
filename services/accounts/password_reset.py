"""Password resets through signed, expiring links, emailed to the account's own address.

The link carries the user's id and `auth_version`; a reset bumps `auth_version`, so each link
works once, and every older link and every open session of that user stops working with it.
`email_reset_link` sends it to the account (support staff and the organization's admins may ask for
it; only the recipient sees the link); `flask user reset-link` prints one for an operator.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update

from extensions import db
from models.outgoing_email import PASSWORD_RESET, OutgoingEmail
from models.user import User
from services.accounts import sessions
from services.accounts.accounts import MAX_PASSWORD_LENGTH, AccountError, check_password_strength, hash_password
from services.accounts.invitations import public_url
from services.platform import audit, mail

SALT = "ecc.password-reset.v1"
INVALID, EXPIRED, USED, PASSWORD = "invalid", "expired", "used", "password"
LINK_PROBLEMS = (INVALID, EXPIRED, USED)


class PasswordResetError(AccountError):
    """A reset link cannot be issued or used; the message is fit to show."""

    def __init__(self, message: str, kind: str = INVALID):
        super().__init__(message)
        self.kind = kind


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _max_age() -> int:
    return int(current_app.config.get("PASSWORD_RESET_TTL_HOURS", 24)) * 3600


def reset_url(user: User) -> str:
    """Return a link through which user sets a new password; :raises PasswordResetError: if deactivated."""
    if not user.is_active:
        raise PasswordResetError(f"{user.email} is deactivated; reactivate the account first.", USED)
    token = _serializer().dumps({"u": user.id, "v": user.auth_version})
    return public_url("auth.reset_password", token=token)


def email_reset_link(user: User, *, actor) -> OutgoingEmail:
    """Queue an email with a reset link to user's own address (sent after the caller's commit).

    :raises PasswordResetError: if the account is deactivated, or actor may not ask for its reset.
    """
    if actor is not None and not actor.is_support and actor.organization_id != user.organization_id:
        raise PasswordResetError("You can only send reset links to admins of your own organization.", INVALID)
    email = mail.queue(
        to=user.email, subject="Choose a new password for Enterprise Connect Console", template="password_reset",
        purpose=PASSWORD_RESET, context={"name": user.name, "email": user.email, "url": reset_url(user),
                                          "hours": _max_age() // 3600},
        organization=user.organization, user=user, actor=actor,
    )
    audit.record("password_reset.emailed", actor=actor, organization=user.organization, target=user,
                 details={"email": user.email})
    return email


def _payload(token: str) -> dict:
    try:
        payload = _serializer().loads(token or "", max_age=_max_age())
    except SignatureExpired as exc:
        raise PasswordResetError("This reset link has expired. Ask support for a new one.", EXPIRED) from exc
    except BadSignature as exc:
        raise PasswordResetError(
            "This reset link is not valid. Check that you copied the whole link, or ask support for a new one.",
            INVALID,
        ) from exc
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), int) for k in ("u", "v")):
        raise PasswordResetError("This reset link is not valid. Ask support for a new one.", INVALID)
    return payload


def resolve_reset_token(token: str) -> User:
    """Return the user a reset link is for.

    :raises PasswordResetError: with kind invalid (tampered or malformed), expired, or used (the
        password changed since, or the account is deactivated).
    """
    payload = _payload(token)
    user = db.session.get(User, payload["u"])
    if user is None:
        raise PasswordResetError("This reset link is not valid. Ask support for a new one.", INVALID)
    if user.auth_version != payload["v"] or not user.is_active:
        raise PasswordResetError(
            "This reset link was already used or replaced. Sign in, or ask support for a new link.", USED
        )
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password from a reset link and sign out every session of that user.

    :raises PasswordResetError: for a bad link (see `resolve_reset_token`) or a weak password.
    """
    user = resolve_reset_token(token)
    if len(password or "") > MAX_PASSWORD_LENGTH:
        raise PasswordResetError(f"Keep your password under {MAX_PASSWORD_LENGTH} characters.", PASSWORD)
    try:
        check_password_strength(password or "", user.email)
    except AccountError as exc:
        raise PasswordResetError(str(exc), PASSWORD) from exc
    # Conditional on the version in the link, so two concurrent resets cannot both succeed.
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, User.auth_version == user.auth_version)
        .values(password_hash=hash_password(password), auth_version=User.auth_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise PasswordResetError("This reset link was already used. Sign in, or ask support for a new link.", USED)
    db.session.refresh(user)
    sessions.end_user_sessions(user, "password_changed")
    audit.record("password.reset", actor=user, organization=user.organization, target=user)
    return user
