"""Show a just-created invitation link once, on the page the POST redirects to.

No email is sent, so the person who invites must copy the link. It is kept in the (signed,
HttpOnly) session only until the next page of that organization's admins renders it.
"""

from __future__ import annotations

from flask import session

from services.invitations import IssuedInvitation

_KEY = "issued_invitation"


def remember(issued: IssuedInvitation) -> None:
    """Keep issued's link for the next render of its organization's admins page."""
    session[_KEY] = {
        "organization_id": issued.invitation.organization_id,
        "email": issued.invitation.email,
        "url": issued.url,
    }


def pop(organization_id: int) -> dict | None:
    """Return and forget the link kept for organization_id, if any."""
    kept = session.get(_KEY)
    if not kept or kept.get("organization_id") != organization_id:
        return None
    session.pop(_KEY)
    return kept
