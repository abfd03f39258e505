"""The directory of an organization's mailboxes: adding one by hand, and removing mailboxes.

Removal revokes first: an authorized mailbox is revoked upstream through
`services.mailboxes.mailbox_revocation.revoke_mailbox` (the path the bulk engine uses too) and is removed only
once Cronofy confirmed. Deleting a mailbox deletes its timeline; the `mailboxes.removed` audit event
keeps the addresses and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from extensions import db
from models.connection import Connection
from models.mailbox import MAILBOX_KINDS, Mailbox, MailboxEvent
from models.organization import Organization
from services.platform import audit, events
from services.mailboxes.mailbox_import.normalize import (
    MAX_GROUP_LENGTH,
    MAX_NAME_LENGTH,
    AddressError,
    normalize_address,
    normalize_text,
)
from services.mailboxes.mailbox_connections import connection_for, serving_connections
from services.mailboxes.mailbox_revocation import HOLDS_TOKENS, MailboxRevocationError, holds_tokens, revoke_mailbox
from services.mailboxes.mailbox_states import record_event

# A synchronous removal revokes authorized mailboxes one upstream call at a time; beyond this many,
# the request would outlast any browser's patience (and the bulk engine is the tool for that).
MAX_SYNC_REMOVAL = 1000
_CHUNK = 500


class MailboxError(ValueError):
    """A directory change that cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class RemovalResult:
    """What a removal did: how many went, how many were revoked first, and which stayed and why."""

    removed: int = 0
    revoked: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RemovalPlan:
    """What removing a set of mailboxes would do, for the confirmation page."""

    total: int
    to_revoke: int
    sample: list[str]

    @property
    def too_large(self) -> bool:
        """Whether this is more than one synchronous removal takes."""
        return self.total > MAX_SYNC_REMOVAL


def add_mailbox(
    organization: Organization,
    *,
    email: str,
    name: str = "",
    kind: str = "user",
    group_name: str | None = None,
    connection: Connection | None = None,
    actor,
) -> Mailbox:
    """Add one mailbox by hand (status new); without a connection, the one serving its domain is used.

    :raises MailboxError: for a malformed address, an unknown kind, another organization's connection
        or an address already in the directory.
    """
    address = _address(email)
    if kind not in MAILBOX_KINDS:
        raise MailboxError(f"Unknown kind {kind!r}: choose user, shared or resource.")
    if connection is not None and connection.organization_id != organization.id:
        raise MailboxError("That connection belongs to another organization.")
    _require_absent(organization, address)
    connection = connection or _connection_for(organization, address)
    mailbox = Mailbox(
        organization_id=organization.id, email=address, name=_cell(name, "name", MAX_NAME_LENGTH),
        kind=kind, group_name=_cell(group_name or "", "group", MAX_GROUP_LENGTH) or None, source="manual",
        status="new", connection_id=connection.id if connection else None,
    )
    db.session.add(mailbox)
    db.session.flush()
    record_event(mailbox, "added", actor=actor, summary="Added by hand")
    events.record("mailbox.created", organization_id=organization.id, subject_type="mailbox", subject_id=mailbox.id)
    audit.record("mailbox.added", actor=actor, organization=organization, target=mailbox,
                 details={"email": address, "kind": kind})
    return mailbox


def _address(email: str) -> str:
    try:
        return normalize_address(email or "")
    except AddressError as exc:
        raise MailboxError(f"{(email or '').strip()[:80]!r} is not a mailbox address: {exc}.") from None


def _cell(value: str, label: str, limit: int) -> str:
    try:
        return normalize_text(value or "", label=label, limit=limit)
    except ValueError as exc:
        message = str(exc)
        raise MailboxError(message[:1].upper() + message[1:] + ".") from None


def _require_absent(organization: Organization, address: str) -> None:
    # The same mailbox may be written with another case of its local part (docs: mailbox_import.normalize).
    query = select(Mailbox.email).where(
        Mailbox.organization_id == organization.id, func.lower(Mailbox.email) == address.lower()
    )
    existing = db.session.scalar(query.limit(1))
    if existing is not None:
        raise MailboxError(f"{existing} is already in the directory.")


def _connection_for(organization: Organization, address: str) -> Connection | None:
    return connection_for(address, serving_connections(organization.id))


def removal_plan(organization: Organization, ids_query) -> RemovalPlan:
    """Count what removing the mailboxes whose ids `ids_query` selects would do."""
    scope = select(Mailbox).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(ids_query))
    total = db.session.scalar(select(func.count()).select_from(scope.subquery()))
    to_revoke = db.session.scalar(select(func.count()).select_from(scope.where(HOLDS_TOKENS).subquery()))
    sample = list(db.session.scalars(scope.with_only_columns(Mailbox.email).order_by(Mailbox.email).limit(20)))
    return RemovalPlan(total=total, to_revoke=to_revoke, sample=sample)


def remove_mailboxes(organization: Organization, mailbox_ids: Iterable[int], *, actor) -> RemovalResult:
    """Remove mailboxes of the organization, revoking authorized ones upstream first.

    A mailbox whose revocation Cronofy does not confirm stays, listed in `failed` with the reason.
    :raises MailboxError: when more than MAX_SYNC_REMOVAL mailboxes are asked for at once.
    """
    wanted = sorted({int(i) for i in mailbox_ids})
    if len(wanted) > MAX_SYNC_REMOVAL:
        raise MailboxError(
            f"{len(wanted):,} mailboxes is more than one removal takes ({MAX_SYNC_REMOVAL:,} at most). "
            "Narrow the filter and remove them in parts."
        )
    mailboxes = _load(organization, wanted)
    revoked, failed = _revoke_authorized(mailboxes, actor)
    gone = [m for m in mailboxes if m.email not in {email for email, _ in failed}]
    _delete(gone)
    result = RemovalResult(removed=len(gone), revoked=revoked, failed=failed)
    if gone or failed:
        audit.record("mailboxes.removed", actor=actor, organization=organization, details={
            "count": result.removed, "revoked": result.revoked, "emails": [m.email for m in gone],
            "failed": [{"email": email, "reason": reason} for email, reason in failed],
        })
    return result


def _load(organization: Organization, ids: Sequence[int]) -> list[Mailbox]:
    found: list[Mailbox] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        found += db.session.scalars(
            select(Mailbox).where(Mailbox.organization_id == organization.id, Mailbox.id.in_(chunk))
        )
    return found


def _revoke_authorized(mailboxes: list[Mailbox], actor) -> tuple[int, list[tuple[str, str]]]:
    revoked, failed = 0, []
    for mailbox in mailboxes:
        if not holds_tokens(mailbox):
            continue
        try:
            revoke_mailbox(mailbox, actor=actor)
        except MailboxRevocationError as exc:
            failed.append((mailbox.email, str(exc)))
        else:
            revoked += 1
    return revoked, failed


def _delete(mailboxes: list[Mailbox]) -> None:
    ids = [m.id for m in mailboxes]
    db.session.flush()
    # Before the rows go: the events carry each mailbox's last state.
    for organization_id in sorted({m.organization_id for m in mailboxes}):
        events.record_many("mailbox.removed", organization_id=organization_id, subject_type="mailbox",
                           subject_ids=[m.id for m in mailboxes if m.organization_id == organization_id])
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        db.session.execute(delete(MailboxEvent).where(MailboxEvent.mailbox_id.in_(chunk)))
        db.session.execute(delete(Mailbox).where(Mailbox.id.in_(chunk)), execution_options={"synchronize_session": False})
    for mailbox in mailboxes:
        db.session.expunge(mailbox)
