"""Support's organization list: each organization's onboarding state and mailboxes per status, sortable."""

from __future__ import annotations

import re

import pytest

from extensions import db
from models.connection import Connection
from models.onboarding import WizardSession
from tests.jobs.conftest import add_mailboxes


@pytest.fixture
def support_client(client, login_as, make_support_user):
    login_as(make_support_user(password=None))
    return client


def _connect(organization, status="active"):
    db.session.add(Connection(organization_id=organization.id, provider="google", data_center="us",
                              domain=f"{organization.slug}.example", status=status))
    db.session.commit()


def _open_wizard(organization):
    db.session.add(WizardSession(organization_id=organization.id, status="draft", step="scopes"))
    db.session.commit()


def _rows(html: str) -> list[str]:
    """The organizations' slugs, in the order the list shows them."""
    return re.findall(r'data-testid="organization-row" data-organization="([^"]+)"', html)


def _row(html: str, slug: str) -> str:
    start = html.index(f'data-organization="{slug}"')
    return html[start:html.index("</tr>", start)]


@pytest.fixture
def four_organizations(make_organization):
    """Four organizations at four points of onboarding, with mailboxes in several statuses."""
    fresh = make_organization(name="Delta Fresh", slug="delta")
    wizard = make_organization(name="Charlie Wizard", slug="charlie")
    _open_wizard(wizard)
    broken = make_organization(name="Bravo Broken", slug="bravo")
    _connect(broken, status="needs_reauth")
    add_mailboxes(broken, [f"b{n}@bravo.example" for n in range(2)], status="authorized")
    ready = make_organization(name="Alpha Ready", slug="alpha")
    _connect(ready)
    add_mailboxes(ready, [f"a{n}@alpha.example" for n in range(5)], status="authorized")
    add_mailboxes(ready, ["failed@alpha.example"], status="failed")
    add_mailboxes(ready, ["new1@alpha.example", "new2@alpha.example"], status="new")
    return fresh, wizard, broken, ready


def test_each_organization_shows_its_onboarding_state_and_mailboxes_per_status(support_client, four_organizations):
    html = support_client.get("/support/").get_data(as_text=True)

    assert "Not started" in _row(html, "delta")
    assert "Wizard in progress" in _row(html, "charlie")
    assert "Connection needs attention" in _row(html, "bravo")
    alpha = _row(html, "alpha")
    assert "Connected, mailboxes need attention" in alpha
    assert '<td class="text-end" data-count="mailboxes">8</td>' in alpha
    assert '<td class="text-end" data-count="authorized">5</td>' in alpha
    assert '<td class="text-end" data-count="failed">1</td>' in alpha
    assert '<td class="text-end" data-count="new">2</td>' in alpha
    assert '<td class="text-end" data-count="mailboxes">0</td>' in _row(html, "delta")


def test_an_organization_whose_mailboxes_are_all_well_is_connected(support_client, make_organization):
    organization = make_organization(name="Echo", slug="echo")
    _connect(organization)
    add_mailboxes(organization, ["one@echo.example"], status="authorized")
    row = _row(support_client.get("/support/").get_data(as_text=True), "echo")
    assert 'data-state="connected">Connected</span>' in row


def test_the_list_sorts_by_name_state_and_counts_both_ways(support_client, four_organizations):
    assert _rows(support_client.get("/support/").get_data(as_text=True)) == ["alpha", "bravo", "charlie", "delta"]
    by_name_desc = support_client.get("/support/?sort=name&dir=desc").get_data(as_text=True)
    assert _rows(by_name_desc) == ["delta", "charlie", "bravo", "alpha"]
    # States sort along onboarding: not started, wizard, broken connection, connected with failures.
    by_state = support_client.get("/support/?sort=state").get_data(as_text=True)
    assert _rows(by_state) == ["delta", "charlie", "bravo", "alpha"]
    by_total = support_client.get("/support/?sort=mailboxes&dir=desc").get_data(as_text=True)
    assert _rows(by_total) == ["alpha", "bravo", "charlie", "delta"]  # 8, 2, then 0 and 0 by name
    by_authorized = support_client.get("/support/?sort=authorized&dir=asc").get_data(as_text=True)
    assert _rows(by_authorized) == ["charlie", "delta", "bravo", "alpha"]


def test_column_headers_are_sort_links_that_say_the_current_order(support_client, four_organizations):
    html = support_client.get("/support/?sort=failed&dir=desc").get_data(as_text=True)
    header = html[html.index("<thead>"):html.index("</thead>")]
    assert 'aria-sort="descending"' in header and header.count("aria-sort=") == 1
    failed = re.search(r'<th[^>]*aria-sort="descending"[^>]*>\s*<a[^>]*href="([^"]+)"[^>]*data-sort="failed"', header)
    assert failed and failed.group(1) == "/support/?sort=failed"  # the link flips it to ascending
    assert 'href="/support/?sort=state" data-sort="state"' in header
    assert 'href="/support/?dir=desc" data-sort="name"' not in header  # name ascending is the default
    assert 'href="/support/" data-sort="name"' in header


def test_an_unknown_sort_falls_back_to_the_name(support_client, four_organizations):
    html = support_client.get("/support/?sort=password&dir=sideways").get_data(as_text=True)
    assert _rows(html) == ["alpha", "bravo", "charlie", "delta"]


def test_pages_keep_the_sort_and_the_search(support_client, make_organization):
    for n in range(27):
        organization = make_organization(name=f"Tenant {n:02d}", slug=f"tenant-{n:02d}")
        if n < 2:
            add_mailboxes(organization, [f"m{i}@t{n}.example" for i in range(3 - n)])
    first = support_client.get("/support/?q=tenant&sort=mailboxes&dir=desc").get_data(as_text=True)
    assert _rows(first)[:3] == ["tenant-00", "tenant-01", "tenant-02"]
    assert 'href="/support/?page=2&amp;q=tenant&amp;sort=mailboxes&amp;dir=desc"' in first
    assert '<input type="hidden" name="sort" value="mailboxes">' in first  # a new search keeps the order
    second = support_client.get("/support/?page=2&q=tenant&sort=mailboxes&dir=desc").get_data(as_text=True)
    assert len(_rows(second)) == 2 and "tenant-00" not in _rows(second)


def test_the_list_is_counted_with_a_fixed_number_of_queries(app, support_client, make_organization):
    from sqlalchemy import event

    for n in range(12):
        organization = make_organization(name=f"Org {n:02d}", slug=f"org-{n:02d}")
        _connect(organization)
        add_mailboxes(organization, [f"m{n}@org{n}.example"], status="authorized")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert support_client.get("/support/").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    touching = [s for s in statements if "FROM mailboxes" in s or "mailboxes." in s]
    assert len(touching) == 1 and "GROUP BY" in touching[0]
