"""Failures by cause: each cause once with its count, words, fix and checklist, and actions for exactly that group,
on the run page, the mailbox list and the overview; "Retry failed" leaves out what a retry cannot fix."""

from __future__ import annotations

import csv
import io
import re

from markupsafe import escape
from sqlalchemy import select, update

from extensions import db
from models.audit import AuditEvent
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.base import utcnow
from models.mailbox import Mailbox
from services.mailboxes.failure_guide import explain
from tests.helpers import make_connection, seed_mailboxes
from tests.web.test_runs import (  # noqa: F401 - fixtures
    DELEGATED, act, add_mailboxes, admin, connection, enqueued, form, start,
)

# (key, how many, the provider's words); server_error is another spelling of upstream_unavailable.
FAILURES = [("not_found", 12, "No mailbox with this address"), ("mailbox_suspended", 9, "The account is suspended"),
            ("unable_to_grant_scope", 7, "Only free/busy is shared"), ("upstream_unavailable", 3, "HTTP 503"),
            ("server_error", 2, "HTTP 500")]
CAUSES = {"not_found": 12, "mailbox_suspended": 9, "unable_to_grant_scope": 7, "upstream_unavailable": 5}


def fail(run, count, key, words):
    """Fail `count` queued attempts of the run with key, and their mailboxes with it; return their emails."""
    rows = db.session.execute(select(AuthorizationAttempt.id, AuthorizationAttempt.mailbox_id).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "queued")
        .order_by(AuthorizationAttempt.id).limit(count)).all()
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.id.in_([r[0] for r in rows]))
                       .values(status="failed", live_mailbox_id=None, finished_at=utcnow(), error_key=key,
                               error_description=words))
    db.session.execute(update(Mailbox).where(Mailbox.id.in_([r[1] for r in rows]))
                       .values(status="failed", last_error_key=key, last_error_description=words))
    db.session.commit()
    return set(db.session.scalars(select(Mailbox.email).where(Mailbox.id.in_([r[1] for r in rows]))))


def failed_run(admin, connection, *, extra=5):
    add_mailboxes(admin.organization, sum(n for _, n, _ in FAILURES) + extra)
    run = start(admin.organization, connection, admin)
    emails = {}
    for key, count, words in FAILURES:
        emails.setdefault(explain(key).cause_id, set()).update(fail(run, count, key, words))
    return run, emails


def panel(html: str) -> str:
    found = re.search(r'<section[^>]*data-testid="failures-by-cause".*?</section>', html, re.S)
    assert found, "the page has a Failures by cause panel"
    return found.group(0)


def counts_of(html: str) -> dict[str, int]:
    section = panel(html)
    causes = re.findall(r'data-cause="([\w.-]+)"', section)
    counts = [int(n.replace(",", "")) for n in re.findall(r'data-testid="cause-count">([\d,]+)<', section)]
    return dict(zip(causes, counts, strict=True))


def action_url(html: str, cause: str, action: str) -> str:
    section = panel(html)
    start_at = section.index(f'data-cause="{cause}"')
    found = re.search(rf'href="([^"]+)" data-action="{action}"', section[start_at:])
    return found.group(1).replace("&amp;", "&")


def assert_each_explained_once(html: str) -> None:
    for cause in CAUSES:
        guidance = explain(cause, provider="google")
        assert html.count(str(escape(guidance.cause))) == 1, cause
        assert html.count(str(escape(guidance.fix))) == 1, cause


def emails_in_csv(body: str) -> set[str]:
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][0] == "email"
    return {row[0] for row in rows[1:]}


# The run page -------------------------------------------------------------------------------------------------


def test_the_run_page_explains_each_cause_once_with_its_count(client, admin, connection):
    run, _ = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert counts_of(page) == CAUSES
    assert_each_explained_once(page)
    assert 'href="/checklists/google#google_marketplace_app"' in panel(page)  # the scope failure's checklist item
    assert "No mailbox with this address" in panel(page)  # the provider's words
    # Rows name their cause briefly and link to its group.
    assert page.count('<a href="#cause-not_found" data-testid="cause-link">Mailbox not found</a>') == 12
    assert page.count('href="#cause-upstream_unavailable" data-testid="cause-link"') == 5


def test_retry_these_starts_a_run_over_exactly_them_with_the_suggested_scope(client, admin, connection, enqueued):
    run, emails = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert "Retry these 7 with free/busy only…" in panel(page)
    url = action_url(page, "unable_to_grant_scope", "retry")
    start_page = client.get(url).get_data(as_text=True)
    assert re.search(r'data-testid="start-total">7<', start_page)
    assert re.search(r'<input[^>]*value="free_busy"\s+checked', start_page)  # what the fix suggests
    assert f"the failures of run {run.id} whose cause is “Access not grantable”" in start_page
    response = client.post(url, data=form(scope="free_busy"))
    retry = db.session.scalars(select(AuthorizationRun).where(AuthorizationRun.id != run.id)).one()
    assert response.location.endswith(f"/runs/{retry.id}") and enqueued == [retry.id]
    assert (retry.total, retry.scope) == (7, "free_busy")
    retried = set(db.session.scalars(select(Mailbox.email).join(AuthorizationAttempt,
                                                                AuthorizationAttempt.mailbox_id == Mailbox.id)
                                     .where(AuthorizationAttempt.run_id == retry.id)))
    assert retried == emails["unable_to_grant_scope"]


def test_retry_these_of_another_cause_keeps_the_runs_scope(client, admin, connection):
    run, _ = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    start_page = client.get(action_url(page, "upstream_unavailable", "retry")).get_data(as_text=True)
    assert re.search(r'data-testid="start-total">5<', start_page)  # both spellings of the cause
    assert re.search(rf'<input[^>]*value="{DELEGATED}"\s+checked', start_page)


def test_show_these_lists_exactly_them(client, admin, connection):
    run, emails = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    shown = client.get(action_url(page, "mailbox_suspended", "show")).get_data(as_text=True)
    listed = set(re.findall(r'<tr data-status="failed">\s*<td>([^<]+)<', shown))
    assert listed == emails["mailbox_suspended"] and shown.count("<tr data-status=") == 9
    assert 'data-testid="cause-filter"' in shown and "Mailbox suspended" in shown


def test_export_these_gives_a_csv_of_exactly_them(client, admin, connection):
    run, emails = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    response = client.get(action_url(page, "upstream_unavailable", "export"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert emails_in_csv(response.get_data(as_text=True)) == emails["upstream_unavailable"]
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mailboxes.exported")).one()
    assert audit.details == {"count": 5, "cause": "upstream_unavailable", "run_id": run.id}


def test_export_without_a_cause_gives_every_failure_of_the_run(client, admin, connection):
    run, emails = failed_run(admin, connection)
    response = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}/failures.csv")
    assert response.status_code == 200 and "-failed.csv" in response.headers["Content-Disposition"]
    assert emails_in_csv(response.get_data(as_text=True)) == set().union(*emails.values())


# Retry failed --------------------------------------------------------------------------------------------------


def test_retry_failed_leaves_out_what_a_retry_cannot_fix_and_says_so(client, admin, connection, enqueued):
    run, emails = failed_run(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    offer = re.search(r'data-testid="retry-failed".*?</form>', page, re.S).group(0)
    assert "Retry failed (5)" in offer  # only the Cronofy outages
    left_out = " ".join(re.search(r'data-testid="retry-left-out">(.*?)</div>', offer, re.S).group(1).split())
    assert "28 failures whose cause a retry as it is will not fix" in left_out
    assert "Mailbox not found</a>: 12" in left_out and "Mailbox suspended</a>: 9" in left_out
    assert "Access not grantable</a>: 7" in left_out
    assert 'name="include_unfixable"' in offer and "checked" not in offer  # leaving them out is the default

    act(client, admin, run, "retry-failed")
    queued = set(db.session.scalars(select(Mailbox.email).join(AuthorizationAttempt,
                                                               AuthorizationAttempt.mailbox_id == Mailbox.id)
                                    .where(AuthorizationAttempt.run_id == run.id,
                                           AuthorizationAttempt.status == "queued",
                                           AuthorizationAttempt.error_key.is_(None))))
    assert emails["upstream_unavailable"] <= queued and not (emails["not_found"] & queued)
    after = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    assert "Retrying 5 failed mailboxes. Left out 28 failures whose cause a retry as it is will not fix" in after
    assert "Mailbox not found: 12, Mailbox suspended: 9, Access not grantable: 7" in after


def test_retry_failed_includes_them_when_asked(client, admin, connection, enqueued):
    run, _ = failed_run(admin, connection)
    act(client, admin, run, "retry-failed", include_unfixable="yes")
    counts = dict(db.session.execute(select(AuthorizationAttempt.status, db.func.count())
                                     .where(AuthorizationAttempt.run_id == run.id,
                                            AuthorizationAttempt.is_retried.is_(False))
                                     .group_by(AuthorizationAttempt.status)).all())
    assert counts == {"queued": 38}
    assert "Retrying 33 failed mailboxes." in client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(
        as_text=True)


def test_when_nothing_a_retry_can_fix_failed_the_offer_says_so(client, admin, connection):
    add_mailboxes(admin.organization, 3)
    run = start(admin.organization, connection, admin)
    fail(run, 2, "not_found", "No such mailbox")
    page = client.get(f"/orgs/{admin.organization_id}/runs/{run.id}").get_data(as_text=True)
    offer = re.search(r'data-testid="retry-failed".*?</form>', page, re.S).group(0)
    assert "Retry them anyway (2)" in offer and "Retry failed (" not in offer
    assert "2 failures whose cause a retry as it is will not fix" in " ".join(offer.split())


# The mailbox list and the overview -----------------------------------------------------------------------------


def seed_failed(admin, connection, scale=1):
    """Failed mailboxes of the four causes (`scale` times as many), and some that did not fail."""
    start_at = 0
    emails = {}
    for key, count, words in FAILURES:
        seed_mailboxes(admin.organization, count * scale, start=start_at, status="failed", last_error_key=key,
                       last_error_description=words, connection_id=connection.id)
        emails.setdefault(explain(key).cause_id, set()).update(
            f"user{n:05d}@seed.example" for n in range(start_at, start_at + count * scale))
        start_at += count * scale
    seed_mailboxes(admin.organization, 10 * scale, start=start_at, status="authorized")
    return emails


def test_the_mailbox_list_groups_failures_by_cause(client, admin, connection):
    seed_failed(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes").get_data(as_text=True)
    assert counts_of(page) == CAUSES
    assert_each_explained_once(page)


def test_the_mailbox_lists_show_export_and_retry_cover_exactly_the_group(client, admin, connection, enqueued):
    emails = seed_failed(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes").get_data(as_text=True)
    shown = client.get(action_url(page, "not_found", "show")).get_data(as_text=True)
    assert set(re.findall(r'data-mailbox="([^"]+)"', shown)) == emails["not_found"]
    assert 'data-testid="cause-filter"' in shown
    exported = client.get(action_url(page, "upstream_unavailable", "export")).get_data(as_text=True)
    assert emails_in_csv(exported) == emails["upstream_unavailable"]
    url = action_url(page, "unable_to_grant_scope", "retry")
    assert re.search(r'data-testid="start-total">7<', client.get(url).get_data(as_text=True))
    client.post(url, data=form(scope="free_busy"))
    run = db.session.scalars(select(AuthorizationRun)).one()
    assert (run.total, run.scope) == (7, "free_busy")
    assert set(db.session.scalars(select(Mailbox.email).where(Mailbox.status == "queued"))) == emails[
        "unable_to_grant_scope"]


def test_the_overview_shows_the_failures_by_cause(client, admin, connection):
    seed_failed(admin, connection)
    page = client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True)
    assert counts_of(page) == CAUSES
    assert_each_explained_once(page)
    assert f"/orgs/{admin.organization_id}/mailboxes?status=failed&amp;cause=not_found" in panel(page)


def test_an_overview_without_failures_has_no_panel(client, admin, connection):
    seed_mailboxes(admin.organization, 3, status="authorized")
    assert 'data-testid="failures-by-cause"' not in client.get(f"/orgs/{admin.organization_id}").get_data(
        as_text=True)


def test_ten_thousand_failed_mailboxes_read_as_four_explanations(client, admin, connection):
    seed_failed(admin, connection, scale=300)  # 9,900 failed mailboxes, 300 authorized
    expected = {cause: count * 300 for cause, count in CAUSES.items()}
    for url in (f"/orgs/{admin.organization_id}/mailboxes", f"/orgs/{admin.organization_id}"):
        page = client.get(url).get_data(as_text=True)
        assert counts_of(page) == expected
        assert_each_explained_once(page)
        assert "9,900 failed mailboxes, 4 causes" in " ".join(panel(page).split())


def test_another_organizations_run_failures_are_not_found(client, admin, connection, make_org_admin):
    other = make_org_admin()
    other_connection = make_connection(other.organization, domain="other.example")
    other_connection.granted_delegated_scope = DELEGATED
    add_mailboxes(other.organization, 2, prefix="other")
    run = start(other.organization, other_connection, other)
    fail(run, 2, "not_found", "No such mailbox")
    assert client.get(f"/orgs/{admin.organization_id}/runs/{run.id}/failures.csv?cause=not_found").status_code == 404
    start_page = client.get(f"/orgs/{admin.organization_id}/runs/new?run={run.id}&cause=not_found")
    assert "That run does not exist" in start_page.get_data(as_text=True)
