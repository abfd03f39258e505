"""Vendor settings: the webhook endpoints that receive the event log (support staff with the vendor-admin flag only).

A new endpoint's signing secret, and a rotated one, is shown once: it is kept encrypted with the
session's record for the next page only, as the API keys page does with a new key.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints import sessions as web_sessions
from blueprints.support import bp
from blueprints.support.webhook_forms import ConfirmForm, WebhookEndpointForm
from extensions import db
from models.organization import Organization
from models.webhook import WebhookEndpoint
from services.accounts import sessions
from services.platform.wording import sentence
from services.webhooks import delivery_log, endpoints

_STASH_KEY = "issued_webhook_secret"


@bp.before_request
def _vendor_admins_only():
    if request.endpoint and request.endpoint.startswith("support.webhook") and not current_user.is_vendor_admin:
        abort(404)


def _endpoint_or_404(webhook_endpoint_id: int) -> WebhookEndpoint:
    return db.session.get(WebhookEndpoint, webhook_endpoint_id) or abort(404)


def _confirmed() -> bool:
    """A destructive action runs only with the confirmation page's `confirm=yes` (never from a stray POST)."""
    return request.form.get("confirm") == "yes"


def _form(endpoint: WebhookEndpoint | None = None) -> WebhookEndpointForm:
    form = WebhookEndpointForm() if endpoint is None else WebhookEndpointForm(
        data={"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_type_list,
              "organization": endpoint.organization_id or 0, "enabled": endpoint.enabled})
    organizations = db.session.scalars(db.select(Organization).order_by(Organization.name)).all()
    form.organization.choices = [(0, "Every organization")] + [(o.id, o.name) for o in organizations]
    return form


def _fields(form: WebhookEndpointForm) -> dict:
    organization = db.session.get(Organization, form.organization.data) if form.organization.data else None
    return {"event_types": form.event_types.data or [], "organization": organization,
            "description": form.description.data or "", "enabled": bool(form.enabled.data)}


def _refused(form: WebhookEndpointForm, exc: endpoints.WebhookEndpointError) -> None:
    db.session.rollback()
    getattr(form, exc.field, form.url).errors.append(str(exc))


def _stash_secret(secret: str, endpoint: WebhookEndpoint, *, rotated: bool) -> None:
    record_id = web_sessions.current_record_id()
    if record_id is not None:
        sessions.stash_put(record_id, _STASH_KEY, {"secret": secret, "endpoint_id": endpoint.id, "url": endpoint.url,
                                                   "rotated": rotated})


def _index(form: WebhookEndpointForm, status: int = 200, issued: dict | None = None):
    rows = endpoints.list_endpoints()
    overlaps = {row.id: endpoints.previous_secrets_valid_until(row) for row in rows}
    return render_template("support/webhooks/index.html", endpoints=rows, overlaps=overlaps, form=form,
                           action_form=ConfirmForm(), issued=issued), status


@bp.get("/webhooks")
def webhooks_index():
    record_id = web_sessions.current_record_id()
    issued = sessions.stash_pop(record_id, _STASH_KEY) if record_id is not None else None
    return _index(_form(), issued=issued)


@bp.post("/webhooks")
def webhook_create():
    form = _form()
    if not form.validate_on_submit():
        return _index(form, 422)
    try:
        issued = endpoints.create_endpoint(form.url.data, created_by=current_user, **_fields(form))
    except endpoints.WebhookEndpointError as exc:
        _refused(form, exc)
        return _index(form, 422)
    db.session.commit()
    _stash_secret(issued.secret, issued.endpoint, rotated=False)
    return redirect(url_for("support.webhooks_index"))


@bp.route("/webhooks/<int:webhook_endpoint_id>/edit", methods=["GET", "POST"])
def webhook_edit(webhook_endpoint_id: int):
    endpoint = _endpoint_or_404(webhook_endpoint_id)
    form = _form(endpoint) if request.method == "GET" else _form()
    if request.method == "POST" and form.validate_on_submit():
        try:
            changes = endpoints.update_endpoint(endpoint, url=form.url.data, actor=current_user, **_fields(form))
        except endpoints.WebhookEndpointError as exc:
            _refused(form, exc)
        else:
            db.session.commit()
            flash(sentence(f"Saved {endpoint.url}" if changes else "Nothing changed"), "success")
            return redirect(url_for("support.webhooks_index"))
    status = 422 if request.method == "POST" else 200
    return render_template("support/webhooks/edit.html", endpoint=endpoint, form=form), status


@bp.post("/webhooks/<int:webhook_endpoint_id>/enabled")
def webhook_set_enabled(webhook_endpoint_id: int):
    endpoint = _endpoint_or_404(webhook_endpoint_id)
    if ConfirmForm().validate_on_submit():
        enabled = request.form.get("enabled") == "yes"
        endpoints.update_endpoint(endpoint, enabled=enabled, actor=current_user)
        db.session.commit()
        flash(sentence(f"{'Enabled' if enabled else 'Disabled'} {endpoint.url}"), "success")
    return redirect(url_for("support.webhooks_index"))


@bp.route("/webhooks/<int:webhook_endpoint_id>/rotate-secret", methods=["GET", "POST"])
def webhook_rotate_secret(webhook_endpoint_id: int):
    endpoint = _endpoint_or_404(webhook_endpoint_id)
    form = ConfirmForm()
    if form.validate_on_submit() and _confirmed():
        secret = endpoints.rotate_secret(endpoint, actor=current_user)
        db.session.commit()
        _stash_secret(secret, endpoint, rotated=True)
        return redirect(url_for("support.webhooks_index"))
    return render_template("support/webhooks/rotate.html", endpoint=endpoint, form=form,
                           overlap_ends=endpoints.previous_secrets_valid_until(endpoint))


@bp.route("/webhooks/<int:webhook_endpoint_id>/delete", methods=["GET", "POST"])
def webhook_delete(webhook_endpoint_id: int):
    endpoint = _endpoint_or_404(webhook_endpoint_id)
    form = ConfirmForm()
    if form.validate_on_submit() and _confirmed():
        url = endpoint.url
        endpoints.delete_endpoint(endpoint, actor=current_user)
        db.session.commit()
        flash(sentence(f"Deleted {url}; nothing more is sent to it"), "success")
        return redirect(url_for("support.webhooks_index"))
    return render_template("support/webhooks/delete.html", endpoint=endpoint, form=form)


@bp.post("/webhooks/<int:webhook_endpoint_id>/test")
def webhook_send_test(webhook_endpoint_id: int):
    endpoint = _endpoint_or_404(webhook_endpoint_id)
    if ConfirmForm().validate_on_submit():
        delivery_log.send_test_event(endpoint, actor=current_user)
        db.session.commit()
        flash(sentence(f"A test event is on its way to {endpoint.url}; it appears here once sent"), "info")
    return redirect(url_for("support.webhook_deliveries", endpoint_id=endpoint.id))

