"""`/portal/<token>`: use the link once, sign in as the organization's admin, land on the page of its intent."""

from __future__ import annotations

from flask import Flask, current_app, g, redirect, render_template, session
from flask_login import current_user

from blueprints import sessions
from blueprints.portal import bp
from extensions import db, limiter
from services.accounts import portal_links
from services.platform import audit

SESSION_KEY = "portal"


@bp.get("/portal/<secret:token>")
@limiter.limit("30 per minute")
def open_link(token: str):
    try:
        opened = portal_links.open_portal_link(token)
    except portal_links.PortalLinkError as exc:
        db.session.rollback()
        return render_template("portal/unusable.html", message=str(exc)), 410
    link = opened.link
    sessions.sign_in(opened.user)
    session[SESSION_KEY] = {"link": link.id, "key": link.api_key.prefix if link.api_key else None,
                            "return_url": link.return_url, "organization_id": link.organization_id}
    _set_audit_context()
    audit.record("portal_link.opened", actor=opened.user, organization=link.organization, target=link,
                 details={"intent": link.intent})
    db.session.commit()
    return redirect(opened.landing)


def _set_audit_context() -> None:
    came_in = session.get(SESSION_KEY)
    if came_in:
        audit.set_request_context(via="portal_link", portal_link=came_in["link"], api_key=came_in["key"])


def _note_portal_requests() -> None:
    if SESSION_KEY in session and current_user.is_authenticated:
        _set_audit_context()


def portal_return() -> dict:
    """Template context: where "Back to <vendor>" leads, for a browser that came in through a portal link."""
    came_in = session.get(SESSION_KEY) if g.get("session_record_id") else None
    if not came_in:
        return {"portal_return": None}
    return {"portal_return": {"url": came_in["return_url"], "vendor": current_app.config["VENDOR_NAME"]}}


def init_app(app: Flask) -> None:
    app.before_request(_note_portal_requests)
    app.context_processor(portal_return)
