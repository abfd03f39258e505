"""Sending email from the worker, enqueued once the transaction that queued the message has committed.

`services.platform.mail.queue()` (and `retry()`) note the message's id on the database session;
`send_after_commit(session)` (registered by the app factory) enqueues `send_email(id)` for each of them
after the commit, and forgets them on a rollback. Every caller — a view, a job, a CLI command —
thus sends its email after its commit without having to remember to (style rule 5). The factory's
import of this module also registers `send_email` with the queue for `flask worker`.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import event

from extensions import db
from jobs.queue import PRIORITY_INTERACTIVE, bind, huey
from jobs.tasks import in_app_context
from services.platform import mail, mail_delivery

log = logging.getLogger(__name__)


@huey.task(priority=PRIORITY_INTERACTIVE, name="send_email")
@in_app_context
def send_email(email_id: int) -> None:
    """Send one queued message and record whether the server took it (or why not)."""
    message = mail.claim(email_id)
    db.session.commit()
    if message is None:
        return
    delivery = mail_delivery.send(message)
    mail.record(email_id, delivery)
    db.session.commit()
    if delivery.error:
        log.warning("Email %s (%s) was not sent: %s", email_id, delivery.transport, delivery.error)


def enqueue_email(email_id: int) -> None:
    """Ask a worker to send a committed message; a lost enqueue leaves it queued, to be retried from the pages."""
    try:
        bind(current_app.config)
        send_email(email_id)
    except Exception:  # noqa: BLE001 - the row is committed; the Outbox and admins pages offer a retry
        log.exception("Could not enqueue email %s; it stays queued and can be retried", email_id)


def _after_commit(session) -> None:
    for email_id in mail.take_pending(session):
        enqueue_email(email_id)


def _after_rollback(session) -> None:
    mail.forget_pending(session)


def send_after_commit(scoped_session) -> None:
    """Enqueue the messages each transaction of this session queued, once it commits (registered once)."""
    if not event.contains(scoped_session, "after_commit", _after_commit):
        event.listen(scoped_session, "after_commit", _after_commit)
        event.listen(scoped_session, "after_rollback", _after_rollback)
