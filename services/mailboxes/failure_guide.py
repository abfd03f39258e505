"""Plain-language cause and fix for every reason a mailbox can fail to authorize.

The upstream names failures with terse keys (`unable_to_grant_scope`, §3.3.1 of docs/cronofy-api.md;
the sandbox adds the directory outcomes an Enterprise Connect tenant produces) and the engine adds its
own (`no_callback`, `upstream_unavailable`, ...). `explain` turns a key into what an IT admin can act on,
and points at the setup checklist item (services/onboarding/providers.py) that usually fixes it.

Failures are grouped by cause (the key, with its other spellings folded in): `cause_of` names a key's
cause, `matches` is the SQL condition selecting a cause's rows, and each cause says whether a retry as
it is can help (`retryable`) and which access a new try should ask for (`suggested_scope`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import has_request_context, url_for
from sqlalchemy import or_

from services.onboarding.providers import EXCHANGE_EWS, GOOGLE, MICROSOFT_GRAPH, provider as provider_entry

# The upstream's own provider names (§3.3.2 linking_profile.provider_name) mapped to our provider keys.
UPSTREAM_PROVIDER_NAMES = {"google": GOOGLE, "office365": MICROSOFT_GRAPH, "exchange": EXCHANGE_EWS}


# The cause of failures that came without any key.
NO_KEY = "unspecified"


@dataclass(frozen=True)
class Guidance:
    """What went wrong and what to do, in plain words.

    `retryable` is the cause's "retry can help": retrying as it is may succeed. `name` is the cause's
    short name (for table rows), `cause_id` the key its group goes by, `suggested_scope` the access a
    new try should ask for when the fix says so (None: the same as before).
    """

    cause: str
    fix: str
    checklist_url: str | None
    retryable: bool
    checklist_label: str | None = None
    known: bool = True
    name: str = ""
    cause_id: str = NO_KEY
    suggested_scope: str | None = None

    @property
    def anchor(self) -> str:
        """Return the id of this cause's group on a "Failures by cause" panel."""
        return anchor(self.cause_id)


@dataclass(frozen=True)
class _Entry:
    name: str
    cause: str
    fix: str
    retryable: bool
    # Checklist item id per provider key; a provider missing here has no matching item.
    checklist: dict[str, str]
    suggested_scope: str | None = None


_GUIDE: dict[str, _Entry] = {
    "unable_to_grant_scope": _Entry(
        "Access not grantable",
        "The service account may not give the access you asked for on this mailbox. Most often the "
        "mailbox shares only free/busy with the service account, and the run asked for more.",
        "Authorize this mailbox again with the \"free/busy only\" choice, or give the service account "
        "full access to it (see the checklist item) and retry.",
        False,
        {EXCHANGE_EWS: "ews_free_busy_permission", MICROSOFT_GRAPH: "graph_permissions",
         GOOGLE: "google_marketplace_app"},
        suggested_scope="free_busy",
    ),
    "not_found": _Entry(
        "Mailbox not found",
        "The calendar service has no mailbox with this address in the connected domain.",
        "Check the address for typing mistakes and that the mailbox exists and belongs to the connected "
        "domain. Correct or remove it, then retry.",
        False,
        {},
    ),
    "outside_access_policy": _Entry(
        "Outside the access policy",
        "Your organization's policy keeps this mailbox out of the service account's reach.",
        "If the mailbox should be connected, add it to the group or unit the policy allows (see the "
        "checklist item), wait for the change to apply, then retry.",
        False,
        {GOOGLE: "google_restrict_ou", MICROSOFT_GRAPH: "graph_access_policy", EXCHANGE_EWS: "ews_impersonation"},
    ),
    "mailbox_suspended": _Entry(
        "Mailbox suspended",
        "The mailbox is suspended or blocked in your calendar service.",
        "Reactivate the account in your admin console if it should be connected, then retry; otherwise "
        "leave it out.",
        False,
        {},
    ),
    "license_missing": _Entry(
        "No calendar licence",
        "The mailbox's account has no licence that includes a calendar.",
        "Assign a licence with calendar (Exchange Online or Google Calendar) to the account, wait for it "
        "to apply, then retry.",
        False,
        {EXCHANGE_EWS: "ews_service_account"},
    ),
    "no_callback": _Entry(
        "No callback",
        "Cronofy accepted the request but never reported back. The calendar may still be syncing, or "
        "Cronofy could not reach this console's callback address.",
        "Retry the mailbox. If it happens again for many mailboxes, check that the console's public "
        "address (PUBLIC_BASE_URL) is reachable from the internet.",
        True,
        {EXCHANGE_EWS: "ews_network"},
    ),
    "invalid_grant": _Entry(
        "Code expired or used",
        "The one-time code Cronofy sent for this mailbox had expired (codes live 10 minutes) or was "
        "already used when the console exchanged it.",
        "Retry the mailbox: a new request gets a new code.",
        True,
        {},
    ),
    "exchange_interrupted": _Entry(
        "Exchange interrupted",
        "The console was exchanging this mailbox's one-time code when a worker stopped or Cronofy or the "
        "database stopped answering, so whether Cronofy authorized it is unknown.",
        "Retry the mailbox. Any authorization Cronofy issued then is revoked on the next try, so the mailbox "
        "ends with exactly one.",
        True,
        {},
    ),
    "lost_authorization_revoked": _Entry(
        "Lost authorization revoked",
        "Cronofy held an earlier authorization of this mailbox whose tokens never reached the console (an "
        "exchange was cut short); the console revoked it.",
        "Retry the mailbox: it is authorized afresh, once.",
        True,
        {},
    ),
    "upstream_unavailable": _Entry(
        "Cronofy unavailable",
        "Cronofy did not answer, or answered with a server error, even after several tries.",
        "Retry later; nothing needs changing on your side.",
        True,
        {},
    ),
    "rate_limited": _Entry(
        "Rate limited",
        "Cronofy refused the request because the vendor's application was over its request limit.",
        "Retry later. The limit is shared by all of the vendor's customers; the console paces itself, "
        "so this should be rare.",
        True,
        {},
    ),
    "invalid_request": _Entry(
        "Invalid request",
        "Cronofy refused the request as invalid, for example a malformed address or an access level "
        "outside what the connection allows.",
        "Check the mailbox's address and the access asked for (it must be within the connection's "
        "permissions), correct it, then retry.",
        False,
        {},
    ),
    "reauthorization_needed": _Entry(
        "Connection needs reconnecting",
        "The connection's service account no longer works: it was revoked, or its permission was "
        "removed on the Google or Microsoft side.",
        "Reconnect the domain from the Connections page (an administrator approves again), then retry "
        "the failed mailboxes.",
        False,
        {GOOGLE: "google_marketplace_app", MICROSOFT_GRAPH: "graph_global_admin",
         EXCHANGE_EWS: "ews_service_account"},
    ),
    "insufficient_scope": _Entry(
        "Missing permission",
        "The service account was not given the permission this kind of mailbox needs (people's calendars "
        "or rooms and equipment).",
        "Reconnect the domain and choose both people's calendars and rooms and equipment, then retry.",
        False,
        {},
    ),
}

# Other spellings of the same failures: upstream HTTP error bodies (§4) and the sandbox's names.
_ALIASES = {
    "code_expired": "invalid_grant",
    "errors.unknown_or_used": "invalid_grant",
    "too_many_requests": "rate_limited",
    "server_error": "upstream_unavailable",
    "service_unavailable": "upstream_unavailable",
    "gateway_timeout": "upstream_unavailable",
    "timeout": "upstream_unavailable",
    "invalid_token": "reauthorization_needed",
    "unprocessable": "invalid_request",
}

KNOWN_KEYS: tuple[str, ...] = tuple(_GUIDE)


def cause_of(error_key: str | None) -> str:
    """Return the cause a key belongs to: the key, its usual spelling for an alias, or NO_KEY."""
    return _ALIASES.get(error_key or "", error_key or "") or NO_KEY


def error_keys(cause: str) -> tuple[str, ...]:
    """Return every key that names this cause (the cause's own and its other spellings)."""
    return (cause, *sorted(alias for alias, key in _ALIASES.items() if key == cause))


def matches(column, cause: str):
    """Return the SQL condition on an error-key column that selects the failures of this cause."""
    if cause == NO_KEY:
        return or_(column.is_(None), column == "", column == NO_KEY)
    return column.in_(error_keys(cause))


def unfixable_keys() -> tuple[str, ...]:
    """Return the keys of every cause that a retry as it is cannot fix (their spellings included)."""
    return tuple(key for cause, entry in _GUIDE.items() if not entry.retryable for key in error_keys(cause))


def anchor(cause: str) -> str:
    """Return the HTML id of a cause's group on a "Failures by cause" panel."""
    return "cause-" + re.sub(r"[^A-Za-z0-9_-]+", "-", cause)[:80]


def explain(error_key: str | None, description: str | None = None, provider: str | None = None) -> Guidance:
    """Return the cause, fix and checklist link for an error key; unknown keys show the description."""
    key = cause_of(error_key)
    entry = _GUIDE.get(key)
    if entry is None:
        return _unknown(error_key, description)
    item = _checklist_item(entry, provider)
    return Guidance(
        cause=entry.cause,
        fix=entry.fix,
        checklist_url=checklist_url(item[0], item[1]) if item else None,
        retryable=entry.retryable,
        checklist_label=item[2] if item else None,
        name=entry.name,
        cause_id=key,
        suggested_scope=entry.suggested_scope,
    )


def _unknown(error_key: str | None, description: str | None) -> Guidance:
    cause = description.strip() if description and description.strip() else (
        f"Cronofy reported \"{error_key}\" without explaining it." if error_key else "No reason was given.")
    return Guidance(
        cause=cause,
        fix="Retry the mailbox; if it fails the same way again, contact the vendor's support with this message.",
        checklist_url=None,
        retryable=True,
        known=False,
        name=error_key[:80] if error_key else "No reason given",
        cause_id=cause_of(error_key),
    )


def provider_key(name: str | None) -> str | None:
    """Return our provider key for a provider key or an upstream provider name, or None."""
    if provider_entry(name):
        return name
    return UPSTREAM_PROVIDER_NAMES.get(name or "")


def _checklist_item(entry: _Entry, provider: str | None) -> tuple[str, str, str] | None:
    key = provider_key(provider)
    item_id = entry.checklist.get(key or "")
    chosen = provider_entry(key)
    item = chosen.item(item_id) if chosen and item_id else None
    return (chosen.key, item.id, item.text) if item else None


def checklist_url(provider_key_: str, item_id: str) -> str:
    """Return the address of a checklist item: the provider's checklist page, at the item."""
    if has_request_context():
        return url_for("runs.checklist", provider_key=provider_key_, _anchor=item_id)
    return f"/checklists/{provider_key_}#{item_id}"
