"""Service-account scopes and delegated (account-level) scopes, with the aggregate names expanded."""

SA_SCOPES = {
    "service_account/accounts/manage": "request access to user and shared mailbox calendars",
    "service_account/accounts/unrestricted_access": "give elevated access to user calendars",
    "service_account/resources/manage": "list rooms and equipment and request access to their calendars",
    "service_account/resources/unrestricted_access": "give elevated access to resource calendars",
}

GRANULAR = {
    "read_account": "see the account's basic details",
    "list_calendars": "list calendars",
    "read_events": "read events",
    "create_event": "create and update events",
    "delete_event": "delete events",
    "read_free_busy": "see free/busy information",
    "create_calendar": "create calendars",
    "change_participation_status": "accept or decline invitations",
}

_READ = {"read_account", "list_calendars", "read_events", "read_free_busy"}
_WRITE = {"read_account", "create_event", "delete_event"}
AGGREGATES = {
    "read_only": _READ,
    "write_only": _WRITE,
    "read_write": _READ | _WRITE,
    "free_busy": {"read_account", "read_free_busy"},
    "free_busy_write": {"read_account", "read_free_busy", "create_event", "delete_event"},
}
AGGREGATE_WORDS = {
    "read_only": "read calendars and events",
    "write_only": "create and delete events, without reading others",
    "read_write": "read calendars and events, create and delete events",
    "free_busy": "see free/busy information only",
    "free_busy_write": "see free/busy and manage the events it creates",
}
FREE_BUSY_GRANTABLE = AGGREGATES["free_busy"]


def split(scope):
    """Split a space-separated scope string into its words."""
    return [word for word in (scope or "").split() if word]


def unknown_delegated(scope):
    """Return the words of a delegated scope that are not account scopes."""
    return [word for word in split(scope) if word not in GRANULAR and word not in AGGREGATES]


def expand(scope):
    """Return the granular scopes a delegated scope string stands for."""
    granted = set()
    for word in split(scope):
        granted |= AGGREGATES.get(word, {word})
    return granted


def within(requested, granted):
    """Tell whether a requested delegated scope is covered by the granted one."""
    return expand(requested) <= expand(granted)


def describe(scope):
    """Return plain words for each scope of a string, for the consent page."""
    words = {**SA_SCOPES, **GRANULAR, **AGGREGATE_WORDS}
    return [(word, words.get(word, word)) for word in split(scope)]
