"""Callback delivery: a background thread POSTs due callbacks, signed, with retries and backoff.

Rows are claimed with a conditional UPDATE so that only one thread of one process sends a
given callback; claims left behind by a process that died are released after a while, so
delivery survives a restart. Each round claims a batch in one statement, sends it concurrently
and settles it in one transaction. A callback's body is the only place a delegated code exists in
clear; once the callback is delivered, given up or dropped, settling removes the code from it.
"""

import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from sandbox.callback_http import CallbackSender
from sandbox.clients import parse_secrets
from sandbox.eventlog import callback_target
from sandbox.models import Callback, Client
from sandbox.secrets_util import hmac_header

STALE_CLAIM_SECONDS = 60
RELEASE_EVERY_SECONDS = 5.0  # stale claims are looked for this often; they only go stale after a minute
FINAL_STATUSES = ("delivered", "failed", "dropped")  # nothing sends these again
NOTIFICATION = "notification:"  # the outcome prefix of push notifications (sandbox/notifications.py)

CALLBACKS = Callback.__table__
CLAIMED_COLUMNS = (CALLBACKS.c.id, CALLBACKS.c.client_id, CALLBACKS.c.url, CALLBACKS.c.body, CALLBACKS.c.outcome,
                   CALLBACKS.c.attempts, CALLBACKS.c.due_at)
SETTLE = (update(CALLBACKS).where(CALLBACKS.c.id == bindparam("callback_id"))
          .values(status=bindparam("new_status"), attempts=bindparam("new_attempts"),
                  due_at=bindparam("new_due_at"), body=bindparam("new_body"),
                  last_status=bindparam("new_last_status"), last_error=bindparam("new_last_error"),
                  delivered_at=bindparam("new_delivered_at"),
                  claimed_by=None, claimed_at=None))


@dataclass
class Attempt:
    """What became of one claimed callback in this round, ready to be written back."""

    callback: object  # the claimed row
    status: str  # delivered | failed | pending | dropped
    attempts: int
    due_at: float
    http_status: int | None
    error: str | None
    elapsed_ms: float
    finished_at: float

    def params(self):
        """Return the bind parameters of the settling UPDATE."""
        return {"callback_id": self.callback.id, "new_status": self.status, "new_attempts": self.attempts,
                "new_due_at": self.due_at, "new_body": self.kept_body(), "new_last_status": self.http_status,
                "new_last_error": self.error,
                "new_delivered_at": self.finished_at if self.status == "delivered" else None}

    def kept_body(self):
        """Return the body to store: as it was while it may be sent again, without its code after that."""
        if self.status not in FINAL_STATUSES or self.callback.outcome != "code":
            return self.callback.body
        return without_code(self.callback.body)

    def detail(self):
        """Return the event-log detail of this attempt."""
        return (f"{self.callback.outcome}; attempt {self.attempts}; {self.status}"
                + (f"; {self.error}" if self.error else ""))


def without_code(body):
    """Return a success callback's body with the code taken out (the state and the shape stay)."""
    payload = json.loads(body)
    payload["authorization"].pop("code", None)
    return json.dumps(payload)


class DeliveryWorker:
    """Deliver due callbacks from the database until stopped."""

    def __init__(self, session_factory, settings, events, config):
        self._session_factory = session_factory
        self._settings = settings
        self._events = events
        self._retry_base = config["SANDBOX_CALLBACK_RETRY_BASE"]
        self._max_attempts = config["SANDBOX_CALLBACK_MAX_ATTEMPTS"]
        self._poll = config["SANDBOX_DELIVERY_POLL"]
        self._concurrency = config["SANDBOX_DELIVERY_CONCURRENCY"]
        self._sender = CallbackSender(config["SANDBOX_CALLBACK_TIMEOUT"], self._concurrency)
        self._worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._released_at = float("-inf")
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start the daemon thread."""
        self._thread = threading.Thread(target=self._run, name="sandbox-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout=5.0):
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self):
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="sandbox-send") as pool:
            while not self._stop.is_set():
                try:
                    sent = self.deliver_due(pool)
                except Exception:  # noqa: BLE001 - the loop must survive a locked or vanished database
                    sent = 0
                if not sent:
                    self._stop.wait(self._poll)

    def deliver_due(self, pool=None):
        """Claim due callbacks, send them and write back what happened; return how many were claimed."""
        self._release_stale()
        claimed = self._claim(limit=self._concurrency * 4)
        if not claimed:
            return 0
        secrets = self._secrets({row.client_id for row in claimed})
        failure_rate = self._settings.get("faults")["callback_failure_rate"]

        def attempt(row):
            return self._attempt(row, secrets.get(row.client_id, []), failure_rate)

        attempts = list(pool.map(attempt, claimed)) if pool is not None else [attempt(row) for row in claimed]
        self._settle(attempts)
        return len(claimed)

    def _release_stale(self):
        if time.monotonic() - self._released_at < RELEASE_EVERY_SECONDS:
            return
        with self._session_factory() as db:
            db.execute(update(CALLBACKS).where(CALLBACKS.c.status == "delivering",
                                               CALLBACKS.c.claimed_at < time.time() - STALE_CLAIM_SECONDS)
                       .values(status="pending", claimed_by=None, claimed_at=None))
            db.commit()
        self._released_at = time.monotonic()

    def _claim(self, limit):
        now = time.time()
        with self._session_factory() as db:
            # A read first: when nothing is due, no write lock is taken.
            due = db.scalars(select(CALLBACKS.c.id).where(CALLBACKS.c.status == "pending", CALLBACKS.c.due_at <= now)
                             .order_by(CALLBACKS.c.due_at).limit(limit)).all()
            if not due:
                return []
            rows = db.execute(update(CALLBACKS).where(CALLBACKS.c.id.in_(due), CALLBACKS.c.status == "pending",
                                                      CALLBACKS.c.claimed_by.is_(None))
                              .values(status="delivering", claimed_by=self._worker_id, claimed_at=now)
                              .returning(*CLAIMED_COLUMNS)).all()
            db.commit()
        return sorted(rows, key=lambda row: (row.due_at, row.id))

    def _secrets(self, client_ids):
        # Read on every round, so a secret rotated through the admin signs the very next callback.
        with self._session_factory() as db:
            found = db.execute(select(Client.client_id, Client.secrets).where(Client.client_id.in_(client_ids)))
            return {client_id: parse_secrets(value) for client_id, value in found}

    def _attempt(self, row, secrets, failure_rate):
        if random.random() < failure_rate:
            return Attempt(row, "dropped", row.attempts, row.due_at, None, "dropped by the callback_failure_rate fault",
                           0.0, time.time())
        body = row.body.encode()
        started = time.perf_counter()
        status, error = self._sender.post(row.url, body, hmac_header(body, secrets))
        elapsed = (time.perf_counter() - started) * 1000
        return self._outcome(row, status, error, elapsed)

    def _outcome(self, row, status, error, elapsed_ms):
        attempts, now = row.attempts + 1, time.time()
        if status is not None and 200 <= status < 300:
            return Attempt(row, "delivered", attempts, row.due_at, status, None, elapsed_ms, now)
        reason = error or f"HTTP {status}"
        if attempts >= self._max_attempts:
            return Attempt(row, "failed", attempts, row.due_at, status, reason, elapsed_ms, now)
        # Exponential backoff with jitter while the receiver fails.
        backoff = self._retry_base * (2 ** (attempts - 1)) * random.uniform(0.8, 1.2)
        return Attempt(row, "pending", attempts, now + backoff, status, reason, elapsed_ms, now)

    def _settle(self, attempts):
        with self._session_factory() as db:
            db.execute(SETTLE, [attempt.params() for attempt in attempts])
            db.commit()
        # Logged in the order the attempts finished, as each used to be logged right after its POST.
        for attempt in sorted(attempts, key=lambda a: a.finished_at):
            kind = "notification" if attempt.callback.outcome.startswith(NOTIFICATION) else "callback"
            self._events.record(kind, "POST", callback_target(attempt.callback.url), attempt.http_status,
                                attempt.elapsed_ms, attempt.callback.client_id, attempt.detail(),
                                at=attempt.finished_at)
