"""The mailbox state machine: the one place a mailbox's status changes, always with a timeline event.

States (docs: design.md "States"): new → queued → requested → authorized; or failed (with the
upstream's error key and the words to show); needs_attention (a token refresh failed, the profile
disconnected); revoked.
"""

from __future__ import annotations

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox, MailboxEvent
from services.platform import events

ALLOWED = {
    "new": {"queued", "requested", "revoked"},
    # Back to needs_attention when a run is cancelled before sending it (the prior status is restored).
    "queued": {"requested", "new", "failed", "revoked", "needs_attention"},
    "requested": {"authorized", "failed", "queued", "revoked"},
    "authorized": {"revoked", "needs_attention", "queued"},
    "failed": {"queued", "new", "revoked", "authorized"},
    "needs_attention": {"queued", "authorized", "revoked", "failed"},
    "revoked": {"queued", "new"},
}


# The statuses the vendor hears about (the event log, webhooks); queued and requested are the engine's own steps.
ANNOUNCED = {"authorized": "mailbox.authorized", "failed": "mailbox.failed",
             "needs_attention": "mailbox.needs_attention", "revoked": "mailbox.revoked"}


class TransitionError(ValueError):
    """A status change the state machine does not allow."""


def can_transition(current: str, target: str) -> bool:
    """Return whether a mailbox in `current` may move to `target`."""
    return target in ALLOWED.get(current, set())


def transition(
    mailbox: Mailbox,
    to_status: str,
    *,
    kind: str,
    summary: str = "",
    actor=None,
    state: str | None = None,
    details: dict | None = None,
    error_key: str | None = None,
    error_description: str | None = None,
    announce: bool = True,
) -> MailboxEvent:
    """Move mailbox to to_status and add the timeline event (and the event log's, for ANNOUNCED statuses).

    `announce=False` is for putting back a status the vendor already heard of (a cancelled run restores
    the status its mailboxes had before it queued them), so that it is not announced twice.
    :raises TransitionError: if not allowed.
    """
    from_status = mailbox.status
    if not can_transition(from_status, to_status):
        raise TransitionError(f"a mailbox cannot go from {from_status} to {to_status}")
    for name, value in status_values(to_status, utcnow(), error_key=error_key,
                                     error_description=error_description).items():
        setattr(mailbox, name, value)
    timeline_event = record_event(
        mailbox, kind, summary=summary, actor=actor, state=state, details=details,
        from_status=from_status, to_status=to_status,
    )
    if announce and to_status in ANNOUNCED:
        events.record(ANNOUNCED[to_status], organization_id=mailbox.organization_id, subject_type="mailbox",
                      subject_id=mailbox.id)
    return timeline_event


def status_values(to_status: str, now, *, error_key: str | None = None,
                  error_description: str | None = None) -> dict:
    """Return the mailbox columns a move to to_status sets (for transition() and for bulk UPDATEs)."""
    values = {"status": to_status, "status_changed_at": now}
    if to_status == "requested":
        values["requested_at"] = now
    elif to_status == "authorized":
        values["authorized_at"] = now
    if to_status in ("failed", "needs_attention"):
        values.update(last_error_key=error_key, last_error_description=error_description)
    elif to_status in ("authorized", "queued", "new"):
        values.update(last_error_key=None, last_error_description=None)
    return values


def event_row(mailbox_id: int, organization_id: int, kind: str, now, *, from_status=None, to_status=None,
              state=None, summary: str = "", details: dict | None = None, actor_id=None) -> dict:
    """Return a timeline event as a row for a bulk INSERT into mailbox_events."""
    return {"mailbox_id": mailbox_id, "organization_id": organization_id, "kind": kind, "from_status": from_status,
            "to_status": to_status, "actor_id": actor_id, "state": state, "summary": summary,
            "details": details or {}, "created_at": now}


def record_event(
    mailbox: Mailbox,
    kind: str,
    *,
    summary: str = "",
    actor=None,
    state: str | None = None,
    details: dict | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> MailboxEvent:
    """Add a timeline event that does not change the status (imported, callback received, ...)."""
    event = MailboxEvent(**event_row(
        mailbox.id, mailbox.organization_id, kind, utcnow(), from_status=from_status, to_status=to_status,
        state=state, summary=summary, details=details, actor_id=getattr(actor, "id", None),
    ))
    db.session.add(event)
    return event


def timeline(mailbox: Mailbox, *, limit: int = 200) -> list[MailboxEvent]:
    """Return the mailbox's events, newest first."""
    return list(
        db.session.scalars(
            db.select(MailboxEvent)
            .where(MailboxEvent.mailbox_id == mailbox.id)
            .order_by(MailboxEvent.created_at.desc(), MailboxEvent.id.desc())
            .limit(limit)
        )
    )
