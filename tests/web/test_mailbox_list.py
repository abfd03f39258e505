"""The mailbox list: filters, sorts, keyset pages, the summary bar, server-side selection and CSV export."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event, select

from extensions import db
from models.audit import AuditEvent
from models.mailbox import Mailbox
from models.selection import MailboxSelection
from services.mailboxes import mailbox_query, selection as selections
from services.mailboxes.mailbox_query import MailboxFilter
from services.platform.crypto import cipher_for
from tests.helpers import make_connection, make_mailbox, seed_mailboxes


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin())


def listed(response) -> list[str]:
    """Return the emails of the table rows, in order."""
    return re.findall(r'<tr data-mailbox="([^"]+)">', response.get_data(as_text=True))


def next_link(response, rel="next") -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', response.get_data(as_text=True))
    return found.group(1).replace("&amp;", "&") if found else None


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def url(admin, **args) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/orgs/{admin.organization_id}/mailboxes" + (f"?{query}" if query else "")


def test_filters_by_status_kind_group_connection_and_free_text(client, admin):
    org = admin.organization
    berlin = make_connection(org, domain="acme.example")
    make_mailbox(org, email="ann@acme.example", name="Ann Archer", status="authorized", group_name="Sales",
                 connection_id=berlin.id)
    make_mailbox(org, email="bob@acme.example", name="Bob Baker", status="failed", group_name="Sales")
    make_mailbox(org, email="room.atlas@acme.example", name="Atlas (8 seats)", kind="resource")
    make_mailbox(org, email="100%sure@acme.example", name="Percent")
    assert listed(client.get(url(admin, status="failed"))) == ["bob@acme.example"]
    assert listed(client.get(url(admin, kind="resource"))) == ["room.atlas@acme.example"]
    assert listed(client.get(url(admin, group="Sales"))) == ["ann@acme.example", "bob@acme.example"]
    assert listed(client.get(url(admin, connection_id=berlin.id))) == ["ann@acme.example"]
    assert listed(client.get(url(admin, q="BAKER"))) == ["bob@acme.example"]
    assert listed(client.get(url(admin, q="ATLAS@"))) == ["room.atlas@acme.example"]
    # A % in the search is a character, not a wildcard.
    assert listed(client.get(url(admin, q="0%25s"))) == ["100%sure@acme.example"]
    assert listed(client.get(url(admin, group="Sales", status="authorized"))) == ["ann@acme.example"]


def test_an_unknown_filter_value_is_refused_with_what_is_allowed(client, admin):
    response = client.get(url(admin, status="lost"))
    assert response.status_code == 400
    assert "Unknown status" in response.get_data(as_text=True) and "authorized" in response.get_data(as_text=True)


def test_sorts_by_name_status_and_update_in_both_directions(client, admin):
    org = admin.organization
    make_mailbox(org, email="a@x.example", name="Zed", status="failed")
    make_mailbox(org, email="b@x.example", name="Amy", status="authorized")
    make_mailbox(org, email="c@x.example", name="Max", status="new")
    assert listed(client.get(url(admin, sort="name"))) == ["b@x.example", "c@x.example", "a@x.example"]
    assert listed(client.get(url(admin, sort="name", direction="desc"))) == ["a@x.example", "c@x.example", "b@x.example"]
    assert listed(client.get(url(admin, sort="status"))) == ["b@x.example", "a@x.example", "c@x.example"]
    assert listed(client.get(url(admin, sort="updated", direction="desc"))) == ["c@x.example", "b@x.example", "a@x.example"]
    assert listed(client.get(url(admin, direction="desc"))) == ["c@x.example", "b@x.example", "a@x.example"]


def walk(client, first_url, rel="next") -> list[list[str]]:
    pages, link = [], first_url
    while link:
        response = client.get(link)
        pages.append(listed(response))
        link = next_link(response, rel)
    return pages


@pytest.mark.parametrize("sort", ["email", "name", "status", "updated"])
def test_keyset_pages_cover_everything_once_in_order(client, admin, sort):
    seed_mailboxes(admin.organization, 120, status="failed")
    seed_mailboxes(admin.organization, 30, start=500, status="authorized")
    pages = walk(client, url(admin, sort=sort, direction="desc"))
    assert [len(p) for p in pages] == [50, 50, 50]
    emails = [e for p in pages for e in p]
    assert len(set(emails)) == 150
    expected = mailbox_query.page(admin.organization, MailboxFilter(sort=sort, direction="desc"), size=150).rows
    assert emails == [m.email for m in expected]


def test_pages_stay_stable_while_mailboxes_are_added_and_back_returns_the_previous_page(client, admin):
    org = admin.organization
    seed_mailboxes(org, 120)
    second = client.get(next_link(client.get(url(admin))))
    assert listed(second) == [f"user{n:05d}@seed.example" for n in range(50, 100)]
    # Mailboxes added before the current position neither repeat nor push rows off the next page.
    make_mailbox(org, email="aaa-new@seed.example")
    make_mailbox(org, email="user00049a@seed.example")
    third = client.get(next_link(second))
    assert listed(third) == [f"user{n:05d}@seed.example" for n in range(100, 120)]
    assert next_link(third) is None
    # Back from the second page: the 50 rows just before it, as they are now.
    back = client.get(next_link(second, "prev"))
    assert listed(back) == [f"user{n:05d}@seed.example" for n in range(1, 50)] + ["user00049a@seed.example"]
    assert next_link(back, "prev") is not None
    assert listed(client.get(next_link(third, "prev"))) == listed(second)


def test_a_tampered_cursor_starts_from_the_first_page(client, admin):
    seed_mailboxes(admin.organization, 3)
    assert listed(client.get(url(admin, after="bm90LWpzb24"))) == [f"user{n:05d}@seed.example" for n in range(3)]


def test_summary_bar_counts_every_status_within_the_other_filters(client, admin):
    org = admin.organization
    seed_mailboxes(org, 7, status="failed")
    seed_mailboxes(org, 5, start=100, status="authorized", kind="shared")
    seed_mailboxes(org, 2, start=200, status="new", kind="shared")
    page = client.get(url(admin, kind="shared", status="authorized")).get_data(as_text=True)
    counts = dict(re.findall(r'data-count="(\w+)">([\d,]+)<', page))
    assert counts["all"] == "7" and counts["authorized"] == "5" and counts["new"] == "2" and counts["failed"] == "0"
    assert mailbox_query.status_counts(org, MailboxFilter())["failed"] == 7


def test_a_page_of_fifty_costs_a_small_constant_number_of_queries(app, client, admin):
    org = admin.organization
    connection = make_connection(org)
    seed_mailboxes(org, 3, connection_id=connection.id)
    client.get(url(admin))  # the first request also opens the connection
    small = count_statements(app, lambda: client.get(url(admin)))
    seed_mailboxes(org, 200, start=100, connection_id=connection.id, group_name="Sales", status="failed",
                   last_error_description="Mailbox is outside the policy")
    client.get(url(admin))  # folds the 200 new tally rows once (two statements), as after any big import
    statements = count_statements(app, lambda: client.get(url(admin)))
    assert statements == small
    assert statements <= 12


def count_statements(app, action) -> int:
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200
    return len(seen)


def test_empty_directory_points_to_import_sync_and_add(client, admin):
    make_connection(admin.organization)
    page = client.get(url(admin)).get_data(as_text=True)
    assert "No mailboxes yet" in page
    assert f"/orgs/{admin.organization_id}/mailboxes/import" in page
    assert "sync-resources" in page and f"/orgs/{admin.organization_id}/mailboxes/new" in page


def test_no_match_offers_to_clear_the_filters(client, admin):
    make_mailbox(admin.organization, email="ann@acme.example")
    page = client.get(url(admin, q="nobody")).get_data(as_text=True)
    assert "No mailbox matches this filter" in page and "Clear filters" in page
    assert "No mailboxes yet" not in page


def test_select_all_matching_holds_every_match_beyond_the_page(client, admin):
    org = admin.organization
    seed_mailboxes(org, 130, status="failed")
    seed_mailboxes(org, 20, start=500, status="authorized")
    response = client.post(f"/orgs/{org.id}/mailboxes/selection", data={"action": "select_all", "status": "failed"})
    selection_id = int(parse_qs(urlsplit(response.headers["Location"]).query)["selection"][0])
    selection = db.session.get(MailboxSelection, selection_id)
    assert selection.mode == "filter" and selection.criteria == {"status": "failed"}
    assert selections.count(selection) == 130
    ids = set(db.session.scalars(selections.resolve(selection, org)))
    assert ids == set(db.session.scalars(select(Mailbox.id).where(Mailbox.status == "failed")))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "All <strong>130</strong> mailboxes matching this filter are selected" in page
    # The selection goes on to an export of all 130, not just the 50 shown.
    exported = client.post(f"/orgs/{org.id}/mailboxes/selection",
                           data={"action": "export", "status": "failed", "selection_id": selection_id})
    rows = csv_rows(client.get(exported.headers["Location"]))
    assert len(rows) == 131 and {r[4] for r in rows[1:]} == {"failed"}


def test_ticked_rows_become_a_selection_of_only_this_organizations_mailboxes(client, admin, make_organization):
    org = admin.organization
    mine = [make_mailbox(org, email=f"m{n}@acme.example") for n in range(3)]
    foreign = make_mailbox(make_organization(), email="other@elsewhere.example")
    ticked = [mine[0].id, mine[2].id, foreign.id]
    response = client.post(f"/orgs/{org.id}/mailboxes/selection", data={"action": "remove", "mailbox_ids": ticked})
    assert "/selections/" in response.headers["Location"]
    selection = db.session.scalar(select(MailboxSelection))
    assert selection.mode == "ids" and selection.mailbox_ids == [mine[0].id, mine[2].id]
    nothing = client.post(f"/orgs/{org.id}/mailboxes/selection", data={"action": "export"}, follow_redirects=True)
    assert "Tick at least one mailbox" in nothing.get_data(as_text=True)


def test_export_streams_the_filtered_list_with_formula_cells_neutralized(client, admin):
    org = admin.organization
    make_mailbox(org, email="ann@acme.example", name="=HYPERLINK(\"http://evil\")", group_name="+Sales",
                 status="failed", last_error_description="-1 seats", kind="shared")
    make_mailbox(org, email="bob@acme.example", name="@SUM(A1)", group_name="\tTabbed", status="failed")
    make_mailbox(org, email="carl@acme.example", name="Carl", status="authorized",
                 access_token_encrypted=cipher_for(client.application.config).encrypt("secret-access-token"))
    response = client.get(f"/orgs/{org.id}/mailboxes/export.csv?status=failed")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0] == ["email", "name", "kind", "group", "status", "last error", "authorized at"]
    assert rows[1] == ["ann@acme.example", "'=HYPERLINK(\"http://evil\")", "shared", "'+Sales", "failed", "'-1 seats", ""]
    assert rows[2][:4] == ["bob@acme.example", "'@SUM(A1)", "user", "'\tTabbed"]
    assert len(rows) == 3
    everything = client.get(f"/orgs/{org.id}/mailboxes/export.csv").get_data(as_text=True)
    assert "carl@acme.example" in everything and "secret-access-token" not in everything
    assert "gAAAA" not in everything  # no Fernet ciphertext either
    audit = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "mailboxes.exported")
                               .order_by(AuditEvent.id)).all()
    assert [(a.details["count"], a.details["filter"]) for a in audit] == [(2, {"status": "failed"}), (3, {})]


def test_export_reads_the_database_in_keyset_chunks(app, admin):
    from services.mailboxes import mailbox_export

    seed_mailboxes(admin.organization, 25)
    query = mailbox_export.base_query(admin.organization, flt=MailboxFilter())
    chunks = list(mailbox_export.chunks(query, size=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [row[0] for c in chunks for row in c] == [f"user{n:05d}@seed.example" for n in range(25)]


def test_another_organizations_selection_cannot_be_exported(client, admin, make_organization):
    other = make_organization()
    selection = selections.create_selection(other, user=None, flt=MailboxFilter())
    db.session.commit()
    assert client.get(f"/orgs/{admin.organization_id}/mailboxes/export.csv?selection={selection.id}").status_code == 404


def test_the_bulk_bar_sends_a_selection_to_the_authorize_and_revoke_pages(client, admin):
    org = admin.organization
    make_connection(org)
    seed_mailboxes(org, 60)
    chosen = client.post(f"/orgs/{org.id}/mailboxes/selection", data={"action": "select_all"})
    page = client.get(chosen.headers["Location"]).get_data(as_text=True)
    assert f'formaction="/orgs/{org.id}/runs/from-list"' in page and ">Authorize…<" in page
    selection_id = db.session.scalar(select(MailboxSelection.id))
    response = client.post(f"/orgs/{org.id}/runs/from-list", data={"action": "authorize", "selection_id": selection_id})
    assert response.headers["Location"].endswith(f"/runs/new?selection={selection_id}")


def direct_counts(organization) -> dict[str, int]:
    rows = db.session.execute(select(Mailbox.status, db.func.count()).where(Mailbox.organization_id == organization.id)
                              .group_by(Mailbox.status))
    return {status: count for status, count in rows}


def test_the_organization_wide_counts_follow_every_insert_change_and_removal(app, admin, make_organization):
    from models.mailbox_tally import MailboxStatusTally
    from services.mailboxes import mailbox_directory
    from services.mailboxes.mailbox_states import transition

    org, other = admin.organization, make_organization()
    seed_mailboxes(org, 250, status="new")
    seed_mailboxes(other, 5, status="failed")
    boxes = db.session.scalars(select(Mailbox).where(Mailbox.organization_id == org.id).limit(30)).all()
    for mailbox in boxes[:10]:
        transition(mailbox, "queued", kind="queued")
    db.session.execute(db.update(Mailbox).where(Mailbox.id.in_([m.id for m in boxes[10:20]])).values(status="failed"))
    mailbox_directory.remove_mailboxes(org, [m.id for m in boxes[20:30]], actor=admin)
    db.session.commit()
    counts = mailbox_query.status_counts(org, MailboxFilter())
    assert {k: v for k, v in counts.items() if v} == direct_counts(org) == {"new": 220, "queued": 10, "failed": 10}
    # Reading folded the 250+ rows into one per status; the counts stay the same.
    assert db.session.scalar(select(db.func.count(MailboxStatusTally.id))
                             .where(MailboxStatusTally.organization_id == org.id)) == 3
    assert mailbox_query.status_counts(org, MailboxFilter(status="failed")) == counts
    assert mailbox_query.status_counts(other, MailboxFilter())["failed"] == 5
