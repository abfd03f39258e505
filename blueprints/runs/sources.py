"""Which mailboxes a run covers: a saved selection, a group, or everything not yet authorized."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select

from blueprints.converters import parse_id
from extensions import db
from models.mailbox import Mailbox
from models.organization import Organization
from models.selection import MailboxSelection
from services.mailboxes import selection as selections

# "Everything not yet authorized": mailboxes that are neither connected, on their way, nor deliberately revoked.
NOT_YET_AUTHORIZED = ("new", "failed", "needs_attention")


class SourceError(ValueError):
    """The request names no usable set of mailboxes; the message says why."""


@dataclass(frozen=True)
class Source:
    """A set of mailboxes to act on: what to call it, the select of their ids, the arguments that name it."""

    label: str
    mailbox_ids: Select
    args: dict = field(default_factory=dict)

    def count(self) -> int:
        """Return how many mailboxes the source covers now."""
        return db.session.scalar(select(func.count()).select_from(self.mailbox_ids.subquery())) or 0

    def count_where(self, *conditions) -> int:
        """Return how many of the source's mailboxes meet conditions (on Mailbox)."""
        query = select(func.count(Mailbox.id)).where(Mailbox.id.in_(self.mailbox_ids), *conditions)
        return db.session.scalar(query) or 0


def from_args(args: Mapping, organization: Organization) -> Source:
    """Return the source named by `selection=<id>`, `group=<name>` or `everything=1`.

    :raises SourceError: when none is named, the selection is unknown or expired.
    """
    if args.get("selection"):
        return _selection(args["selection"], organization)
    if args.get("group"):
        return _group(str(args["group"])[:100], organization)
    if args.get("everything") == "1":
        query = select(Mailbox.id).where(Mailbox.organization_id == organization.id,
                                         Mailbox.status.in_(NOT_YET_AUTHORIZED))
        return Source("everything not yet authorized", query, {"everything": "1"})
    raise SourceError("Choose the mailboxes first: select them on the mailbox list.")


def _selection(raw: str, organization: Organization) -> Source:
    selection_id = parse_id(raw)
    chosen = db.session.get(MailboxSelection, selection_id) if selection_id else None
    if chosen is None or chosen.organization_id != organization.id:
        raise SourceError("That selection does not exist. Select the mailboxes again on the mailbox list.")
    if selections.is_expired(chosen):
        raise SourceError("That selection has expired (selections last a day). Select the mailboxes again.")
    return Source(selections.describe(chosen), selections.resolve(chosen, organization), {"selection": chosen.id})


def _group(name: str, organization: Organization) -> Source:
    query = select(Mailbox.id).where(Mailbox.organization_id == organization.id, Mailbox.group_name == name)
    return Source(f"group {name}", query, {"group": name})
