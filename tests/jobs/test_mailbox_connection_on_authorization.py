"""A mailbox authorized by a run records the connection it was authorized through (issue 13, finding 3):
mailboxes imported without one showed Connection "—" after authorization, and the Connection filter hid them."""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models.mailbox import Mailbox
from tests.jobs.conftest import add_mailboxes, directory_emails, start, wait_status


def test_an_authorized_mailbox_records_its_connection_and_the_filter_finds_it(admin, connection, worker, engine,
                                                                                client, login_as):
    emails = directory_emails(engine, trait="none")[:3]
    ids = add_mailboxes(admin.organization, emails)
    assert db.session.scalars(select(Mailbox.connection_id).where(Mailbox.id.in_(ids))).all() == [None] * 3
    wait_status(start(admin, connection), "completed", timeout=60)
    db.session.expire_all()
    stored = db.session.execute(select(Mailbox.status, Mailbox.connection_id).where(Mailbox.id.in_(ids))).all()
    assert stored == [("authorized", connection.id)] * 3
    login_as(admin)
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes?connection_id={connection.id}").get_data(as_text=True)
    assert all(email in page for email in emails)
