"""The overview puts first the step that matters now, as the organization moves through the work."""

import pytest

from extensions import db
from models.authorization import AuthorizationRun
from models.connection import Connection
from models.mailbox import Mailbox


@pytest.fixture
def admin(login_as, make_org_admin):
    return login_as(make_org_admin())


def _connection(admin, status="active"):
    connection = Connection(organization_id=admin.organization_id, provider="google", data_center="us",
                            status=status, domain="acme.example", service_account_id=f"ser_{status}")
    db.session.add(connection)
    db.session.commit()
    return connection


def _mailboxes(admin, *statuses):
    for n, status in enumerate(statuses):
        db.session.add(Mailbox(organization_id=admin.organization_id, email=f"m{n}@acme.example", status=status))
    db.session.commit()


def _step(client, admin):
    page = client.get(f"/orgs/{admin.organization_id}").get_data(as_text=True)
    marker = 'data-step="'
    return page[page.index(marker) + len(marker):].split('"', 1)[0], page


def test_without_a_connection_the_wizard_comes_first(client, admin):
    step, page = _step(client, admin)
    assert step == "connect" and f"/orgs/{admin.organization_id}/wizard" in page


def test_connected_without_mailboxes_points_to_the_import(client, admin):
    _connection(admin)
    step, page = _step(client, admin)
    assert step == "mailboxes" and f"/orgs/{admin.organization_id}/mailboxes/import" in page


def test_unauthorized_mailboxes_point_to_a_bulk_run_with_counts(client, admin):
    _connection(admin)
    _mailboxes(admin, "new", "new", "failed", "authorized")
    step, page = _step(client, admin)
    assert step == "authorize" and "3 mailboxes are not authorized yet" in page and "(es)" not in page
    assert f"/orgs/{admin.organization_id}/runs/new?everything=1" in page
    assert 'data-testid="mailbox-total">4<' in page


def test_a_running_bulk_run_is_shown_first(client, admin):
    connection = _connection(admin)
    _mailboxes(admin, "queued")
    run = AuthorizationRun(organization_id=admin.organization_id, connection_id=connection.id, status="running")
    db.session.add(run)
    db.session.commit()
    step, page = _step(client, admin)
    assert step == "run" and f"/orgs/{admin.organization_id}/runs/{run.id}" in page


def test_a_connection_needing_reauthorization_comes_before_anything_else(client, admin):
    _connection(admin)
    broken = _connection(admin, status="needs_reauth")
    step, page = _step(client, admin)
    assert step == "reconnect" and f"/connections/{broken.id}" in page


def test_all_authorized_says_so(client, admin):
    _connection(admin)
    _mailboxes(admin, "authorized", "authorized")
    step, page = _step(client, admin)
    assert step == "done" and "All 2 mailboxes asked for are authorized" in page and "(es)" not in page


def test_one_waiting_mailbox_is_one_mailbox(client, admin):
    _connection(admin)
    _mailboxes(admin, "new", "authorized")
    step, page = _step(client, admin)
    assert step == "authorize" and "1 mailbox is not authorized yet" in page


def test_one_authorized_mailbox_reads_as_one(client, admin):
    _connection(admin)
    _mailboxes(admin, "authorized")
    step, page = _step(client, admin)
    assert step == "done" and "The one mailbox asked for is authorized" in page
