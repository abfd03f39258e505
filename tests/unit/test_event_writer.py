"""The event writer: events land with the commit of their change, never without it, in commit order."""

from sqlalchemy import select

from extensions import db
from models.event import Event
from models.mailbox import Mailbox
from services.platform import events


def _events(event_type="test.changed"):
    return list(db.session.scalars(select(Event).where(Event.type == event_type).order_by(Event.id)))


def _mailbox(organization, email="ana@acme.example"):
    mailbox = Mailbox(organization_id=organization.id, email=email, kind="user", external_id="u-42")
    db.session.add(mailbox)
    db.session.commit()
    return mailbox


def test_an_event_is_written_by_the_commit_with_the_subject_as_the_api_shows_it(app, make_organization):
    mailbox = _mailbox(make_organization())
    mailbox.name = "Ana"
    events.record("test.changed", organization_id=mailbox.organization_id, subject_type="mailbox",
                  subject_id=mailbox.id)
    assert _events() == []  # nothing before the commit
    db.session.commit()
    [event] = _events()
    assert (event.subject_type, event.subject_id, event.subject_external_id) == ("mailbox", mailbox.id, "u-42")
    assert event.data["id"] == str(mailbox.id) and event.data["name"] == "Ana" and event.data["status"] == "new"


def test_a_rolled_back_change_leaves_no_event(app, make_organization):
    mailbox = _mailbox(make_organization())
    events.record("test.changed", organization_id=mailbox.organization_id, subject_type="mailbox",
                  subject_id=mailbox.id)
    db.session.rollback()
    db.session.commit()
    assert _events() == []


def test_a_rolled_back_savepoint_drops_only_its_own_events(app, make_organization):
    mailbox = _mailbox(make_organization())
    events.record("test.changed", organization_id=mailbox.organization_id, subject_type="mailbox",
                  subject_id=mailbox.id, data={"kept": True})
    savepoint = db.session.begin_nested()
    events.record("test.changed", organization_id=mailbox.organization_id, subject_type="mailbox",
                  subject_id=mailbox.id, data={"kept": False})
    savepoint.rollback()
    db.session.commit()
    assert [event.data for event in _events()] == [{"kept": True}]


def test_ids_follow_the_order_of_the_commits(app, make_organization):
    organization = make_organization()
    for n in range(3):
        events.record("test.changed", organization_id=organization.id, subject_type="organization",
                      subject_id=organization.id, data={"n": n})
        db.session.commit()
    assert [event.data["n"] for event in _events()] == [0, 1, 2]
