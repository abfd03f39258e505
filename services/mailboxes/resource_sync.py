"""Resource sync: the rooms, equipment and shared mailboxes a connection's tenant lists (§3.9).

New resources are added (source resource_sync), changed ones updated, and ones no longer listed are
reported as vanished and offered for removal; they are never removed silently.

The listing has no kind field (§3.9). Capacity and location are always asked for, and rooms and
equipment come with at least one of them, so an entry with neither is taken as a shared mailbox
(kind `shared`), the others as kind `resource`. A mailbox already in the directory keeps the kind
it has (an admin's import says better than a guess).

A name an admin gave (by import or by hand) is kept: `upstream_name` records the name the listing
gives beside it, and the result page and the timeline show both. A name that came from the listing
follows the listing's changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from extensions import db
from models.audit import AuditEvent
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.connections import connections
from services.cronofy import CronofyError, ForbiddenError, Resource
from services.mailboxes.mailbox_import.normalize import AddressError, normalize_address
from services.mailboxes.mailbox_revocation import explain
from services.mailboxes.mailbox_states import record_event
from services.onboarding.providers import provider
from services.platform import audit, events, upstream
from services.platform.crypto import TokenDecryptionError

SYNCED = "resources.synced"
DETAILS = ("capacity", "location")
# The audit event keeps the addresses of what changed; a tenant's rooms are counted in hundreds.
MAX_LISTED = 2000
_CHUNK = 500


class ResourceSyncError(RuntimeError):
    """The resources could not be listed; the message says why and what to do."""


@dataclass(frozen=True)
class SyncResult:
    """The addresses a sync added, updated and found vanished, and how many were already up to date."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    kept_names: list[str] = field(default_factory=list)


def sync_resources(connection: Connection, *, actor) -> SyncResult:
    """List the connection's resources upstream and bring the directory in line; audit the result.

    :raises ResourceSyncError: (or `connections.ConnectionActionError`) when nothing could be listed;
        nothing is changed then.
    """
    listed, skipped = _listed(connection)
    known = _known(connection, list(listed))
    new, updated, unchanged = [], [], 0
    for address, resource in listed.items():
        mailbox = known.get(address)
        if mailbox is None:
            new.append(_add(connection, address, resource))
        elif _apply(mailbox, resource, connection):
            updated.append(mailbox)
        else:
            unchanged += 1
    db.session.flush()
    _record(new, "resource_synced", "Found by resource sync", actor)
    events.record_many("mailbox.created", organization_id=connection.organization_id, subject_type="mailbox",
                       subject_ids=[m.id for m in new])
    _record(updated, "resource_updated", "Details updated by resource sync", actor)
    vanished = sorted(m.email for m in known.values() if m.email not in listed and m.source == "resource_sync")
    result = SyncResult(new=sorted(m.email for m in new), updated=sorted(m.email for m in updated),
                        vanished=vanished, unchanged=unchanged, skipped=skipped,
                        kept_names=sorted(m.email for m in updated if has_own_name(m)))
    _audit(connection, result, actor)
    return result


def _listed(connection: Connection) -> tuple[dict[str, Resource], list[str]]:
    try:
        token = connections.fresh_access_token(connection.id)
    except TokenDecryptionError as exc:
        raise ResourceSyncError(
            "This connection's stored token cannot be decrypted with the configured keys. Reconnect it."
        ) from exc
    try:
        with upstream.client_for(connection.data_center) as client:
            resources = client.list_resources(token, include_details=DETAILS)
    except ForbiddenError as exc:
        raise ResourceSyncError(
            "Cronofy refused to list resources: the service account was not granted "
            "service_account/resources/manage. Reconnect it with that scope."
        ) from exc
    except CronofyError as exc:
        raise ResourceSyncError(f"The resources could not be listed. {explain(exc)} Nothing was changed.") from exc
    listed, skipped = {}, []
    for resource in resources:
        try:
            listed[normalize_address(resource.email)] = resource
        except AddressError:
            skipped.append(resource.email[:320])
    return listed, skipped


def _known(connection: Connection, addresses: list[str]) -> dict[str, Mailbox]:
    """Return the organization's mailboxes that are listed now or were synced through this connection."""
    in_org = Mailbox.organization_id == connection.organization_id
    synced_here = select(Mailbox).where(
        in_org, Mailbox.connection_id == connection.id, Mailbox.source == "resource_sync"
    )
    found = {m.email: m for m in db.session.scalars(synced_here)}
    for start in range(0, len(addresses), _CHUNK):
        query = select(Mailbox).where(in_org, Mailbox.email.in_(addresses[start:start + _CHUNK]))
        found.update((m.email, m) for m in db.session.scalars(query))
    return found


def location_text(resource: Resource) -> str | None:
    """Return a resource's location as one line, e.g. "Berlin HQ, floor 3, North · Berlin, DE"."""
    inside = [resource.building_name, f"floor {resource.floor_name}" if resource.floor_name else None,
              resource.floor_section]
    outside = [resource.locality, resource.country]
    parts = [", ".join(p for p in inside if p), ", ".join(p for p in outside if p)]
    text = " · ".join(p for p in parts if p)
    return text[:300] or None


def listed_kind(resource: Resource) -> str:
    """Return the kind of a listed entry: `resource` with a capacity or a location, else `shared`."""
    return "resource" if resource.capacity is not None or location_text(resource) else "shared"


def has_own_name(mailbox: Mailbox) -> bool:
    """Return whether the mailbox's name was given by an admin and differs from the listing's."""
    return bool(mailbox.name) and mailbox.upstream_name is not None and mailbox.name != mailbox.upstream_name


def _fields(resource: Resource, address: str) -> dict:
    return {"upstream_name": (resource.name or address)[:200], "capacity": resource.capacity,
            "location": location_text(resource)}


def _add(connection: Connection, address: str, resource: Resource) -> Mailbox:
    fields = _fields(resource, address)
    mailbox = Mailbox(
        organization_id=connection.organization_id, connection_id=connection.id, email=address,
        kind=listed_kind(resource), source="resource_sync", status="new", name=fields["upstream_name"], **fields,
    )
    db.session.add(mailbox)
    return mailbox


def _apply(mailbox: Mailbox, resource: Resource, connection: Connection) -> bool:
    """Update the mailbox's resource details (its name only if it came from the listing); return whether
    anything changed."""
    fields = _fields(resource, mailbox.email)
    if not mailbox.name or mailbox.name == mailbox.upstream_name:
        fields["name"] = fields["upstream_name"]
    changes = {k: v for k, v in fields.items() if getattr(mailbox, k) != v}
    if mailbox.connection_id is None:
        changes["connection_id"] = connection.id
    for name, value in changes.items():
        setattr(mailbox, name, value)
    return bool(changes)


def _record(mailboxes: list[Mailbox], kind: str, summary: str, actor) -> None:
    for mailbox in mailboxes:
        details = {"capacity": mailbox.capacity, "location": mailbox.location, "name": mailbox.name,
                   "upstream_name": mailbox.upstream_name}
        text = summary
        if has_own_name(mailbox):
            text += f"; the name you gave is kept (the directory calls it “{mailbox.upstream_name}”)"
        record_event(mailbox, kind, summary=text, actor=actor, details=details)


def _audit(connection: Connection, result: SyncResult, actor) -> None:
    audit.record(SYNCED, actor=actor, organization=connection.organization, target=connection, details={
        "domain": connection.domain,
        "counts": {"new": len(result.new), "updated": len(result.updated), "vanished": len(result.vanished),
                   "unchanged": result.unchanged, "skipped": len(result.skipped),
                   "kept_names": len(result.kept_names)},
        "new": result.new[:MAX_LISTED], "updated": result.updated[:MAX_LISTED],
        "vanished": result.vanished[:MAX_LISTED], "skipped": result.skipped[:MAX_LISTED],
    })


def last_sync(connection: Connection) -> AuditEvent | None:
    """Return the audit event of the connection's latest resource sync, if any."""
    query = select(AuditEvent).where(
        AuditEvent.organization_id == connection.organization_id, AuditEvent.action == SYNCED,
        AuditEvent.target_type == "Connection", AuditEvent.target_id == str(connection.id),
    )
    return db.session.scalar(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(1))


def directory_label(connection: Connection) -> str:
    """Return what the listing's names come from, for "in Google Workspace: Sales (shared)"."""
    chosen = provider(connection.provider)
    return chosen.label if chosen else "the directory"


def still_present(organization: Organization, addresses: list[str]) -> list[Mailbox]:
    """Return the organization's mailboxes among addresses (vanished resources not yet removed)."""
    found: list[Mailbox] = []
    for start in range(0, len(addresses), _CHUNK):
        query = select(Mailbox).where(
            Mailbox.organization_id == organization.id, Mailbox.email.in_(addresses[start:start + _CHUNK])
        )
        found += db.session.scalars(query)
    return sorted(found, key=lambda m: m.email)
