"""The event log: every request received and every callback sent, with status and timing.

Events are buffered in memory and written in batches by a background flusher, so that a request or
a callback costs no write transaction of its own. Every reader in this process flushes first
(`EventLog.flush`), so it sees every event recorded before its request; other processes sharing the
database see them within one flush interval.
"""

import logging
import threading
import time
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select

from sandbox.models import Event

PAGE_SIZE = 50
PRUNE_EVERY = 500  # events written between two prunings

log = logging.getLogger(__name__)


class EventLog:
    """Buffer events in memory and write them to the events table in batches."""

    def __init__(self, session_factory, keep, interval):
        self._session_factory = session_factory
        self._keep = keep
        self._interval = interval
        self._buffer = []
        self._buffer_lock = threading.Lock()
        # Held for a whole write, so a reader's flush waits for a batch the flusher has already taken.
        self._write_lock = threading.Lock()
        self._written = 0
        self._stop = threading.Event()
        self._thread = None

    def record(self, kind, method, path, status, duration_ms, client_id=None, detail="", at=None):
        """Buffer one event; it reaches the table at the next flush."""
        row = {"at": time.time() if at is None else at, "kind": kind, "method": method, "path": path[:300],
               "status": status, "duration_ms": round(duration_ms, 2), "client_id": client_id,
               "detail": detail[:300]}
        with self._buffer_lock:
            self._buffer.append(row)

    def flush(self):
        """Write every buffered event now, in the order recorded; keep them buffered if the write fails."""
        with self._write_lock:
            with self._buffer_lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return
            try:
                self._write(rows)
            except Exception:
                with self._buffer_lock:
                    self._buffer[:0] = rows
                raise

    def _write(self, rows):
        with self._session_factory() as db:
            db.execute(insert(Event.__table__), rows)
            before, self._written = self._written, self._written + len(rows)
            if before // PRUNE_EVERY != self._written // PRUNE_EVERY:
                prune(db, self._keep)
            db.commit()

    def start(self):
        """Start the background flusher."""
        self._thread = threading.Thread(target=self._run, name="sandbox-eventlog", daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        """Stop the flusher and write what is still buffered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - stopping must go on (and close the engine) even so
            log.exception("could not write the last events")

    def _run(self):
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a locked database must not end the flusher; the rows stay buffered
                log.exception("could not write the event log")


def callback_target(url):
    """Return a callback URL fit for the log: no query string, long path segments (tokens) masked."""
    parts = urlsplit(url)
    segments = ["…" if len(s) >= 16 else s for s in parts.path.split("/")]
    return f"{parts.scheme}://{parts.netloc}{'/'.join(segments)}"


def prune(db, keep):
    """Delete all but the newest `keep` events so the log stays bounded."""
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
