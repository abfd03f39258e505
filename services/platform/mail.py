"""Outgoing email: queue a message in the caller's transaction, send it from a worker after the commit.

`queue()` renders the message from `templates/email/`, stores it as an `OutgoingEmail` row (status
queued) with its body Fernet-encrypted, and notes its id on the session; `jobs.mail` enqueues the
noted ids once the caller commits (style rule 5), so nothing is sent for a transaction that rolls back.
The worker `claim()`s the row, hands it to `mail_delivery.send()` (SMTP when MAIL_SERVER is set, else
the outbox folder) and `record()`s the outcome. A failed message keeps its reason and can be
`retry()`d. The body is a secret (it carries a link with a token): once a mail server has accepted it,
it is erased; only messages in the development outbox keep it, for support's Outbox page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from extensions import db
from models.base import utcnow
from models.invitation import Invitation
from models.onboarding import SetupLink
from models.outgoing_email import FAILED, OUTBOX, PASSWORD_RESET, QUEUED, SENT, SMTP, OutgoingEmail
from models.user import User
from services.platform import audit
from services.platform.crypto import cipher_for
from services.platform.mail_delivery import Delivery, Message

PAGE_SIZE = 25
MAX_SUBJECT_LENGTH = 200
MAX_REASON_LENGTH = 500
# A message claimed longer ago than this by a worker that never reported back (killed) may be claimed
# again; one still queued this long after it was queued was never picked up: both may be retried.
SENDING_GIVE_UP = STUCK_AFTER = timedelta(minutes=5)
_PENDING_KEY = "mail.pending_ids"


class MailError(ValueError):
    """A message cannot be retried; the message is fit to show."""


@dataclass(frozen=True)
class OutboxPage:
    rows: list[OutgoingEmail]
    page: int
    pages: int
    total: int


def queue(*, to: str, subject: str, template: str, context: dict, purpose: str, organization=None,
          invitation=None, user=None, setup_link=None, actor=None) -> OutgoingEmail:
    """Add a queued message rendered from templates/email/<template>.txt; it is sent after the commit."""
    # The app's filters, none of the page context processors: a message is rendered outside any request.
    body = current_app.jinja_env.get_template(f"email/{template}.txt").render(**context)
    email = OutgoingEmail(
        organization_id=getattr(organization, "id", None), purpose=purpose, to_address=to,
        subject=subject[:MAX_SUBJECT_LENGTH], body_encrypted=cipher_for(current_app.config).encrypt(body),
        status=QUEUED, attempts=0, queued_at=utcnow(), invitation_id=getattr(invitation, "id", None),
        user_id=getattr(user, "id", None), setup_link_id=getattr(setup_link, "id", None),
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(email)
    db.session.flush()
    _note_pending(email.id)
    return email


def _note_pending(email_id: int) -> None:
    db.session.info.setdefault(_PENDING_KEY, []).append(email_id)


def take_pending(session) -> list[int]:
    """Return and forget the ids of messages queued in session's transaction (after it commits)."""
    return session.info.pop(_PENDING_KEY, [])


def forget_pending(session) -> None:
    """Drop the ids noted in a transaction that rolled back: their rows are gone."""
    session.info.pop(_PENDING_KEY, None)


def claim(email_id: int) -> Message | None:
    """Mark a queued message as being sent (a conditional UPDATE) and return it; None if it is not queued.

    Two jobs for one message (a double retry) cannot both send it: only one claim succeeds.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(OutgoingEmail)
        .where(OutgoingEmail.id == email_id, OutgoingEmail.status == QUEUED,
               or_(OutgoingEmail.sending_since.is_(None), OutgoingEmail.sending_since < now - SENDING_GIVE_UP))
        .values(sending_since=now, last_attempt_at=now, attempts=OutgoingEmail.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    email = db.session.get(OutgoingEmail, email_id)
    db.session.refresh(email)
    if not email.body_encrypted:
        record(email_id, Delivery(transport=None, error="The message's text is no longer stored; create a new one."))
        return None
    body = cipher_for(current_app.config).decrypt(email.body_encrypted)
    return Message(id=email.id, to=email.to_address, subject=email.subject, body=body)


def record(email_id: int, delivery: Delivery) -> None:
    """Store the outcome of a send: sent (the body erased once a mail server has it) or failed with its reason."""
    email = db.session.get(OutgoingEmail, email_id)
    if email is None:
        return
    email.sending_since = None
    email.transport = delivery.transport or email.transport
    if delivery.error is None:
        email.status, email.sent_at, email.failure_reason = SENT, utcnow(), None
        if delivery.transport == SMTP:
            email.body_encrypted = None
    else:
        email.status, email.failed_at = FAILED, utcnow()
        email.failure_reason = delivery.error[:MAX_REASON_LENGTH]
    db.session.flush()


def retry_problem(email: OutgoingEmail) -> str | None:
    """Return why email cannot be sent again, or None if it can (failed, or queued but never picked up)."""
    if email.status == SENT:
        return "This message was already sent."
    if email.status == QUEUED and (email.sending_since or email.queued_at) > utcnow() - STUCK_AFTER:
        return "This message is still waiting to be sent."
    if not email.body_encrypted:
        return "The message's text is no longer stored; create a new one."
    return _source_problem(email)


def _source_problem(email: OutgoingEmail) -> str | None:
    """Return why the link in the message no longer works, if it does not."""
    if email.invitation_id is not None:
        status = db.session.get(Invitation, email.invitation_id).status
        if status != "pending":
            return f"The invitation is {status}: its link no longer works. Invite them again instead."
    if email.setup_link_id is not None:
        status = db.session.get(SetupLink, email.setup_link_id).status
        if status != "pending":
            return f"The setup link is {status}: it no longer works. Create a new one instead."
    if email.purpose == PASSWORD_RESET and email.user_id is not None:
        if not db.session.get(User, email.user_id).is_active:
            return "The account is deactivated: reactivate it, then send a new reset link."
    return None


def can_retry(email: OutgoingEmail) -> bool:
    """Return whether a Retry button makes sense for email."""
    return retry_problem(email) is None


def retry(email: OutgoingEmail, *, actor) -> None:
    """Queue a failed (or never picked up) message again; it is sent after the commit.

    :raises MailError: if it was sent, is being sent, or its link no longer works.
    """
    problem = retry_problem(email)
    if problem is not None:
        raise MailError(problem)
    email.status, email.queued_at, email.sending_since = QUEUED, utcnow(), None
    db.session.flush()
    _note_pending(email.id)
    audit.record("email.retried", actor=actor, organization=email.organization, target=email,
                 details={"to": email.to_address, "purpose": email.purpose, "failure_reason": email.failure_reason})


def latest_for_invitations(invitation_ids: list[int]) -> dict[int, OutgoingEmail]:
    """Return the newest message of each of these invitations, by invitation id."""
    if not invitation_ids:
        return {}
    rows = db.session.scalars(
        select(OutgoingEmail).where(OutgoingEmail.invitation_id.in_(invitation_ids)).order_by(OutgoingEmail.id)
    )
    return {row.invitation_id: row for row in rows}


def outbox_page(page: int = 1, per_page: int = PAGE_SIZE) -> OutboxPage:
    """Return one page of every message, newest first; pages past the end show the last one."""
    total = db.session.scalar(select(db.func.count(OutgoingEmail.id))) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = list(db.session.scalars(
        select(OutgoingEmail).order_by(OutgoingEmail.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ))
    return OutboxPage(rows=rows, page=page, pages=pages, total=total)


def readable_body(email: OutgoingEmail) -> str | None:
    """Return the text of a message support may read: one in the outbox folder (no mail server configured).

    A message meant for a mail server is never shown: its link belongs to the recipient alone.
    """
    in_outbox = email.transport == OUTBOX or (email.transport is None and not current_app.config.get("MAIL_SERVER"))
    if not in_outbox or not email.body_encrypted:
        return None
    return cipher_for(current_app.config).decrypt(email.body_encrypted)
