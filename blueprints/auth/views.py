"""Sign in and sign out."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.auth import bp
from blueprints.auth.forms import SignInForm
from blueprints.auth.redirects import safe_next
from extensions import db, limiter
from services import accounts


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_sign_in_limit, methods=["POST"], error_message="Too many sign-in attempts.")
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
        login_user(user)
        db.session.commit()
        return redirect(safe_next(request.args.get("next")) or url_for("organizations.home"))
    return render_template("auth/sign_in.html", form=form)


@bp.post("/sign-out")
@login_required
def sign_out():
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.sign_in"))
