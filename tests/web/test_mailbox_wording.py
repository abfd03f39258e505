"""What the mailbox pages say (issue 13, finding 7): adding an address, a committed import's title, a revoked
mailbox's access, a name too long to keep, and counts through the one plural helper."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from extensions import db
from models.mailbox import Mailbox
from tests.helpers import make_connection, make_mailbox
from tests.web.test_mailbox_import import commit, import_id_of, preview_url, text_of, upload


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin(password=None))


def add(client, admin, **form):
    data = {"kind": "user", "connection_id": 0, **form}
    return client.post(f"/orgs/{admin.organization_id}/mailboxes/new", data=data, follow_redirects=True)


def test_adding_an_address_does_not_claim_the_directory_has_it(client, admin):
    make_connection(admin.organization, domain="acme.example")
    page = text_of(add(client, admin, email="nobody@acme.example"))
    assert "is in the directory" not in page
    assert "Added nobody@acme.example to the mailbox list. It is not authorized yet" in page


def test_a_name_longer_than_fits_is_refused_with_its_length_not_cut_short(client, admin):
    form = text_of(client.get(f"/orgs/{admin.organization_id}/mailboxes/new"))
    assert 'maxlength="200"' not in form  # a browser would cut a pasted name short without a word
    response = add(client, admin, email="ann@acme.example", name="N" * 3000)
    assert response.status_code == 400
    assert "This name has 3000 characters; at most 200 fit. Shorten it." in text_of(response)
    assert db.session.scalar(select(func.count(Mailbox.id))) == 0


def test_an_imported_name_that_is_too_long_is_a_problem_row_saying_so(client, admin):
    import_id = import_id_of(upload(client, admin, b"email,name\nann@acme.example," + b"N" * 3000 + b"\n"))
    page = text_of(client.get(preview_url(admin, import_id, show="problem")))
    assert "the name is longer than 200 characters (it has 3,000); shorten it" in page


def test_a_committed_import_is_titled_complete_and_counts_in_words(client, admin):
    import_id = import_id_of(upload(client, admin, b"email\nann@acme.example\n"))
    preview = text_of(client.get(preview_url(admin, import_id)))
    assert "<title>Import preview" in preview and "1 row (comma-separated)" in preview
    commit(client, admin, import_id)
    done = text_of(client.get(preview_url(admin, import_id)))
    assert "<title>Import complete" in done and "Import preview" not in done
    assert "Imported 1 new mailbox and updated 0. 0 rows with problems were skipped." in done
    assert "1 mailbox added" in done and "0 rows with problems skipped" in done


def test_a_revoked_mailbox_shows_no_current_access(client, admin):
    mailbox = make_mailbox(admin.organization, status="revoked", granted_scope="read_events read_free_busy",
                           provider_name="google")
    page = text_of(client.get(f"/orgs/{admin.organization_id}/mailboxes/{mailbox.id}"))
    assert "Granted scope" not in page
    access = page.split('data-testid="current-access">')[1].split("</dd>")[0]
    assert access.startswith("None: revoked") and "Before, it had" in access

