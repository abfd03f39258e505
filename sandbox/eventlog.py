"""The event log: every request received and every callback sent, with status and timing."""

import itertools
import threading
import time
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from sandbox.models import Event

PAGE_SIZE = 50
_counter = itertools.count()
_prune_lock = threading.Lock()


def record(db, kind, method, path, status, duration_ms, client_id=None, detail=""):
    """Add one event to the session (the caller commits)."""
    db.add(Event(at=time.time(), kind=kind, method=method, path=path[:300], status=status,
                 duration_ms=round(duration_ms, 2), client_id=client_id, detail=detail[:300]))


def callback_target(url):
    """Return a callback URL fit for the log: no query string, long path segments (tokens) masked."""
    parts = urlsplit(url)
    segments = ["…" if len(s) >= 16 else s for s in parts.path.split("/")]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"


def maybe_prune(db, keep, every=500):
    """Every `every` calls, delete all but the newest `keep` events so the log stays bounded."""
    if next(_counter) % every:
        return
    with _prune_lock:
        newest = db.scalar(select(func.max(Event.id)))
        if newest is not None and newest > keep:
            db.execute(delete(Event).where(Event.id <= newest - keep))


def _apply_filters(query, filters):
    if filters.get("kind"):
        query = query.where(Event.kind == filters["kind"])
    if filters.get("method"):
        query = query.where(Event.method == filters["method"].upper())
    if filters.get("path"):
        query = query.where(Event.path.contains(filters["path"]))
    if filters.get("client"):
        query = query.where(Event.client_id == filters["client"])
    status = str(filters.get("status") or "")
    if status.isdigit():
        query = query.where(Event.status == int(status))
    elif len(status) == 3 and status[0].isdigit() and status[1:].lower() == "xx":
        low = int(status[0]) * 100
        query = query.where(Event.status >= low, Event.status < low + 100)
    return query


def search(db, filters, before=None, limit=PAGE_SIZE):
    """Return (events newest first, id to pass as `before` for the next page or None)."""
    query = _apply_filters(select(Event), filters)
    if before:
        query = query.where(Event.id < int(before))
    rows = list(db.scalars(query.order_by(Event.id.desc()).limit(limit + 1)))
    next_before = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_before


def as_dict(event):
    """Return an event as JSON-ready data."""
    return {"id": event.id, "at": event.at, "kind": event.kind, "method": event.method, "path": event.path,
            "status": event.status, "duration_ms": event.duration_ms, "client_id": event.client_id,
            "detail": event.detail}
