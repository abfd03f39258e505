"""In a real browser: select every mailbox, start a run, watch it reach 100% with the expected mix."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationRun
from models.mailbox import Mailbox
from tests.factories import DEFAULT_PASSWORD
from tests.jobs.conftest import add_mailboxes, engine, worker  # noqa: F401 - fixtures used by name

pytestmark = pytest.mark.e2e

GHOSTS = ("ghost.one@acme.example", "ghost.two@acme.example")  # not in the directory: not_found


def sign_in(page, live_server, admin):
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}")


def test_select_everything_start_a_run_and_watch_it_finish(live_server, page, engine, worker,  # noqa: F811
                                                            make_org_admin):
    from playwright.sync_api import expect

    from tests.helpers import connect_sandbox

    admin = make_org_admin(email="it.admin@acme.example")
    connect_sandbox(admin.organization, engine, actor=admin)
    members = engine.directory(domain="acme.example", limit=1000)
    add_mailboxes(admin.organization, [m["email"] for m in members] + list(GHOSTS))
    healthy = sum(1 for m in members if m["trait"] is None)
    total = len(members) + len(GHOSTS)

    progress_fetches = []
    page.on("request", lambda request: progress_fetches.append(request.url) if request.url.endswith("/progress")
            else None)
    sign_in(page, live_server, admin)
    page.get_by_role("link", name="Mailboxes", exact=True).click()
    page.get_by_role("button", name=re.compile(r"Select all .* matching this filter")).click()
    expect(page.get_by_test_id("selection-banner")).to_contain_text(f"All {total} mailboxes")
    page.get_by_role("button", name="Authorize…").click()

    expect(page.get_by_test_id("start-total")).to_have_text(str(total))
    expect(page.get_by_label("Everything the connection allows")).to_be_checked()
    page.get_by_role("button", name="Start authorizing").click()

    run_id = db.session.scalar(select(func.max(AuthorizationRun.id)))
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))
    expect(page.get_by_test_id("run-percent")).to_have_text("100%", timeout=90_000)
    expect(page.locator("[data-run-progress]")).to_have_attribute("data-active", "false")
    assert progress_fetches, "the page updated itself by fetching its progress fragment"

    expect(page.locator('[data-count="authorized"]')).to_have_text(str(healthy))
    expect(page.locator('[data-count="failed"]')).to_have_text(str(total - healthy))
    # Each cause is explained once, on the panel; the rows name their cause and link to it.
    causes = page.get_by_test_id("failures-by-cause")
    expect(causes).to_contain_text("not_found")
    expect(causes).to_contain_text("The calendar service has no mailbox with this address")
    expect(causes).to_contain_text("policy keeps this mailbox out")
    expect(causes.get_by_role("link", name=re.compile("Checklist:")).first).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^Failed")).click()
    failures = page.get_by_test_id("outcomes")
    expect(failures.get_by_role("link", name="Mailbox not found").first).to_have_attribute("href", "#cause-not_found")
    expect(failures).not_to_contain_text("The calendar service has no mailbox with this address")
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Mailbox.id)).where(Mailbox.status == "authorized")) == healthy
