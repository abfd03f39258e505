"""The mailbox state machine: allowed moves, timeline events, error fields."""

import pytest

from extensions import db
from models.mailbox import Mailbox, MailboxEvent
from services.mailboxes import mailbox_states


@pytest.fixture
def mailbox(app, make_organization):
    organization = make_organization()
    box = Mailbox(organization_id=organization.id, email="alice@acme.example", kind="user")
    db.session.add(box)
    db.session.commit()
    return box


def test_transition_records_event_and_timestamps(mailbox):
    mailbox_states.transition(mailbox, "queued", kind="queued", summary="Queued by run 1")
    mailbox_states.transition(mailbox, "requested", kind="requested", state="st-1")
    mailbox_states.transition(mailbox, "authorized", kind="authorized")
    db.session.commit()
    assert mailbox.status == "authorized" and mailbox.requested_at and mailbox.authorized_at
    events = mailbox_states.timeline(mailbox)
    assert [(e.from_status, e.to_status) for e in reversed(events)] == [
        ("new", "queued"), ("queued", "requested"), ("requested", "authorized")]
    assert events[1].state == "st-1"


def test_failure_keeps_error_until_next_attempt(mailbox):
    mailbox_states.transition(mailbox, "requested", kind="requested")
    mailbox_states.transition(mailbox, "failed", kind="callback", error_key="not_found", error_description="No such mailbox")
    assert (mailbox.last_error_key, mailbox.last_error_description) == ("not_found", "No such mailbox")
    mailbox_states.transition(mailbox, "queued", kind="retry")
    assert mailbox.last_error_key is None and mailbox.last_error_description is None


def test_disallowed_transition_changes_nothing(mailbox):
    with pytest.raises(mailbox_states.TransitionError):
        mailbox_states.transition(mailbox, "authorized", kind="authorized")
    assert mailbox.status == "new"
    assert db.session.scalar(db.select(db.func.count(MailboxEvent.id))) == 0
