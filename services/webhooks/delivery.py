"""Send due deliveries: claimed under a lease, signed, posted in parallel, each attempt logged and rescheduled.

At-least-once. A delivery is claimed with a conditional UPDATE (`status` sending, `claimed_until` the
attempt's deadline plus a margin), committed before the request goes out, and settled after it by an
UPDATE conditional on that same claim (`outcomes.py`, which stores each round's finished attempts in
one transaction). A worker killed mid-delivery settles nothing: its claim lapses and the next sender
posts the delivery again, with the same `webhook-id`, which receivers use to deduplicate. A sender
that finishes after its claim lapsed logs its attempt but leaves the delivery to whoever took it over.
If the database stops answering, finished outcomes wait in memory and are stored once it answers
(past _KEPT_OUTCOMES the oldest are dropped and their deliveries sent again): nothing is lost, and
the sender's threads carry on.

Parallel, and fair. A pool of WEBHOOK_SENDER_THREADS posts the requests; at most
WEBHOOK_MAX_PARALLEL_PER_ENDPOINT deliveries of one endpoint are in flight at once, counted from the
claims in the database so the bound holds across worker processes (claim rounds are serialized on
PostgreSQL by an advisory lock). A round claims only what a free thread can start now, sharing the
free threads out one per endpoint in turn, so an endpoint with a backlog or a slow receiver holds at
most its own share and never delays another.

Outcomes follow the Standard Webhooks specification: 2xx is success; anything else (3xx included,
redirects are not followed), a timeout or a connection error is a failure, retried on the schedule
(`schedule.py`, honouring Retry-After on 429 and 503). 410 Gone disables the endpoint; so does an
endpoint that has failed every attempt for 5 days. A success clears the endpoint's failing streak.
Deliveries of a disabled endpoint fail ("the endpoint is disabled") and can be redelivered later.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, func, or_, select, text, update

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookDelivery, WebhookEndpoint
from services.platform import outages
from services.webhooks import dispatch, endpoints, outcomes, signing, transport

log = logging.getLogger(__name__)
# A claim outlives its attempt's deadline by this much, for storing the outcome.
CLAIM_MARGIN = timedelta(seconds=15)
DISABLED = "the endpoint is disabled"
# Serializes claim rounds across worker processes, so that per-endpoint counts stay true (PostgreSQL).
# Outcomes kept in memory while the database does not answer; older ones are dropped (their claims lapse
# and the deliveries are sent again), so that a long outage cannot grow the worker's memory.
_KEPT_OUTCOMES = 10_000
_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(4805614)")


@dataclass(frozen=True)
class Job:
    """One claimed delivery, with everything its attempt needs, so that the request runs without the database."""

    delivery_id: int
    endpoint_id: int
    url: str
    msg_id: str
    body: str
    secrets: tuple[str, ...]
    claimed_until: datetime
    attempt_count: int


def _due(now: datetime):
    """Deliveries that may be claimed: pending and due, or claimed by a sender whose claim lapsed."""
    return or_(and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now),
               and_(WebhookDelivery.status == "sending", WebhookDelivery.claimed_until < now))


def share(due: dict[int, int], busy: dict[int, int], free: int, cap: int, turn: int = 0) -> dict[int, int]:
    """Share `free` threads among endpoints with due deliveries: one each in turn, at most `cap` in flight each."""
    order = sorted(due)
    if order:
        turn %= len(order)
        order = order[turn:] + order[:turn]
    room = {endpoint: min(due[endpoint], max(0, cap - busy.get(endpoint, 0))) for endpoint in order}
    slots: dict[int, int] = {}
    while free > 0 and any(room.values()):
        for endpoint in order:
            if room[endpoint] and free > 0:
                slots[endpoint] = slots.get(endpoint, 0) + 1
                room[endpoint] -= 1
                free -= 1
    return slots


class Sender:
    """Claims due deliveries and posts them on a thread pool; `tick()` is one round (the worker calls it often)."""

    def __init__(self, app: Flask, *, now: Callable[[], datetime] = utcnow,
                 rng: Callable[[], float] = random.random) -> None:
        self._app, self.now, self._rng = app, now, rng
        config = app.config
        self.threads = int(config["WEBHOOK_SENDER_THREADS"])
        self.per_endpoint = int(config["WEBHOOK_MAX_PARALLEL_PER_ENDPOINT"])
        self.timeout = float(config["WEBHOOK_TIMEOUT_SECONDS"])
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook-sender")
        self._idle = threading.Condition()
        self._in_flight = 0
        self._finished = False  # an attempt finished since the last wait_for_work
        self._outcomes: list[outcomes.Outcome] = []  # finished, not yet stored
        self._turn = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def unsettled(self) -> int:
        """Attempts that finished and wait for the next round to be stored."""
        return len(self._outcomes)

    def tick(self) -> int:
        """Store finished attempts, dispatch new events, start every due delivery a free thread can take.

        Returns how many started.
        :raises SQLAlchemyError: when the database does not answer (nothing was claimed then).
        """
        with self._app.app_context():
            try:
                self._settle()
                dispatch.dispatch(now=self.now)
                jobs = self._claim()
            except Exception:
                db.session.rollback()
                raise
            finally:
                outages.give_back_session()
        for job in jobs:
            self._pool.submit(self._send, job)
        return len(jobs)

    def wait_for_work(self, timeout: float) -> None:
        """Wait until an attempt finishes (a thread is free again) or timeout passes, whichever comes first."""
        with self._idle:
            if not self._finished:
                self._idle.wait(timeout)
            self._finished = False

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no attempt is in flight (tests, shutdown); return whether that happened in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        """Let the attempts in flight finish (each ends by its deadline) and stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def settle(self) -> int:
        """Store the attempts that finished since the last round; return how many (tests call it directly)."""
        with self._app.app_context():
            try:
                return self._settle()
            finally:
                outages.give_back_session()

    def _settle(self) -> int:
        with self._idle:
            finished, self._outcomes = self._outcomes, []
        try:
            outcomes.store(finished, self.now(), rng=self._rng)
        except Exception:
            db.session.rollback()
            with self._idle:  # kept for the next round: stored once the database answers
                self._outcomes[:0] = finished[-_KEPT_OUTCOMES:]
            raise
        return len(finished)

    def _claim(self) -> list[Job]:
        free = self.threads - self._in_flight
        if free <= 0:
            return []
        now = self.now()
        if not _any_due(now):
            db.session.rollback()  # an idle round reads once and writes nothing
            return []
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(_CLAIM_LOCK)
        counted = db.session.execute(
            select(WebhookDelivery.endpoint_id, WebhookEndpoint.enabled, func.count())
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(_due(now)).group_by(WebhookDelivery.endpoint_id, WebhookEndpoint.enabled)).all()
        if any(not enabled for _, enabled, _ in counted):
            _fail_disabled(now)
        due = {endpoint_id: count for endpoint_id, enabled, count in counted if enabled}
        if not due:
            db.session.commit()
            return []
        busy = dict(db.session.execute(
            select(WebhookDelivery.endpoint_id, func.count())
            .where(WebhookDelivery.status == "sending", WebhookDelivery.claimed_until >= now,
                   WebhookDelivery.endpoint_id.in_(list(due))).group_by(WebhookDelivery.endpoint_id)).all())
        self._turn += 1
        until = now + timedelta(seconds=self.timeout) + CLAIM_MARGIN
        claimed: list[int] = []
        for endpoint_id, count in share(due, busy, free, self.per_endpoint, self._turn).items():
            claimed += _claim_some(endpoint_id, count, now, until)
        jobs = self._jobs(claimed, until, now)
        db.session.commit()
        with self._idle:
            self._in_flight += len(jobs)
        return jobs

    def _jobs(self, ids: list[int], until: datetime, now: datetime) -> list[Job]:
        if not ids:
            return []
        rows = db.session.execute(
            select(WebhookDelivery, Event, WebhookEndpoint)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)).all()
        secrets: dict[int, tuple[str, ...]] = {}
        jobs = []
        for delivery, event, endpoint in rows:
            if endpoint.id not in secrets:
                secrets[endpoint.id] = tuple(endpoints.signing_secrets(endpoint, now))
            jobs.append(Job(delivery.id, endpoint.id, endpoint.url, signing.webhook_id(event), signing.body(event),
                            secrets[endpoint.id], until, delivery.attempt_count))
        return jobs

    def _send(self, job: Job) -> None:
        outcome = None
        try:
            started = self.now()
            try:
                headers = signing.headers(job.msg_id, started, job.body, job.secrets)
            except ValueError as exc:
                answer = transport.Answer(error=str(exc))
            else:
                answer = transport.post(job.url, job.body.encode(), headers, timeout=self.timeout,
                                        allow_private=bool(self._app.config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS")))
            outcome = outcomes.Outcome(job.delivery_id, job.endpoint_id, job.claimed_until, job.attempt_count,
                                       started, answer)
        except Exception:  # noqa: BLE001 - a sender thread must survive anything; the claim lapses
            log.exception("Webhook delivery %s failed in the sender; it will be sent again", job.delivery_id)
        finally:
            with self._idle:
                if outcome is not None:
                    self._outcomes.append(outcome)
                self._in_flight -= 1
                self._finished = True
                self._idle.notify_all()


def _any_due(now: datetime) -> bool:
    return db.session.scalar(select(WebhookDelivery.id).where(_due(now)).limit(1)) is not None


def _claim_some(endpoint_id: int, count: int, now: datetime, until: datetime) -> list[int]:
    """Claim up to count due deliveries of the endpoint, oldest due first; return the ids this caller got."""
    ids = db.session.scalars(select(WebhookDelivery.id)
                             .where(WebhookDelivery.endpoint_id == endpoint_id, _due(now))
                             .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(count)).all()
    claimed = []
    for delivery_id in ids:
        result = db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, _due(now))
                                    .values(status="sending", claimed_until=until)
                                    .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            claimed.append(delivery_id)
    return claimed


def _fail_disabled(now: datetime) -> None:
    """Fail the waiting deliveries of disabled endpoints, saying so in the log (a person may redeliver them)."""
    disabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(False)).scalar_subquery()
    db.session.execute(update(WebhookDelivery)
                       .where(WebhookDelivery.endpoint_id.in_(disabled), _due(now))
                       .values(status="failed", last_error=DISABLED, next_attempt_at=None, claimed_until=None)
                       .execution_options(synchronize_session=False))
