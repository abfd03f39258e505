"""Vendor settings: the API keys of the vendor's services (support staff with the vendor-admin flag only)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints import sessions as web_sessions
from blueprints.support import bp
from blueprints.support.api_key_forms import ApiKeyForm, RevokeApiKeyForm
from extensions import db
from models.api_key import ApiKey
from models.organization import Organization
from services.accounts import api_keys, sessions
from services.platform.wording import sentence

_STASH_KEY = "issued_api_key"


@bp.before_request
def _vendor_admins_only():
    if request.endpoint and request.endpoint.startswith("support.api_key") and not current_user.is_vendor_admin:
        abort(404)


def _form() -> ApiKeyForm:
    form = ApiKeyForm()
    organizations = db.session.scalars(db.select(Organization).order_by(Organization.name)).all()
    form.organization.choices = [(0, "Every organization")] + [(o.id, o.name) for o in organizations]
    return form


@bp.get("/api-keys")
def api_keys_index():
    record_id = web_sessions.current_record_id()
    issued = sessions.stash_pop(record_id, _STASH_KEY) if record_id is not None else None
    return render_template("support/api_keys.html", keys=api_keys.list_keys(), form=_form(),
                           revoke_form=RevokeApiKeyForm(), issued=issued)


@bp.post("/api-keys")
def api_key_create():
    form = _form()
    if not form.validate_on_submit():
        return render_template("support/api_keys.html", keys=api_keys.list_keys(), form=form,
                               revoke_form=RevokeApiKeyForm(), issued=None), 422
    organization = db.session.get(Organization, form.organization.data) if form.organization.data else None
    try:
        issued = api_keys.create_key(form.name.data, form.scopes.data, organization=organization,
                                     created_by=current_user)
    except api_keys.ApiKeyError as exc:
        db.session.rollback()
        form.name.errors.append(str(exc))
        return render_template("support/api_keys.html", keys=api_keys.list_keys(), form=form,
                               revoke_form=RevokeApiKeyForm(), issued=None), 422
    db.session.commit()
    # Kept encrypted with the session's record (written apart, after the key's own commit) for the next page only.
    record_id = web_sessions.current_record_id()
    if record_id is not None:
        sessions.stash_put(record_id, _STASH_KEY, {"secret": issued.secret, "prefix": issued.key.prefix})
    return redirect(url_for("support.api_keys_index"))


@bp.route("/api-keys/<int:key_id>/revoke", methods=["GET", "POST"])
def api_key_revoke(key_id: int):
    key = db.session.get(ApiKey, key_id) or abort(404)
    form = RevokeApiKeyForm()
    if form.validate_on_submit():
        try:
            api_keys.revoke_key(key, revoked_by=current_user)
        except api_keys.ApiKeyError as exc:
            db.session.rollback()
            flash(str(exc), "warning")
            return redirect(url_for("support.api_keys_index"))
        db.session.commit()
        flash(sentence(f"Revoked {key.prefix}… ({key.name}); requests with it are refused from now on"), "success")
        return redirect(url_for("support.api_keys_index"))
    return render_template("support/api_key_revoke.html", key=key, form=form)
