"""In a real browser: the vendor's product opens a portal link; the admin lands on the wizard, connects through
the sandbox, and goes back to the product with "Back to …"."""

from __future__ import annotations

import pytest
import requests

from extensions import db
from models.connection import Connection
from models.user import User
from services.accounts import api_keys
from tests.e2e.test_connect_wizard import console  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


def test_a_portal_link_signs_in_connects_and_leads_back(app, page, console, sandbox_server,  # noqa: F811
                                                         make_organization):
    organization = make_organization(name="Acme Corp")
    back = f"{console.url}/api/docs/problems"  # stands in for the vendor's page: any HTML page on loopback
    app.config.update(PORTAL_RETURN_URLS=[f"{console.url}/*"], VENDOR_NAME="Vendor App")
    key = api_keys.create_key("Vendor backend", ["organizations:write"]).secret
    db.session.commit()
    issued = requests.post(f"{console.url}/api/v1/organizations/{organization.id}/portal-links", timeout=10,
                           headers={"Authorization": f"Bearer {key}"},
                           json={"admin_email": "it@acme.example", "intent": "connect", "return_url": back})
    assert issued.status_code == 201, issued.text

    page.goto(issued.json()["url"])
    page.wait_for_url(f"{console.url}/orgs/{organization.id}/wizard")
    page.get_by_test_id("start-wizard").click()
    page.get_by_label("Google Workspace").check()
    page.get_by_role("button", name="Save and continue").click()
    page.get_by_label("Install Cronofy's app from the Google Workspace Marketplace for your domain.").check()
    page.get_by_role("button", name="Save and continue").click()
    page.locator('[data-preset="full"]').click()
    page.get_by_role("button", name="Save and continue").click()
    page.get_by_test_id("connect").click()
    page.wait_for_url(f"{sandbox_server.url}/enterprise_connect/oauth/authorize?**")
    page.locator("#domain").select_option("acme.example")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{console.url}/orgs/{organization.id}/wizard/*/verify")
    assert page.get_by_test_id("connected").is_visible()

    admin = db.session.scalar(db.select(User).where(User.email == "it@acme.example"))
    connection = db.session.scalar(db.select(Connection).where(Connection.organization_id == organization.id))
    assert admin.organization_id == organization.id and connection.status == "active"
    assert connection.connected_by_id == admin.id

    page.get_by_role("link", name="Back to Vendor App").click()
    page.wait_for_url(back)
    assert page.get_by_role("heading", name="API error types").is_visible()
    assert requests.get(issued.json()["url"], timeout=10, allow_redirects=False).status_code == 410  # used once
