"""How each subject appears in the event log: exactly as the API returns it (services/platform/events.py).

The event writer sits below every domain and knows no schema; at start-up the API registers, per
subject type, a function that reads the subjects by id and dumps them with the API's own schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update

from extensions import db
from models.authorization import AuthorizationRun
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.platform import events, statements


# An import adds up to 100,000 mailboxes in one transaction: their data is read this many at a time.
_CHUNK = 5_000


def _current(model, ids: Sequence[int]):
    """Yield the rows as stored now: bulk UPDATEs bypass the session, so objects it holds may be stale."""
    ids = list(ids)
    for start in range(0, len(ids), _CHUNK):
        yield from db.session.scalars(select(model).where(model.id.in_(ids[start:start + _CHUNK]))
                                      .execution_options(populate_existing=True))


@functools.cache
def _mailbox_view():
    """The schema and the prebuilt read of mailboxes (plain rows): the exchange writes an event per mailbox."""
    from blueprints.api.mailboxes import MailboxSchema, dump_mailbox

    table = Mailbox.__table__
    return MailboxSchema(), dump_mailbox, select(table).where(table.c.id.in_(bindparam("p_ids", expanding=True)))


def _mailboxes(ids: Sequence[int]) -> dict[int, dict]:
    schema, dump_mailbox, read = _mailbox_view()
    ids, shown = list(ids), {}
    for start in range(0, len(ids), _CHUNK):
        for row in statements.execute(read, {"p_ids": ids[start:start + _CHUNK]}):
            shown[row.id] = schema.dump(dump_mailbox(row))
    return shown


def _connections(ids: Sequence[int]) -> dict[int, dict]:
    from blueprints.api.connections import ConnectionSchema, _dump

    schema = ConnectionSchema()
    return {connection.id: schema.dump(_dump(connection)) for connection in _current(Connection, ids)}


def _runs(ids: Sequence[int]) -> dict[int, dict]:
    from blueprints.api.run_schemas import RunSchema, dump_run
    from services.read_models.run_snapshot import run_snapshot

    schema = RunSchema()
    rows = _current(AuthorizationRun, ids)
    return {run.id: schema.dump(dump_run(run, run_snapshot(run, size=1, provider=run.connection.provider)))
            for run in rows}


def _organizations(ids: Sequence[int]) -> dict[int, dict]:
    from blueprints.api.organizations import OrganizationSchema, _dump
    from services.read_models.organization_state import states_for

    schema = OrganizationSchema()
    states = states_for(ids)
    rows = _current(Organization, ids)
    return {org.id: schema.dump(_dump(org, states[org.id])) for org in rows if org.id in states}


def _webhook_endpoints(ids: Sequence[int]) -> dict[int, dict]:
    from blueprints.api.webhook_schemas import WebhookEndpointSchema, dump_endpoint
    from models.webhook import WebhookEndpoint
    from services.webhooks.endpoints import previous_secrets_valid_until

    schema = WebhookEndpointSchema()
    rows = db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
    return {endpoint.id: schema.dump(dump_endpoint(endpoint, previous_secrets_valid_until(endpoint)))
            for endpoint in rows}


@functools.cache
def _announced_and_current():
    """Each organization's announced and current state, one prebuilt statement (it runs with every event)."""
    from services.read_models.organization_state import state_expression

    table = Organization.__table__
    return (select(table.c.id, table.c.announced_state, state_expression(table.c.id))
            .where(table.c.id.in_(bindparam("p_ids", expanding=True))))


def _announce_state_changes(organization_ids: set[int]) -> None:
    """Write organization.state_changed for each organization whose state moved since it was last announced.

    Runs in every transaction that writes events, for the organizations they concern: one statement
    (organization_state.state_expression) unless a state changed. An organization never announced
    (None: created before the event log, or just now) has its state stored without an event.
    """
    if not organization_ids:
        return
    db.session.flush()
    rows = statements.execute(_announced_and_current(), {"p_ids": sorted(organization_ids)}).all()
    for organization_id, announced, state in rows:
        if state == announced:
            continue
        # Core UPDATE: the announcement is no change of the organization's own (updated_at stays).
        db.session.execute(update(Organization).where(Organization.id == organization_id)
                           .values(announced_state=state, updated_at=Organization.updated_at)
                           .execution_options(synchronize_session=False))
        if announced is not None:
            events.record("organization.state_changed", organization_id=organization_id,
                          subject_type="organization", subject_id=organization_id)


def register() -> None:
    events.register_subject("mailbox", _mailboxes)
    events.register_subject("connection", _connections)
    events.register_subject("run", _runs)
    events.register_subject("organization", _organizations)
    events.register_subject("webhook_endpoint", _webhook_endpoints)
    events.register_before_write(_announce_state_changes)
