"""API keys: shown once, stored as a hash, revocable at once, scoped, restricted to one organization."""

from __future__ import annotations

import hashlib

import pytest

from extensions import db
from models.api_key import ApiKey
from services.accounts import api_keys


def test_a_key_is_shown_once_and_only_its_hash_is_stored(app, make_api_key):
    secret = make_api_key("organizations:read")
    assert secret.startswith("ecc_live_") and len(secret) > 40
    stored = db.session.scalar(db.select(ApiKey))
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (stored.prefix, stored.key_hash, stored.scopes, stored.name)
    assert secret.startswith(stored.prefix)


def test_unknown_and_missing_scopes_are_refused(app):
    with pytest.raises(api_keys.ApiKeyError, match="Unknown scope calendars:write"):
        api_keys.create_key("x", ["calendars:write"])
    with pytest.raises(api_keys.ApiKeyError, match="at least one scope"):
        api_keys.create_key("x", [])
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiKey)) == 0


def test_requests_without_a_bearer_key_get_401_with_a_challenge(api, make_org_admin, login_as):
    login_as(make_org_admin())  # a signed-in browser session is never enough
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = api.get("/api/v1/organizations", key=None, headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.json["type"].endswith("/api/docs/problems#unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_malformed_unknown_and_revoked_keys_get_401(api, make_api_key):
    secret = make_api_key()
    assert api.get("/api/v1/organizations", key=secret).status_code == 200
    key = api_keys.find_by_prefix(secret[:api_keys.PREFIX_LENGTH])
    api_keys.revoke_key(key)
    db.session.commit()
    for value in (secret, "ecc_live_" + "x" * 43, "not-a-key", "ecc_live_" + "y" * 500):
        response = api.get("/api/v1/organizations", key=value)
        assert response.status_code == 401, value
        assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_a_key_without_the_scope_gets_403_naming_it(api, make_api_key):
    response = api.get("/api/v1/organizations", key=make_api_key("mailboxes:read"))
    assert response.status_code == 403
    assert response.json["required_scope"] == "organizations:read"
    assert response.json["type"].endswith("#insufficient-scope")


def test_a_key_notes_when_it_was_last_used(api, make_api_key):
    secret = make_api_key()
    key = api_keys.find_by_prefix(secret[:api_keys.PREFIX_LENGTH])
    assert key.last_used_at is None
    api.get("/api/v1/organizations", key=secret)
    db.session.expire_all()
    assert api_keys.find_by_prefix(key.prefix).last_used_at is not None


def test_the_cli_creates_lists_and_revokes_keys(app, runner, make_organization):
    organization = make_organization(slug="acme")
    created = runner.invoke(args=["api-keys", "create", "Billing sync", "--scope", "organizations:read",
                                  "--scope", "tokens:read", "--organization", "acme"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert secret.startswith("ecc_live_")
    listed = runner.invoke(args=["api-keys", "list"])
    assert secret[:api_keys.PREFIX_LENGTH] in listed.output and "Billing sync" in listed.output
    assert "acme" in listed.output and "organizations:read tokens:read" in listed.output and secret not in listed.output
    revoked = runner.invoke(args=["api-keys", "revoke", secret[:api_keys.PREFIX_LENGTH]])
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    again = runner.invoke(args=["api-keys", "revoke", secret[:api_keys.PREFIX_LENGTH]])
    assert again.exit_code != 0 and "already revoked" in again.output
    bad = runner.invoke(args=["api-keys", "create", "x", "--scope", "everything"])
    assert bad.exit_code != 0 and "Unknown scope everything" in bad.output
    assert organization.id


def test_every_request_is_rate_limited_per_key(app, api, make_api_key):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    other = make_api_key()
    statuses = [api.get("/api/v1/organizations").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/api/v1/organizations")
    assert limited.json["type"].endswith("#rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Remaining"] == "0" and limited.headers["RateLimit-Limit"] == "3"
    assert api.get("/api/v1/organizations", key=other).status_code == 200
    # The budget is the key's, across the whole API: another endpoint is refused too.
    assert api.get("/api/v1/webhook-endpoints").status_code == 429


def test_the_cli_makes_a_support_person_a_vendor_admin(app, runner, make_support_user, make_org_admin):
    support = make_support_user()
    assert runner.invoke(args=["user", "vendor-admin", support.email]).exit_code == 0
    db.session.refresh(support)
    assert support.is_vendor_admin
    assert runner.invoke(args=["user", "vendor-admin", support.email, "--off"]).exit_code == 0
    db.session.refresh(support)
    assert not support.is_vendor_admin
    refused = runner.invoke(args=["user", "vendor-admin", make_org_admin().email])
    assert refused.exit_code != 0 and "not support staff" in refused.output


@pytest.mark.config(RATELIMIT_STORAGE_URI="ecc+db://", API_RATE_LIMIT="1000 per minute", SQLALCHEMY_ENGINE_OPTIONS={
    "pool_size": 2, "max_overflow": 0, "pool_timeout": 5})
def test_busy_threads_do_not_starve_the_pool_when_limits_are_counted_in_the_database(live_server, make_api_key):
    """The RateLimit headers read the limiter's store after the view; with the store in the database, a request
    still holding its session's connection there would wait for a second one while its peers did the same."""
    import requests
    from concurrent.futures import ThreadPoolExecutor

    url, key = f"{live_server.url}/api/v1/organizations", make_api_key()

    def ask(_):
        return requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(ask, range(24))) == [200] * 24
