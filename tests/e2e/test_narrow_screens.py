"""The header and the tables at 1280 px and on a phone (390 px)."""

from __future__ import annotations

import pytest

from extensions import db
from models.organization import Organization
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import make_mailbox

pytestmark = pytest.mark.e2e

LONG_ADDRESS = "someone.with.a.rather.long.address@subsidiary.acme.example"
LONG_ERROR = ("The calendar service refused the request because the mailbox is outside the access policy that "
              "the administrator configured for the service account; ask them to widen the policy.")
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def admin(make_org_admin):
    admin = make_org_admin(email="pat@acme.example", name="Patricia Montgomery-Fairweather")
    organization = db.session.get(Organization, admin.organization_id)
    organization.name = "Acme Worldwide Travel and Logistics"
    db.session.commit()
    make_mailbox(organization, email=LONG_ADDRESS, status="failed", last_error_key="outside_access_policy",
                 last_error_description=LONG_ERROR)
    make_mailbox(organization, email="al@acme.example")
    return admin


def sign_in(page, live_server, admin) -> None:
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}")


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None
    return found


def test_at_1280_the_header_fits_on_one_line_with_a_switcher_and_a_person_menu(live_server, page, admin):
    sign_in(page, live_server, admin)
    navbar = page.locator("nav.navbar")
    brand = box(page.locator(".navbar-brand"))
    assert box(navbar)["height"] < brand["height"] + 30  # one row: nothing wrapped under the brand
    for element in (page.get_by_test_id("org-switcher"), page.get_by_test_id("nav-identity"),
                    page.get_by_role("link", name="Admins", exact=True)):
        assert abs(box(element)["y"] + box(element)["height"] / 2 - (brand["y"] + brand["height"] / 2)) < 12
    assert page.get_by_role("button", name="Sign out").is_hidden()
    page.get_by_test_id("nav-identity").click()
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert page.get_by_test_id("role-badge").inner_text() == "Organization admin"
    page.get_by_test_id("org-switcher").get_by_role("button").click()
    assert page.get_by_role("link", name="Acme Worldwide Travel and Logistics").is_visible()


def test_at_1280_an_address_keeps_its_width_beside_a_long_last_error(live_server, page, admin):
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/orgs/{admin.organization_id}/mailboxes")
    link = page.get_by_role("link", name=LONG_ADDRESS)
    line = page.evaluate("() => parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    assert box(link)["height"] < 1.5 * line  # one line, never broken inside the address
    assert box(link)["width"] >= 190  # 12rem at least, however long the error beside it
    assert link.get_attribute("title") == LONG_ADDRESS


def test_on_a_phone_the_navbar_collapses_and_rows_keep_their_status_in_view(live_server, page, admin):
    page.set_viewport_size(PHONE)
    sign_in(page, live_server, admin)
    mailboxes = page.get_by_role("link", name="Mailboxes", exact=True)
    assert mailboxes.is_hidden()
    page.get_by_role("button", name="Toggle navigation").click()
    mailboxes.click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}/mailboxes")

    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]  # no page-wide scroll
    for status in ("failed", "new"):
        badge = box(page.get_by_test_id("mailbox-table").locator(f'td [data-status="{status}"]'))
        assert 0 <= badge["x"] and badge["x"] + badge["width"] <= PHONE["width"], status
    link = page.get_by_role("link", name=LONG_ADDRESS)
    assert link.evaluate("(a) => a.scrollWidth > a.clientWidth")  # truncated with an ellipsis …
    assert link.evaluate("(a) => getComputedStyle(a).textOverflow") == "ellipsis"
    assert link.get_attribute("title") == LONG_ADDRESS  # … the whole address on hover and in the text
    assert link.inner_text() == LONG_ADDRESS
