"""A consent that puts a different service account on an existing connection: the old one is revoked upstream.

One connection holds one service account. When a reconnect (or a second consent for a domain that
is already connected) comes back with another `ser_` id, the connection takes the new one and the
old authorization is given back to Cronofy with `POST /oauth/token/revoke` (§3.7.1), by its refresh
token, or by its `sub` when the token is gone. The revocation happens after the new tokens are
committed, so a failure can never leave the connection without a working service account; it is
audited either way and the page says which.

The same `ser_` id coming back is never revoked: revoking it would end the authorization the
connection has just stored (§3.7.1, §9).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from extensions import db
from models.connection import Connection
from services.cronofy import CronofyError, UnavailableError
from services.platform import audit, upstream
from services.platform.crypto import TokenDecryptionError, cipher_for

log = logging.getLogger(__name__)

# Statuses whose service account may still be live upstream (a disconnect already revoked the rest).
LIVE_STATUSES = ("active", "needs_reauth", "pending")


@dataclass(frozen=True)
class ReplacedServiceAccount:
    """The service account a connection held before a consent replaced it, and how to revoke it."""

    service_account_id: str
    data_center: str
    refresh_token: str | None = field(default=None, repr=False)  # in clear, only on its way to the revoke


@dataclass(frozen=True)
class RevocationResult:
    """What happened to a replaced service account upstream."""

    service_account_id: str
    revoked: bool
    reason: str | None = None


def replaced_service_account(
    connection: Connection, new_service_account_id: str | None
) -> ReplacedServiceAccount | None:
    """Return what connection holds now if a consent for new_service_account_id replaces it, else None.

    Call it before the new tokens are written over the old ones.
    """
    old = connection.service_account_id
    if not old or not new_service_account_id or old == new_service_account_id:
        return None
    if connection.id is None or connection.status not in LIVE_STATUSES:
        return None
    return ReplacedServiceAccount(service_account_id=old, data_center=connection.data_center,
                                  refresh_token=_stored_refresh_token(connection))


def _stored_refresh_token(connection: Connection) -> str | None:
    if not connection.refresh_token_encrypted:
        return None
    try:
        return cipher_for(current_app.config).decrypt(connection.refresh_token_encrypted)
    except TokenDecryptionError:
        return None  # revoked by its sub instead


def is_in_use(service_account_id: str | None) -> bool:
    """Tell whether a connection still relies on this service account (so it must not be revoked)."""
    if not service_account_id:
        return False
    return db.session.scalar(
        select(Connection.id).where(Connection.service_account_id == service_account_id,
                                    Connection.status.in_(LIVE_STATUSES)).limit(1)
    ) is not None


def revoke_replaced(connection: Connection, replaced: ReplacedServiceAccount, *, actor=None) -> RevocationResult:
    """Revoke the replaced service account upstream and audit the result; the caller commits.

    Never raises for an upstream failure: the result says it was not revoked, and why.
    """
    details = {"service_account_id": replaced.service_account_id, "replaced_by": connection.service_account_id,
               "domain": connection.domain}
    if is_in_use(replaced.service_account_id):
        result = RevocationResult(replaced.service_account_id, False, "another connection still uses it")
    else:
        result = _revoke(replaced)
    action = "connection.service_account_revoked" if result.revoked else "connection.service_account_revoke_failed"
    if result.reason:
        details["reason"] = result.reason
    audit.record(action, actor=actor, organization=connection.organization, target=connection, details=details)
    db.session.flush()
    return result


def _revoke(replaced: ReplacedServiceAccount) -> RevocationResult:
    target = ({"token": replaced.refresh_token} if replaced.refresh_token
              else {"sub": replaced.service_account_id})  # §3.7.1: `sub` for a ser_ id is inferred
    try:
        upstream.client_for(replaced.data_center).revoke(**target)
    except upstream.UpstreamConfigError as exc:
        return RevocationResult(replaced.service_account_id, False, str(exc))
    except CronofyError as exc:
        log.warning("could not revoke replaced service account %s: %s", replaced.service_account_id,
                    exc.error_key or type(exc).__name__)
        reason = ("Cronofy could not be reached or did not answer in time" if isinstance(exc, UnavailableError)
                  else exc.description or exc.error_key or f"HTTP {exc.status}")
        return RevocationResult(replaced.service_account_id, False, reason)
    return RevocationResult(replaced.service_account_id, True)


def authorizations_page(data_center: str) -> str | None:
    """Return Cronofy's page where a domain admin sees and removes authorizations (§1), if known."""
    try:
        return f"{upstream.upstream(data_center).app_url}/enterprise_connect/authorizations"
    except upstream.UpstreamConfigError:
        return None
