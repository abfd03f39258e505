"""Helpers shared by several test modules (add to this file; keep each helper small)."""

from __future__ import annotations

import itertools
import secrets
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import delete, insert, select, update

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.organization import Organization
from services.accounts import sessions
from services.connections import connections
from services.mailboxes.mailbox_states import transition
from services.platform import upstream
from services.platform.crypto import cipher_for
from tests.contract.sandbox_support import DELEGATED_SCOPE, SA_SCOPE, CallbackReceiver, approve, delegated_account

CONSENT_REDIRECT_URI = "http://127.0.0.1:5000/connect/callback"
_MAILBOX_NUMBERS = itertools.count(1)


def make_connection(organization: Organization, *, domain: str = "acme.example", status: str = "active") -> Connection:
    """Create (and commit) a connection row of organization for domain, without the consent flow."""
    connection = Connection(
        organization_id=organization.id, provider="google", data_center=organization.data_center,
        status=status, domain=domain,
    )
    db.session.add(connection)
    db.session.commit()
    return connection


def connect_sandbox(organization: Organization, sandbox, *, actor=None, domain: str = "acme.example",
                    scope: str = SA_SCOPE):
    """Connect a service account of domain through the sandbox's consent page; return (connection, tokens)."""
    query, _ = approve(sandbox, CONSENT_REDIRECT_URI, domain=domain, scope=scope)
    client = upstream.client_for(organization.data_center)
    tokens = client.exchange_code(query["code"], CONSENT_REDIRECT_URI)
    outcome = connections.record_connection(
        organization=organization, tokens=tokens, info=client.userinfo(tokens.access_token), provider="google",
        data_center=organization.data_center, requested_scope=scope, requested_delegated_scope=DELEGATED_SCOPE,
        actor=actor,
    )
    db.session.commit()
    return outcome.connection, tokens


def make_mailbox(organization: Organization, **overrides) -> Mailbox:
    """Create (and commit) a mailbox of organization; any field may be overridden."""
    n = next(_MAILBOX_NUMBERS)
    fields = {"email": f"mailbox{n}@customer.example", "name": f"Mailbox {n}",
              "kind": "user", "source": "import", "status": "new"}
    fields.update(overrides)
    mailbox = Mailbox(organization_id=organization.id, **fields)
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def seed_mailboxes(organization: Organization, count: int, *, start: int = 0, **fields) -> None:
    """Bulk-insert `count` mailboxes named user00000@seed.example, ... (fields apply to all), and commit."""
    now = utcnow()
    rows = [
        {"organization_id": organization.id, "email": f"user{n:05d}@seed.example", "name": f"User {n:05d}",
         "kind": "user", "source": "import", "status": "new", "status_changed_at": now, "created_at": now,
         "updated_at": now, **fields}
        for n in range(start, start + count)
    ]
    for begin in range(0, len(rows), 5000):
        db.session.execute(insert(Mailbox), rows[begin:begin + 5000])
    db.session.commit()


def authorize_mailbox(mailbox: Mailbox, sandbox, sa_token: str) -> dict:
    """Get delegated access to mailbox through the sandbox (callback to a loopback receiver), store the
    tokens encrypted on it and move it to authorized; return the upstream's token response."""
    receiver = CallbackReceiver()
    try:
        tokens = delegated_account(sandbox, receiver, sa_token, mailbox.email)
    finally:
        receiver.stop()
    cipher = cipher_for(current_app.config)
    mailbox.access_token_encrypted = cipher.encrypt(tokens["access_token"])
    mailbox.refresh_token_encrypted = cipher.encrypt(tokens["refresh_token"])
    mailbox.account_id = tokens.get("account_id") or tokens.get("sub")
    transition(mailbox, "requested", kind="requested", summary="Delegated access requested")
    transition(mailbox, "authorized", kind="callback", summary="Delegated access granted")
    db.session.commit()
    return tokens


@contextmanager
def sandbox_directory_changed(sandbox, domain: str, *, new_rooms=(), retired=()):
    """For the block, give the sandbox's `domain` extra rooms ((email, name, capacity) triples) and stop it
    listing the `retired` addresses; the directory is put back afterwards."""
    from sandbox.models import Domain, Member

    sessions = sandbox.app.extensions["sandbox"].Session
    with sessions() as session:
        home = session.scalar(select(Domain).where(Domain.name == domain))
        session.add_all(
            Member(domain_id=home.id, email=email, name=name, kind="room", capacity=capacity,
                   building_name=f"{home.city} Annex", floor_name="2", floor_section="East")
            for email, name, capacity in new_rooms
        )
        kinds = {m.email: m.kind for m in session.scalars(select(Member).where(Member.email.in_(retired)))}
        session.execute(update(Member).where(Member.email.in_(retired)).values(kind="retired"))
        session.commit()
    try:
        yield
    finally:
        with sessions() as session:
            session.execute(delete(Member).where(Member.email.in_([email for email, _, _ in new_rooms])))
            for email, kind in kinds.items():
                session.execute(update(Member).where(Member.email == email).values(kind=kind))
            session.commit()


def put_signed_in(cookie_session, user) -> None:
    """Sign user in on a test client's cookie session (from session_transaction), with a live session record."""
    started = sessions.start_session(user)
    db.session.commit()
    cookie_session["_user_id"] = user.get_id()
    cookie_session["_fresh"] = True
    cookie_session["_sid"] = started.token


@contextmanager
def scratch_postgres_database(test_database_url: str, prefix: str):
    """Yield the URL of a brand-new PostgreSQL database on the test server; drop it afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from config import _normalise_database_url

    base = make_url(_normalise_database_url(test_database_url))
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def revoke_all_upstream(sandbox, **filters) -> None:
    """Revoke, at the sandbox, every active authorization of the delegated accounts matching filters.

    The session's sandbox is shared: earlier tests leave authorizations of the same mailboxes behind,
    and a test that counts what Cronofy holds per mailbox starts from none.
    """
    client = upstream.client_for("us")
    for account in sandbox.grants(status="active", **filters):
        client.revoke(sub=account["account_id"])
