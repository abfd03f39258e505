"""Which mailboxes a run covers: a saved selection, a group, everything not yet authorized, or one cause of failure
(of a run, or of the organization's failed mailboxes: "Retry these N" on a "Failures by cause" panel)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select

from blueprints.converters import parse_id
from extensions import db
from models.authorization import AuthorizationRun
from models.mailbox import Mailbox
from models.organization import Organization
from models.selection import MailboxSelection
from services.engine.run_sources import NOT_YET_AUTHORIZED
from services.mailboxes import failure_guide
from services.mailboxes import selection as selections
from services.read_models import failures



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
    """Return the source named by `selection=<id>`, `group=<name>`, `everything=1` or `cause=<key>` (`run=<id>`).

    :raises SourceError: when none is named, the selection or run is unknown, or the selection expired.
    """
    if args.get("cause"):
        return _cause(str(args["cause"]).strip()[:80], args.get("run"), organization)
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


def _cause(cause: str, raw_run: str | None, organization: Organization) -> Source:
    name = failure_guide.explain(cause).name
    if not raw_run:
        return Source(f"the failed mailboxes whose cause is “{name}”", failures.failed_with(organization, cause),
                      {"cause": cause})
    run_id = parse_id(raw_run)
    run = db.session.get(AuthorizationRun, run_id) if run_id else None
    if run is None or run.organization_id != organization.id:
        raise SourceError("That run does not exist. Open the run again and choose its failures there.")
    return Source(f"the failures of run {run.id} whose cause is “{name}”", failures.run_failed_with(run, cause),
                  {"run": run.id, "cause": cause})
