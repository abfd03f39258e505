"""In a real browser: sign in, walk the wizard, approve (or deny) on the sandbox's consent page."""

from __future__ import annotations

import pytest

from extensions import db
from models.connection import Connection
from models.onboarding import SetupLink, WizardSession
from services.onboarding import setup_links
from services.onboarding import wizard as wizards
from tests.factories import DEFAULT_PASSWORD
from tests.web.wizard_helpers import point_at_sandbox, ready_wizard

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
    assert page.get_by_test_id("data-center").inner_text() == "United States (US)"  # the organization's, fixed
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


def test_a_wizard_discarded_while_the_admin_is_on_the_consent_page_is_not_brought_back(
    app, page, console, sandbox_server, make_org_admin
):
    admin = make_org_admin(email="wizard.discarder@acme.example")
    walk_to_the_consent_page(page, console, sandbox_server, admin)
    wizard = db.session.scalars(db.select(WizardSession)).one()
    wizards.discard(wizard)  # as a colleague would, from another browser
    db.session.commit()

    page.locator("#domain").select_option("acme.example")
    page.get_by_role("button", name="Approve").click()

    page.wait_for_url(f"{console.url}/connect/callback?**")
    assert page.get_by_role("heading", name="This setup was discarded").is_visible()
    page.get_by_role("link", name="Start a new setup").click()
    page.wait_for_url(f"{console.url}/orgs/{admin.organization_id}/wizard")
    db.session.expire_all()
    assert db.session.get(WizardSession, wizard.id).status == "abandoned"
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0


def test_a_colleague_whose_setup_link_is_withdrawn_on_the_way_is_told_so(
    app, page, console, sandbox_server, make_org_admin
):
    admin = make_org_admin(email="link.sharer@acme.example")
    issued = setup_links.create_setup_link(ready_wizard(admin.organization, admin), actor=admin, label="Sam")
    db.session.commit()
    page.goto(issued.url)
    page.get_by_test_id("connect").click()
    page.wait_for_url(f"{sandbox_server.url}/enterprise_connect/oauth/authorize?**")
    setup_links.revoke_setup_link(db.session.get(SetupLink, issued.link.id), actor=admin)
    db.session.commit()

    page.locator("#domain").select_option("acme.example")
    page.get_by_role("button", name="Approve").click()

    page.wait_for_url(f"{console.url}/connect/callback?**")
    assert page.get_by_role("heading", name="This setup link was withdrawn").is_visible()
    assert "Ask whoever sent the link for a new one" in page.get_by_test_id("consent-problem").inner_text()
    assert page.get_by_test_id("back-to-wizard").count() == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(Connection)) == 0
