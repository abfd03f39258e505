"""Portal links: the vendor's product sends its customer's admin in, as WorkOS's Admin Portal does.

A link works once and for PORTAL_LINK_TTL_MINUTES (5 by default). Opening it signs the browser in as
that organization's admin, creating the account (with no password) on first use. `return_url` must
match one of the PORTAL_RETURN_URLS patterns, so a link can never send anyone elsewhere. Only the
SHA-256 of the link's secret is stored.
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, url_for
from sqlalchemy import select, update

from extensions import db
from models.api_key import ApiKey
from models.base import utcnow
from models.organization import Organization
from models.portal_link import PORTAL_INTENTS, PortalLink
from models.user import ROLE_ORG_ADMIN, User
from services.accounts.accounts import AccountError, find_user_by_email, normalize_email
from services.accounts.invitations import public_url
from services.platform import audit

INTENT_ENDPOINTS = {
    "overview": "organizations.overview",
    "connect": "onboarding.start",
    "mailboxes": "mailboxes.index",
    "runs": "runs.index",
}
# Shown whatever went wrong with a link: it names no account and no organization.
UNUSABLE = "This link has expired or was already used. Go back to where you came from and open it again."


class PortalLinkError(ValueError):
    """A link could not be issued (the message says why) or opened (always UNUSABLE)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IssuedPortalLink:
    link: PortalLink
    url: str


@dataclass(frozen=True)
class OpenedPortalLink:
    user: User
    link: PortalLink
    landing: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def return_url_allowed(url: str) -> bool:
    """An absolute http(s) URL matching one of the PORTAL_RETURN_URLS patterns (shell-style, e.g. https://app.example/*)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.netloc or "\\" in url or any(c.isspace() for c in url):
        return False
    patterns = current_app.config["PORTAL_RETURN_URLS"]
    return any(fnmatch.fnmatchcase(url, pattern) for pattern in patterns)


def create_portal_link(organization: Organization, *, admin_email: str, intent: str, return_url: str,
                       api_key: ApiKey | None) -> IssuedPortalLink:
    """Issue a link (flushes; the caller commits). :raises PortalLinkError: naming the field at fault."""
    try:
        email = normalize_email(admin_email)
    except AccountError as exc:
        raise PortalLinkError(str(exc), "admin_email") from None
    holder = find_user_by_email(email)
    if holder is not None and (holder.role != ROLE_ORG_ADMIN or holder.organization_id != organization.id):
        raise PortalLinkError("This email belongs to an account that is not an admin of this organization.",
                              "admin_email")
    if intent not in PORTAL_INTENTS:
        raise PortalLinkError(f"Unknown intent {intent!r}; choose one of {', '.join(PORTAL_INTENTS)}.", "intent")
    if not return_url_allowed(return_url):
        raise PortalLinkError("return_url does not match the console's PORTAL_RETURN_URLS allow-list.", "return_url")
    token = secrets.token_urlsafe(32)
    minutes = current_app.config["PORTAL_LINK_TTL_MINUTES"]
    link = PortalLink(organization=organization, api_key=api_key, admin_email=email, intent=intent,
                      return_url=return_url, token_hash=hash_token(token),
                      expires_at=utcnow() + timedelta(minutes=minutes))
    db.session.add(link)
    db.session.flush()
    audit.record("portal_link.created", organization=organization, target=link,
                 details={"admin_email": email, "intent": intent, "via": "api",
                          "api_key": api_key.prefix if api_key else None})
    return IssuedPortalLink(link=link, url=public_url("portal.open_link", token=token))


def open_portal_link(token: str) -> OpenedPortalLink:
    """Use a link once: its admin (created on first use, without a password) and where to land.

    Flushes; the caller commits and signs the browser in. :raises PortalLinkError: UNUSABLE.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(PortalLink).where(PortalLink.token_hash == hash_token(token or ""), PortalLink.used_at.is_(None),
                                 PortalLink.expires_at > now).values(used_at=now))
    if claimed.rowcount != 1:
        raise PortalLinkError(UNUSABLE)
    link = db.session.scalar(select(PortalLink).where(PortalLink.token_hash == hash_token(token)))
    user = find_user_by_email(link.admin_email)
    if user is None:
        user = User(email=link.admin_email, name="", password_hash=None, role=ROLE_ORG_ADMIN,
                    organization_id=link.organization_id)
        db.session.add(user)
        db.session.flush()
        audit.record("user.created_by_portal_link", organization=link.organization, target=user,
                     details={"email": user.email, "portal_link": link.id})
    elif user.role != ROLE_ORG_ADMIN or user.organization_id != link.organization_id or not user.is_active:
        raise PortalLinkError(UNUSABLE)
    landing = url_for(INTENT_ENDPOINTS[link.intent], org_id=link.organization_id)
    return OpenedPortalLink(user=user, link=link, landing=landing)
