"""The worker's recovery timer also expires import previews that were abandoned for a day."""

from datetime import timedelta

from extensions import db
from jobs import tasks
from models.base import utcnow
from models.mailbox_import import MailboxImport


def test_recover_expires_abandoned_import_previews_only(app, make_organization):
    organization = make_organization()
    old = MailboxImport(organization_id=organization.id, source="paste", created_at=utcnow() - timedelta(hours=25))
    recent = MailboxImport(organization_id=organization.id, source="paste")
    db.session.add_all([old, recent])
    db.session.commit()
    tasks.set_app(app)

    tasks.recover.call_local()

    db.session.expire_all()
    assert (db.session.get(MailboxImport, old.id).status, db.session.get(MailboxImport, recent.id).status) == (
        "expired", "preview")
