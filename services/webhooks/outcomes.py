"""Storing what attempts got: the attempt rows, each delivery's next step, each endpoint's health, in one go.

The sender's threads only make requests; their outcomes are stored together by the sender's loop, one
transaction per round however many attempts finished, so that delivering thousands of events adds a
few writes a second to the database the bulk engine is writing to, not one per event.

A delivery is settled only while the claim its attempt was made under is still in place (`status`
sending, the same `claimed_until`): if the claim lapsed and another sender took the delivery over, the
late outcome is logged as an attempt and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, or_, update

from extensions import db
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.webhooks import endpoints, schedule, transport

FAILING_LIMIT = timedelta(days=5)
# A success refreshes last_success_at at most this often (a busy endpoint's row is not rewritten per event).
_SUCCESS_RESOLUTION = timedelta(seconds=1)
_deliveries = WebhookDelivery.__table__
_SETTLE = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.status == "sending",
           _deliveries.c.claimed_until == bindparam("b_claim"))
    .values(status=bindparam("b_status"), attempt_count=bindparam("b_attempts"),
            last_status_code=bindparam("b_code"), last_error=bindparam("b_error"), claimed_until=None,
            delivered_at=bindparam("b_delivered"), next_attempt_at=bindparam("b_next"))
)


@dataclass(frozen=True)
class Outcome:
    """One finished attempt: the delivery it was for (id, endpoint, claim, attempts so far) and its answer."""

    delivery_id: int
    endpoint_id: int
    claimed_until: datetime
    attempt_count: int
    started: datetime
    answer: transport.Answer

    @property
    def ok(self) -> bool:
        return self.answer.status is not None and 200 <= self.answer.status < 300


def store(outcomes: Sequence[Outcome], now: datetime, *, rng: Callable[[], float]) -> None:
    """Log every attempt, settle the deliveries still claimed for them, note endpoint health; commit once."""
    if not outcomes:
        return
    errors = [None if o.ok else failure(o.answer) for o in outcomes]
    db.session.execute(insert(WebhookAttempt), [
        {"delivery_id": o.delivery_id, "started_at": o.started, "status_code": o.answer.status,
         "latency_ms": o.answer.latency_ms, "response_excerpt": o.answer.excerpt[:transport.EXCERPT_BYTES] or None,
         "error": error, "succeeded": o.ok, "details": o.answer.notes}
        for o, error in zip(outcomes, errors, strict=True)])
    db.session.execute(_SETTLE, [_settlement(o, error, now, rng) for o, error in zip(outcomes, errors, strict=True)])
    last: dict[int, Outcome] = {}
    for outcome in outcomes:
        last[outcome.endpoint_id] = outcome
    for endpoint_id, outcome in last.items():
        gone = any(o.endpoint_id == endpoint_id and o.answer.status == 410 for o in outcomes)
        _note_health(endpoint_id, outcome.ok, gone, now)
    db.session.commit()


def _settlement(outcome: Outcome, error: str | None, now: datetime, rng: Callable[[], float]) -> dict:
    answer, attempts = outcome.answer, outcome.attempt_count + 1
    values = {"b_id": outcome.delivery_id, "b_claim": outcome.claimed_until, "b_attempts": attempts,
              "b_code": answer.status, "b_error": error}
    if outcome.ok:
        return {**values, "b_status": "succeeded", "b_delivered": now, "b_next": None}
    when = None if answer.status == 410 else schedule.next_attempt(attempts, answer.status, answer.headers, now,
                                                                   rng=rng)
    return {**values, "b_status": "pending" if when else "failed", "b_delivered": None, "b_next": when}


def failure(answer: transport.Answer) -> str:
    """Why an attempt failed, in the words the delivery log shows."""
    if answer.error:
        return answer.error[:500]
    status = answer.status
    if status is not None and 300 <= status < 400:
        where = answer.headers.get("location", "")
        return (f"answered {status}: redirects are not followed" + (f" (to {where})" if where else ""))[:500]
    if status == 410:
        return "answered 410 Gone: the endpoint was disabled"
    asked = answer.headers.get("retry-after")
    if status in schedule.RETRY_AFTER_STATUSES and asked:
        return f"answered {status}, Retry-After: {asked}"[:500]
    return f"answered {status}"


def _note_health(endpoint_id: int, ok: bool, gone: bool, now: datetime) -> None:
    """Clear the failing streak on success; start it on failure; disable on 410 or after 5 days of failures."""
    table = WebhookEndpoint
    if ok:
        db.session.execute(update(table).where(
            table.id == endpoint_id,
            or_(table.failing_since.isnot(None), table.last_success_at.is_(None),
                table.last_success_at < now - _SUCCESS_RESOLUTION))
            .values(failing_since=None, last_success_at=now).execution_options(synchronize_session=False))
    else:
        db.session.execute(update(table).where(table.id == endpoint_id, table.failing_since.is_(None))
                           .values(failing_since=now).execution_options(synchronize_session=False))
    if ok and not gone:
        return
    endpoint = db.session.get(table, endpoint_id, populate_existing=True)
    if endpoint is None or not endpoint.enabled:
        return
    if gone:
        endpoints.disable(endpoint, "It answered 410 Gone to a delivery.")
    elif endpoint.failing_since is not None and now - endpoint.failing_since >= FAILING_LIMIT:
        endpoints.disable(endpoint, f"Every delivery failed for 5 days (since "
                                    f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC).")
