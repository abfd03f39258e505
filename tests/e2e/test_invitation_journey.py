"""In a real browser: an invited admin opens the link, sets a password and lands on the overview."""

import pytest

from extensions import db
from models.user import ROLE_ORG_ADMIN
from services.accounts import invitations

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough passphrase"


def test_invited_admin_sets_password_and_lands_on_overview(live_server, page, make_organization, make_support_user):
    organization = make_organization(name="Globex Corporation")
    support = make_support_user()
    issued = invitations.create_invitation(
        email="new.admin@globex.example", role=ROLE_ORG_ADMIN, organization=organization, invited_by=support
    )
    db.session.commit()

    page.goto(issued.url)
    assert "Globex Corporation" in page.content()
    page.get_by_label("Your name").fill("Nadia Admin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()

    page.wait_for_url(f"{live_server.url}/orgs/{organization.id}")
    assert page.get_by_role("heading", name="Globex Corporation").is_visible()
    assert "Nadia Admin" in page.get_by_test_id("nav-identity").inner_text()

    # The link worked once: opening it again explains that it is used.
    page.goto(issued.url)
    assert "already" in page.content().lower()


def test_signed_in_admin_signs_out_and_back_in(live_server, page, make_org_admin):
    admin = make_org_admin(email="sam@initech.example")
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill("sam@initech.example")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}")
    page.get_by_test_id("nav-identity").click()  # the person's menu holds Sign out
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/sign-in")
    assert "You have signed out" in page.content()
