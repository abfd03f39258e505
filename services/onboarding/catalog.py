"""What the wizard offers: providers (see `providers`), data centers, scopes, presets, and the rules.

Plain data and pure functions, no Flask. Scope words are reproduced exactly from §3.1 of
docs/cronofy-api.md; every explanation says, in plain words, what the vendor will be able to see
and do once the customer approves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.cronofy.hosts import DATA_CENTERS
from services.onboarding.providers import (
    EXCHANGE_EWS,
    PROVIDER_KEYS,
    PROVIDERS,
    ChecklistItem,
    Notice,
    Provider,
    known_item_ids,
    provider,
)

__all__ = [
    "DATA_CENTERS",
    "DELEGATED_SCOPES",
    "PRESETS",
    "PROVIDERS",
    "PROVIDER_KEYS",
    "SERVICE_ACCOUNT_SCOPES",
    "ChecklistItem",
    "Notice",
    "Preset",
    "Problem",
    "Provider",
    "Scope",
    "advice",
    "describe",
    "is_free_busy_only",
    "known_item_ids",
    "normalise",
    "presets_for",
    "provider",
    "validate_data_center",
    "validate_scopes",
]

SA_ACCOUNTS = "service_account/accounts/manage"
SA_ACCOUNTS_UNRESTRICTED = "service_account/accounts/unrestricted_access"
SA_RESOURCES = "service_account/resources/manage"
SA_RESOURCES_UNRESTRICTED = "service_account/resources/unrestricted_access"


@dataclass(frozen=True)
class Scope:
    """One scope word with its plain-words meaning; `group` orders and titles the form."""

    key: str
    label: str
    explanation: str
    group: str


@dataclass(frozen=True)
class Preset:
    """A named, sensible combination of scopes; `providers` None means every provider."""

    key: str
    label: str
    explanation: str
    scope: tuple[str, ...]
    delegated_scope: tuple[str, ...]
    providers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Problem:
    """Why a choice cannot be used; `field` names the form field it concerns."""

    field: str
    message: str


SERVICE_ACCOUNT_SCOPES: dict[str, Scope] = {
    s.key: s
    for s in (
        Scope(SA_ACCOUNTS, "People's calendars",
              "Ask, person by person, for access to the calendars of people in your organization and of "
              "shared mailboxes. Granting this connects nobody by itself.", "service_account"),
        Scope(SA_RESOURCES, "Rooms and equipment",
              "List your rooms and equipment (names, capacity, building and floor) and ask for access to "
              "their calendars.", "service_account"),
        Scope(SA_ACCOUNTS_UNRESTRICTED, "Unrestricted access to people's calendars",
              "Raise the vendor's access on connected people's calendars so it can manage every event, not "
              "only the events it created itself.", "unrestricted"),
        Scope(SA_RESOURCES_UNRESTRICTED, "Unrestricted access to room calendars",
              "Raise the vendor's access on connected room and equipment calendars so it can manage every "
              "booking, not only the ones it made itself.", "unrestricted"),
    )
}

DELEGATED_SCOPES: dict[str, Scope] = {
    s.key: s
    for s in (
        Scope("read_write", "Read and write",
              "See calendars and events (titles, times, places, attendees, descriptions) and create, change "
              "and delete events.", "level"),
        Scope("read_only", "Read only",
              "See calendars and events (titles, times, places, attendees, descriptions); change nothing.",
              "level"),
        Scope("write_only", "Write only",
              "Create and delete events, without reading anyone's other events.", "level"),
        Scope("free_busy", "Free/busy only",
              "See only when people and rooms are busy or free: no titles, places, attendees or details.",
              "level"),
        Scope("free_busy_write", "Free/busy and booking",
              "See when people are busy or free and put events (such as bookings) in their calendars, "
              "without reading the details of their other events.", "level"),
        Scope("read_account", "Account details",
              "See each connected account's name, email address and time zone.", "granular"),
        Scope("list_calendars", "List calendars", "See the list of each connected account's calendars.",
              "granular"),
        Scope("read_events", "Read events",
              "Read events: titles, times, places, attendees and descriptions.", "granular"),
        Scope("read_free_busy", "Read free/busy", "See when each calendar is busy or free, without event details.",
              "granular"),
        Scope("create_event", "Create events", "Add new events to connected calendars and update them.", "granular"),
        Scope("delete_event", "Delete events", "Remove events from connected calendars.", "granular"),
        Scope("create_calendar", "Create calendars", "Add new calendars to a connected account.", "granular"),
        Scope("change_participation_status", "Answer invitations",
              "Accept or decline meeting invitations on a person's behalf.", "granular"),
    )
}

LEVELS = tuple(k for k, s in DELEGATED_SCOPES.items() if s.group == "level")
GRANULAR = tuple(k for k, s in DELEGATED_SCOPES.items() if s.group == "granular")
WRITE_GRANULAR = frozenset({"create_event", "delete_event", "create_calendar", "change_participation_status"})
READ_GRANULAR = frozenset({"list_calendars", "read_events"})
# What a delegated scope amounts to when only free/busy is shared (§3.4).
FREE_BUSY_WORDS = frozenset({"free_busy", "read_free_busy", "read_account"})
_BOTH_MANAGE = (SA_ACCOUNTS, SA_RESOURCES)

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset("full", "Full calendar access",
               "People and rooms; the vendor reads and writes events. Right for scheduling and booking "
               "products.", _BOTH_MANAGE, ("read_write",)),
        Preset("read_only", "Read only",
               "People and rooms; the vendor reads calendars and events but never changes them.",
               _BOTH_MANAGE, ("read_only",)),
        Preset("free_busy_booking", "Free/busy and booking",
               "People and rooms; the vendor sees busy times and adds its own bookings, without reading "
               "other events.", _BOTH_MANAGE, ("free_busy_write",)),
        Preset("free_busy", "Free/busy only",
               "People and rooms; the vendor sees busy and free times and nothing else. Exchange via EWS "
               "only.", _BOTH_MANAGE, ("free_busy",), providers=(EXCHANGE_EWS,)),
    )
}


# Cronofy's aggregate delegated scopes and the granular scopes each stands for (§3.1, §3.4).
_READ = {"read_account", "list_calendars", "read_events", "read_free_busy"}
_WRITE = {"read_account", "create_event", "delete_event"}
AGGREGATES = {
    "read_only": _READ,
    "write_only": _WRITE,
    "read_write": _READ | _WRITE,
    "free_busy": {"read_account", "read_free_busy"},
    "free_busy_write": {"read_account", "read_free_busy", "create_event", "delete_event"},
}


def expand_scope(scope: str | None) -> set[str]:
    """Return the granular scopes a delegated scope string stands for."""
    granted: set[str] = set()
    for word in (scope or "").split():
        granted |= AGGREGATES.get(word, {word})
    return granted


def split(value: str | Iterable[str] | None) -> list[str]:
    """Return the words of a space-separated string (or of an iterable of strings)."""
    if value is None:
        return []
    words = value.split() if isinstance(value, str) else [w for v in value for w in str(v).split()]
    return [w for w in words if w]


def normalise(value: str | Iterable[str] | None, catalogue: dict[str, Scope]) -> str:
    """Return the known words of value, once each, in catalogue order, space-separated."""
    wanted = set(split(value))
    return " ".join(key for key in catalogue if key in wanted)


def unknown(value: str | Iterable[str] | None, catalogue: dict[str, Scope]) -> list[str]:
    """Return the words of value that the catalogue does not know."""
    return [w for w in split(value) if w not in catalogue]


def presets_for(provider_key: str | None) -> list[Preset]:
    """Return the presets that make sense for a provider."""
    return [p for p in PRESETS.values() if p.providers is None or provider_key in p.providers]


def describe(value: str | Iterable[str] | None) -> list[Scope]:
    """Return the catalogue entries of the words of value (unknown words described as themselves)."""
    entries = {**SERVICE_ACCOUNT_SCOPES, **DELEGATED_SCOPES}
    return [entries.get(w) or Scope(w, w, "Not a scope this console knows.", "unknown") for w in split(value)]


def is_free_busy_only(delegated: str | Iterable[str] | None) -> bool:
    """Tell whether a delegated scope shares free/busy and nothing more (§3.4)."""
    words = set(split(delegated))
    return bool(words & {"free_busy", "read_free_busy"}) and words <= FREE_BUSY_WORDS


def validate_data_center(code: str | None) -> Problem | None:
    """Return why a data center code is unusable, or None."""
    if (code or "") in DATA_CENTERS:
        return None
    return Problem("data_center", f"Choose one of the data centers: {', '.join(DATA_CENTERS)}.")


def validate_scopes(provider_key: str | None, scope, delegated) -> list[Problem]:
    """Return every reason why this combination of scopes cannot be requested (empty when it can)."""
    sa, dg = set(split(scope)), set(split(delegated))
    problems = [Problem("scope", f"Unknown service-account scope: {w}.") for w in unknown(scope, SERVICE_ACCOUNT_SCOPES)]
    problems += [Problem("delegated_scope", f"Unknown calendar permission: {w}.")
                 for w in unknown(delegated, DELEGATED_SCOPES)]
    problems += _service_account_problems(sa, dg)
    problems += _delegated_problems(dg)
    problems += _provider_problems(provider_key, dg)
    return problems


def _service_account_problems(sa: set[str], dg: set[str]) -> list[Problem]:
    problems = []
    if not sa & set(_BOTH_MANAGE):
        problems.append(Problem("scope", "Choose at least one of people's calendars or rooms and equipment: "
                                         "without one, the vendor could not connect any calendar."))
    if SA_ACCOUNTS_UNRESTRICTED in sa and SA_ACCOUNTS not in sa:
        problems.append(Problem("scope", "Unrestricted access to people's calendars only makes sense together "
                                         "with people's calendars."))
    if SA_RESOURCES_UNRESTRICTED in sa and SA_RESOURCES not in sa:
        problems.append(Problem("scope", "Unrestricted access to room calendars only makes sense together with "
                                         "rooms and equipment."))
    if "free_busy_write" in dg and SA_ACCOUNTS not in sa:
        problems.append(Problem("scope", "Free/busy and booking applies to people's calendars: also choose "
                                         "people's calendars."))
    return problems


def _delegated_problems(dg: set[str]) -> list[Problem]:
    if not dg:
        return [Problem("delegated_scope", "Choose what the vendor may do with each connected calendar.")]
    problems = []
    writes = [DELEGATED_SCOPES[w].label.lower() for w in GRANULAR if w in dg & WRITE_GRANULAR]
    if "read_only" in dg and (writes or dg & {"read_write", "write_only", "free_busy_write"}):
        extra = ", ".join(writes) or "a level that writes"
        problems.append(Problem("delegated_scope", f"Read only means the vendor changes nothing, but you also "
                                                   f"chose {extra}. Choose read and write, or drop the writing."))
    return problems


def _provider_problems(provider_key: str | None, dg: set[str]) -> list[Problem]:
    chosen = provider(provider_key)
    if chosen is None:
        return [Problem("provider", "Choose the calendar service first.")]
    if is_free_busy_only(dg) and not chosen.supports_free_busy_only:
        return [Problem("delegated_scope", f"{chosen.label} cannot limit access to free/busy only; that needs "
                                           "Exchange via EWS. Choose a wider permission, or go back and "
                                           "choose EWS.")]
    return []


def advice(scope, delegated) -> list[str]:
    """Return non-blocking remarks about a valid choice: what it will not allow."""
    sa = set(split(scope))
    remarks = []
    if SA_ACCOUNTS not in sa and SA_RESOURCES in sa:
        remarks.append("Only rooms and equipment can be connected: people's own calendars and shared mailboxes "
                       "need people's calendars.")
    if SA_RESOURCES not in sa and SA_ACCOUNTS in sa:
        remarks.append("Rooms and equipment cannot be listed or connected: that needs rooms and equipment.")
    if is_free_busy_only(delegated):
        remarks.append("Free/busy only must first be enabled for the vendor's application by Cronofy, and each "
                       "mailbox needs the AvailabilityOnly permission (see the checklist).")
    return remarks
