"""The demo job: "Acme (demo data)" is connected, filled in and run through the real paths, once."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from extensions import db
from jobs import demo as demo_jobs
from jobs.queue import huey
from models.audit import AuditEvent
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.connection import Connection
from models.mailbox import Mailbox
from models.onboarding import ConsentAttempt, WizardSession
from models.organization import Organization
from services.demo import acme, people
from tests.jobs.conftest import wait_for
from tests.web.wizard_helpers import service_accounts

SIZE = 25


@pytest.fixture
def acme_organization(make_org_admin):
    organization = acme.ensure_organization()
    make_org_admin(organization=organization, email="admin@acme-demo.example")
    db.session.commit()
    return organization


def _complete(organization_id, timeout=90.0):
    wait_for(lambda: acme.is_complete(db.session.get(Organization, organization_id)), timeout,
             "the demo organization to be complete")


def _state(organization) -> dict:
    """Everything a second seed must leave as it was."""
    db.session.expire_all()
    count = lambda model, *where: db.session.scalar(select(func.count()).select_from(model).where(*where))  # noqa: E731
    org = organization.id
    return {
        "connections": count(Connection, Connection.organization_id == org),
        "wizards": count(WizardSession, WizardSession.organization_id == org),
        "consents": count(ConsentAttempt, ConsentAttempt.organization_id == org),
        "mailboxes": dict(db.session.execute(select(Mailbox.status, func.count()).where(Mailbox.organization_id == org)
                                             .group_by(Mailbox.status)).all()),
        "runs": count(AuthorizationRun, AuthorizationRun.organization_id == org),
        "attempts": count(AuthorizationAttempt),
        "audit": count(AuditEvent, AuditEvent.organization_id == org),
    }


def test_the_demo_job_connects_imports_runs_to_the_end_and_revokes_one(acme_organization, worker, engine):
    before_accounts = len(service_accounts(engine, domain="acme.example", status="active", limit=1000))
    # The sandbox is shared by the whole run: other tests may hold grants of the same people.
    grants_before = {g["email"]: g["active_grants"] for g in engine.grants(domain="acme.example")}
    demo_jobs.start_seeding(acme_organization.id, size=SIZE)
    _complete(acme_organization.id)

    connection = db.session.scalar(select(Connection).where(Connection.organization_id == acme_organization.id))
    assert (connection.status, connection.domain, connection.granted_delegated_scope) == (
        "active", "acme.example", "read_write")
    assert len(service_accounts(engine, domain="acme.example", status="active", limit=1000)) == before_accounts + 1
    mailboxes = db.session.scalars(select(Mailbox).where(Mailbox.organization_id == acme_organization.id)).all()
    assert len(mailboxes) == SIZE
    assert {m.kind for m in mailboxes} >= {"user", "resource"}
    people_groups = {m.group_name for m in mailboxes if m.source == "import"}
    assert people_groups and people_groups <= set(people.DEPARTMENTS) and len(people_groups) > 2
    assert any(m.source == "resource_sync" and m.location for m in mailboxes)

    run = db.session.scalar(select(AuthorizationRun).where(AuthorizationRun.organization_id == acme_organization.id))
    assert run.status == "completed" and run.total == SIZE and run.canary_size
    causes = Counter(m.last_error_key for m in mailboxes if m.status == "failed")
    assert {"not_found", "mailbox_suspended", "outside_access_policy", "license_missing",
            "unable_to_grant_scope"} <= set(causes), causes
    statuses = Counter(m.status for m in mailboxes)
    assert statuses["authorized"] > statuses["failed"] > 0
    revoked = [m for m in mailboxes if m.status == "revoked"]
    assert len(revoked) == 1 and revoked[0].kind == "user" and revoked[0].refresh_token_encrypted is None
    # Its grant from the demo's run is gone at the sandbox: as many active as before the demo began.
    assert engine.grants(email=revoked[0].email)[0]["active_grants"] == grants_before.get(revoked[0].email, 0)


def test_a_second_seed_changes_nothing(acme_organization, worker, engine):
    demo_jobs.start_seeding(acme_organization.id, size=SIZE)
    _complete(acme_organization.id)
    before = _state(acme_organization)
    accounts = len(service_accounts(engine, domain="acme.example", limit=1000))

    huey.put(f"demo-seed-chain:{acme_organization.id}", "again")
    demo_jobs.seed_demo.call_local(acme_organization.id, "again", SIZE, 0)
    assert demo_jobs.start_pending(size=SIZE) is None  # a worker start finds nothing to do either

    assert _state(acme_organization) == before
    assert len(service_accounts(engine, domain="acme.example", limit=1000)) == accounts


def test_a_seed_cut_short_resumes_where_it_stopped(acme_organization, worker, engine):
    for _ in range(2):  # connected and rooms synced; then the worker died
        acme.advance(acme_organization.id, size=SIZE)
        db.session.commit()
    demo_jobs.start_seeding(acme_organization.id, size=SIZE)
    _complete(acme_organization.id)

    state = _state(acme_organization)
    assert (state["connections"], state["wizards"], state["runs"]) == (1, 1, 1)
    assert sum(state["mailboxes"].values()) == SIZE


def test_the_job_waits_for_the_sandbox_and_connects_once_it_answers(app, acme_organization, worker, engine,
                                                                    monkeypatch):
    monkeypatch.setattr(demo_jobs, "BACKOFF_BASE", 0.2)
    sandbox_url = app.config["SANDBOX_URL"]
    app.config["SANDBOX_URL"] = "http://127.0.0.1:9"  # the discard port: nothing answers
    demo_jobs.start_seeding(acme_organization.id, size=SIZE)
    wait_for(lambda: huey.scheduled_count() > 0, 10, "the job to schedule its next try")
    assert db.session.scalar(select(func.count()).select_from(Connection)) == 0

    app.config["SANDBOX_URL"] = sandbox_url
    _complete(acme_organization.id)
    assert _state(acme_organization)["connections"] == 1


def test_the_backoff_doubles_up_to_fifteen_seconds():
    assert [demo_jobs.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 15, 15]


def test_the_people_list_is_an_upload_an_admin_could_make():
    rows = [people.Person("alice.anderson@acme.example", "Alice Anderson", "Sales")]
    assert people.as_csv(rows) == b"email,name,kind,group\r\nalice.anderson@acme.example,Alice Anderson,user,Sales\r\n"


def test_a_starting_worker_hands_an_unfinished_demo_to_the_queue(acme_organization, engine):
    from jobs.cli import _start_demo_seeding

    _start_demo_seeding()
    assert huey.pending_count() == 1
    chain = huey.get(f"demo-seed-chain:{acme_organization.id}", peek=True)
    assert [task.args[:2] for task in huey.pending()] == [(acme_organization.id, chain)]
