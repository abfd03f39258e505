"""Setup links: hand the connect step to a colleague who holds the Google or Microsoft admin rights.

A link needs no account. It carries a random secret of which only the SHA-256 is stored, works
until the consent it leads to succeeds, expires (SETUP_LINK_TTL_HOURS, 72 by default) and can be
revoked; revoking also ends the consents started through it that have not come back yet. It shows
the review-and-connect step of one wizard and nothing else. Given the colleague's address, the link is
also emailed to them (`services.platform.mail`, sent after the caller's commit).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from extensions import db
from models.base import utcnow
from models.onboarding import ConsentAttempt, SetupLink, WizardSession
from models.outgoing_email import SETUP_LINK, OutgoingEmail
from services.accounts.accounts import AccountError, normalize_email
from services.onboarding import wizard as wizards
from services.onboarding.providers import provider
from services.platform import audit, mail

MAX_LABEL_LENGTH = 120
TOKEN_BYTES = 32

# Why a link cannot be used; views map invalid to 404 and the others to 410.
INVALID, EXPIRED, USED, REVOKED, CLOSED = "invalid", "expired", "used", "revoked", "closed"


class SetupLinkError(ValueError):
    """A setup link cannot be created, used or revoked; the message is fit to show."""

    def __init__(self, message: str, kind: str = INVALID):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class IssuedSetupLink:
    link: SetupLink
    url: str
    # The message that brings the link to the colleague, when their address was given.
    email: OutgoingEmail | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_url(token: str) -> str:
    """Return the full address of the setup page for token."""
    path = current_app.url_map.bind("localhost").build("onboarding.setup_page", {"token": token})
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def create_setup_link(wizard: WizardSession, *, actor, label: str = "", email: str = "") -> IssuedSetupLink:
    """Create a link to the wizard's connect step; the URL is shown once and stored only in its email.

    :raises SetupLinkError: if the wizard is closed, its permissions are not ready for review, or email
        is not an address.
    """
    try:
        wizards.require_open(wizard)
    except wizards.WizardError as exc:
        raise SetupLinkError(str(exc), CLOSED) from exc
    if wizards.blocked_at(wizard, "review"):
        raise SetupLinkError("Finish choosing the calendar service and permissions before sharing the connect step.")
    label = (label or "").strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise SetupLinkError(f"Keep the note under {MAX_LABEL_LENGTH} characters.")
    recipient = _recipient(email)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    ttl = timedelta(hours=current_app.config.get("SETUP_LINK_TTL_HOURS", 72))
    link = SetupLink(
        organization_id=wizard.organization_id, wizard_session_id=wizard.id, token_hash=_hash(token),
        label=label, expires_at=utcnow() + ttl, created_by_id=getattr(actor, "id", None),
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "setup_link.created", actor=actor, organization=wizard.organization, target=link,
        details={"wizard_id": wizard.id, "label": label, "expires_at": link.expires_at.isoformat(),
                 "emailed_to": recipient},
    )
    url = public_url(token)
    sent = _email_setup_link(link, url, recipient, actor) if recipient else None
    return IssuedSetupLink(link=link, url=url, email=sent)


def _recipient(email: str) -> str | None:
    if not (email or "").strip():
        return None
    try:
        return normalize_email(email)
    except AccountError as exc:
        raise SetupLinkError(str(exc)) from exc


def _email_setup_link(link: SetupLink, url: str, recipient: str, actor) -> OutgoingEmail:
    """Queue the message that brings the link to the colleague (sent after the caller's commit)."""
    organization = link.organization
    found = provider(link.wizard_session.provider)
    sender = (getattr(actor, "name", "") or getattr(actor, "email", "")) if actor is not None else ""
    return mail.queue(
        to=recipient, subject=f"Connect the calendars of {organization.name}: your approval is needed",
        template="setup_link", purpose=SETUP_LINK,
        context={"organization": organization.name, "url": url, "sender": sender, "expires_at": link.expires_at,
                 "provider": found.label if found else "calendar service"},
        organization=organization, setup_link=link, actor=actor,
    )


def resolve_setup_link(token: str | None) -> SetupLink:
    """Return the usable link behind token.

    :raises SetupLinkError: with kind invalid, used, revoked, expired or closed (wizard gone).
    """
    link = db.session.scalar(select(SetupLink).where(SetupLink.token_hash == _hash(token or ""))) if token else None
    if link is None:
        raise SetupLinkError("This setup link is not valid. Check that you copied all of it, or ask for a new one.")
    problems = {
        "used": ("This setup link has already been used: the calendars are connected.", USED),
        "revoked": ("This setup link was withdrawn. Ask whoever sent it for a new one.", REVOKED),
        "expired": ("This setup link has expired. Ask whoever sent it for a new one.", EXPIRED),
    }
    if link.status in problems:
        raise SetupLinkError(*problems[link.status])
    if not link.wizard_session.is_open:
        raise SetupLinkError("This setup is no longer open. Ask whoever sent the link for a new one.", CLOSED)
    return link


def revoke_setup_link(link: SetupLink, *, actor) -> None:
    """Withdraw a link and the consents under way through it (already used or revoked links are left as they are)."""
    if link.used_at is not None or link.revoked_at is not None:
        return
    # The attempts first, then the link: the order in which a finishing consent takes them.
    wizards.end_consent_attempts(ConsentAttempt.setup_link_id == link.id, "withdrawn")
    revoked = db.session.execute(
        update(SetupLink)
        .where(SetupLink.id == link.id, SetupLink.used_at.is_(None), SetupLink.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by_id=getattr(actor, "id", None))
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(link)
    if revoked.rowcount != 1:
        return  # a consent through it finished first
    audit.record("setup_link.revoked", actor=actor, organization=link.organization, target=link,
                 details={"wizard_id": link.wizard_session_id, "label": link.label})


def mark_used(link: SetupLink) -> bool:
    """Record that the link's consent succeeded; return False if it had already been used or was revoked."""
    result = db.session.execute(
        update(SetupLink)
        .where(SetupLink.id == link.id, SetupLink.used_at.is_(None), SetupLink.revoked_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(link)
    if result.rowcount != 1:
        return False
    audit.record("setup_link.used", organization=link.organization, target=link,
                 details={"wizard_id": link.wizard_session_id, "label": link.label})
    return True


def links_of(wizard: WizardSession) -> list[SetupLink]:
    """Return the wizard's setup links, newest first."""
    return list(db.session.scalars(
        select(SetupLink).where(SetupLink.wizard_session_id == wizard.id).order_by(SetupLink.id.desc())
    ))
