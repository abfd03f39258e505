"""The vendor's webhook endpoints: create (the secret shown once), change, rotate the secret, disable, delete.

A signing secret reads `whsec_<base64 of 24 random bytes>`, the form the Standard Webhooks libraries
take. It is needed in clear to sign every delivery, so it is stored Fernet-encrypted (re-encrypted by
`flask keys rotate`) rather than hashed. Rotating keeps the previous secrets valid for 24 hours and the
sender signs with each of them meanwhile, so receivers can switch without losing a delivery.

Every URL passes the SSRF guard (`url_guard`) here and again at each delivery. Every change is audited;
the console disabling an endpoint by itself (410 Gone, 5 days failing) is also an event, so the vendor's
other endpoints and the events API hear of it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from extensions import db
from models.base import utcnow
from models.organization import Organization
from models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret
from services.platform import audit, events
from services.platform.crypto import cipher_for
from services.platform.event_types import NAMES, TEST_EVENT
from services.webhooks import url_guard

SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = timedelta(hours=24)
MAX_DESCRIPTION_LENGTH = 500
DISABLED_EVENT = "webhook_endpoint.disabled"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class WebhookEndpointError(ValueError):
    """An endpoint could not be created or changed; the message is fit to show, `field` names the input."""

    def __init__(self, message: str, field: str = "url"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IssuedEndpoint:
    """A new endpoint and the only moment its secret leaves the console."""

    endpoint: WebhookEndpoint
    secret: str


def new_secret() -> str:
    """Return a new signing secret: `whsec_` and the base64 of 24 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def checked_url(url: str) -> str:
    """Return url normalized if webhooks may be sent there under this console's settings.

    :raises WebhookEndpointError: the SSRF guard refused it (the message says why).
    """
    allow_private = bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_NETWORKS"))
    require_https = current_app.config.get("APP_ENV") == "production" and not allow_private
    try:
        return url_guard.check_url(url, allow_private=allow_private, require_https=require_https)
    except url_guard.UrlRefused as exc:
        raise WebhookEndpointError(str(exc), "url") from None


def clean_event_types(event_types: Iterable[str] | None) -> list[str]:
    """Return the types in the catalog's order (empty: every type); refuse unknown ones."""
    wanted = {name.strip() for name in (event_types or ()) if name and name.strip()}
    unknown = sorted(wanted - set(NAMES))
    if unknown:
        raise WebhookEndpointError(f"Unknown event type {', '.join(unknown)}. Types are: {', '.join(NAMES)}.",
                                   "event_types")
    return [name for name in NAMES if name in wanted]


def _clean_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise WebhookEndpointError(f"A description has at most {MAX_DESCRIPTION_LENGTH} characters.", "description")
    return description


def _add_secret(endpoint: WebhookEndpoint) -> str:
    secret = new_secret()
    db.session.add(WebhookSecret(endpoint_id=endpoint.id,
                                 secret_encrypted=cipher_for(current_app.config).encrypt(secret)))
    return secret


def _audit(action: str, endpoint: WebhookEndpoint, *, actor=None, details: dict | None = None) -> None:
    audit.record(action, actor=actor, organization=endpoint.organization, target=endpoint,
                 details={"url": endpoint.url, **(details or {})})


def create_endpoint(url: str, *, event_types=(), organization: Organization | None = None, description: str = "",
                    enabled: bool = True, created_by=None, created_by_key=None) -> IssuedEndpoint:
    """Create an endpoint and its first secret, returned in clear this once (flushes; the caller commits).

    :raises WebhookEndpointError: a refused URL, an unknown event type, a description too long.
    """
    endpoint = WebhookEndpoint(url=checked_url(url), event_types=" ".join(clean_event_types(event_types)),
                               organization=organization, description=_clean_description(description),
                               enabled=bool(enabled), created_by_id=getattr(created_by, "id", None),
                               created_by_key_id=getattr(created_by_key, "id", None))
    if not endpoint.enabled:
        endpoint.disabled_at = utcnow()
    db.session.add(endpoint)
    db.session.flush()
    secret = _add_secret(endpoint)
    db.session.flush()
    details = {"event_types": endpoint.event_type_list or "all"}
    if created_by_key is not None:
        details["api_key"] = created_by_key.prefix
    _audit("webhook_endpoint.created", endpoint, actor=created_by, details=details)
    return IssuedEndpoint(endpoint=endpoint, secret=secret)


def _set_enabled(endpoint: WebhookEndpoint, enabled: bool) -> None:
    endpoint.enabled = enabled
    if enabled:
        # A person turning it back on starts a fresh count of failing days.
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
    else:
        endpoint.disabled_reason, endpoint.disabled_at = None, utcnow()


def update_endpoint(endpoint: WebhookEndpoint, *, url=UNSET, event_types=UNSET, organization=UNSET,
                    description=UNSET, enabled=UNSET, actor=None) -> dict:
    """Change what is given; return the changes ({field: new value}), audited when there are any.

    :raises WebhookEndpointError: as create_endpoint.
    """
    wanted = {}
    if url is not UNSET:
        wanted["url"] = checked_url(url)
    if event_types is not UNSET:
        wanted["event_types"] = " ".join(clean_event_types(event_types))
    if description is not UNSET:
        wanted["description"] = _clean_description(description)
    if organization is not UNSET:
        wanted["organization_id"] = getattr(organization, "id", None)
    changes = {name: value for name, value in wanted.items() if getattr(endpoint, name) != value}
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if "organization_id" in changes:
        endpoint.organization = organization
    if enabled is not UNSET and bool(enabled) != endpoint.enabled:
        _set_enabled(endpoint, bool(enabled))
        changes["enabled"] = bool(enabled)
    if changes:
        db.session.flush()
        _audit("webhook_endpoint.updated", endpoint, actor=actor, details={"changes": changes})
    return changes


def rotate_secret(endpoint: WebhookEndpoint, *, actor=None) -> str:
    """Issue a new secret (returned in clear this once); the previous ones sign on for 24 hours (flushes)."""
    now = utcnow()
    overlap_ends = now + ROTATION_OVERLAP
    for old in _secrets(endpoint):
        if old.expires_at is not None and old.expires_at <= now:
            db.session.delete(old)  # no longer signs anything
        elif old.expires_at is None or old.expires_at > overlap_ends:
            old.expires_at = overlap_ends
    secret = _add_secret(endpoint)
    db.session.flush()
    _audit("webhook_endpoint.secret_rotated", endpoint, actor=actor,
           details={"previous_valid_until": overlap_ends.isoformat()})
    return secret


def delete_endpoint(endpoint: WebhookEndpoint, *, actor=None) -> None:
    """Delete the endpoint, its secrets and its delivery log (flushes)."""
    _audit("webhook_endpoint.deleted", endpoint, actor=actor)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)),
                       execution_options={"synchronize_session": False})
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id),
                       execution_options={"synchronize_session": False})
    db.session.delete(endpoint)
    db.session.flush()


def disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """The console turns the endpoint off by itself, saying why; audited and written as an event (flushes)."""
    if not endpoint.enabled:
        return  # already off: nothing new to announce
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:500]
    endpoint.disabled_at = utcnow()
    db.session.flush()
    _audit(DISABLED_EVENT, endpoint, details={"reason": endpoint.disabled_reason})
    events.record(DISABLED_EVENT, organization_id=endpoint.organization_id, subject_type="webhook_endpoint",
                  subject_id=endpoint.id)


def _secrets(endpoint: WebhookEndpoint) -> list[WebhookSecret]:
    return list(db.session.scalars(select(WebhookSecret).where(WebhookSecret.endpoint_id == endpoint.id)
                                   .order_by(WebhookSecret.id.desc())))


def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """Return the secrets that sign deliveries now, decrypted, newest first."""
    now = now or utcnow()
    cipher = cipher_for(current_app.config)
    return [cipher.decrypt(s.secret_encrypted) for s in _secrets(endpoint)
            if s.expires_at is None or s.expires_at > now]


def previous_secrets_valid_until(endpoint: WebhookEndpoint, now: datetime | None = None) -> datetime | None:
    """Until when rotated-out secrets still sign (for the settings page), or None when none do."""
    now = now or utcnow()
    ends = [s.expires_at for s in _secrets(endpoint) if s.expires_at is not None and s.expires_at > now]
    return max(ends) if ends else None


def wants(endpoint: WebhookEndpoint, event_type: str, organization_id: int | None) -> bool:
    """Whether the event goes to this endpoint: enabled, of a type it wants, of its organization if it has one.

    The test event is never fanned out: it is sent to the one endpoint it was asked for.
    """
    if not endpoint.enabled or event_type == TEST_EVENT:
        return False
    types = endpoint.event_type_list
    if types and event_type not in types:
        return False
    return endpoint.organization_id is None or endpoint.organization_id == organization_id


def list_endpoints(*, organization_id=UNSET, after_id: int | None = None,
                   limit: int | None = None) -> list[WebhookEndpoint]:
    """Endpoints, oldest first; organization_id (None: those for every organization) filters them."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if organization_id is not UNSET:
        query = query.where(WebhookEndpoint.organization_id.is_(None) if organization_id is None
                            else WebhookEndpoint.organization_id == organization_id)
    if after_id is not None:
        query = query.where(WebhookEndpoint.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))
