"""Contract: the sandbox's service-account records (GET /sandbox/admin/service-accounts.json) and §3.7.1 revocation."""

from tests.contract.sandbox_support import approve, connect_service_account, http

REDIRECT = "http://127.0.0.1:5000/connect/callback"
DOMAIN = "initech.example"


def records(sandbox, **params):
    response = http().get(f"{sandbox.url}/sandbox/admin/service-accounts.json", params=params)
    assert response.status_code == 200, response.text
    return response.json()["service_accounts"]


def revoke(sandbox, **target):
    body = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret, **target}
    assert http().post(f"{sandbox.url}/oauth/token/revoke", json=body).status_code == 200


def test_each_approval_is_an_active_service_account_until_it_is_revoked(sandbox):
    known = {sa["id"] for sa in records(sandbox, domain=DOMAIN)}
    first = connect_service_account(sandbox, redirect_uri=REDIRECT, domain=DOMAIN)
    approve(sandbox, REDIRECT, domain=DOMAIN)  # approved, code never exchanged
    second = connect_service_account(sandbox, redirect_uri=REDIRECT, domain=DOMAIN)

    new = [sa for sa in records(sandbox, domain=DOMAIN) if sa["id"] not in known]

    assert len(new) == 3 and {sa["status"] for sa in new} == {"active"}
    assert new[0]["id"] == second["service_account_id"]  # newest first
    assert sorted(sa["active_grants"] for sa in new) == [0, 1, 1]
    assert {sa["domain"] for sa in new} == {DOMAIN} and all(sa["client_id"] == sandbox.client_id for sa in new)

    revoke(sandbox, token=first["refresh_token"])
    revoke(sandbox, sub=second["service_account_id"])

    by_id = {sa["id"]: sa for sa in records(sandbox, domain=DOMAIN)}
    assert by_id[first["service_account_id"]]["status"] == "revoked"
    assert by_id[second["service_account_id"]]["status"] == "revoked"
    assert by_id[first["service_account_id"]]["active_grants"] == 0
    active = {sa["id"] for sa in records(sandbox, domain=DOMAIN, status="active")}
    assert first["service_account_id"] not in active and second["service_account_id"] not in active


def test_the_domain_admins_removal_shows_as_its_own_status(sandbox):
    token = connect_service_account(sandbox, redirect_uri=REDIRECT, domain=DOMAIN)
    removed = http().post(f"{sandbox.url}/sandbox/admin/revoke-service-account",
                          json={"service_account_id": token["service_account_id"]})
    assert removed.json()["revoked"] == [token["service_account_id"]]
    ids = {sa["id"] for sa in records(sandbox, domain=DOMAIN, status="revoked_by_admin")}
    assert token["service_account_id"] in ids


def test_an_unknown_status_filter_is_refused(sandbox):
    response = http().get(f"{sandbox.url}/sandbox/admin/service-accounts.json", params={"status": "asleep"})
    assert response.status_code == 422 and "status" in response.json()["errors"]
