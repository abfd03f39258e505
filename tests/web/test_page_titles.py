"""Every page has a <title> of its own (WCAG 2.4.2): the main GET pages, for an admin and for support."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from extensions import db
from models.mailbox import Mailbox
from models.organization import Organization
from services.engine import runs
from services.onboarding import wizard as wizards
from tests.helpers import make_connection, make_mailbox
from tests.web.wizard_helpers import other_browser

DEFAULT_TITLE = "Enterprise Connect Console · Enterprise Connect Console"
DELEGATED = "read_account list_calendars read_events create_event delete_event read_free_busy"
ORGANIZATION_PAGES = (
    "", "/admins", "/connections", "/connections/{connection}", "/mailboxes", "/mailboxes/{mailbox}",
    "/mailboxes/new", "/mailboxes/import", "/runs", "/runs/{run}", "/wizard",
    "/wizard/{wizard}/provider", "/wizard/{wizard}/checklist", "/wizard/{wizard}/scopes", "/wizard/{wizard}/review",
)
SUPPORT_PAGES = ("/support/", "/support/orgs/new", "/support/orgs/{org}/access")
SIGNED_OUT_PAGES = ("/sign-in", "/checklists/google")


def _title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found, "the page has a <title>"
    return html.unescape(" ".join(found.group(1).split()))


@pytest.fixture
def used_organization(app, monkeypatch, make_org_admin):
    """An organization with a connection, mailboxes, a run and a wizard under way: every page has content."""
    import jobs

    monkeypatch.setattr(jobs, "enqueue_pump", lambda run_id: None)
    admin = make_org_admin(name="Ada Admin")
    organization = db.session.get(Organization, admin.organization_id)
    connection = make_connection(organization)
    connection.granted_delegated_scope = DELEGATED
    mailbox = make_mailbox(organization, email="ada@acme.example")
    make_mailbox(organization, email="bob@acme.example")
    run = runs.start_run(organization, connection=connection, scope=DELEGATED, actor=admin, source="test",
                         mailbox_ids_select=select(Mailbox.id).where(Mailbox.organization_id == organization.id))
    wizard = wizards.start_wizard(organization, actor=admin)
    db.session.commit()
    ids = {"org": organization.id, "connection": connection.id, "mailbox": mailbox.id, "run": run.id,
           "wizard": wizard.id}
    return admin, ids


def _titles(browser, paths, ids) -> dict[str, str]:
    """Final URL → title of each page (following redirects, so a page reached twice counts once)."""
    titles = {}
    for path in paths:
        response = browser.get(path.format(**ids), follow_redirects=True)
        assert response.status_code == 200, path
        assert response.mimetype == "text/html", path
        titles[response.request.path] = _title(response.get_data(as_text=True))
    return titles


def _assert_distinct(titles: dict[str, str]) -> None:
    assert DEFAULT_TITLE not in titles.values(), [url for url, title in titles.items() if title == DEFAULT_TITLE]
    by_title = {}
    for url, title in titles.items():
        by_title.setdefault(title, []).append(url)
    assert {title: urls for title, urls in by_title.items() if len(urls) > 1} == {}


def test_each_page_an_admin_sees_has_its_own_title(app, used_organization):
    admin, ids = used_organization
    browser = other_browser(app, admin)
    titles = _titles(browser, [f"/orgs/{{org}}{path}" for path in ORGANIZATION_PAGES], ids)
    assert len(titles) == len(ORGANIZATION_PAGES)
    _assert_distinct(titles)
    assert all(title.endswith("· Enterprise Connect Console") for title in titles.values())


def test_each_page_support_sees_has_its_own_title(app, used_organization, make_support_user):
    _, ids = used_organization
    browser = other_browser(app, make_support_user(password=None))
    paths = [f"/orgs/{{org}}{path}" for path in ORGANIZATION_PAGES if "wizard" not in path] + list(SUPPORT_PAGES)
    titles = _titles(browser, paths, ids)
    _assert_distinct(titles)


def test_pages_before_signing_in_have_their_own_titles(app):
    titles = _titles(other_browser(app), SIGNED_OUT_PAGES, {})
    _assert_distinct(titles)


def test_a_page_without_a_title_of_its_own_would_be_caught():
    with pytest.raises(AssertionError):
        _assert_distinct({"/a": "Mailboxes · Enterprise Connect Console", "/b": "Mailboxes · Enterprise Connect Console"})
    with pytest.raises(AssertionError):
        _assert_distinct({"/a": DEFAULT_TITLE})

