"""The run pages: starting a run and its validation, the run page and its actions, history, bulk revoke."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

import jobs
from blueprints.runs import queries
from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.mailbox import Mailbox
from models.selection import MailboxSelection
from services.engine import runs
from services.mailboxes import selection
from tests.helpers import make_connection, put_signed_in

DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"


@pytest.fixture
def enqueued(monkeypatch):
    """Record the runs whose pump a view enqueues, checking the run was committed before."""
    calls = []

    def record(run_id):
        # A fresh connection sees only committed rows: the view must commit before it enqueues.
        with db.engine.connect() as conn:
            assert conn.execute(select(AuthorizationRun.id).where(AuthorizationRun.id == run_id)).scalar() == run_id
        calls.append(run_id)

    monkeypatch.setattr(jobs, "enqueue_pump", record)
    return calls


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


@pytest.fixture
def connection(admin):
    found = make_connection(admin.organization)
    found.granted_delegated_scope = DELEGATED
    db.session.commit()
    return found


def add_mailboxes(organization, count, *, status="new", group=None, prefix="user"):
    boxes = [Mailbox(organization_id=organization.id, email=f"{prefix}{i}@acme.example", name=f"Person {i}",
                     status=status, group_name=group) for i in range(count)]
    db.session.add_all(boxes)
    db.session.commit()
    return boxes


def start(organization, connection, admin, **kwargs):
    query = select(Mailbox.id).where(Mailbox.organization_id == organization.id)
    run = runs.start_run(organization, connection=connection, mailbox_ids_select=query, scope=DELEGATED,
                         actor=admin, source="test", **kwargs)
    db.session.commit()
    return run


def set_attempts(run, status, count, **values):
    ids = db.session.scalars(select(AuthorizationAttempt.id).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "queued")
        .order_by(AuthorizationAttempt.id).limit(count)).all()
    live = None if status in ("authorized", "failed", "cancelled") else AuthorizationAttempt.mailbox_id
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.id.in_(ids))
                       .values(status=status, live_mailbox_id=live, finished_at=utcnow(), **values))
    db.session.commit()


def run_count():
    return db.session.scalar(select(func.count(AuthorizationRun.id)))


def new_url(admin, **args):
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/orgs/{admin.organization_id}/runs/new?{query}"


def form(scope=DELEGATED, **values):
    return {"scope": scope, "continue_mode": "auto", "failure_threshold": "20", **values}


# Starting a run -----------------------------------------------------------------------------------------------


def test_start_form_shows_how_many_and_the_scopes_the_connection_allows(client, admin, connection):
    add_mailboxes(admin.organization, 3)
    add_mailboxes(admin.organization, 2, status="authorized", prefix="done")
    page = client.get(new_url(admin, everything=1)).get_data(as_text=True)
    assert re.search(r'data-testid="start-total">3<', page)  # authorized ones are not "not yet authorized"
    assert "Everything the connection allows" in page and "Free/busy only" in page
    assert "See when each calendar is busy or free" in page  # the catalogue's plain words
    assert "read_write" not in page  # nothing the connection did not approve


def test_start_form_counts_a_group_and_says_which_are_skipped(client, admin, connection):
    add_mailboxes(admin.organization, 2, group="sales")
    add_mailboxes(admin.organization, 1, group="sales", status="authorized", prefix="done")
    add_mailboxes(admin.organization, 4, group="ops", prefix="ops")
    page = client.get(new_url(admin, group="sales")).get_data(as_text=True)
    assert re.search(r'data-testid="start-total">3<', page)
    assert "1 of them are already authorized" in page and "<strong>2</strong> to authorize" in page


def test_starting_creates_the_run_commits_then_enqueues_and_shows_its_page(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 5)
    response = client.post(new_url(admin, everything=1),
                           data=form(canary_size="2", continue_mode="confirm", failure_threshold="25"))
    run = db.session.scalars(select(AuthorizationRun)).one()
    assert response.status_code == 302 and response.location.endswith(f"/runs/{run.id}")
    assert (run.total, run.scope, run.canary_size, run.auto_continue, run.failure_threshold) == (
        5, DELEGATED, 2, False, 0.25)
    assert run.source == "everything not yet authorized" and run.created_by_id == admin.id
    assert enqueued == [run.id]


def test_start_from_a_saved_selection(client, admin, connection, enqueued):
    boxes = add_mailboxes(admin.organization, 4)
    chosen = selection.create_selection(admin.organization, user=admin, mailbox_ids=[boxes[0].id, boxes[2].id])
    db.session.commit()
    client.post(new_url(admin, selection=chosen.id), data=form(scope="free_busy"))
    run = db.session.scalars(select(AuthorizationRun)).one()
    assert (run.total, run.scope) == (2, "free_busy")


def test_an_expired_or_foreign_selection_is_refused(client, admin, connection, make_organization):
    boxes = add_mailboxes(admin.organization, 1)
    chosen = selection.create_selection(admin.organization, user=admin, mailbox_ids=[boxes[0].id])
    chosen.expires_at = utcnow() - timedelta(minutes=1)
    other = make_organization()
    foreign = selection.create_selection(other, user=None, mailbox_ids=[
        add_mailboxes(other, 1, prefix="x")[0].id])
    db.session.commit()
    expired = client.get(new_url(admin, selection=chosen.id)).get_data(as_text=True)
    assert "has expired" in expired and "Start authorizing" not in expired
    missing = client.post(new_url(admin, selection=foreign.id), data=form())
    assert missing.status_code == 400 and "does not exist" in missing.get_data(as_text=True)
    assert "Choose the mailboxes first" in client.get(new_url(admin)).get_data(as_text=True)
    assert client.post(new_url(admin, selection=chosen.id), data=form()).status_code == 400
    assert run_count() == 0


def test_no_active_connection_explains_and_links_to_the_wizard(client, admin, enqueued):
    add_mailboxes(admin.organization, 2)
    make_connection(admin.organization, status="needs_reauth")
    page = client.get(new_url(admin, everything=1)).get_data(as_text=True)
    assert "No active connection" in page and f"/orgs/{admin.organization_id}/wizard" in page
    assert client.post(new_url(admin, everything=1), data=form()).status_code == 400
    assert run_count() == 0 and enqueued == []


def test_empty_selection_is_refused(client, admin, connection, enqueued):
    response = client.post(new_url(admin, group="nobody"), data=form())
    assert response.status_code == 400
    assert "There are no mailboxes in this selection" in response.get_data(as_text=True)
    assert run_count() == 0


def test_selection_of_only_authorized_mailboxes_is_refused(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2, status="authorized", group="done")
    response = client.post(new_url(admin, group="done"), data=form())
    assert response.status_code == 400 and "already authorized or on their way" in response.get_data(as_text=True)
    assert run_count() == 0


def test_scope_outside_the_connections_delegated_scope_is_refused(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2)
    response = client.post(new_url(admin, everything=1), data=form(scope="read_write"))
    assert response.status_code == 400
    assert "does not allow" in response.get_data(as_text=True)
    assert run_count() == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"canary_size": "0"}, "at least 1 mailbox"),
        ({"canary_size": "3"}, "must be smaller than the 3 mailboxes"),
        ({"canary_size": "two"}, "Not a valid integer"),
        ({"failure_threshold": "0"}, "between 1 and 100"),
        ({"failure_threshold": "101"}, "between 1 and 100"),
        ({"failure_threshold": ""}, "between 1 and 100"),
        ({"scope": ""}, "Choose the access to ask for"),
    ],
)
def test_bad_rollout_settings_are_refused(client, admin, connection, enqueued, values, message):
    add_mailboxes(admin.organization, 3)
    response = client.post(new_url(admin, everything=1), data=form(**values))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert run_count() == 0


def test_another_organizations_connection_cannot_be_chosen(client, admin, connection, make_organization, enqueued):
    other = make_connection(make_organization(), domain="other.example")
    other.granted_delegated_scope = DELEGATED
    db.session.commit()
    add_mailboxes(admin.organization, 2)
    client.post(new_url(admin, everything=1), data=form(connection_id=str(other.id)))
    assert db.session.scalars(select(AuthorizationRun.connection_id)).one() == connection.id


# The run page -------------------------------------------------------------------------------------------------


def test_run_page_shows_progress_counts_and_failures_with_cause_fix_and_checklist(client, admin, connection):
    add_mailboxes(admin.organization, 4)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "authorized", 1)
    set_attempts(run, "failed", 1, error_key="outside_access_policy", error_description="outside the policy")
    set_attempts(run, "failed", 1, error_key="something_new", error_description="The server said no thanks")
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="run-percent">75%<' in page and '<progress' in page
    assert 'data-count="failed">2<' in page and 'data-count="queued">1<' in page
    assert "policy keeps this mailbox out" in page  # cause, in plain words
    assert 'href="/checklists/google#google_restrict_ou"' in page
    assert "The server said no thanks" in page  # an unknown key shows the upstream's words
    # The policy failure is left out of "Retry failed" by default: a retry as it is cannot fix it.
    assert "Retry failed (1)" in page and "Pause" in page
    assert "style=" not in page  # the CSP forbids inline styles


def test_outcomes_filter_by_status(client, admin, connection):
    add_mailboxes(admin.organization, 3)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "failed", 1, error_key="not_found")
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}?status=failed").get_data(as_text=True)
    assert page.count('<tr data-status="failed">') == 1 and '<tr data-status="queued">' not in page
    everything = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}?status=bogus").get_data(as_text=True)
    assert everything.count("<tr data-status=") == 3


def test_outcomes_are_paged_by_keyset(client, admin, connection, monkeypatch):
    monkeypatch.setattr(queries, "OUTCOMES_PAGE_SIZE", 2)
    add_mailboxes(admin.organization, 5)
    run = start(admin.organization, connection, admin)
    base = f"/orgs/{admin.organization_id}/runs/{run.id}"
    seen, url = [], base
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += re.findall(r"<td>(user\d+@acme\.example)", page)
        found = re.search(r'rel="next" href="([^"]+)"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(f"user{i}@acme.example" for i in range(5))


def test_outcome_page_makes_the_same_number_of_queries_for_2_and_40_rows(client, admin, connection):
    from sqlalchemy import event

    def queries_for(count):
        add_mailboxes(admin.organization, count, prefix=f"n{count}-")
        run = start(admin.organization, connection, admin)
        set_attempts(run, "failed", count, error_key="not_found")
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    assert queries_for(2) == queries_for(40)


def test_progress_fragment_is_the_live_part_only(client, admin, connection):
    add_mailboxes(admin.organization, 2)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "authorized", 1)
    response = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}/progress")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert 'data-active="true"' in body and 'data-testid="run-percent">50%<' in body


def test_finished_run_fragment_says_inactive_and_offers_no_pause(client, admin, connection):
    add_mailboxes(admin.organization, 1)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "authorized", 1)
    run.status = "completed"
    db.session.commit()
    body = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}/progress").get_data(as_text=True)
    assert 'data-active="false"' in body and "100%" in body
    assert "Pause" not in body and "Cancel run" not in body


def test_page_of_another_organizations_run_is_not_found(client, admin, connection, make_org_admin):
    other_admin = make_org_admin()
    other = make_connection(other_admin.organization, domain="other.example")
    other.granted_delegated_scope = DELEGATED
    add_mailboxes(other_admin.organization, 1)
    run = start(other_admin.organization, other, other_admin)
    assert client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").status_code == 404
    assert client.get(f"/orgs/{other_admin.organization_id}/runs/{run.id}").status_code == 404


# Actions ------------------------------------------------------------------------------------------------------


def act(client, admin, run, action, **data):
    return client.post(f"/orgs/{admin.organization_id}/runs/{run.id}/{action}", data=data)


def test_pause_then_resume(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2)
    run = start(admin.organization, connection, admin)
    assert act(client, admin, run, "pause").status_code == 302
    db.session.refresh(run)
    assert run.status == "paused" and enqueued == []
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert "Paused by an administrator" in page and ">Resume<" in page
    act(client, admin, run, "resume")
    db.session.refresh(run)
    assert run.status == "running" and enqueued == [run.id]


def test_resuming_a_running_run_says_why_not(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 1)
    run = start(admin.organization, connection, admin)
    act(client, admin, run, "resume")
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert "only a paused run can be resumed" in page and enqueued == []


def test_cancel_needs_confirmation(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2)
    run = start(admin.organization, connection, admin)
    assert act(client, admin, run, "cancel").status_code == 400
    db.session.refresh(run)
    assert run.status == "running"
    act(client, admin, run, "cancel", confirm="yes")
    db.session.refresh(run)
    assert run.status == "cancelled"
    assert set(db.session.scalars(select(Mailbox.status))) == {"new"}  # put back as they were


def test_retry_failed_queues_the_failures_again(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 3)
    run = start(admin.organization, connection, admin)
    set_attempts(run, "failed", 2, error_key="upstream_unavailable")
    db.session.execute(update(Mailbox).values(status="failed"))
    db.session.commit()
    act(client, admin, run, "retry-failed")
    counts = runs.run_progress(run).counts
    assert counts["failed"] == 0 and counts["queued"] == 3 and enqueued == [run.id]
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert "Retrying 2 failed mailboxes" in page


def test_confirming_the_next_wave(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 4)
    run = start(admin.organization, connection, admin, canary_size=2, auto_continue=False)
    set_attempts(run, "authorized", 2)
    run.status = "awaiting_confirmation"
    db.session.commit()
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert 'data-testid="wave-banner"' in page and "Confirm the next wave" in page
    act(client, admin, run, "confirm-wave")
    db.session.refresh(run)
    assert (run.status, run.current_wave) == ("running", 2) and enqueued == [run.id]


def test_actions_need_a_csrf_token(csrf_client, admin, connection, login_as):
    login_as(admin)
    add_mailboxes(admin.organization, 1)
    run = start(admin.organization, connection, admin)
    with csrf_client.session_transaction() as session:
        put_signed_in(session, admin)
    assert csrf_client.post(f"/orgs/{admin.organization_id}/runs/{run.id}/pause").status_code == 400
    db.session.refresh(run)
    assert run.status == "running"


# History ------------------------------------------------------------------------------------------------------


def test_history_empty_state(client, admin):
    page = client.get(f"/orgs/{admin.organization_id}/runs").get_data(as_text=True)
    assert 'data-testid="empty-state"' in page and "No runs yet" in page


def test_history_is_paged_newest_first(client, admin, connection):
    for index in range(queries.HISTORY_PAGE_SIZE + 3):
        db.session.add(AuthorizationRun(organization_id=admin.organization_id, connection_id=connection.id,
                                        source=f"batch {index}", total=1,
                                        created_at=utcnow() + timedelta(seconds=index)))
    db.session.commit()
    first = client.get(f"/orgs/{admin.organization_id}/runs").get_data(as_text=True)
    second = client.get(f"/orgs/{admin.organization_id}/runs?page=2").get_data(as_text=True)
    assert first.count("<tr>") - 1 == queries.HISTORY_PAGE_SIZE and "batch 22" in first and "Page 1 of 2" in first
    assert second.count("<tr>") - 1 == 3 and "batch 0<" in second and "batch 22" not in second


# Bulk revoke --------------------------------------------------------------------------------------------------


def test_revoke_confirmation_shows_counts_and_needs_confirming(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2, status="authorized", group="sales")
    add_mailboxes(admin.organization, 3, group="sales", prefix="new")
    url = f"/orgs/{admin.organization_id}/mailboxes/revoke?group=sales"
    page = client.get(url).get_data(as_text=True)
    assert re.search(r'data-testid="revoke-total">5<', page) and re.search(r'data-testid="revoke-holding">2<', page)
    assert "The other 3 hold no authorization" in page
    refused = client.post(url, data={})
    assert refused.status_code == 400 and "Confirm first" in refused.get_data(as_text=True)
    assert run_count() == 0
    response = client.post(url, data={"confirm": "yes"})
    run = db.session.scalars(select(AuthorizationRun)).one()
    assert response.location.endswith(f"/runs/{run.id}")
    assert (run.action, run.total) == ("revoke", 2) and enqueued == [run.id]


def test_revoke_with_nothing_authorized_is_refused(client, admin, connection, enqueued):
    add_mailboxes(admin.organization, 2, group="sales")
    url = f"/orgs/{admin.organization_id}/mailboxes/revoke?group=sales"
    response = client.post(url, data={"confirm": "yes"})
    assert response.status_code == 400 and "nothing to revoke" in response.get_data(as_text=True)
    assert run_count() == 0


# Checklist pages ----------------------------------------------------------------------------------------------


def test_checklist_page_has_an_anchor_per_item(client, admin):
    page = client.get("/checklists/microsoft_graph").get_data(as_text=True)
    assert 'id="graph_access_policy"' in page and "New-ApplicationAccessPolicy" in page
    assert client.get("/checklists/lotus_notes").status_code == 404


# From the mailbox list ----------------------------------------------------------------------------------------


def test_list_buttons_take_ticked_rows_to_the_start_and_revoke_pages(client, admin, connection):
    boxes = add_mailboxes(admin.organization, 3)
    url = f"/orgs/{admin.organization_id}/runs/from-list"
    response = client.post(url, data={"action": "authorize", "mailbox_ids": [str(boxes[0].id), str(boxes[1].id)]})
    chosen = db.session.scalars(select(MailboxSelection)).one()
    assert response.location.endswith(f"/runs/new?selection={chosen.id}")
    assert re.search(r'data-testid="start-total">2<', client.get(response.location).get_data(as_text=True))
    again = client.post(url, data={"action": "revoke", "selection_id": str(chosen.id)})
    assert again.location.endswith(f"/mailboxes/revoke?selection={chosen.id}")


def test_list_buttons_with_nothing_ticked_go_back_to_the_list(client, admin, connection):
    url = f"/orgs/{admin.organization_id}/runs/from-list"
    response = client.post(url, data={"action": "authorize"})
    assert response.location.endswith(f"/orgs/{admin.organization_id}/mailboxes")
    assert client.post(url, data={"action": "explode"}).status_code == 400


def test_mailbox_page_shows_the_guidance_of_its_last_failure(client, admin, connection):
    mailbox = add_mailboxes(admin.organization, 1)[0]
    mailbox.status, mailbox.last_error_key = "failed", "outside_access_policy"
    mailbox.last_error_description, mailbox.connection_id = "outside the policy of acme.example", connection.id
    db.session.commit()
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes/{mailbox.id}").get_data(as_text=True)
    assert 'data-testid="failure-guidance"' in page and "policy keeps this mailbox out" in page
    assert 'href="/checklists/google#google_restrict_ou"' in page
