"""Every main page of a used organization, for its admin and for support, in a real browser.

The axe plugin (tests/plugins/axe.py) checks each page this tour lands on at 1280 and at 390 px and
fails the test on any serious or critical WCAG 2.1 AA violation; the tour makes sure that covers the
pages no journey test happens to pass through.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models.mailbox import Mailbox
from models.organization import Organization
from services.engine import runs
from services.onboarding import wizard as wizards
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import make_connection, make_mailbox

pytestmark = pytest.mark.e2e

DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"
ORGANIZATION_PAGES = (
    "", "/admins", "/connections", "/connections/{connection}", "/mailboxes", "/mailboxes?status=failed",
    "/mailboxes/{mailbox}", "/mailboxes/{failed}", "/mailboxes/new", "/mailboxes/import", "/runs", "/runs/{run}",
    "/runs/{run}?status=queued",
)
WIZARD_PAGES = ("/wizard", "/wizard/{wizard}/provider")
SUPPORT_PAGES = ("/support/", "/support/?sort=state", "/support/orgs/new", "/support/orgs/{org}/access")


@pytest.fixture
def used_organization(app, monkeypatch, make_org_admin):
    import jobs

    monkeypatch.setattr(jobs, "enqueue_pump", lambda run_id: None)
    admin = make_org_admin(email="tour.admin@acme.example", name="Tour Admin")
    organization = db.session.get(Organization, admin.organization_id)
    connection = make_connection(organization)
    connection.granted_delegated_scope = DELEGATED
    mailbox = make_mailbox(organization, email="ada.lovelace@acme.example", group_name="Engineering")
    for n in range(3):
        make_mailbox(organization, email=f"queued{n}@acme.example")
    run = runs.start_run(organization, connection=connection, scope=DELEGATED, actor=admin, source="test",
                         mailbox_ids_select=select(Mailbox.id).where(Mailbox.organization_id == organization.id))
    failed = make_mailbox(organization, email="suspended.person@acme.example", status="failed",
                          last_error_key="mailbox_suspended", last_error_description="The mailbox is suspended.")
    make_mailbox(organization, email="revoked@acme.example", status="revoked")
    make_mailbox(organization, email="authorized@acme.example", status="authorized")
    wizard = wizards.start_wizard(organization, actor=admin)
    db.session.commit()
    ids = {"org": organization.id, "connection": connection.id, "mailbox": mailbox.id, "failed": failed.id,
           "run": run.id, "wizard": wizard.id}
    return admin, ids


def sign_in(page, live_server, user, landing: str) -> None:
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}{landing}")


def visit(page, live_server, paths, ids) -> None:
    for path in paths:
        response = page.goto(f"{live_server.url}{path.format(**ids)}")
        assert response is not None and response.ok, path


def test_the_admin_pages_of_a_used_organization_pass_axe(live_server, page, used_organization):
    admin, ids = used_organization
    sign_in(page, live_server, admin, f"/orgs/{ids['org']}")
    visit(page, live_server, [f"/orgs/{{org}}{path}" for path in ORGANIZATION_PAGES + WIZARD_PAGES], ids)


def test_the_support_pages_pass_axe(live_server, page, used_organization, make_support_user):
    _, ids = used_organization
    support = make_support_user(email="tour.support@vendor.example")
    sign_in(page, live_server, support, "/support/")
    visit(page, live_server, list(SUPPORT_PAGES) + [f"/orgs/{{org}}{path}" for path in ORGANIZATION_PAGES], ids)


def test_the_pages_before_signing_in_pass_axe(live_server, page):
    visit(page, live_server, ["/sign-in", "/checklists/google", "/checklists/microsoft_graph"], {})
