"""Which connection a mailbox belongs to (issue 13, finding 3): imports assign the connection serving each
address's domain, the import form defaults to the one connection there is, and the list's Connection
column and filter show it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from models.mailbox import Mailbox
from tests.helpers import make_connection
from tests.web.test_mailbox_import import commit, import_id_of, preview_url, text_of, upload


@pytest.fixture
def admin(make_org_admin, login_as):
    return login_as(make_org_admin(password=None))


def selected_connection(page: str) -> str:
    select_html = page.split('name="connection_id"')[1].split("</select>")[0]
    return re.search(r'<option selected value="(\d+)"|<option value="(\d+)" selected', select_html).group(0)


def test_the_import_form_defaults_to_the_one_connection_serving_a_domain(client, admin):
    connection = make_connection(admin.organization, domain="acme.example")
    page = client.get(f"/orgs/{admin.organization_id}/mailboxes/import").get_data(as_text=True)
    assert f'"{connection.id}"' in selected_connection(page)


def test_with_several_connections_the_form_offers_each_addresss_own(client, admin):
    make_connection(admin.organization, domain="acme.example")
    make_connection(admin.organization, domain="globex.example")
    page = text_of(client.get(f"/orgs/{admin.organization_id}/mailboxes/import"))
    assert '"0"' in selected_connection(page)
    assert "Each address's own connection, by its domain" in page


def test_a_committed_import_gives_each_mailbox_its_domains_connection(client, admin):
    acme = make_connection(admin.organization, domain="acme.example")
    globex = make_connection(admin.organization, domain="globex.example")
    data = b"email,name\nann@acme.example,Ann\nbob@globex.example,Bob\ncy@eu.acme.example,Cy\n"
    import_id = import_id_of(upload(client, admin, data))
    preview = text_of(client.get(preview_url(admin, import_id, show="add")))
    assert preview.count('data-testid="row-connection"') == 3
    assert 'data-testid="row-connection">globex.example<' in preview
    commit(client, admin, import_id)
    assigned = dict(db.session.execute(select(Mailbox.email, Mailbox.connection_id)).all())
    assert assigned == {"ann@acme.example": acme.id, "bob@globex.example": globex.id,
                        "cy@eu.acme.example": acme.id}
    listed = text_of(client.get(f"/orgs/{admin.organization_id}/mailboxes?connection_id={acme.id}"))
    assert "ann@acme.example" in listed and "cy@eu.acme.example" in listed and "bob@globex.example" not in listed
    assert "— " not in listed.split('data-mailbox="ann@acme.example"')[1].split("</tr>")[0]


def test_an_import_for_a_chosen_connection_gives_it_every_row(client, admin):
    make_connection(admin.organization, domain="acme.example")
    chosen = make_connection(admin.organization, domain="globex.example")
    import_id = import_id_of(upload(client, admin, b"email\nbob@globex.example\n", connection=chosen))
    commit(client, admin, import_id)
    assert db.session.scalar(select(Mailbox.connection_id)) == chosen.id
