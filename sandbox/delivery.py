"""Callback delivery: a background thread POSTs due callbacks, signed, with retries and backoff.

Rows are claimed with a conditional UPDATE so that only one thread of one process sends a
given callback; claims left behind by a process that died are released after a while, so
delivery survives a restart.
"""

import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select, update

from sandbox.clients import client_secrets
from sandbox.eventlog import callback_target, record
from sandbox.models import Callback, Client
from sandbox.secrets_util import hmac_header

STALE_CLAIM_SECONDS = 60


class DeliveryWorker:
    """Deliver due callbacks from the database until stopped."""

    def __init__(self, session_factory, settings, config):
        self._session_factory = session_factory
        self._settings = settings
        self._poll = config["SANDBOX_DELIVERY_POLL"]
        self._timeout = config["SANDBOX_CALLBACK_TIMEOUT"]
        self._retry_base = config["SANDBOX_CALLBACK_RETRY_BASE"]
        self._max_attempts = config["SANDBOX_CALLBACK_MAX_ATTEMPTS"]
        self._concurrency = config["SANDBOX_DELIVERY_CONCURRENCY"]
        self._worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread = None
        self._http = threading.local()

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
        """Claim due callbacks and send them; return how many were claimed."""
        self._release_stale()
        claimed = self._claim(limit=self._concurrency * 4)
        if pool is None:
            for callback_id in claimed:
                self._deliver(callback_id)
        else:
            list(pool.map(self._deliver, claimed))
        return len(claimed)

    def _release_stale(self):
        with self._session_factory() as db:
            db.execute(update(Callback).where(Callback.status == "delivering",
                                              Callback.claimed_at < time.time() - STALE_CLAIM_SECONDS)
                       .values(status="pending", claimed_by=None, claimed_at=None))
            db.commit()

    def _claim(self, limit):
        now = time.time()
        with self._session_factory() as db:
            due = db.scalars(select(Callback.id).where(Callback.status == "pending", Callback.due_at <= now)
                             .order_by(Callback.due_at).limit(limit)).all()
            claimed = []
            for callback_id in due:
                result = db.execute(update(Callback).where(Callback.id == callback_id, Callback.status == "pending",
                                                           Callback.claimed_by.is_(None))
                                    .values(status="delivering", claimed_by=self._worker_id, claimed_at=now))
                if result.rowcount == 1:
                    claimed.append(callback_id)
            db.commit()
        return claimed

    def _session(self):
        if not hasattr(self._http, "session"):
            self._http.session = requests.Session()
        return self._http.session

    def _deliver(self, callback_id):
        with self._session_factory() as db:
            callback = db.get(Callback, callback_id)
            client = db.get(Client, callback.client_id)
            if random.random() < self._settings.get("faults")["callback_failure_rate"]:
                self._finish(db, callback, "dropped", None, "dropped by the callback_failure_rate fault", 0.0)
                return
            body = callback.body.encode()
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Cronofy-Sandbox",
                       "Cronofy-HMAC-SHA256": hmac_header(body, client_secrets(client))}
            started = time.perf_counter()
            try:
                response = self._session().post(callback.url, data=body, headers=headers, timeout=self._timeout,
                                                allow_redirects=False)
                status, error = response.status_code, None
                response.close()
            except requests.RequestException as exc:
                status, error = None, type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            self._settle(db, callback, status, error, elapsed)

    def _settle(self, db, callback, status, error, elapsed_ms):
        callback.attempts += 1
        if status is not None and 200 <= status < 300:
            self._finish(db, callback, "delivered", status, None, elapsed_ms)
        elif callback.attempts >= self._max_attempts:
            self._finish(db, callback, "failed", status, error or f"HTTP {status}", elapsed_ms)
        else:
            # Exponential backoff with jitter while the receiver fails.
            backoff = self._retry_base * (2 ** (callback.attempts - 1)) * random.uniform(0.8, 1.2)
            callback.due_at = time.time() + backoff
            self._finish(db, callback, "pending", status, error or f"HTTP {status}", elapsed_ms)

    def _finish(self, db, callback, status, http_status, error, elapsed_ms):
        callback.status, callback.last_status, callback.last_error = status, http_status, error
        callback.claimed_by = callback.claimed_at = None
        if status == "delivered":
            callback.delivered_at = time.time()
        detail = f"{callback.outcome}; attempt {callback.attempts}; {status}" + (f"; {error}" if error else "")
        record(db, "callback", "POST", callback_target(callback.url), http_status, elapsed_ms,
               callback.client_id, detail)
        db.commit()
