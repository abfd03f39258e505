"""Filling in "Acme (demo data)" one step at a time, each step the one an admin would take next.

`advance()` looks at what the organization holds and does the first thing still missing: connect
acme.example through the wizard's consent (approved at the sandbox), sync its rooms and shared
mailboxes, import the people list, start a bulk authorization (a canary, then the rest) and wait for
the engine to finish it, then revoke one authorized person's access. It flushes; the caller commits,
enqueues the run's pump when the step asks for it, and calls again after `Step.wait` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationRun
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, User
from services.accounts import organizations
from services.connections.connections import ConnectionActionError
from services.demo import people, sandbox_admin
from services.engine import runs
from services.mailboxes import mailbox_revocation, resource_sync
from services.mailboxes.mailbox_import import commit as import_commit
from services.mailboxes.mailbox_import import preview as import_preview
from services.mailboxes.mailbox_import.encoding import ImportFileError
from services.onboarding import catalog, consent
from services.onboarding import wizard as wizards
from services.platform import upstream

ORGANIZATION_NAME = "Acme (demo data)"
DOMAIN = "acme.example"
DEFAULT_SIZE = 250
PROVIDER = "google"
SA_SCOPE = "service_account/accounts/manage service_account/resources/manage"
DELEGATED_SCOPE = "read_write"  # free/busy-only mailboxes refuse it: one of the demo's failure causes
RETURN_PATH = "/connect/callback"  # the console's one registered return address (blueprints/onboarding)
RUN_SOURCE = "every mailbox"
RUN_POLL_SECONDS = 2.0
FINISHED_RUN = ("completed", "cancelled")


class DemoError(RuntimeError):
    """A step could not be taken this time; the message says why. Trying again later may work."""


@dataclass(frozen=True)
class Step:
    """What one call of advance() did, and what the caller does next."""

    summary: str
    done: bool = False
    wait: float | None = None  # look again after this many seconds (None: go on at once)
    pump_run: int | None = None  # enqueue this run's pump after the commit
    changed: bool = True  # False: it only looked (the run is still under way)


def find_organization() -> Organization | None:
    """Return the demo organization, if seeded."""
    return db.session.scalar(select(Organization).where(Organization.name == ORGANIZATION_NAME)
                             .order_by(Organization.id).limit(1))


def ensure_organization() -> Organization:
    """Return the demo organization, creating it (empty: the worker fills it in) when missing."""
    return find_organization() or organizations.create_organization(ORGANIZATION_NAME, "us")


def is_complete(organization: Organization) -> bool:
    """Tell whether the demo organization holds everything: a finished run and a revoked mailbox."""
    run = _latest_run(organization)
    return run is not None and run.status in FINISHED_RUN and _revoked(organization) is not None


def _admin(organization: Organization) -> User | None:
    return db.session.scalar(select(User).where(User.organization_id == organization.id, User.role == ROLE_ORG_ADMIN,
                                                User.is_active.is_(True)).order_by(User.id).limit(1))


def _active_connection(organization: Organization) -> Connection | None:
    return db.session.scalar(select(Connection).where(Connection.organization_id == organization.id,
                                                      Connection.status == "active").order_by(Connection.id).limit(1))


def _latest_run(organization: Organization) -> AuthorizationRun | None:
    return db.session.scalar(select(AuthorizationRun).where(AuthorizationRun.organization_id == organization.id,
                                                            AuthorizationRun.action == "authorize")
                             .order_by(AuthorizationRun.id.desc()).limit(1))


def _revoked(organization: Organization) -> Mailbox | None:
    return db.session.scalar(select(Mailbox).where(Mailbox.organization_id == organization.id,
                                                   Mailbox.status == "revoked").limit(1))


def _mailbox_count(organization: Organization, **where) -> int:
    query = select(func.count()).select_from(Mailbox).where(Mailbox.organization_id == organization.id)
    for column, value in where.items():
        query = query.where(getattr(Mailbox, column) == value)
    return db.session.scalar(query)


def advance(organization_id: int, *, size: int = DEFAULT_SIZE) -> Step:
    """Take the demo organization's next missing step (flushing); return what was done and what comes next.

    :raises DemoError: when a step failed this time (nothing of it is kept once the caller rolls back).
    :raises sandbox_admin.SandboxUnavailable: while the sandbox does not answer.
    """
    organization = db.session.get(Organization, organization_id)
    if organization is None:
        return Step("The demo organization is gone; nothing to do.", done=True)
    if not upstream.is_sandbox():
        return Step("Cronofy credentials are configured, so the demo (which needs the sandbox) is left empty.",
                    done=True)
    actor = _admin(organization)
    connection = _active_connection(organization)
    if connection is None:
        return _connect(organization, actor)
    if resource_sync.last_sync(connection) is None:
        return _sync(connection, actor)
    if _mailbox_count(organization, source="import") == 0 and _mailbox_count(organization) < size:
        return _import(organization, connection, actor, size - _mailbox_count(organization))
    run = _latest_run(organization)
    if run is None or run.status not in FINISHED_RUN:
        return _run(organization, connection, actor, run, size)
    if _revoked(organization) is None:
        return _revoke_one(organization, actor)
    return Step(f"{ORGANIZATION_NAME} is complete.", done=True)


def _connect(organization: Organization, actor) -> Step:
    """Walk the wizard to its consent, approve it at the sandbox as acme.example's admin, and complete it."""
    wizard = wizards.start_wizard(organization, actor=actor)
    wizards.save_provider(wizard, provider=PROVIDER)
    wizards.save_checklist(wizard, [item.id for item in catalog.provider(PROVIDER).checklist])
    wizards.save_scopes(wizard, scope=SA_SCOPE, delegated_scope=DELEGATED_SCOPE)
    started = consent.begin_consent(wizard, redirect_uri=upstream.callback_base_url() + RETURN_PATH, actor=actor)
    attempt = started.attempt
    params = {"redirect_uri": attempt.redirect_uri, "scope": attempt.scope,
              "delegated_scope": attempt.delegated_scope, "state": started.state}
    if hint := consent.provider_hint(attempt):
        params["provider_name"] = hint
    try:
        back = sandbox_admin.approve_consent(data_center=attempt.data_center, params=params, domain=DOMAIN,
                                             provider=hint or "")
        result = consent.complete_consent(consent.claim_consent(back.get("state")), back.get("code"))
    except (sandbox_admin.SandboxRefused, consent.ConsentProblem) as exc:
        raise DemoError(f"Connecting {DOMAIN} failed: {exc}") from exc
    return Step(f"Connected {result.outcome.connection.domain} through the sandbox's consent page.")


def _sync(connection: Connection, actor) -> Step:
    try:
        result = resource_sync.sync_resources(connection, actor=actor)
    except (resource_sync.ResourceSyncError, ConnectionActionError) as exc:
        raise DemoError(f"Syncing the rooms of {DOMAIN} failed: {exc}") from exc
    return Step(f"Synced {len(result.new)} rooms, equipment and shared mailboxes.")


def _import(organization: Organization, connection: Connection, actor, count: int) -> Step:
    rows = people.people(DOMAIN, count)
    try:
        preview = import_preview.create_preview(organization, people.as_csv(rows), source="csv",
                                                filename="acme-people.csv", connection=connection, actor=actor)
        result = import_commit.commit_import(preview, actor=actor)
    except (ImportFileError, import_commit.ImportStateError) as exc:
        raise DemoError(f"Importing the people list failed: {exc}") from exc
    return Step(f"Imported {result.added} people in {len(people.DEPARTMENTS)} departments.")


def _run(organization: Organization, connection: Connection, actor, run: AuthorizationRun | None, size: int) -> Step:
    """Start the bulk authorization (a canary wave first), accept its waves, and wait for the engine."""
    try:
        if run is None:
            mailboxes = select(Mailbox.id).where(Mailbox.organization_id == organization.id)
            run = runs.start_run(organization, connection=connection, mailbox_ids_select=mailboxes,
                                 scope=DELEGATED_SCOPE, actor=actor, source=RUN_SOURCE, canary_size=max(1, size // 10),
                                 auto_continue=True, failure_threshold=0.5)
            return Step(f"Started run {run.id} over {run.total} mailboxes.", wait=RUN_POLL_SECONDS, pump_run=run.id)
        if run.status == "paused":
            runs.resume_run(run, actor=actor)
            return Step(f"Resumed run {run.id} after its pause.", wait=RUN_POLL_SECONDS, pump_run=run.id)
        if run.status == "awaiting_confirmation":
            runs.confirm_next_wave(run, actor=actor)
            return Step(f"Confirmed the next wave of run {run.id}.", wait=RUN_POLL_SECONDS, pump_run=run.id)
    except runs.RunError as exc:
        raise DemoError(f"The bulk authorization could not go on: {exc}") from exc
    return Step(f"Run {run.id} is under way.", wait=RUN_POLL_SECONDS, changed=False)


def _revoke_one(organization: Organization, actor) -> Step:
    mailbox = db.session.scalar(select(Mailbox).where(Mailbox.organization_id == organization.id,
                                                      Mailbox.status == "authorized", Mailbox.kind == "user")
                                .order_by(Mailbox.id).limit(1))
    if mailbox is None:
        return Step("No mailbox was authorized, so none was revoked.", done=True)
    try:
        mailbox_revocation.revoke_mailbox(mailbox, actor=actor)
    except mailbox_revocation.MailboxRevocationError as exc:
        raise DemoError(f"Revoking {mailbox.email} failed: {exc}") from exc
    return Step(f"Revoked {mailbox.email}, as an admin would for a leaver.")
