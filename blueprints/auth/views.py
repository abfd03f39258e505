"""Sign in and out, accepting an invitation, resetting a password."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints import sessions
from blueprints.auth import bp
from blueprints.auth.forms import AcceptInvitationForm, ResetPasswordForm, SignInForm
from blueprints.auth.redirects import safe_next
from blueprints.errors import render_error
from extensions import db, limiter
from services.accounts import accounts, invitations, password_reset


# One answer for both sign-in limits, so that it tells nobody which one (address or account) was reached.
SIGN_IN_THROTTLED = "Too many sign-in attempts. Wait a minute, then try again."
# The sign-in form refuses longer emails; the per-account key reads no more of what was typed.
MAX_EMAIL = 254


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def _account_limit() -> str:
    return current_app.config["SIGN_IN_ACCOUNT_RATE_LIMIT"]


def _submitted_account() -> str:
    """Key the per-account limit by the email typed in, as sign-in looks it up, whoever's address sent it.

    The key is a keyed digest, so that what was typed (at times a password) reaches no log or counter row.
    """
    typed = (request.form.get("email") or "")[:MAX_EMAIL]
    try:
        account = accounts.normalize_email(typed)
    except accounts.AccountError:
        account = typed.strip().lower()
    return "account:" + hmac.new(current_app.secret_key.encode(), account.encode(), hashlib.sha256).hexdigest()


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"], error_message=SIGN_IN_THROTTLED)
@limiter.limit(_account_limit, key_func=_submitted_account, methods=["POST"], error_message=SIGN_IN_THROTTLED)
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("organizations.home"))
    form = SignInForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is None:
            db.session.rollback()
            flash("That email and password do not match an active account.", "danger")
            return render_template("auth/sign_in.html", form=form), 401
        sessions.sign_in(user)
        db.session.commit()
        return redirect(safe_next(request.args.get("next")) or url_for("organizations.home"))
    return render_template("auth/sign_in.html", form=form), 422 if request.method == "POST" else 200


@bp.post("/sign-out")
@login_required
def sign_out():
    """End this browser's session on the server, so that a copy of its cookie opens nothing."""
    sessions.sign_out()
    db.session.commit()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.errorhandler(429)
def too_many_sign_in_attempts(exc):
    """Explain the sign-in throttle in words, the same for the per-address and the per-account limit."""
    return render_error(429, title="Too many sign-in attempts", message=SIGN_IN_THROTTLED)


def _bad_link(exc: accounts.AccountError, title: str):
    """A link that never existed is not found (404); one that can no longer be used is gone (410)."""
    db.session.rollback()
    status = 404 if exc.kind == "invalid" else 410
    return render_template("auth/bad_link.html", title=title, message=str(exc)), status


def _show_on_form(form, exc: accounts.AccountError) -> None:
    """Put a refusal from a service next to the field it concerns, or above the form."""
    field = getattr(form, getattr(exc, "kind", ""), None)
    if field is not None:
        field.errors = [*field.errors, str(exc)]
    else:
        flash(str(exc), "danger")


def _signed_in_as(user) -> None:
    """Replace whoever is signed in on this browser by user, and commit."""
    sessions.sign_in(user)
    db.session.commit()


@bp.route("/invitations/<secret:token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """Show who invited whom to what; on a valid profile create the account and sign it in."""
    try:
        invitation = invitations.resolve_invitation(token)
    except invitations.InvitationError as exc:
        return _bad_link(exc, "This invitation cannot be used")
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            user = invitations.accept_invitation(token, name=form.name.data, password=form.password.data)
        except invitations.InvitationError as exc:
            if exc.kind in invitations.LINK_PROBLEMS:
                return _bad_link(exc, "This invitation cannot be used")
            db.session.rollback()
            _show_on_form(form, exc)
        else:
            _signed_in_as(user)
            flash(f"Welcome, {user.name}. Your account is ready.", "success")
            return redirect(url_for("organizations.home"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/accept_invitation.html", form=form, invitation=invitation), status


@bp.route("/reset-password/<secret:token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Let the holder of a reset link choose a new password, then sign them in."""
    try:
        user = password_reset.resolve_reset_token(token)
    except password_reset.PasswordResetError as exc:
        return _bad_link(exc, "This reset link cannot be used")
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = password_reset.reset_password(token, form.password.data)
        except password_reset.PasswordResetError as exc:
            if exc.kind in password_reset.LINK_PROBLEMS:
                return _bad_link(exc, "This reset link cannot be used")
            db.session.rollback()
            _show_on_form(form, exc)
        else:
            _signed_in_as(user)
            flash("Your new password is set. Any other session of yours has been signed out.", "success")
            return redirect(url_for("organizations.home"))
    status = 422 if request.method == "POST" else 200
    return render_template("auth/reset_password.html", form=form, user=user), status
