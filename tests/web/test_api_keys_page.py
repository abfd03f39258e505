"""The vendor settings page: only vendor admins manage API keys; a new key is shown once, revoking asks first."""

from __future__ import annotations

from extensions import db
from models.api_key import ApiKey
from services.accounts import api_keys


def _vendor_admin(make_support_user):
    user = make_support_user()
    user.is_vendor_admin = True
    db.session.commit()
    return user


def test_only_vendor_admins_see_the_page(client, login_as, make_support_user, make_org_admin):
    login_as(make_org_admin())
    assert client.get("/support/api-keys").status_code == 404
    login_as(make_support_user())
    assert client.get("/support/api-keys").status_code == 404
    assert client.post("/support/api-keys", data={"name": "x", "scopes": ["tokens:read"]}).status_code == 404
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiKey)) == 0
    login_as(_vendor_admin(make_support_user))
    page = client.get("/support/api-keys")
    assert page.status_code == 200 and "No API keys yet" in page.get_data(as_text=True)


def test_a_new_key_is_shown_once_then_only_its_prefix(client, login_as, make_support_user, make_organization):
    admin = login_as(_vendor_admin(make_support_user))
    organization = make_organization(name="Acme")
    created = client.post("/support/api-keys", data={"name": "Scheduler", "scopes": ["tokens:read", "mailboxes:read"],
                                                     "organization": organization.id})
    assert created.status_code == 302
    page = client.get("/support/api-keys").get_data(as_text=True)
    key = db.session.scalar(db.select(ApiKey))
    assert key.created_by_id == admin.id and key.organization_id == organization.id
    assert key.scope_list == ["mailboxes:read", "tokens:read"]
    secret = page.split('data-testid="new-api-key"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert secret.startswith(key.prefix) and api_keys.authenticate(secret) == key
    assert "Acme" in page and "Scheduler" in page
    again = client.get("/support/api-keys").get_data(as_text=True)
    assert secret not in again and key.prefix in again


def test_a_key_needs_a_name_and_a_scope(client, login_as, make_support_user):
    login_as(_vendor_admin(make_support_user))
    response = client.post("/support/api-keys", data={"name": "", "organization": 0})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Choose at least one scope." in text
    assert db.session.scalar(db.select(db.func.count()).select_from(ApiKey)) == 0


def test_revoking_asks_first_then_refuses_the_key(client, login_as, make_support_user):
    login_as(_vendor_admin(make_support_user))
    issued = api_keys.create_key("Old", ["tokens:read"])
    db.session.commit()
    confirm = client.get(f"/support/api-keys/{issued.key.id}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert api_keys.authenticate(issued.secret) is not None
    done = client.post(f"/support/api-keys/{issued.key.id}/revoke", follow_redirects=True)
    assert "Revoked" in done.get_data(as_text=True)
    assert api_keys.authenticate(issued.secret) is None
    assert client.get("/support/api-keys/999/revoke").status_code == 404


def test_the_person_menu_links_the_page_for_vendor_admins_only(client, login_as, make_support_user):
    login_as(make_support_user())
    assert "/support/api-keys" not in client.get("/support/").get_data(as_text=True)
    login_as(_vendor_admin(make_support_user))
    assert "/support/api-keys" in client.get("/support/").get_data(as_text=True)
