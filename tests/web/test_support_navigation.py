"""The header: support staff inside an organization get its admins' navigation; the current section is marked."""

from __future__ import annotations

import re

import pytest

SECTIONS = ("Overview", "Mailboxes", "Runs", "Connections", "Admins")


def _nav(html: str) -> str:
    return html[html.index('<nav class="navbar'):html.index("</nav>")]


def _sections(html: str) -> list[tuple[str, str, bool]]:
    """(label, href, is current) of each entry of the header's section list."""
    nav = _nav(html)
    block = nav[nav.index('data-testid="nav-sections"'):]
    block = block[:block.index("</ul>")]
    return [(label.strip(), href, "aria-current" in attrs)
            for href, attrs, label in re.findall(r'<a class="nav-link" href="([^"]+)"([^>]*)>([^<]+)</a>', block)]


@pytest.mark.parametrize("path, current", [
    ("", "Overview"), ("/mailboxes", "Mailboxes"), ("/runs", "Runs"), ("/connections", "Connections"),
    ("/admins", "Admins"),
])
def test_support_inside_an_organization_has_its_admins_navigation(client, login_as, make_support_user,
                                                                  make_organization, path, current):
    organization = make_organization(name="Initech")
    login_as(make_support_user(password=None))
    html = client.get(f"/orgs/{organization.id}{path}").get_data(as_text=True)

    sections = _sections(html)
    assert [label for label, _, _ in sections] == list(SECTIONS)
    assert all(href.startswith(f"/orgs/{organization.id}") for _, href, _ in sections)
    assert [label for label, _, is_current in sections if is_current] == [current]
    switcher = _nav(html)[_nav(html).index('data-testid="org-switcher"'):]
    assert "Initech" in switcher and 'href="/support/" data-testid="all-organizations"' in switcher


def test_an_admin_gets_the_same_navigation_with_the_current_section_marked(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(password=None))
    html = client.get(f"/orgs/{admin.organization_id}/runs").get_data(as_text=True)
    sections = _sections(html)
    assert [label for label, _, _ in sections] == list(SECTIONS)
    assert [label for label, _, is_current in sections if is_current] == ["Runs"]


def test_support_outside_an_organization_sees_the_organizations_list_entry(client, login_as, make_support_user):
    login_as(make_support_user(password=None))
    html = client.get("/support/").get_data(as_text=True)
    assert _sections(html) == [("Organizations", "/support/", True)]
    assert "All organizations" in _nav(html)


def test_the_person_menu_holds_name_email_role_and_a_sign_out_button(client, login_as, make_org_admin):
    admin = login_as(make_org_admin(name="Nadia Admin", email="nadia@acme.example", password=None))
    nav = _nav(client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True))
    menu = nav[nav.index('class="nav-item dropdown person-menu"'):]
    assert "Nadia Admin" in menu and "nadia@acme.example" in menu
    assert 'data-testid="role-badge">Organization admin</span>' in menu
    assert re.search(r'<form method="post" action="/sign-out">\s*<input type="hidden" name="csrf_token"[^>]*>\s*'
                     r'<button[^>]*type="submit">Sign out</button>', menu)
