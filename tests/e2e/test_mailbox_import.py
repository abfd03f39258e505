"""In a real browser: import a CSV, read the preview, commit, filter the list by group and export it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from extensions import db
from models.mailbox import Mailbox
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.e2e

PEOPLE = (
    "email;name;kind;group\n"
    "ann.lee@acme.example;Lee, Ann;user;Pilot\n"
    "BOB@ACME.example;=HYPERLINK(\"http://evil.example\");shared;Pilot\n"
    "cy@acme.example;Cy;user;Wave 2\n"
    "not-an-address;Nobody;user;Pilot\n"
).encode("utf-8-sig")


def sign_in(page, live_server, admin) -> None:
    page.goto(f"{live_server.url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/orgs/{admin.organization_id}")


def test_admin_imports_a_file_commits_filters_by_group_and_exports(live_server, page, make_org_admin):
    admin = make_org_admin(email="it.admin@acme.example")
    sign_in(page, live_server, admin)

    page.get_by_role("link", name="Mailboxes").click()
    page.get_by_role("link", name="Import a list").click()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": PEOPLE}]
    )
    page.get_by_role("button", name="Preview the import").click()
    page.wait_for_url(re.compile(r"/mailboxes/imports/\d+"))

    # The preview: nothing stored yet, the problem row named with its number and reason.
    assert page.get_by_test_id("count-add").inner_text() == "3"
    assert page.get_by_test_id("count-problem").inner_text() == "1"
    rows = page.get_by_test_id("import-row")
    assert rows.count() == 1 and "5" in rows.first.inner_text() and "malformed address" in rows.first.inner_text()
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Mailbox.id))) == 0
    page.reload()
    commit = page.get_by_test_id("commit-button")
    assert commit.inner_text() == "Import 3 mailboxes; 1 row with problems will be skipped"

    commit.click()
    assert "3 mailboxes added" in page.get_by_test_id("import-result").inner_text()
    page.get_by_role("link", name="Open the mailbox list").click()

    page.get_by_label("Group").select_option("Pilot")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"group=Pilot"))
    listed = page.get_by_role("table").inner_text()
    assert "ann.lee@acme.example" in listed and "BOB@acme.example" in listed and "cy@acme.example" not in listed

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile(r"Export all 2 as CSV")).click()
    exported = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8-sig"))))
    assert sorted(row["email"] for row in exported) == ["BOB@acme.example", "ann.lee@acme.example"]
    assert {row["group"] for row in exported} == {"Pilot"}
    bob = next(row for row in exported if row["email"] == "BOB@acme.example")
    assert bob["name"] == "'=HYPERLINK(\"http://evil.example\")" and bob["kind"] == "shared" and bob["status"] == "new"
