"""Show a just-created invitation link once, on the page the POST redirects to.

The link is emailed to the invitee, and shown once to whoever invited them to copy (to send it another
way, or when the email does not arrive). It is kept on the server, encrypted with the signed-in
session's record (the cookie is signed but readable), only until the next page of that organization's
admins renders it.
"""

from __future__ import annotations

from blueprints import sessions as web_sessions
from services.accounts import sessions
from services.accounts.invitations import IssuedInvitation

_KEY = "issued_invitation"


def remember(issued: IssuedInvitation) -> None:
    """Keep issued's link for the next render of its organization's admins page."""
    record_id = web_sessions.current_record_id()
    if record_id is None:
        return
    sessions.stash_put(record_id, _KEY, {
        "organization_id": issued.invitation.organization_id,
        "email": issued.invitation.email,
        "url": issued.url,
    })


def pop(organization_id: int) -> dict | None:
    """Return and forget the link kept for organization_id, if any."""
    record_id = web_sessions.current_record_id()
    if record_id is None:
        return None
    kept = sessions.stash_peek(record_id, _KEY)
    if not kept or kept.get("organization_id") != organization_id:
        return None
    return sessions.stash_pop(record_id, _KEY)
