"""In a real browser: sign in, walk the wizard, approve (or deny) on the sandbox's consent page."""

from __future__ import annotations

import pytest

from tests.factories import DEFAULT_PASSWORD
from tests.web.wizard_helpers import point_at_sandbox

pytestmark = pytest.mark.e2e


@pytest.fixture
def console(app, live_server, sandbox_server):
    """The live console talking to the test sandbox (the CSP follows SANDBOX_URL on every response)."""
    point_at_sandbox(app, sandbox_server)
    return live_server


def walk_to_the_consent_page(page, console, sandbox, admin):
    page.goto(f"{console.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{console.url}/orgs/{admin.organization_id}")
    page.goto(f"{console.url}/orgs/{admin.organization_id}/wizard")
    page.get_by_test_id("start-wizard").click()

    page.get_by_label("Google Workspace").check()
    page.get_by_label("Your organization's Cronofy data center").select_option("us")
    page.get_by_role("button", name="Save and continue").click()

    assert "Cronofy's app from the Google Workspace Marketplace" in page.content()
    page.get_by_label("Install Cronofy's app from the Google Workspace Marketplace for your domain.").check()
    page.get_by_role("button", name="Save and continue").click()

    page.locator('[data-preset="full"]').click()
    assert page.get_by_label("Read and write").is_checked()
    page.get_by_role("button", name="Save and continue").click()

    assert page.get_by_test_id("summary-provider").inner_text() == "Google Workspace"
    page.get_by_test_id("connect").click()
    page.wait_for_url(f"{sandbox.url}/enterprise_connect/oauth/authorize?**")
    assert "Connect your organization's calendars" in page.content()


def test_admin_connects_through_the_sandbox_and_sees_the_active_connection(
    app, page, console, sandbox_server, make_org_admin
):
    admin = make_org_admin(email="wizard.walker@acme.example")
    walk_to_the_consent_page(page, console, sandbox_server, admin)

    page.locator("#domain").select_option("acme.example")
    page.get_by_role("button", name="Approve").click()

    page.wait_for_url(f"{console.url}/orgs/{admin.organization_id}/wizard/*/verify")
    assert page.get_by_test_id("connection-domain").inner_text() == "acme.example"
    assert page.locator('[data-status="active"]').first.is_visible()
    assert page.get_by_test_id("connected").is_visible()


def test_admin_who_denies_consent_is_told_what_to_do_next(app, page, console, sandbox_server, make_org_admin):
    admin = make_org_admin(email="wizard.denier@acme.example")
    walk_to_the_consent_page(page, console, sandbox_server, admin)

    page.get_by_role("button", name="Deny").click()

    page.wait_for_url(f"{console.url}/connect/callback?**")
    assert page.get_by_role("heading", name="The connection was declined").is_visible()
    assert "send them a setup link" in page.get_by_test_id("consent-problem").inner_text()
    page.get_by_test_id("back-to-wizard").click()
    page.wait_for_url(f"{console.url}/orgs/{admin.organization_id}/wizard/*/review")
    assert page.get_by_test_id("connect").is_enabled()
