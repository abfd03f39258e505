"""Vendor settings: the webhook delivery log (every attempt of every delivery), and redelivering.

Filters (endpoint, event type, outcome) are query arguments, so a filtered log can be linked to and
paged; paging goes from the newest delivery back (`older_than` is the last id of the page before).
"""

from __future__ import annotations

from datetime import UTC

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.converters import parse_id
from blueprints.support import bp
from blueprints.support.webhook_forms import ConfirmForm, RedeliverFailedForm
from extensions import db
from models.webhook import WebhookDelivery, WebhookEndpoint
from services.platform.event_types import NAMES, TEST_EVENT
from services.platform.wording import plural, sentence
from services.webhooks import delivery_log, endpoints

PAGE_SIZE = 25
OUTCOMES = {"succeeded": "Succeeded", "failed": "Failed", "pending": "Pending"}
EVENT_TYPES = (*NAMES, TEST_EVENT)


def _filters(source) -> dict:
    """The log's filters from a query string or a form, each None when absent or not one of the choices."""
    event_type, outcome = source.get("event_type"), source.get("outcome")
    return {"endpoint_id": parse_id(source.get("endpoint_id")),
            "event_type": event_type if event_type in EVENT_TYPES else None,
            "outcome": outcome if outcome in OUTCOMES else None}


def _log_url(filters: dict, **extra) -> str:
    return url_for("support.webhook_deliveries", **{k: v for k, v in {**filters, **extra}.items() if v})


@bp.get("/webhooks/deliveries")
def webhook_deliveries():
    filters = _filters(request.args)
    endpoint = db.session.get(WebhookEndpoint, filters["endpoint_id"]) if filters["endpoint_id"] else None
    if filters["endpoint_id"] and endpoint is None:
        filters["endpoint_id"] = None
    rows = delivery_log.list_deliveries(endpoint_id=filters["endpoint_id"], event_type=filters["event_type"],
                                        outcome=filters["outcome"], after_id=parse_id(request.args.get("older_than")),
                                        limit=PAGE_SIZE + 1)
    older = _log_url(filters, older_than=rows[PAGE_SIZE - 1].id) if len(rows) > PAGE_SIZE else None
    rows = rows[:PAGE_SIZE]
    return render_template(
        "support/webhooks/deliveries.html", deliveries=rows, attempts=delivery_log.attempts_of_each(rows),
        filters=filters, endpoint=endpoint, all_endpoints=endpoints.list_endpoints(), event_types=EVENT_TYPES,
        outcomes=OUTCOMES, older_url=older, paged=bool(request.args.get("older_than")),
        newest_url=_log_url(filters), action_form=ConfirmForm(), redeliver_form=RedeliverFailedForm())


@bp.post("/webhooks/deliveries/<int:webhook_delivery_id>/redeliver")
def webhook_redeliver(webhook_delivery_id: int):
    delivery = db.session.get(WebhookDelivery, webhook_delivery_id) or abort(404)
    if ConfirmForm().validate_on_submit():
        delivery_log.redeliver(delivery, actor=current_user)
        db.session.commit()
        flash(sentence(f"Redelivering {delivery.event_type} (event {delivery.event_id}) to {delivery.endpoint.url}"),
              "info")
    return redirect(_log_url(_filters(request.form)))


@bp.post("/webhooks/<int:webhook_endpoint_id>/redeliver-failed")
def webhook_redeliver_failed(webhook_endpoint_id: int):
    endpoint = db.session.get(WebhookEndpoint, webhook_endpoint_id) or abort(404)
    form = RedeliverFailedForm()
    if not form.validate_on_submit():
        for error in form.since.errors:
            flash(sentence(error if "UTC" in error else f"{error} Give the time as UTC"), "warning")
        return redirect(_log_url({"endpoint_id": endpoint.id}))
    count = delivery_log.redeliver_failed_since(endpoint, form.since.data.replace(tzinfo=UTC), actor=current_user)
    db.session.commit()
    if count:
        flash(sentence(f"Redelivering {plural(count, 'failed delivery', 'failed deliveries')} to {endpoint.url}"),
              "info")
    else:
        flash(sentence(f"No delivery to {endpoint.url} has failed since {form.since.data:%Y-%m-%d %H:%M} UTC"),
              "info")
    return redirect(_log_url({"endpoint_id": endpoint.id}))
