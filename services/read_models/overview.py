"""What an organization's overview shows: where it stands and the one next step that matters."""

from __future__ import annotations

from dataclasses import dataclass

from models.authorization import AuthorizationRun
from models.connection import Connection
from models.organization import Organization
from services.accounts import organizations
from services.connections import connections
from services.engine import runs
from services.mailboxes import mailbox_query
from services.platform.wording import plural
from services.read_models import failures
from services.read_models.failures import CauseGroup

ACTIVE_RUN_STATUSES = ("running", "awaiting_confirmation", "paused")


@dataclass(frozen=True)
class NextStep:
    """The step the overview puts first: a title, why, and where to go (an endpoint and its arguments)."""

    key: str
    title: str
    text: str
    endpoint: str | None = None
    label: str | None = None
    args: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Overview:
    summary: organizations.OrganizationSummary
    connections: list[Connection]
    mailbox_counts: dict[str, int]
    latest_run: AuthorizationRun | None
    next_step: NextStep
    failures: list[CauseGroup]

    @property
    def mailbox_total(self) -> int:
        return sum(self.mailbox_counts.values())

    @property
    def active_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.status == "active"]


def overview_for(organization: Organization) -> Overview:
    """Gather the overview of an organization: a handful of indexed queries, whatever its size."""
    summary = organizations.summary(organization)
    linked = connections.list_for(organization)
    counts = mailbox_query.status_counts(organization, mailbox_query.MailboxFilter())
    recent = runs.runs_for(organization, limit=1)
    latest = recent[0] if recent else None
    return Overview(summary, linked, counts, latest, next_step(summary, linked, counts, latest),
                    failures.mailbox_failures(organization) if counts.get("failed") else [])


def next_step(summary, linked: list[Connection], counts: dict[str, int], latest: AuthorizationRun | None) -> NextStep:
    """Return the first thing that needs doing, in the order the work happens."""
    broken = [c for c in linked if c.status == "needs_reauth"]
    if broken:
        return NextStep("reconnect", f"Reconnect {broken[0].label}",
                        "Cronofy no longer accepts this connection's authorization, so its mailboxes cannot get fresh "
                        "tokens. Run the consent again; mailboxes and their history are kept.",
                        "connections.show", "Open the connection", (("connection_id", broken[0].id),))
    if not any(c.status == "active" for c in linked):
        return NextStep("connect", "Connect your organization's calendars",
                        "Nothing is connected yet. Connect your Google Workspace or Microsoft tenant through Cronofy's "
                        "consent page; then import mailboxes and authorize them in bulk.",
                        "onboarding.start", "Connect your calendars")
    if latest is not None and latest.status in ACTIVE_RUN_STATUSES:
        return NextStep("run", "A bulk authorization is under way",
                        f"Run {latest.id} is {latest.status.replace('_', ' ')}. Follow its progress, or act on it.",
                        "runs.show", "Open the run", (("run_id", latest.id),))
    total = sum(counts.values())
    if total == 0:
        return NextStep("mailboxes", "Bring in your mailboxes",
                        "Import your users' and shared mailboxes from a CSV file or a pasted list, and sync rooms and "
                        "equipment from the connection.", "mailboxes.import_list", "Import mailboxes")
    waiting = counts.get("new", 0) + counts.get("failed", 0) + counts.get("needs_attention", 0)
    if waiting:
        verb = "is" if waiting == 1 else "are"
        return NextStep("authorize", f"{plural(waiting, 'mailbox')} {verb} not authorized yet",
                        "Start a bulk authorization for everything not yet authorized, or pick a group first for a "
                        "staged rollout.", "runs.new", "Authorize mailboxes", (("everything", 1),))
    authorized = counts.get("authorized", 0)
    every = "The one mailbox asked for is" if authorized == 1 else f"All {plural(authorized, 'mailbox')} asked for are"
    return NextStep("done", "Everything is connected",
                    f"{every} authorized. Import newcomers as people join; the vendor's services fetch fresh tokens "
                    "as they need them.")
