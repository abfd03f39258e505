"""The event log page and its JSON twin."""

from flask import Blueprint, jsonify, render_template, request

from sandbox import eventlog
from sandbox.db import session
from sandbox.views.common import state

bp = Blueprint("sandbox_events", __name__, url_prefix="/sandbox")

FILTERS = ("kind", "method", "path", "status", "client")
MAX_LIMIT = 10_000


def _query():
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    state().events.flush()  # so this page shows every event recorded before it was asked for
    limit = min(max(request.args.get("limit", eventlog.PAGE_SIZE, type=int) or eventlog.PAGE_SIZE, 1), MAX_LIMIT)
    events, next_before = eventlog.search(session(), filters, request.args.get("before", type=int), limit)
    return filters, events, next_before


@bp.get("/events")
def page():
    """Show the event log, newest first, filterable and paginated."""
    filters, events, next_before = _query()
    return render_template("sandbox/events.html", filters=filters, events=events, next_before=next_before)


@bp.get("/events.json")
def events_json():
    """Return the event log as JSON with the same filters and a `next_before` cursor."""
    _, events, next_before = _query()
    return jsonify({"events": [eventlog.as_dict(e) for e in events], "next_before": next_before})
