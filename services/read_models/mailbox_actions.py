"""What the mailbox page offers for one mailbox: authorize, retry as the fix suggests, revoke, the checklist.

Spans domains: the mailbox's state and failure guide (mailboxes), the runs that authorize it (engine),
the scopes its connection was granted (onboarding's catalogue). The page's buttons and the action
views both ask `for_mailbox`, so a button is shown exactly when its request would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from extensions import db
from models.authorization import AuthorizationAttempt
from models.connection import Connection
from models.mailbox import Mailbox
from services.engine import runs
from services.mailboxes import failure_guide
from services.mailboxes.mailbox_connections import connection_for, serving_connections
from services.mailboxes.mailbox_revocation import holds_tokens
from services.onboarding import catalog



@dataclass(frozen=True)
class Retry:
    """Authorizing again with the access the fix suggests."""

    scope: str
    label: str
    narrower: bool  # the fix asks for less than the last attempt did


@dataclass(frozen=True)
class MailboxActions:
    """The actions a mailbox's state allows, and why authorizing is not possible when it is not."""

    connection: Connection | None  # the active connection to authorize through
    live_run_id: int | None  # the run authorizing or revoking it right now
    can_authorize: bool
    authorize_problem: str | None
    retry: Retry | None
    can_revoke: bool
    checklist_url: str | None
    checklist_label: str | None
    last_scope: str | None


def for_mailbox(mailbox: Mailbox) -> MailboxActions:
    """Return what the mailbox page may offer for mailbox now."""
    connection = authorizing_connection(mailbox)
    live_run_id = _live_run_id(mailbox)
    last_scope = _last_scope(mailbox)
    problem = _authorize_problem(mailbox, connection, live_run_id)
    guidance = _guidance(mailbox)
    retry = _retry(guidance, connection, last_scope) if problem is None and guidance is not None else None
    return MailboxActions(
        connection=connection, live_run_id=live_run_id, can_authorize=problem is None, authorize_problem=problem,
        retry=retry, can_revoke=live_run_id is None and holds_tokens(mailbox),
        checklist_url=guidance.checklist_url if guidance else None,
        checklist_label=guidance.checklist_label if guidance else None, last_scope=last_scope,
    )


def authorizing_connection(mailbox: Mailbox) -> Connection | None:
    """Return the active connection a run for mailbox goes through: its own, else its domain's."""
    if mailbox.connection is not None:
        return mailbox.connection if mailbox.connection.status == "active" else None
    found = connection_for(mailbox.email, serving_connections(mailbox.organization_id))
    return found if found is not None and found.status == "active" else None


def within_grant(connection: Connection, scope: str | None) -> bool:
    """Return whether scope asks for no more than the connection may hand out."""
    granted = connection.granted_delegated_scope or connection.requested_delegated_scope or ""
    return bool(scope) and catalog.expand_scope(scope) <= catalog.expand_scope(granted)


def _authorize_problem(mailbox: Mailbox, connection: Connection | None, live_run_id: int | None) -> str | None:
    if live_run_id is not None:
        return f"It is in run #{live_run_id} right now."
    if mailbox.status not in runs.AUTHORIZABLE:
        return f"It is {mailbox.status.replace('_', ' ')}."
    if connection is None:
        if mailbox.connection is not None:
            return (f"Its connection to {mailbox.connection.label} is {mailbox.connection.status.replace('_', ' ')}; "
                    "reconnect it first.")
        domain = mailbox.email.rpartition("@")[2]
        return f"No active connection serves {domain}. Connect it first."
    return None


def _guidance(mailbox: Mailbox) -> failure_guide.Guidance | None:
    if mailbox.status not in ("failed", "needs_attention") or not mailbox.last_error_key:
        return None
    provider = mailbox.provider_name or (mailbox.connection.provider if mailbox.connection else None)
    return failure_guide.explain(mailbox.last_error_key, mailbox.last_error_description, provider)


def _retry(guidance: failure_guide.Guidance, connection: Connection, last_scope: str | None) -> Retry | None:
    """Return the retry the failure's fix suggests: the access it names (free/busy only after
    `unable_to_grant_scope`), or the same access again when retrying as it is can help."""
    narrower = guidance.suggested_scope
    if narrower and within_grant(connection, narrower) and (last_scope or "").split() != [narrower]:
        return Retry(narrower, f"Retry with {_scope_words(narrower).lower()}", narrower=True)
    if not guidance.retryable:
        return None
    scope = last_scope if within_grant(connection, last_scope) else connection.granted_delegated_scope
    return Retry(scope, "Retry", narrower=False) if scope else None


def _scope_words(scope: str) -> str:
    entry = catalog.DELEGATED_SCOPES.get(scope)
    return entry.label if entry else scope


def _live_run_id(mailbox: Mailbox) -> int | None:
    return db.session.scalar(
        select(AuthorizationAttempt.run_id).where(AuthorizationAttempt.live_mailbox_id == mailbox.id).limit(1)
    )


def _last_scope(mailbox: Mailbox) -> str | None:
    """Return the access the mailbox's latest authorization attempt asked for."""
    return db.session.scalar(
        select(AuthorizationAttempt.scope).where(
            AuthorizationAttempt.mailbox_id == mailbox.id, AuthorizationAttempt.scope != "")
        .order_by(AuthorizationAttempt.id.desc()).limit(1)
    )
