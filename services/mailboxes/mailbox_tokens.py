"""Fresh access tokens for authorized mailboxes, refreshed lazily and one at a time per mailbox.

Refreshing every token on a schedule would spend the application's shared budget for nothing
(design.md "Hard facts"); a token is refreshed only when someone needs it and it is near expiry.
Refresh tokens may rotate on every use (§3.6), so the new one is always stored, and a row lease
makes sure two processes never refresh the same mailbox at once (the loser would hold a dead token).

A token handed out through the API is read with one prebuilt statement (`token_row`) while it is fresh:
the lease is taken only for a token that must be refreshed. Issuances are counted on their mailboxes
(`token_fetched_at`, `token_fetched_by`, `token_fetch_count`) in batches: each process adds them up in
memory and folds them into the database at most ISSUANCE_FOLD_SECONDS later (and when it exits), so a
busy endpoint does not commit once per answer. A process killed outright loses what it had not folded.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import Integer, bindparam, case, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.cronofy import CronofyError, InvalidGrantError
from services.mailboxes.mailbox_states import can_transition, transition
from services.platform import leases, rate_budget, statements, upstream
from services.platform.crypto import cipher_for

log = logging.getLogger(__name__)
REFRESH_MARGIN = timedelta(minutes=2)
LEASE_SECONDS = 30
WAIT_SECONDS = 20
ISSUANCE_FOLD_SECONDS = 1.0


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


@dataclass(frozen=True)
class TokenRow:
    """What the API needs of a mailbox to hand out its token, read in one statement."""

    organization_id: int
    status: str
    refreshable: bool
    access_token_encrypted: str | None
    access_token_expires_at: datetime | None
    granted_scope: str | None
    account_id: str | None
    profile_id: str | None
    data_center: str


_TOKEN_ROW = (
    select(Mailbox.organization_id, Mailbox.status, Mailbox.refresh_token_encrypted.is_not(None)
           & (Mailbox.refresh_token_encrypted != ""), Mailbox.access_token_encrypted, Mailbox.access_token_expires_at,
           Mailbox.granted_scope, Mailbox.account_id, Mailbox.profile_id,
           func.coalesce(Connection.data_center, Organization.data_center))
    .join(Organization, Organization.id == Mailbox.organization_id)
    .outerjoin(Connection, Connection.id == Mailbox.connection_id)
    .where(Mailbox.id == bindparam("p_id"))
)


def token_row(mailbox_id: int) -> TokenRow | None:
    """Return the mailbox's organization, status, stored token and its details (one statement), None if none."""
    row = statements.execute(_TOKEN_ROW, {"p_id": mailbox_id}).first()
    return TokenRow(*row) if row is not None else None


def stored_token(row: TokenRow, *, margin: timedelta = REFRESH_MARGIN) -> str | None:
    """Return the stored access token if the mailbox is authorized and it stays valid beyond margin, else None
    (then `fresh_mailbox_token` refreshes it, or says why it cannot)."""
    expires = row.access_token_expires_at
    if row.status != "authorized" or not row.refreshable or not row.access_token_encrypted:
        return None
    if expires is not None and expires - margin <= utcnow():
        return None
    return cipher_for(current_app.config).decrypt(row.access_token_encrypted)


class _Issuances:
    """Tokens this process handed out and has not yet counted on their mailboxes, per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Flask, dict[int, list]] = {}
        self._timer: threading.Timer | None = None

    def add(self, app: Flask, mailbox_id: int, prefix: str | None) -> None:
        with self._lock:
            counts = self._pending.setdefault(app, {})
            entry = counts.setdefault(mailbox_id, [0, None, None])
            entry[0], entry[1], entry[2] = entry[0] + 1, utcnow(), prefix
            if self._timer is None:
                self._timer = threading.Timer(ISSUANCE_FOLD_SECONDS, self.fold_all)
                self._timer.daemon = True
                self._timer.start()

    def take(self, app: Flask) -> dict[int, list]:
        with self._lock:
            return self._pending.pop(app, {})

    def put_back(self, app: Flask, counts: dict[int, list]) -> None:
        with self._lock:
            pending = self._pending.setdefault(app, {})
            for mailbox_id, (count, at, prefix) in counts.items():
                entry = pending.setdefault(mailbox_id, [0, at, prefix])
                entry[0] += count

    def fold_all(self) -> None:
        """Write every app's pending counts (the timer's and the process's exit's work)."""
        with self._lock:
            self._timer = None
            apps = list(self._pending)
        for app in apps:
            with app.app_context():
                try:
                    fold_issuances()
                except SQLAlchemyError as exc:  # kept in memory: the next issuance's timer tries again
                    log.warning("could not count handed-out tokens on their mailboxes yet (%s)", type(exc).__name__)
                finally:
                    db.session.remove()


_issuances = _Issuances()
atexit.register(_issuances.fold_all)
_mailboxes = Mailbox.__table__
_at = bindparam("p_at", type_=_mailboxes.c.token_fetched_at.type)
_newer_stored = _mailboxes.c.token_fetched_at > _at
# One statement per mailbox: add the count; keep the latest time and key (another process may fold later).
_FOLD = (
    update(_mailboxes)
    .where(_mailboxes.c.id == bindparam("p_id"))
    .values(token_fetch_count=_mailboxes.c.token_fetch_count + bindparam("p_count", type_=Integer()),
            token_fetched_at=case((_newer_stored, _mailboxes.c.token_fetched_at), else_=_at),
            token_fetched_by=case((_newer_stored, _mailboxes.c.token_fetched_by),
                                  else_=bindparam("p_by", type_=_mailboxes.c.token_fetched_by.type)))
)


def record_issuance(mailbox_id: int, api_key_prefix: str | None) -> None:
    """Count a token handed out through the API on its mailbox: when, and to which key (never the token).

    The count reaches the database within ISSUANCE_FOLD_SECONDS (`fold_issuances`), not in this transaction.
    """
    _issuances.add(current_app._get_current_object(), mailbox_id, api_key_prefix)


def fold_issuances() -> int:
    """Write the issuances this process counted for the current app into their mailboxes and commit; return
    how many mailboxes changed. Uses a transaction of its own: the caller's session is left alone."""
    app = current_app._get_current_object()
    counts = _issuances.take(app)
    if not counts:
        return 0
    rows = [{"p_id": mailbox_id, "p_count": count, "p_at": at, "p_by": prefix}
            for mailbox_id, (count, at, prefix) in sorted(counts.items())]
    try:
        with db.engine.begin() as connection:
            connection.execute(_FOLD, rows)
    except Exception:
        _issuances.put_back(app, counts)
        raise
    return len(rows)


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
