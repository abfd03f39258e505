"""Run events, and the events a bulk run's mailboxes write through the engine's fast paths."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from extensions import db
from models.authorization import AuthorizationRun
from models.mailbox import Mailbox
from services.engine import batch_outcomes, run_clock, runs
from tests.jobs.conftest import add_mailboxes, directory_emails, start, wait_status


def test_a_bulk_run_writes_each_mailboxs_outcome_once_and_its_start_and_end(admin, connection, worker, engine,
                                                                            logged):
    emails = directory_emails(engine, trait="none")[:12] + ["ghost1@acme.example", "ghost2@acme.example"]
    add_mailboxes(admin.organization, emails)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)

    statuses = dict(db.session.execute(select(Mailbox.id, Mailbox.status)).tuples().all())
    authorized = [e.subject_id for e in logged("mailbox.authorized")]
    failed = [e.subject_id for e in logged("mailbox.failed")]
    assert sorted(authorized) == sorted(i for i, s in statuses.items() if s == "authorized") and len(authorized) == 12
    assert sorted(failed) == sorted(i for i, s in statuses.items() if s == "failed") and len(failed) == 2
    assert all(e.data["status"] == "authorized" and e.data["authorized_at"] for e in logged("mailbox.authorized"))
    run_events = logged("run.started", "run.completed")
    assert [(e.type, e.subject_id) for e in run_events] == [("run.started", run_id), ("run.completed", run_id)]
    assert run_events[0].data["total"] == 14 and run_events[1].data["status"] == "completed"
    # Ids follow the order of the changes: the run starts first and completes after its last mailbox.
    every = logged()
    assert every[-1].type in ("run.completed", "organization.state_changed")
    assert [e.id for e in every] == sorted(e.id for e in every)


def test_pausing_resuming_and_cancelling_a_run_write_their_events(admin, connection, engine, logged):
    add_mailboxes(admin.organization, ["a@acme.example", "b@acme.example"])
    run_id = start(admin, connection, enqueue=False)
    run = db.session.get(AuthorizationRun, run_id)
    runs.pause_run(run, actor=admin, reason="Lunch")
    db.session.commit()
    runs.resume_run(run, actor=admin)
    db.session.commit()
    runs.cancel_run(run, actor=admin)
    db.session.commit()
    events = logged("run.started", "run.paused", "run.resumed", "run.cancelled")
    assert [e.type for e in events] == ["run.started", "run.paused", "run.resumed", "run.cancelled"]
    assert events[1].data["pause_reason"] == "Lunch" and events[1].data["status"] == "paused"
    assert events[3].data["finished_at"] is not None
    # Cancelling put the mailboxes back to new without announcing anything about them.
    assert logged("mailbox.failed", "mailbox.needs_attention", "mailbox.revoked") == []


def test_the_engines_own_pause_writes_run_paused_once(admin, connection, engine, logged):
    add_mailboxes(admin.organization, ["a@acme.example"])
    run_id = start(admin, connection, enqueue=False)
    batch_outcomes.pause(run_id, "Cronofy refused the request.")
    batch_outcomes.pause(run_id, "Again")  # no longer running: nothing changes, nothing is written
    [event] = logged("run.paused")
    assert event.subject_id == run_id and event.data["pause_reason"] == "Cronofy refused the request."


def test_a_status_set_to_what_it_was_writes_nothing(admin, connection, engine, logged):
    add_mailboxes(admin.organization, ["a@acme.example"])
    run_id = start(admin, connection, enqueue=False)
    run = db.session.get(AuthorizationRun, run_id)
    run_clock.set_status(run, "running")
    db.session.commit()
    assert Counter(e.type for e in logged() if e.type.startswith("run.")) == {"run.started": 1}
