"""Portal links: issued over the API, opened once within minutes, signing the admin in with a way back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from urllib.parse import urlsplit

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.portal_link import PortalLink
from models.user import User

RETURN = "https://app.vendor.example/settings/calendars"


def _path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture(autouse=True)
def allow_returns(app):
    app.config["PORTAL_RETURN_URLS"] = ["https://app.vendor.example/*"]
    app.config["VENDOR_NAME"] = "Vendor App"


def _issue(api, organization, **body):
    return api.post(f"/api/v1/organizations/{organization.id}/portal-links",
                    json={"admin_email": "IT@Acme.example", "intent": "mailboxes", "return_url": RETURN, **body})


def test_a_link_signs_in_a_new_admin_once_and_lands_on_its_intent(api, client, make_organization):
    organization = make_organization()
    issued = _issue(api, organization)
    assert issued.status_code == 201
    url, expires = issued.json["url"], issued.json["expires_at"]
    assert "/portal/" in url and expires > utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    token = url.rsplit("/", 1)[1]
    assert db.session.scalar(db.select(PortalLink)).token_hash != token  # only a hash is kept
    opened = client.get(_path(url))
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/orgs/{organization.id}/mailboxes")
    user = db.session.scalar(db.select(User).where(User.email == "it@acme.example"))
    assert user.organization_id == organization.id and user.password_hash is None
    page = client.get(opened.headers["Location"]).get_data(as_text=True)
    assert RETURN in page and "Back to Vendor App" in page
    again = client.get(_path(url))
    assert again.status_code == 410 and "cannot be used" in again.get_data(as_text=True)


def test_actions_in_a_portal_session_are_audited_as_coming_through_the_key(api, client, make_organization):
    organization = make_organization()
    url = _issue(api, organization).json["url"]
    client.get(_path(url))
    opened = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "portal_link.opened"))
    assert opened.details["via"] == "portal_link" and opened.details["api_key"] == api.key[:17]


def test_an_expired_link_is_refused(api, client, make_organization):
    organization = make_organization()
    url = _issue(api, organization).json["url"]
    db.session.execute(db.update(PortalLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get(_path(url)).status_code == 410
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_return_urls_outside_the_allow_list_are_refused(api, make_organization):
    organization = make_organization()
    for bad in ("https://evil.example/", "javascript:alert(1)", "https://app.vendor.example.evil.example/x",
                "//evil.example/", "https://app.vendor.example\\@evil.example/"):
        refused = _issue(api, organization, return_url=bad)
        assert refused.status_code == 422, bad
        assert refused.json["errors"][0]["pointer"] == "#/return_url"
    assert db.session.scalar(db.select(db.func.count()).select_from(PortalLink)) == 0


def test_an_email_of_another_organizations_admin_is_refused(api, make_organization, make_org_admin):
    elsewhere = make_org_admin()
    refused = _issue(api, make_organization(), admin_email=elsewhere.email)
    assert refused.status_code == 422 and refused.json["errors"][0]["pointer"] == "#/admin_email"


def test_links_need_organizations_write_and_a_visible_organization(api, make_api_key, make_organization):
    organization, other = make_organization(), make_organization()
    assert _issue(api, organization, intent="settings").status_code == 422
    read_only = make_api_key("organizations:read")
    assert api.post(f"/api/v1/organizations/{organization.id}/portal-links", key=read_only,
                    json={"admin_email": "a@b.example", "return_url": RETURN}).status_code == 403
    restricted = make_api_key(organization=organization)
    assert api.post(f"/api/v1/organizations/{other.id}/portal-links", key=restricted,
                    json={"admin_email": "a@b.example", "return_url": RETURN}).status_code == 404


def test_a_replayed_link_is_kept_encrypted_not_in_plain_text(api, make_organization):
    from models.idempotency import IdempotencyRecord

    organization = make_organization()
    headers = {"Idempotency-Key": "portal-1"}
    first = api.post(f"/api/v1/organizations/{organization.id}/portal-links", headers=headers,
        json={"admin_email": "it@acme.example", "intent": "overview", "return_url": RETURN})
    again = api.post(f"/api/v1/organizations/{organization.id}/portal-links", headers=headers,
                     json={"admin_email": "it@acme.example", "intent": "overview", "return_url": RETURN})
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    token = urlsplit(first.json["url"]).path.rsplit("/", 1)[1]
    stored = db.session.scalar(db.select(IdempotencyRecord))
    assert token not in stored.response_encrypted and "portal" not in stored.response_encrypted
