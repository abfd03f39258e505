"""With the keyboard only (Tab, Shift+Tab, Enter, Space, arrow keys, typing): sign in, walk the connection
wizard through the sandbox's consent page, and start an authorization run. Every element that takes
focus on the way shows it (an outline or a focus shadow), WCAG 2.4.7.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from extensions import db
from models.authorization import AuthorizationAttempt, AuthorizationRun
from models.organization import Organization
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import make_mailbox
from tests.web.wizard_helpers import point_at_sandbox

pytestmark = pytest.mark.e2e

MAX_TABS = 80
DESCRIBE_FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  const label = el.labels && el.labels.length ? el.labels[0].innerText : (el.getAttribute('aria-label') || '');
  return {
    tag: el.tagName.toLowerCase(), type: el.type || '', id: el.id || '',
    text: (el.innerText || '').replace(/\\s+/g, ' ').trim().slice(0, 120),
    label: label.replace(/\\s+/g, ' ').trim(), value: el.value || '', checked: !!el.checked,
    href: el.getAttribute('href') || '', testid: el.dataset.testid || '', preset: el.dataset.preset || '',
    outline: style.outlineStyle, outlineWidth: style.outlineWidth, boxShadow: style.boxShadow,
  };
}"""


@pytest.fixture
def console(app, live_server, sandbox_server, monkeypatch):
    import jobs

    point_at_sandbox(app, sandbox_server)
    monkeypatch.setattr(jobs, "enqueue_pump", lambda run_id: None)  # the run starts; no worker sends it here
    return live_server


def focused(page) -> dict | None:
    return page.evaluate(DESCRIBE_FOCUS)


def shows_focus(element: dict) -> bool:
    outlined = element["outline"] != "none" and element["outlineWidth"] not in ("0px", "")
    return outlined or element["boxShadow"] != "none"


def tab_to(page, matches, *, backwards: bool = False) -> dict:
    """Press Tab (or Shift+Tab) until the focused element matches; each stop on the way must show its focus."""
    stops = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        element = focused(page)
        if element is None:
            continue
        stops.append(element["text"] or element["label"] or element["id"] or element["tag"])
        assert shows_focus(element), f"focus is not visible on {element} ({page.url})"
        if matches(element):
            return element
    raise AssertionError(f"never reached the element on {page.url}; focus went through {stops}")


def text_is(text: str):
    return lambda element: element["text"] == text


def label_has(text: str):
    return lambda element: text in element["label"]


def press_and_wait(page, key: str, url_pattern) -> None:
    page.keyboard.press(key)
    page.wait_for_url(url_pattern)


def sign_in(page, console, admin) -> None:
    page.goto(f"{console.url}/sign-in")
    tab_to(page, label_has("Email"))
    page.keyboard.type(admin.email)
    tab_to(page, label_has("Password"))
    page.keyboard.type(DEFAULT_PASSWORD)
    press_and_wait(page, "Enter", f"{console.url}/orgs/{admin.organization_id}")


def walk_the_wizard(page, console, sandbox, admin) -> None:
    org = f"{console.url}/orgs/{admin.organization_id}"
    tab_to(page, lambda element: element["href"].endswith("/wizard"))
    press_and_wait(page, "Enter", f"{org}/wizard")
    tab_to(page, lambda element: element["testid"] == "start-wizard")
    press_and_wait(page, "Enter", re.compile(r"/wizard/\d+/provider$"))

    radio = tab_to(page, lambda element: element["type"] == "radio")
    for _ in range(6):  # arrow keys move through the group and choose as they go
        if "Google Workspace" in radio["label"] and radio["checked"]:
            break
        page.keyboard.press("Space" if "Google Workspace" in radio["label"] else "ArrowDown")
        radio = focused(page)
    assert "Google Workspace" in radio["label"] and radio["checked"]
    tab_to(page, text_is("Save and continue"))
    press_and_wait(page, "Enter", re.compile(r"/wizard/\d+/checklist$"))

    tab_to(page, label_has("Install Cronofy's app from the Google Workspace Marketplace"))
    page.keyboard.press("Space")
    assert focused(page)["checked"]
    tab_to(page, text_is("Save and continue"))
    press_and_wait(page, "Enter", re.compile(r"/wizard/\d+/scopes$"))

    tab_to(page, lambda element: element["preset"] == "full")
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert page.get_by_label("Read and write").is_checked()
    tab_to(page, text_is("Save and continue"))
    press_and_wait(page, "Enter", re.compile(r"/wizard/\d+/review$"))

    tab_to(page, lambda element: element["testid"] == "connect")
    press_and_wait(page, "Enter", f"{sandbox.url}/enterprise_connect/oauth/authorize?**")
    select_domain(page, "acme.example")
    tab_to(page, text_is("Approve"))
    press_and_wait(page, "Enter", re.compile(r"/wizard/\d+/verify$"))
    assert page.get_by_test_id("connected").is_visible()


def select_domain(page, domain: str) -> None:
    """On the sandbox's consent page: focus the domain list and move through it with the arrow keys."""
    element = tab_to(page, lambda found: found["id"] == "domain")
    for _ in range(20):
        if element["value"] == domain:
            return
        page.keyboard.press("ArrowDown")
        element = focused(page)
    raise AssertionError(f"{domain} is not among the consent page's domains")


def start_a_run(page, console, admin) -> None:
    tab_to(page, lambda element: element["text"] == "Mailboxes" and element["href"].endswith("/mailboxes"))
    press_and_wait(page, "Enter", re.compile(r"/mailboxes$"))
    tab_to(page, lambda element: element["text"].startswith("Select all "))
    press_and_wait(page, "Enter", re.compile(r"/mailboxes\?selection=\d+$"))
    tab_to(page, text_is("Authorize…"))
    press_and_wait(page, "Enter", re.compile(r"/runs/new\?selection=\d+$"))
    tab_to(page, text_is("Start authorizing"))
    press_and_wait(page, "Enter", re.compile(r"/runs/\d+$"))


def test_an_admin_connects_and_starts_a_run_with_the_keyboard_only(app, page, console, sandbox_server,
                                                                   make_org_admin):
    admin = make_org_admin(email="keys.only@acme.example")
    organization = db.session.get(Organization, admin.organization_id)
    for name in ("ada", "bob", "cy"):
        make_mailbox(organization, email=f"{name}@acme.example")

    sign_in(page, console, admin)
    walk_the_wizard(page, console, sandbox_server, admin)
    start_a_run(page, console, admin)

    run_id = db.session.scalar(select(func.max(AuthorizationRun.id)))
    assert page.url.endswith(f"/orgs/{admin.organization_id}/runs/{run_id}")
    assert db.session.scalar(select(func.count(AuthorizationAttempt.id))
                             .where(AuthorizationAttempt.run_id == run_id)) == 3


def test_shift_tab_goes_back_and_the_skip_link_comes_first(page, console, make_org_admin):
    admin = make_org_admin(email="skipper@acme.example")
    sign_in(page, console, admin)
    skip = tab_to(page, text_is("Skip to content"))
    assert skip["href"] == "#main"
    page.keyboard.press("Enter")
    after = tab_to(page, lambda element: True)  # the first stop inside the page's content, past the header
    assert page.evaluate("() => document.querySelector('#main').contains(document.activeElement)"), after
    tab_to(page, lambda element: element["testid"] == "nav-identity", backwards=True)
