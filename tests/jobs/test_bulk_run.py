"""A bulk run end to end: the sandbox answers, a real worker pumps, exchanges and finishes it."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

import jobs
from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun, CallbackReceipt
from models.mailbox import Mailbox, MailboxEvent
from services.engine import runs
from tests.jobs.conftest import (
    add_mailboxes,
    directory_emails,
    events_since,
    latest_event_id,
    start,
    wait_for,
    wait_status,
)

TRAIT_KEYS = {"outside_policy": "outside_access_policy", "suspended": "mailbox_suspended",
              "unlicensed": "license_missing", "free_busy_only": "unable_to_grant_scope"}


def test_a_run_of_a_whole_domain_completes_with_each_mailbox_where_the_directory_says(admin, connection, worker,
                                                                                        engine):
    members = engine.directory(domain="acme.example", limit=1000)
    ghosts = [f"ghost{n}@acme.example" for n in range(6)]
    add_mailboxes(admin.organization, [m["email"] for m in members] + ghosts)
    run_id = start(admin, connection)

    run = wait_status(run_id, "completed", timeout=60)
    mailboxes = {m.email: m for m in db.session.scalars(select(Mailbox))}
    for member in members:
        mailbox = mailboxes[member["email"]]
        if member["trait"] is None:
            assert mailbox.status == "authorized", mailbox.email
            assert mailbox.account_id.startswith("acc_") and mailbox.profile_id.startswith("pro_")
            assert mailbox.refresh_token_encrypted and "acc" not in mailbox.refresh_token_encrypted[:8]
        else:
            assert (mailbox.status, mailbox.last_error_key) == ("failed", TRAIT_KEYS[member["trait"]])
    for ghost in ghosts:
        assert (mailboxes[ghost].status, mailboxes[ghost].last_error_key) == ("failed", "not_found")
    progress = runs.run_progress(run)
    assert progress.total == len(members) + len(ghosts) and progress.fraction == 1.0
    assert progress.counts["authorized"] == sum(1 for m in members if m["trait"] is None)


def test_batches_hold_at_most_fifty_and_each_code_is_exchanged_once(admin, connection, worker, engine):
    emails = directory_emails(engine, trait="none")
    add_mailboxes(admin.organization, emails + [f"extra{n}@acme.example" for n in range(60 - len(emails))])
    since = latest_event_id(engine)
    run_id = start(admin, connection)
    wait_status(run_id, "completed", timeout=60)

    wait_for(lambda: db.session.scalar(select(db.func.count(CallbackReceipt.id))
                                       .where(CallbackReceipt.processed_at.is_(None))) == 0,
             message="every callback to be settled")
    receipts = db.session.scalars(select(CallbackReceipt)).all()
    # A callback the sandbox delivers twice (say, after a slow answer) is stored twice but acted on once.
    assert len({r.attempt_id for r in receipts if r.outcome != "duplicate"}) == 60
    assert len([r for r in receipts if r.outcome != "duplicate"]) == 60
    batches = Counter(a.batch_key for a in db.session.scalars(select(AuthorizationAttempt)))
    assert len(batches) == 2 and max(batches.values()) <= 50
    requests = events_since(engine, since, path="/v1/service_account_authorizations")
    assert [e["status"] for e in requests] == [202, 202]
    exchanges = len(events_since(engine, since, path="/oauth/token", method="POST"))
    assert exchanges == len(emails)  # one per code; the extras failed by callback, without a code
    assert {r.outcome for r in receipts} - {"duplicate"} == {"authorized", "failed"}


def test_the_timeline_shows_each_step_with_the_attempts_state(admin, connection, worker, engine):
    email = directory_emails(engine, trait="none")[0]
    [mailbox_id] = add_mailboxes(admin.organization, [email])
    run_id = start(admin, connection)
    wait_status(run_id, "completed")
    attempt = db.session.scalar(select(AuthorizationAttempt).where(AuthorizationAttempt.run_id == run_id))
    events = db.session.scalars(select(MailboxEvent).where(MailboxEvent.mailbox_id == mailbox_id)
                                .order_by(MailboxEvent.id)).all()
    assert [(e.from_status, e.to_status) for e in events] == [("new", "queued"), ("queued", "requested"),
                                                             ("requested", "authorized")]
    assert [e.state for e in events[1:]] == [attempt.state, attempt.state]
    assert db.session.get(AuthorizationRun, run_id).finished_at is not None



def test_a_revoke_run_revokes_each_selected_mailbox_through_the_worker(admin, connection, worker, engine):
    emails = directory_emails(engine, trait="none")[:3]
    ids = add_mailboxes(admin.organization, emails)
    wait_status(start(admin, connection), "completed")
    run = runs.start_revoke_run(admin.organization, connection=connection, actor=admin, source="test",
                                mailbox_ids_select=select(Mailbox.id).where(Mailbox.id.in_(ids[:2])))
    db.session.commit()
    since = latest_event_id(engine)
    jobs.enqueue_pump(run.id)
    wait_status(run.id, "completed")
    db.session.expire_all()
    assert [db.session.get(Mailbox, i).status for i in ids] == ["revoked", "revoked", "authorized"]
    assert db.session.get(Mailbox, ids[0]).refresh_token_encrypted is None
    assert len(events_since(engine, since, path="/oauth/token/revoke")) == 2
    assert runs.run_progress(db.session.get(AuthorizationRun, run.id)).counts["revoked"] == 2
