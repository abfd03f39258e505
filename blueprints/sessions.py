"""Signing a browser in and out against the server-side session records (services/accounts/sessions.py).

Flask's cookie keeps the user id (Flask-Login) and the session's random token; the user counts as
signed in only while the record for that token is live. Every sign-in starts from an empty cookie,
so a session fixed before sign-in carries nothing over.
"""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy.exc import SQLAlchemyError

from services.accounts import accounts, sessions

TOKEN_KEY = "_sid"


def load_user(session_user_id: str):
    """Flask-Login loader: the user of a live session record, or None (signed out).

    :raises SQLAlchemyError: when the database fails; the error page then renders signed out, and the
        cookie is left as it is, so the person is still signed in once the database answers again.
    """
    if g.get("session_left_unloaded"):
        return None
    try:
        return _live_session_user(session_user_id)
    except SQLAlchemyError:
        leave_unloaded()
        raise


def leave_unloaded() -> None:
    """Read no session record for the rest of this request: current_user is nobody, the cookie unchanged."""
    g.session_left_unloaded = True


def _live_session_user(session_user_id: str):
    user = accounts.load_session_user(session_user_id)
    if user is None:
        return None
    record_id = sessions.resolve_session(session.get(TOKEN_KEY), user.id)
    if record_id is None:
        return None
    g.session_record_id = record_id
    return user


def sign_in(user) -> None:
    """Start a new recorded session for user in this browser; the caller commits."""
    sign_out()
    session.clear()
    started = sessions.start_session(
        user, user_agent=request.user_agent.string, ip_address=request.remote_addr or ""
    )
    login_user(user)
    session[TOKEN_KEY] = started.token
    g.session_record_id = started.record.id


def sign_out(reason: str = "signed_out") -> None:
    """End this browser's session record and empty its cookie; the caller commits."""
    sessions.end_session(session.get(TOKEN_KEY), reason)
    logout_user()
    session.clear()
    g.pop("session_record_id", None)


def current_record_id() -> int | None:
    """Return the id of this request's live session record, if someone is signed in."""
    if not current_user.is_authenticated:
        return None
    return g.get("session_record_id")


def _load_early() -> None:
    # Resolve the session before the view writes anything: the loader records activity in a
    # transaction of its own, which on SQLite must not wait behind the request's own writes.
    # Health probes answer for the process, whatever cookie they carry.
    if "_user_id" in session and request.blueprint != "health":
        current_user._get_current_object()


def init_app(app: Flask) -> None:
    app.before_request(_load_early)
