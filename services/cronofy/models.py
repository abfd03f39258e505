"""Small frozen values returned by the Cronofy client, and their defensive parsers.

Parsers accept every documented shape (flat and nested keys, §3.8), ignore
unknown keys and never fail on a missing optional field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import UnavailableError


@dataclass(frozen=True)
class LinkingProfile:
    """The calendar profile a delegated token was linked to (§3.3.2)."""

    provider_name: str | None
    provider_service: str | None
    profile_id: str | None
    profile_name: str | None


@dataclass(frozen=True)
class TokenSet:
    """Tokens from /oauth/token; the repr never shows a token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_in: int | None
    expires_at: datetime | None
    scope: str | None
    token_type: str | None
    service_account_id: str | None = None
    account_id: str | None = None
    sub: str | None = None
    linking_profile: LinkingProfile | None = None


@dataclass(frozen=True)
class Profile:
    """One calendar profile of an account, as UserInfo describes it (§3.8)."""

    profile_id: str | None
    provider_name: str | None
    provider_service: str | None
    profile_name: str | None
    profile_connected: bool | None
    profile_initial_sync_required: bool | None
    profile_relink_url: str | None
    provider_protocol: str | None


@dataclass(frozen=True)
class UserInfo:
    """Identity behind a service-account or account token (§3.8)."""

    sub: str | None
    type: str | None
    email: str | None
    name: str | None
    domain: str | None
    provider_name: str | None
    scope: str | None
    delegated_scope: str | None
    status: str | None
    profiles: tuple[Profile, ...] = ()


@dataclass(frozen=True)
class Resource:
    """A room, equipment or shared-mailbox calendar from /v1/resources (§3.9), flattened."""

    email: str
    name: str | None
    capacity: int | None
    building_name: str | None
    floor_name: str | None
    floor_section: str | None
    address_lines: tuple[str, ...]
    locality: str | None
    region: str | None
    postal_code: str | None
    country: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class DelegatedRequest:
    """One mailbox to request delegated access for (§3.3)."""

    email: str
    callback_url: str
    scope: str
    state: str | None = None

    def as_body(self) -> dict[str, str]:
        """Return the JSON object of this request, without an absent state."""
        body = {"email": self.email, "callback_url": self.callback_url, "scope": self.scope}
        if self.state is not None:
            body["state"] = self.state
        return body


@dataclass(frozen=True)
class Calendar:
    """One calendar of an account (/v1/calendars)."""

    calendar_id: str
    calendar_name: str | None
    profile_id: str | None
    profile_name: str | None
    provider_name: str | None
    calendar_readonly: bool | None
    calendar_deleted: bool | None
    calendar_primary: bool | None


@dataclass(frozen=True)
class FreeBusyPeriod:
    """One busy period of an account (/v1/free_busy)."""

    calendar_id: str | None
    start: str | None
    end: str | None
    free_busy_status: str | None


def dig(payload: Any, dotted: str) -> Any:
    """Return the value at a dotted path, whether the upstream nested it or flattened it.

    §3.8: UserInfo keys appear nested (``cronofy.data`` → ``service_account`` →
    ``domain``) and flat (``"cronofy.service_account.domain"``); this accepts any mix.
    """
    parts = dotted.split(".")
    if not isinstance(payload, Mapping):
        return None
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in payload:
            rest = ".".join(parts[i:])
            found = dig(payload[key], rest) if rest else payload[key]
            if found is not None:
                return found
    return None


def first(payload: Any, *paths: str) -> Any:
    """Return the first non-None value among several dotted paths."""
    for path in paths:
        value = dig(payload, path)
        if value is not None:
            return value
    return None


def parse_token_set(payload: Any, *, now: datetime | None = None) -> TokenSet:
    """Parse a token response; a body without an access token is malformed."""
    if not isinstance(payload, Mapping) or not _str(payload.get("access_token")):
        raise UnavailableError("The token response carried no access token.", error_key="malformed_response")
    expires_in = _int(payload.get("expires_in"))
    moment = now or datetime.now(timezone.utc)
    return TokenSet(
        access_token=payload["access_token"],
        refresh_token=_str(payload.get("refresh_token")),
        expires_in=expires_in,
        expires_at=moment + timedelta(seconds=expires_in) if expires_in is not None else None,
        scope=_str(payload.get("scope")),
        token_type=_str(payload.get("token_type")),
        service_account_id=_str(payload.get("service_account_id")),
        account_id=_str(payload.get("account_id")),
        sub=_str(payload.get("sub")),
        linking_profile=_linking_profile(payload.get("linking_profile")),
    )


def parse_userinfo(payload: Mapping[str, Any]) -> UserInfo:
    """Parse /v1/userinfo for a service account or an account (§3.8)."""
    profiles = first(payload, "cronofy.data.profiles", "cronofy.profiles") or []
    return UserInfo(
        sub=_str(payload.get("sub")),
        type=_str(first(payload, "cronofy.type")),
        email=_str(first(payload, "email", "cronofy.data.service_account.email", "cronofy.service_account.email")),
        name=_str(payload.get("name")),
        domain=_str(first(payload, "cronofy.data.service_account.domain", "cronofy.service_account.domain")),
        provider_name=_str(
            first(payload, "cronofy.data.service_account.provider_name", "cronofy.service_account.provider_name")
        ),
        scope=_str(first(payload, "cronofy.data.authorization.scope", "cronofy.authorization.scope")),
        delegated_scope=_str(
            first(payload, "cronofy.data.authorization.delegated_scope", "cronofy.authorization.delegated_scope")
        ),
        status=_str(first(payload, "cronofy.data.authorization.status", "cronofy.authorization.status")),
        profiles=tuple(_profile(p) for p in profiles if isinstance(p, Mapping)),
    )


def parse_resource(item: Mapping[str, Any]) -> Resource | None:
    """Parse one entry of /v1/resources; an entry without an email is useless and skipped."""
    email = _str(item.get("email"))
    if not email:
        return None
    lines = dig(item, "location.address.lines")
    return Resource(
        email=email,
        name=_str(item.get("name")),
        capacity=_int(item.get("capacity")),
        building_name=_str(dig(item, "location.building_name")),
        floor_name=_str(dig(item, "location.floor_name")),
        floor_section=_str(dig(item, "location.floor_section")),
        address_lines=tuple(str(x) for x in lines) if isinstance(lines, list) else (),
        locality=_str(dig(item, "location.address.locality")),
        region=_str(dig(item, "location.address.region")),
        postal_code=_str(dig(item, "location.address.postal_code")),
        country=_str(dig(item, "location.address.country")),
        latitude=_float(dig(item, "location.coordinates.lat")),
        longitude=_float(dig(item, "location.coordinates.long")),
    )


def parse_calendar(item: Mapping[str, Any]) -> Calendar | None:
    """Parse one entry of /v1/calendars; skip entries without an id."""
    calendar_id = _str(item.get("calendar_id"))
    if not calendar_id:
        return None
    return Calendar(
        calendar_id=calendar_id,
        calendar_name=_str(item.get("calendar_name")),
        profile_id=_str(item.get("profile_id")),
        profile_name=_str(item.get("profile_name")),
        provider_name=_str(item.get("provider_name")),
        calendar_readonly=_bool(item.get("calendar_readonly")),
        calendar_deleted=_bool(item.get("calendar_deleted")),
        calendar_primary=_bool(item.get("calendar_primary")),
    )


def parse_free_busy(item: Mapping[str, Any]) -> FreeBusyPeriod:
    """Parse one entry of /v1/free_busy."""
    return FreeBusyPeriod(
        calendar_id=_str(item.get("calendar_id")),
        start=_str(item.get("start")),
        end=_str(item.get("end")),
        free_busy_status=_str(item.get("free_busy_status")),
    )


def _linking_profile(value: Any) -> LinkingProfile | None:
    if not isinstance(value, Mapping):
        return None
    return LinkingProfile(
        provider_name=_str(value.get("provider_name")),
        provider_service=_str(value.get("provider_service")),
        profile_id=_str(value.get("profile_id")),
        profile_name=_str(value.get("profile_name")),
    )


def _profile(value: Mapping[str, Any]) -> Profile:
    return Profile(
        profile_id=_str(value.get("profile_id")),
        provider_name=_str(value.get("provider_name")),
        provider_service=_str(value.get("provider_service")),
        profile_name=_str(value.get("profile_name")),
        profile_connected=_bool(value.get("profile_connected")),
        profile_initial_sync_required=_bool(value.get("profile_initial_sync_required")),
        profile_relink_url=_str(value.get("profile_relink_url")),
        provider_protocol=_str(value.get("provider_protocol")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
