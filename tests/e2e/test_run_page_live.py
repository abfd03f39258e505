"""In a real browser: while a run goes on, its summary, tab badges, failures by cause and rows change together,
and what the admin was doing on the page (a ticked box) survives the updates."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from extensions import db
from models.authorization import AuthorizationAttempt
from models.base import utcnow
from tests.e2e.test_bulk_run import sign_in
from tests.helpers import make_connection
from tests.web.test_failures_by_cause import fail
from tests.web.test_runs import DELEGATED, add_mailboxes, start

pytestmark = pytest.mark.e2e


def authorize_queued(run, count):
    ids = db.session.scalars(select(AuthorizationAttempt.id).where(
        AuthorizationAttempt.run_id == run.id, AuthorizationAttempt.status == "queued")
        .order_by(AuthorizationAttempt.id).limit(count)).all()
    db.session.execute(update(AuthorizationAttempt).where(AuthorizationAttempt.id.in_(ids))
                       .values(status="authorized", live_mailbox_id=None, finished_at=utcnow()))
    db.session.commit()


def test_the_run_page_updates_as_one_and_keeps_what_the_admin_ticked(live_server, page, make_org_admin):
    from playwright.sync_api import expect

    admin = make_org_admin(email="it.admin@acme.example")
    connection = make_connection(admin.organization)
    connection.granted_delegated_scope = DELEGATED
    db.session.commit()
    add_mailboxes(admin.organization, 20)
    run = start(admin.organization, connection, admin)
    fail(run, 3, "not_found", "No such mailbox")
    fail(run, 2, "upstream_unavailable", "HTTP 503")

    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/orgs/{admin.organization_id}/runs/{run.id}")
    expect(page.get_by_test_id("failures-by-cause")).to_contain_text("Mailbox not found")
    include = page.get_by_label("Include them too")
    include.check()

    authorize_queued(run, 6)
    fail(run, 1, "not_found", "No such mailbox")
    expect(page.locator('[data-badge="authorized"]')).to_have_text("6", timeout=15_000)
    # The same swap brought the summary, the other badges, the panel and the rows.
    expect(page.locator('[data-count="authorized"]')).to_have_text("6")
    expect(page.locator('[data-count="queued"]')).to_have_text("8")
    expect(page.locator('[data-badge="queued"]')).to_have_text("8")
    expect(page.locator('tr[data-status="authorized"]')).to_have_count(6)
    expect(page.locator('tr[data-status="queued"]')).to_have_count(8)
    expect(page.locator('[data-cause="not_found"] [data-testid="cause-count"]')).to_have_text("4")
    expect(page.get_by_label("Include them too")).to_be_checked()
