"""Fresh access tokens for authorized mailboxes, refreshed lazily and one at a time per mailbox.

Refreshing every token on a schedule would spend the application's shared budget for nothing
(design.md "Hard facts"); a token is refreshed only when someone needs it and it is near expiry.
Refresh tokens may rotate on every use (§3.6), so the new one is always stored, and a row lease
makes sure two processes never refresh the same mailbox at once (the loser would hold a dead token).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.cronofy import CronofyError, InvalidGrantError
from services.mailboxes.mailbox_states import can_transition, transition
from services.platform import leases, rate_budget, upstream
from services.platform.crypto import cipher_for

REFRESH_MARGIN = timedelta(minutes=2)
LEASE_SECONDS = 30
WAIT_SECONDS = 20


class MailboxTokenError(RuntimeError):
    """No usable token for the mailbox; the message says why, fit to show."""


def _is_fresh(mailbox: Mailbox, margin: timedelta = REFRESH_MARGIN) -> bool:
    expires = mailbox.access_token_expires_at
    return bool(mailbox.access_token_encrypted) and (expires is None or expires - margin > utcnow())


def fresh_mailbox_token(mailbox_id: int, *, margin: timedelta = REFRESH_MARGIN) -> str:
    """Return a usable access token for an authorized mailbox, refreshing it first when it expires within margin.

    Commits its own short transactions (the lease must be visible to other processes).
    :raises MailboxTokenError: not authorized, Cronofy refused the refresh (mailbox marked
        needs_attention), or another process kept refreshing for too long.
    """
    def ready() -> str | None:
        mailbox = db.session.get(Mailbox, mailbox_id, populate_existing=True)
        if mailbox is None or mailbox.status != "authorized" or not mailbox.refresh_token_encrypted:
            raise MailboxTokenError("This mailbox is not authorized.")
        fresh = _is_fresh(mailbox, margin)
        return cipher_for(current_app.config).decrypt(mailbox.access_token_encrypted) if fresh else None

    try:
        token = leases.wait_turn(Mailbox, mailbox_id, "refresh_lease_until", LEASE_SECONDS,
                                 ready=ready, wait=WAIT_SECONDS, poll=0.1)
    except leases.LeaseBusy:
        raise MailboxTokenError("Another process is refreshing this mailbox's token; try again shortly.") from None
    return token if token is not None else _refresh(mailbox_id)


def _refresh(mailbox_id: int) -> str:
    mailbox = db.session.get(Mailbox, mailbox_id, populate_existing=True)
    cipher = cipher_for(current_app.config)
    data_center = mailbox.connection.data_center if mailbox.connection else mailbox.organization.data_center
    try:
        rate_budget.budget().acquire(timeout=rate_budget.BUDGET_WAIT)
        tokens = upstream.client_for(data_center).refresh_access_token(cipher.decrypt(mailbox.refresh_token_encrypted))
    except InvalidGrantError as exc:
        _needs_attention(mailbox)
        raise MailboxTokenError("Cronofy no longer accepts this mailbox's authorization; authorize it again.") from exc
    except (CronofyError, TimeoutError) as exc:
        _release(mailbox)
        raise MailboxTokenError(f"Could not refresh the mailbox's token: {exc}") from exc
    mailbox.access_token_encrypted = cipher.encrypt(tokens.access_token)
    mailbox.refresh_token_encrypted = cipher.encrypt(tokens.refresh_token or "")
    mailbox.access_token_expires_at = tokens.expires_at
    _release(mailbox)
    return tokens.access_token


def token_details(mailbox_id: int):
    """What goes with a handed-out token: its expiry, scope, account and profile, and the data center."""
    data_center = func.coalesce(Connection.data_center, Organization.data_center).label("data_center")
    return db.session.execute(
        select(Mailbox.access_token_expires_at, Mailbox.granted_scope, Mailbox.account_id, Mailbox.profile_id,
               data_center)
        .join(Organization, Organization.id == Mailbox.organization_id)
        .outerjoin(Connection, Connection.id == Mailbox.connection_id)
        .where(Mailbox.id == mailbox_id)).one()


def record_issuance(mailbox_id: int, api_key_prefix: str | None) -> None:
    """Count a token handed out through the API on its mailbox: when, and to which key (never the token)."""
    db.session.execute(update(Mailbox).where(Mailbox.id == mailbox_id).values(
        token_fetched_at=utcnow(), token_fetched_by=api_key_prefix, token_fetch_count=Mailbox.token_fetch_count + 1))


def _needs_attention(mailbox: Mailbox) -> None:
    if can_transition(mailbox.status, "needs_attention"):
        transition(mailbox, "needs_attention", kind="token_refresh_failed", error_key="invalid_grant",
                   error_description="Cronofy refused to refresh the token: the authorization was revoked or lapsed. "
                                     "Authorize the mailbox again.",
                   summary="Token refresh refused by Cronofy")
    _release(mailbox)


def _release(mailbox: Mailbox) -> None:
    mailbox.refresh_lease_until = None
    db.session.commit()
