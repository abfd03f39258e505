"""What was sent to the vendor's endpoints, and sending it again: the delivery log, redelivery, the test event.

Every delivery is a row and every attempt of it another (delivery.py writes them), so the log answers
"did my endpoint get event X, when, and what did it answer". A redelivery is a new delivery of the same
event to the same endpoint (`redelivery` one higher), due at once, with the event's own `webhook-id`:
a receiver that did get it the first time recognizes it. The test event is a real event of the log
(type `webhook.test`) with a delivery to the one endpoint it was asked for; the dispatcher never fans it
out and the events API does not list it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select

from extensions import db
from models.base import utcnow
from models.event import Event
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.platform import audit, events
from services.platform.event_types import TEST_EVENT

OUTCOMES = {"succeeded": ("succeeded",), "failed": ("failed",), "pending": ("pending", "sending")}
MAX_LIMIT = 200


def list_deliveries(*, endpoint_id: int | None = None, event_type: str | None = None, outcome: str | None = None,
                    organization_id: int | None = None, after_id: int | None = None,
                    limit: int = 50) -> list[WebhookDelivery]:
    """Return deliveries newest first; after_id is the last id of the previous page (older ones follow).

    outcome is "succeeded", "failed" or "pending" (waiting for an attempt, or being sent);
    organization_id keeps the deliveries of that organization's events.
    :raises ValueError: an unknown outcome.
    """
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if event_type:
        query = query.where(WebhookDelivery.event_type == event_type)
    if outcome:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        query = query.where(WebhookDelivery.status.in_(OUTCOMES[outcome]))
    if organization_id is not None:
        query = query.where(WebhookDelivery.event_id.in_(
            select(Event.id).where(Event.organization_id == organization_id)))
    if after_id is not None:
        query = query.where(WebhookDelivery.id < after_id)
    return list(db.session.scalars(query))


def attempts_of(delivery: WebhookDelivery) -> list[WebhookAttempt]:
    """Return the delivery's attempts, first to last."""
    return attempts_of_each([delivery])[delivery.id]


def attempts_of_each(deliveries) -> dict[int, list[WebhookAttempt]]:
    """Return each delivery's attempts, first to last, read in one statement (a page of the log)."""
    found: dict[int, list[WebhookAttempt]] = {delivery.id: [] for delivery in deliveries}
    if found:
        for attempt in db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(found)))
                                          .order_by(WebhookAttempt.id)):
            found[attempt.delivery_id].append(attempt)
    return found


def _next_redelivery(endpoint_id: int, event_id: int) -> int:
    highest = db.session.scalar(select(func.max(WebhookDelivery.redelivery))
                                .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.event_id == event_id))
    return 0 if highest is None else highest + 1


def _audit(action: str, endpoint: WebhookEndpoint, actor, details: dict) -> None:
    """Audit a person's or an API key's request (a key is named by its prefix, never by the user table)."""
    if actor is not None and hasattr(actor, "prefix") and not hasattr(actor, "email"):
        details, actor = {**details, "via": "api", "api_key": actor.prefix}, None
    audit.record(action, actor=actor, organization=endpoint.organization, target=endpoint,
                 details={"url": endpoint.url, **details})


def redeliver(delivery: WebhookDelivery, *, actor=None) -> WebhookDelivery:
    """Deliver the delivery's event to its endpoint again, from the first attempt, now (flushes).

    An endpoint that is disabled keeps the new delivery too: it fails at once, saying so.
    """
    now = utcnow()
    again = WebhookDelivery(endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
                            event_type=delivery.event_type,
                            redelivery=_next_redelivery(delivery.endpoint_id, delivery.event_id),
                            status="pending", attempt_count=0, next_attempt_at=now, created_at=now)
    db.session.add(again)
    db.session.flush()
    _audit("webhook_delivery.redelivered", delivery.endpoint, actor,
           {"delivery": str(delivery.id), "event": str(delivery.event_id), "redelivery": again.redelivery})
    return again


def redeliver_failed_since(endpoint: WebhookEndpoint, since: datetime, *, actor=None) -> int:
    """Redeliver every event whose latest delivery to the endpoint failed and was created since `since` (flushes).

    Returns how many; an event already redelivered (pending or succeeded since) is not sent once more.
    """
    latest = (select(WebhookDelivery.event_id, func.max(WebhookDelivery.redelivery).label("redelivery"))
              .where(WebhookDelivery.endpoint_id == endpoint.id).group_by(WebhookDelivery.event_id).subquery())
    failed = db.session.execute(
        select(WebhookDelivery.event_id, WebhookDelivery.event_type, WebhookDelivery.redelivery)
        .join(latest, (latest.c.event_id == WebhookDelivery.event_id)
              & (latest.c.redelivery == WebhookDelivery.redelivery))
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "failed",
               WebhookDelivery.created_at >= since)
        .order_by(WebhookDelivery.event_id)).all()
    now = utcnow()
    rows = [{"endpoint_id": endpoint.id, "event_id": row.event_id, "event_type": row.event_type,
             "redelivery": row.redelivery + 1, "status": "pending", "attempt_count": 0, "next_attempt_at": now,
             "created_at": now} for row in failed]
    if rows:
        db.session.execute(insert(WebhookDelivery), rows)
    _audit("webhook_deliveries.redelivered", endpoint, actor, {"since": since.isoformat(), "count": len(rows)})
    return len(rows)


def send_test_event(endpoint: WebhookEndpoint, *, actor=None) -> WebhookDelivery:
    """Write a `webhook.test` event and deliver it to this endpoint only, now (flushes).

    The event is added directly rather than through the event writer, because it needs its id at once;
    it holds the writer's order lock all the same, so that its id follows commit order like every other.
    """
    events.hold_order(db.session.connection())
    now = utcnow()
    event = Event(type=TEST_EVENT, organization_id=endpoint.organization_id, subject_type="webhook_endpoint",
                  subject_id=endpoint.id, subject_external_id=None, created_at=now,
                  data={"id": str(endpoint.id), "url": endpoint.url, "description": endpoint.description,
                        "message": "A test event sent from the console's webhook settings."})
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type=TEST_EVENT, redelivery=0,
                               status="pending", attempt_count=0, next_attempt_at=now, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    _audit("webhook_endpoint.test_sent", endpoint, actor, {"event": str(event.id)})
    return delivery
