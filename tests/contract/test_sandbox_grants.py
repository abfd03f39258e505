"""Contract: GET /sandbox/admin/grants.json counts the upstream grants of each delegated account."""

import pytest

from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL
from tests.contract.sandbox_support import connect_service_account, delegated_account, http, members
from tests.helpers import scratch_postgres_database
from tests.plugins.sandbox_server import start_sandbox


@pytest.fixture(params=["sqlite", "postgresql"] if ON_POSTGRES else ["sqlite"])
def fresh_sandbox(request, tmp_path):
    """A sandbox of its own (so that no other test's grants are counted); also on PostgreSQL in that pass."""
    if request.param == "sqlite":
        server = start_sandbox(f"sqlite:///{tmp_path / 'sandbox.sqlite'}")
        yield server
        server.stop()
        return
    with scratch_postgres_database(TEST_DATABASE_URL, "ecc_sandbox_grants") as url:
        server = start_sandbox(url)
        yield server
        server.stop()


def _revoke(server, **fields):
    response = http().post(f"{server.url}/oauth/token/revoke",
                           json={"client_id": server.client_id, "client_secret": server.client_secret, **fields})
    assert response.status_code == 200


def test_each_exchange_is_one_grant_and_revoking_by_sub_ends_them_all(fresh_sandbox, callback_receiver):
    server = fresh_sandbox
    sa_token = connect_service_account(server)["access_token"]
    email = members(server, domain="acme.example", kind="user", trait="none")[0]
    first = delegated_account(server, callback_receiver, sa_token, email, name="m1")
    second = delegated_account(server, callback_receiver, sa_token, email, name="m2")
    assert first["account_id"] == second["account_id"]

    assert server.grants(email=email) == [{"email": email, "account_id": first["account_id"],
                                           "client_id": server.client_id, "domain": "acme.example",
                                           "active_grants": 2, "total_grants": 2}]
    assert [row["email"] for row in server.grants(status="active")] == [email]

    _revoke(server, sub=first["sub"])
    [row] = server.grants(email=email.upper())
    assert (row["active_grants"], row["total_grants"]) == (0, 2)
    assert server.grants(status="active") == []
    assert [row["email"] for row in server.grants(status="inactive")] == [email]


def test_grants_are_listed_per_mailbox_and_filtered_by_domain(fresh_sandbox, callback_receiver):
    server = fresh_sandbox
    sa_token = connect_service_account(server)["access_token"]
    healthy, other = members(server, count=2, domain="acme.example", kind="user", trait="none")
    account = delegated_account(server, callback_receiver, sa_token, healthy, name="m1")
    delegated_account(server, callback_receiver, sa_token, other, name="m2")
    _revoke(server, token=account["refresh_token"])

    counts = {row["email"]: (row["active_grants"], row["total_grants"]) for row in server.grants(domain="acme.example")}
    assert counts == {healthy: (0, 1), other: (1, 1)}
    assert server.grants(domain="globex.example") == []
    assert server.grants(email="nobody@acme.example") == []


def test_an_unknown_status_filter_is_422(fresh_sandbox):
    response = http().get(f"{fresh_sandbox.url}/sandbox/admin/grants.json", params={"status": "revoked"})
    assert response.status_code == 422
    assert response.json()["errors"]["status"][0]["key"] == "errors.invalid"
