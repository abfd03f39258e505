"""Connections: storing what the consent flow returned, keeping tokens fresh, disconnecting.

Tokens are encrypted with the configured keys before they touch the session; plaintext tokens only
live in local variables on their way to the upstream client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.organization import Organization
from services.cronofy import CronofyError, InvalidGrantError, TokenSet, UnavailableError, UserInfo
from services.connections.replacement import ReplacedServiceAccount, replaced_service_account
from services.platform import audit, events, leases, upstream
from services.platform.crypto import TokenDecryptionError, cipher_for

log = logging.getLogger(__name__)

# Refresh this long before the upstream's expiry, so a token never dies in flight.
REFRESH_MARGIN = timedelta(minutes=2)
REFRESH_LEASE_SECONDS = 30
REFRESH_WAIT_SECONDS = 45


class ConnectionActionError(RuntimeError):
    """A connection action failed; the message says what happened and what to do."""


class ReauthorizationNeeded(ConnectionActionError):
    """The service account's authorization is gone; an admin must reconnect."""


@dataclass(frozen=True)
class ConnectionOutcome:
    connection: Connection
    created: bool
    missing_scopes: tuple[str, ...]
    missing_delegated_scopes: tuple[str, ...]
    # The service account this consent replaced on the connection: the caller revokes it after committing.
    replaced: ReplacedServiceAccount | None = None

    @property
    def is_narrower(self) -> bool:
        """Whether the upstream granted less than was asked for."""
        return bool(self.missing_scopes or self.missing_delegated_scopes)


def list_for(organization: Organization) -> list[Connection]:
    """Return the organization's connections, active ones first."""
    order = {"active": 0, "needs_reauth": 1, "pending": 2, "revoked": 3}
    rows = db.session.scalars(select(Connection).where(Connection.organization_id == organization.id))
    return sorted(rows, key=lambda c: (order.get(c.status, 9), c.domain or "", c.id))


def _missing(requested: str, granted: str | None) -> tuple[str, ...]:
    if granted is None:
        return ()
    have = set(granted.split())
    return tuple(s for s in requested.split() if s not in have)


def _store_tokens(connection: Connection, tokens: TokenSet) -> None:
    cipher = cipher_for(current_app.config)
    connection.access_token_encrypted = cipher.encrypt(tokens.access_token)
    if tokens.refresh_token:
        connection.refresh_token_encrypted = cipher.encrypt(tokens.refresh_token)
    connection.access_token_expires_at = tokens.expires_at
    connection.last_refreshed_at = utcnow()


def _find_existing(organization: Organization, service_account_id: str | None, domain: str | None = None):
    """Return the organization's connection for this service account, else a live one for the domain.

    Whether a second consent for the same domain yields the same `ser_` id is undocumented
    (docs/cronofy-api.md §9), so the domain is the fallback key: one live connection per domain.
    """
    scoped = select(Connection).where(Connection.organization_id == organization.id)
    if service_account_id:
        found = db.session.scalar(scoped.where(Connection.service_account_id == service_account_id))
        if found is not None:
            return found
    if domain:
        return db.session.scalar(
            scoped.where(Connection.domain == domain, Connection.status != "revoked").order_by(Connection.id)
        )
    return None


def _apply(connection: Connection, *, tokens, info, provider, data_center, scope, delegated, actor) -> None:
    connection.status = "active"
    connection.provider = provider
    connection.data_center = data_center
    connection.domain = info.domain or connection.domain
    connection.service_account_email = info.email or connection.service_account_email
    connection.upstream_provider_name = info.provider_name
    connection.requested_scope = scope
    connection.requested_delegated_scope = delegated
    connection.granted_scope = info.scope or tokens.scope or ""
    connection.granted_delegated_scope = info.delegated_scope or ""
    connection.connected_by_id = getattr(actor, "id", None)
    connection.connected_at = utcnow()
    connection.disconnected_at = None
    connection.disconnected_by_id = None
    connection.last_error = None
    _store_tokens(connection, tokens)


def record_connection(
    *,
    organization: Organization,
    tokens: TokenSet,
    info: UserInfo,
    provider: str,
    data_center: str,
    requested_scope: str,
    requested_delegated_scope: str,
    actor=None,
    reconnect: Connection | None = None,
) -> ConnectionOutcome:
    """Create or update the connection that a completed consent produced, and audit it.

    The same service account connected twice (two admins at once, or a reconnect) ends in one row.
    When the consent brought another service account for an existing connection, the outcome's
    `replaced` holds the old one, which `replacement.revoke_replaced` gives back once this is committed.
    """
    sa_id = tokens.service_account_id or info.sub
    fields = dict(tokens=tokens, info=info, provider=provider, data_center=data_center,
                  scope=requested_scope, delegated=requested_delegated_scope, actor=actor)
    connection = reconnect or _find_existing(organization, sa_id, info.domain)
    created = connection is None
    replaced = None if created else replaced_service_account(connection, sa_id)
    if created:
        connection = Connection(organization_id=organization.id, service_account_id=sa_id)
        _apply(connection, **fields)
        try:
            with db.session.begin_nested():
                db.session.add(connection)
        except IntegrityError:
            # Another admin's consent for the same service account committed first: update theirs.
            connection, created = _find_existing(organization, sa_id), False
            if connection is None:
                raise
            replaced = replaced_service_account(connection, sa_id)
    if not created:
        connection.service_account_id = sa_id or connection.service_account_id
        _apply(connection, **fields)
    db.session.flush()
    action = "connection.connected" if created else "connection.reconnected"
    details = {"domain": connection.domain, "provider": provider, "scope": connection.granted_scope}
    if replaced is not None:
        details |= {"service_account_id": sa_id, "replaced_service_account_id": replaced.service_account_id}
    audit.record(action, actor=actor, organization=organization, target=connection, details=details)
    _announce(connection, "connection.active")
    return ConnectionOutcome(
        connection=connection,
        created=created,
        missing_scopes=_missing(requested_scope, info.scope or tokens.scope),
        missing_delegated_scopes=_missing(requested_delegated_scope, info.delegated_scope),
        replaced=replaced,
    )


def _token_is_fresh(connection: Connection) -> bool:
    expires = connection.access_token_expires_at
    return bool(connection.access_token_encrypted) and (expires is None or expires - REFRESH_MARGIN > utcnow())


def fresh_access_token(connection_id: int) -> str:
    """Return a usable service-account access token, refreshing it first if it is near expiry.

    Only one process refreshes a connection at a time (a row lease); the others wait for its
    result. This function commits its own short transactions, like a job, because the lease must
    be visible to other processes while the upstream call is under way.

    :raises ReauthorizationNeeded: the refresh token was refused; the connection is marked needs_reauth.
    :raises ConnectionActionError: the connection is not active, or the upstream is unreachable.
    """
    def ready() -> str | None:
        connection = db.session.get(Connection, connection_id, populate_existing=True)
        _require_usable(connection)
        return _decrypt(connection.access_token_encrypted) if _token_is_fresh(connection) else None

    try:
        token = leases.wait_turn(Connection, connection_id, "refresh_lease_until", REFRESH_LEASE_SECONDS,
                                 ready=ready, wait=REFRESH_WAIT_SECONDS, poll=0.2)
    except leases.LeaseBusy:
        raise ConnectionActionError(
            "Another process is refreshing this connection's token; try again shortly.") from None
    return token if token is not None else _refresh_holding_lease(connection_id)


def _require_usable(connection: Connection | None) -> None:
    if connection is None:
        raise ConnectionActionError("This connection no longer exists.")
    if connection.status == "needs_reauth":
        raise ReauthorizationNeeded(
            "Cronofy no longer accepts this connection's authorization. Reconnect it from the connection page."
        )
    if connection.status != "active":
        raise ConnectionActionError(f"This connection is {connection.status.replace('_', ' ')}, not active.")


def _refresh_holding_lease(connection_id: int) -> str:
    connection = db.session.get(Connection, connection_id, populate_existing=True)
    try:
        refresh_token = _decrypt(connection.refresh_token_encrypted or "")
        tokens = upstream.client_for(connection.data_center).refresh_access_token(refresh_token)
    except InvalidGrantError as exc:
        mark_needs_reauth(connection, exc)
        leases.release(Connection, connection_id, "refresh_lease_until")
        db.session.commit()
        raise ReauthorizationNeeded(
            "Cronofy refused to refresh this connection: its authorization was revoked or has lapsed. "
            "Reconnect it from the connection page."
        ) from exc
    except CronofyError as exc:
        connection.last_error = _describe(exc)
        leases.release(Connection, connection_id, "refresh_lease_until")
        db.session.commit()
        raise ConnectionActionError(f"Could not refresh the connection's token: {_describe(exc)}") from exc
    except ConnectionActionError:
        leases.release(Connection, connection_id, "refresh_lease_until")
        db.session.commit()
        raise
    _store_tokens(connection, tokens)
    connection.refresh_lease_until = None
    db.session.commit()
    return tokens.access_token


def _decrypt(ciphertext: str) -> str:
    """Decrypt a stored token; :raises ConnectionActionError: when no configured key opens it."""
    try:
        return cipher_for(current_app.config).decrypt(ciphertext)
    except TokenDecryptionError as exc:
        raise ConnectionActionError(
            "The stored token cannot be decrypted: TOKEN_ENCRYPTION_KEYS lacks the key it was encrypted with. "
            "Put the previous key back (after the new one) and run `flask keys rotate`."
        ) from exc


def _describe(exc: CronofyError) -> str:
    if isinstance(exc, UnavailableError):
        return "Cronofy could not be reached or did not answer in time."
    return exc.description or exc.error_key or type(exc).__name__


def mark_needs_reauth(connection: Connection, error: CronofyError) -> None:
    """Record that the upstream refused the connection's authorization, and audit it."""
    announce = connection.status != "needs_reauth"
    connection.status = "needs_reauth"
    connection.last_error = _describe(error)
    audit.record(
        "connection.needs_reauth", organization=connection.organization, target=connection,
        details={"error": error.error_key or type(error).__name__},
    )
    if announce:
        _announce(connection, "connection.needs_reauth")
    db.session.flush()


def _announce(connection: Connection, event_type: str) -> None:
    events.record(event_type, organization_id=connection.organization_id, subject_type="connection",
                  subject_id=connection.id)


def disconnect(connection: Connection, *, actor) -> None:
    """Revoke the service account upstream, forget its tokens and keep the record and its history.

    :raises ConnectionActionError: if the upstream could not be reached; nothing is changed then.
    """
    if connection.status == "revoked":
        raise ConnectionActionError("This connection is already disconnected.")
    token = _stored_refresh_token(connection)
    if token:
        try:
            upstream.client_for(connection.data_center).revoke(token=token)
        except CronofyError as exc:
            raise ConnectionActionError(
                f"Cronofy did not confirm the revocation ({_describe(exc)}). Nothing was changed; try again."
            ) from exc
    connection.status = "revoked"
    connection.access_token_encrypted = None
    connection.refresh_token_encrypted = None
    connection.access_token_expires_at = None
    connection.disconnected_at = utcnow()
    connection.disconnected_by_id = getattr(actor, "id", None)
    audit.record("connection.disconnected", actor=actor, organization=connection.organization, target=connection,
                 details={"domain": connection.domain})
    _announce(connection, "connection.revoked")
    db.session.flush()


def _stored_refresh_token(connection: Connection) -> str | None:
    if not connection.refresh_token_encrypted:
        return None
    return cipher_for(current_app.config).decrypt(connection.refresh_token_encrypted)
