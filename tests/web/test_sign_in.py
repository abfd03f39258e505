"""Signing in: one message for every failure, throttling, safe redirects, deactivation, cookie flags."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from app import create_app
from extensions import db
from models.audit import AuditEvent
from services.accounts import accounts
from tests.factories import DEFAULT_PASSWORD

FAILURE = b"That email and password do not match an active account."


def _sign_in(client, email, password=DEFAULT_PASSWORD, next_url=None):
    query = {"next": next_url} if next_url is not None else {}
    return client.post("/sign-in", query_string=query, data={"email": email, "password": password})


def _signed_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 302 and not response.headers["Location"].startswith("/sign-in")


def test_correct_password_signs_in_and_records_the_time(client, make_org_admin):
    admin = make_org_admin()
    response = _sign_in(client, admin.email.upper())
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert _signed_in(client)
    db.session.refresh(admin)
    assert admin.last_sign_in_at is not None


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_org_admin):
    admin = make_org_admin()
    wrong = _sign_in(client, admin.email, "not the password at all")
    unknown = _sign_in(client, "nobody@customer.example")
    assert wrong.status_code == unknown.status_code == 401
    assert FAILURE in wrong.data and FAILURE in unknown.data
    assert not _signed_in(client)
    db.session.refresh(admin)
    assert admin.last_sign_in_at is None


def test_overlong_email_is_refused_with_a_message(client):
    response = _sign_in(client, "a" * 250 + "@customer.example")
    assert response.status_code == 422
    assert b"Field cannot be longer than 254 characters." in response.data


def test_form_without_csrf_token_is_refused(csrf_client, make_org_admin):
    admin = make_org_admin()
    response = _sign_in(csrf_client, admin.email)
    assert response.status_code == 400
    assert b"Form expired" in response.data
    with csrf_client.session_transaction() as session:
        assert "_user_id" not in session


def test_deactivated_user_cannot_sign_in(client, make_org_admin):
    admin = make_org_admin(is_active=False)
    response = _sign_in(client, admin.email)
    assert response.status_code == 401
    assert FAILURE in response.data
    assert not _signed_in(client)


def test_open_session_of_a_deactivated_user_is_signed_out(client, login_as, make_org_admin, make_support_user):
    admin = login_as(make_org_admin())
    assert client.get(f"/orgs/{admin.organization_id}").status_code == 200
    accounts.deactivate_user(admin, actor=make_support_user())
    db.session.commit()
    response = client.get(f"/orgs/{admin.organization_id}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in")


def test_reactivated_user_signs_in_again_but_old_session_stays_dead(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    accounts.deactivate_user(admin, actor=None)
    accounts.reactivate_user(admin, actor=None)
    db.session.commit()
    assert client.get(f"/orgs/{admin.organization_id}").status_code == 302
    assert _sign_in(client, admin.email).status_code == 302
    assert client.get(f"/orgs/{admin.organization_id}").status_code == 200


def test_nobody_can_deactivate_themselves(make_org_admin):
    admin = make_org_admin()
    with pytest.raises(accounts.AccountError, match="your own account"):
        accounts.deactivate_user(admin, actor=admin)
    assert admin.is_active


def test_admin_deactivates_only_admins_of_their_own_organization(client, make_org_admin, make_support_user):
    admin = make_org_admin()
    colleague = make_org_admin(organization=admin.organization)
    for outsider in (make_org_admin(), make_support_user()):
        with pytest.raises(accounts.AccountError, match="your own organization"):
            accounts.deactivate_user(outsider, actor=admin)
        assert outsider.is_active
    accounts.deactivate_user(colleague, actor=admin)
    db.session.commit()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.deactivated"))
    assert (event.actor_id, event.target_id, event.organization_id) == (admin.id, str(colleague.id), admin.organization_id)
    assert _sign_in(client, colleague.email).status_code == 401


@pytest.mark.config(SIGN_IN_RATE_LIMIT="3 per minute")
def test_fourth_attempt_within_a_minute_is_throttled_with_a_message(client, make_org_admin):
    admin = make_org_admin()
    for _ in range(3):
        assert _sign_in(client, admin.email, "wrong password here").status_code == 401
    response = _sign_in(client, admin.email)  # even the right password waits out the window
    assert response.status_code == 429
    assert b"Too many sign-in attempts" in response.data
    assert b"Wait a minute, then try again." in response.data
    assert not _signed_in(client)


@pytest.mark.config(SIGN_IN_RATE_LIMIT="3 per minute")
def test_throttle_counts_posts_only(client):
    for _ in range(5):
        assert client.get("/sign-in").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://elsewhere.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:evil.example",
        " //evil.example",
        "/\t/evil.example",
        "https:/\\evil.example",
    ],
)
def test_next_never_leads_off_site(client, make_org_admin, target):
    admin = make_org_admin()
    response = _sign_in(client, admin.email, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_local_next_is_followed(client, make_org_admin):
    admin = make_org_admin()
    target = f"/orgs/{admin.organization_id}/admins"
    response = _sign_in(client, admin.email, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == target


def _session_cookie_header(response) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("session=")]
    assert cookies, "signing in sets the session cookie"
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(client, make_org_admin):
    admin = make_org_admin()
    cookie = _session_cookie_header(_sign_in(client, admin.email))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in development and tests


def test_session_cookie_is_secure_in_production(monkeypatch, app_config, make_org_admin):
    admin = make_org_admin()
    # Production refuses to start without these (config.build_config).
    monkeypatch.setenv("SECRET_KEY", "production-test-secret")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    production = create_app({**app_config, "APP_ENV": "production"})
    response = production.test_client().post(
        "/sign-in", base_url="https://console.example", data={"email": admin.email, "password": DEFAULT_PASSWORD}
    )
    cookie = _session_cookie_header(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with production.app_context():
        db.session.remove()
        db.engine.dispose()


def test_failed_sign_in_changes_nothing(client, make_org_admin):
    admin = make_org_admin()
    before = (db.session.scalar(select(func.count()).select_from(AuditEvent)), admin.auth_version, admin.password_hash)
    _sign_in(client, admin.email, "wrong password here")
    _sign_in(client, "nobody@customer.example")
    db.session.refresh(admin)
    after = (db.session.scalar(select(func.count()).select_from(AuditEvent)), admin.auth_version, admin.password_hash)
    assert after == before
    assert admin.last_sign_in_at is None
