"""Mailbox events: written once by the service that makes each change, in its transaction, with the API's data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models.base import utcnow
from models.event import Event
from models.mailbox import Mailbox
from services.mailboxes import mailbox_directory, resource_sync
from services.mailboxes.mailbox_import.commit import commit_import
from services.mailboxes.mailbox_import.preview import create_preview
from services.mailboxes.mailbox_revocation import revoke_mailbox
from services.mailboxes.mailbox_states import transition
from services.mailboxes.mailbox_tokens import MailboxTokenError, fresh_mailbox_token
from services.mailboxes.mailbox_upsert import upsert_mailboxes
from services.platform import upstream
from tests.helpers import authorize_mailbox, connect_sandbox, make_mailbox
from tests.jobs.conftest import directory_emails


def _one(logged, event_type, mailbox_id):
    found = [e for e in logged(event_type) if e.subject_id == mailbox_id]
    assert len(found) == 1, [(e.type, e.subject_id) for e in logged()]
    return found[0]


def test_a_failed_mailbox_writes_mailbox_failed_once_with_its_cause(app, make_organization, logged):
    organization = make_organization()
    mailbox = make_mailbox(organization, external_id="u-7", status="requested")
    transition(mailbox, "failed", kind="authorization_failed", error_key="not_found",
               error_description="No such mailbox")
    db.session.commit()
    event = _one(logged, "mailbox.failed", mailbox.id)
    assert (event.organization_id, event.subject_type, event.subject_external_id) == (organization.id, "mailbox", "u-7")
    assert event.data["status"] == "failed" and event.data["error_key"] == "not_found" and event.data["cause"]


def test_a_rolled_back_change_writes_no_event_and_the_next_commit_does_not_carry_it(app, make_organization, logged):
    mailbox = make_mailbox(make_organization(), status="requested")
    transition(mailbox, "failed", kind="authorization_failed", error_key="x", error_description="y")
    db.session.rollback()
    db.session.commit()
    assert logged("mailbox.failed") == []
    assert db.session.get(Mailbox, mailbox.id).status == "requested"


def test_queued_and_requested_are_the_engines_own_steps_and_write_nothing(app, make_organization, logged):
    mailbox = make_mailbox(make_organization())
    transition(mailbox, "queued", kind="queued")
    transition(mailbox, "requested", kind="requested")
    db.session.commit()
    assert logged() == []


def test_authorizing_and_revoking_write_mailbox_authorized_and_mailbox_revoked(app, engine, admin, logged):
    _, sa_tokens = connect_sandbox(admin.organization, engine, actor=admin)
    mailbox = make_mailbox(admin.organization, email=directory_emails(engine, trait="none")[0])
    authorize_mailbox(mailbox, engine, sa_tokens.access_token)
    authorized = _one(logged, "mailbox.authorized", mailbox.id)
    assert authorized.data["status"] == "authorized" and authorized.data["authorized_scope"] is not None
    revoke_mailbox(db.session.get(Mailbox, mailbox.id), actor=admin)
    db.session.commit()
    assert _one(logged, "mailbox.revoked", mailbox.id).data["status"] == "revoked"


def test_a_refused_refresh_writes_mailbox_needs_attention(app, engine, admin, logged):
    _, sa_tokens = connect_sandbox(admin.organization, engine, actor=admin)
    mailbox = make_mailbox(admin.organization, email=directory_emails(engine, trait="none")[0])
    tokens = authorize_mailbox(mailbox, engine, sa_tokens.access_token)
    mailbox.access_token_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    upstream.client_for("us").revoke(token=tokens["refresh_token"])
    with pytest.raises(MailboxTokenError):
        fresh_mailbox_token(mailbox.id)
    event = _one(logged, "mailbox.needs_attention", mailbox.id)
    assert event.data["error_key"] == "invalid_grant"


def test_a_mailbox_added_by_hand_writes_mailbox_created(app, make_org_admin, logged):
    admin = make_org_admin()
    mailbox = mailbox_directory.add_mailbox(admin.organization, email="Ana@acme.example", actor=admin)
    db.session.commit()
    assert _one(logged, "mailbox.created", mailbox.id).data["email"] == "Ana@acme.example"


def test_mailboxes_created_through_the_api_upsert_carry_their_external_ids(app, make_organization, logged):
    organization = make_organization()
    upsert_mailboxes(organization, [{"email": "a@acme.example", "external_id": "u-1"},
                                    {"email": "b@acme.example", "external_id": "u-2"}], include_outside_domains=True)
    db.session.commit()
    upsert_mailboxes(organization, [{"email": "a@acme.example", "name": "Ana"}], include_outside_domains=True)
    db.session.commit()  # an update creates nothing
    assert sorted(e.subject_external_id for e in logged("mailbox.created")) == ["u-1", "u-2"]


def test_an_import_commit_writes_one_mailbox_created_per_new_mailbox(app, make_org_admin, logged):
    admin = make_org_admin()
    make_mailbox(admin.organization, email="old@acme.example")
    preview = create_preview(admin.organization, b"email\nold@acme.example\nn1@acme.example\nn2@acme.example\n",
                             source="paste", actor=admin)
    db.session.commit()
    commit_import(preview, actor=admin, include_outside=False)
    db.session.commit()
    created = logged("mailbox.created")
    new_ids = set(db.session.scalars(select(Mailbox.id).where(Mailbox.email.in_(["n1@acme.example",
                                                                                  "n2@acme.example"]))))
    assert {e.subject_id for e in created} == new_ids and len(created) == 2
    assert {e.data["email"] for e in created} == {"n1@acme.example", "n2@acme.example"}


def test_a_resource_sync_writes_mailbox_created_for_each_new_room(app, use_sandbox, make_org_admin, logged):
    admin = make_org_admin()
    connection, _ = connect_sandbox(admin.organization, use_sandbox, actor=admin, domain="initech.example")
    result = resource_sync.sync_resources(connection, actor=admin)
    db.session.commit()
    created = logged("mailbox.created")
    assert sorted(e.data["email"] for e in created) == result.new and result.new
    assert all(e.data["id"] == str(e.subject_id) and e.data["status"] == "new" for e in created)


def test_a_removed_mailbox_writes_mailbox_removed_with_its_last_state(app, make_org_admin, logged):
    admin = make_org_admin()
    mailbox = make_mailbox(admin.organization, email="gone@acme.example", external_id="u-9")
    mailbox_id = mailbox.id
    result = mailbox_directory.remove_mailboxes(admin.organization, [mailbox_id], actor=admin)
    db.session.commit()
    assert result.removed == 1 and db.session.get(Mailbox, mailbox_id) is None
    event = _one(logged, "mailbox.removed", mailbox_id)
    assert event.subject_external_id == "u-9" and event.data["email"] == "gone@acme.example"
    assert db.session.scalar(select(db.func.count(Event.id)).where(Event.type == "mailbox.removed")) == 1
