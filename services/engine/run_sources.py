"""Which mailboxes a run covers and which connection it goes through, beyond `runs` itself.

Shared by the run pages (everything not yet authorized, the revoke run's connection) and the API, which names
mailboxes by id, by address or by the mailbox list's filter.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select

from extensions import db
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.connections import connections
from services.mailboxes.mailbox_import.normalize import AddressError, address_key, normalize_address
from services.mailboxes.mailbox_query import MailboxFilter, filtered
from services.platform.wording import sentence

# "Everything not yet authorized": mailboxes that are neither connected, on their way, nor deliberately revoked.
NOT_YET_AUTHORIZED = ("new", "failed", "needs_attention")
_CHUNK = 500


def revoking_connection(organization: Organization) -> Connection | None:
    """Return the connection a revoke run is filed under: an active one first (revoking needs no SA token)."""
    found = connections.list_for(organization)
    return found[0] if found else None


class UnknownMailboxes(ValueError):
    """Some of the named mailboxes are not the organization's; `problems` holds (index, reason) of each."""

    def __init__(self, problems: list[tuple[int, str]]):
        super().__init__(f"{len(problems)} of the named mailboxes are unknown")
        self.problems = problems


def not_yet_authorized(organization: Organization) -> Select:
    """Return the ids of the organization's mailboxes that are new, failed or need attention."""
    return select(Mailbox.id).where(Mailbox.organization_id == organization.id,
                                    Mailbox.status.in_(NOT_YET_AUTHORIZED))


def by_filter(organization: Organization, *, status=None, kind=None, group=None) -> Select:
    """Return the ids of the organization's mailboxes matching the mailbox list's filter."""
    return filtered(organization, MailboxFilter(status=status, kind=kind, group=group)).with_only_columns(Mailbox.id)


def by_ids(organization: Organization, ids: list[int]) -> Select:
    """Return a select of these ids; :raises UnknownMailboxes: for ids that are not the organization's."""
    found = set()
    for start in range(0, len(ids), _CHUNK):
        found.update(db.session.scalars(select(Mailbox.id).where(
            Mailbox.organization_id == organization.id, Mailbox.id.in_(ids[start:start + _CHUNK]))))
    missing = [(index, "There is no mailbox with this id in this organization.")
               for index, mailbox_id in enumerate(ids) if mailbox_id not in found]
    if missing:
        raise UnknownMailboxes(missing)
    return select(Mailbox.id).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(sorted(found)))


def by_emails(organization: Organization, emails: list[str]) -> Select:
    """Return a select of the mailboxes with these addresses (in any case, normalized as the import does).

    :raises UnknownMailboxes: for malformed addresses and those not in the organization's directory.
    """
    problems, keys = [], {}
    for index, raw in enumerate(emails):
        try:
            keys[index] = address_key(normalize_address(raw))
        except AddressError as exc:
            problems.append((index, sentence(f"Not a mailbox address: {exc}")))
    found: dict[str, int] = {}
    wanted = sorted({key.lower() for key in keys.values()})
    for start in range(0, len(wanted), _CHUNK):
        rows = db.session.execute(select(Mailbox.id, Mailbox.email).where(
            Mailbox.organization_id == organization.id, func.lower(Mailbox.email).in_(wanted[start:start + _CHUNK])))
        found.update((address_key(email), mailbox_id) for mailbox_id, email in rows)
    problems += [(index, "This organization has no mailbox with this address.")
                 for index, key in keys.items() if key not in found]
    if problems:
        raise UnknownMailboxes(sorted(problems))
    ids = sorted({found[key] for key in keys.values()})
    return select(Mailbox.id).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(ids))
