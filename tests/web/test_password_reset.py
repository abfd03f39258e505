"""Password reset links: signed, expiring, single-use; a reset signs out every other session."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.user import User
from services.accounts import accounts, password_reset
from services.accounts.password_reset import PasswordResetError
from tests.factories import DEFAULT_PASSWORD

NEW_PASSWORD = "a brand new passphrase"


def _path(user) -> str:
    url = password_reset.reset_url(user)
    return urlsplit(url).path


def _reset(client, path, password=NEW_PASSWORD, confirm=None):
    return client.post(path, data={"password": password, "confirm": confirm or password})


def _state(user) -> tuple:
    """What a refused reset must leave untouched."""
    db.session.expire_all()
    return (
        user.password_hash,
        user.auth_version,
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
        db.session.scalar(select(func.count()).select_from(User)),
    )


def test_link_is_absolute_under_the_public_base_url(app, make_org_admin):
    url = password_reset.reset_url(make_org_admin())
    assert url.startswith(app.config["PUBLIC_BASE_URL"] + "/reset-password/")


def test_page_names_the_account(client, make_org_admin):
    admin = make_org_admin()
    response = client.get(_path(admin))
    assert response.status_code == 200
    assert admin.email in response.get_data(as_text=True)


def test_reset_sets_the_password_signs_in_and_is_audited(client, make_org_admin):
    admin = make_org_admin()
    version = admin.auth_version
    response = _reset(client, _path(admin))
    assert response.status_code == 302
    db.session.expire_all()
    assert accounts.authenticate(admin.email, NEW_PASSWORD) == admin
    assert accounts.authenticate(admin.email, DEFAULT_PASSWORD) is None
    assert admin.auth_version == version + 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "password.reset"))
    assert (event.actor_id, event.target_id, event.organization_id) == (admin.id, str(admin.id), admin.organization_id)
    overview = client.get(f"/orgs/{admin.organization_id}")
    assert overview.status_code == 200 and b"Your new password is set." in overview.data


def test_reset_signs_out_other_sessions(app, client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    assert client.get(f"/orgs/{admin.organization_id}").status_code == 200
    other_browser = app.test_client()
    assert _reset(other_browser, _path(admin)).status_code == 302
    response = client.get(f"/orgs/{admin.organization_id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert other_browser.get(f"/orgs/{admin.organization_id}").status_code == 200


def test_reused_link_is_gone(client, make_org_admin):
    admin = make_org_admin()
    path = _path(admin)
    assert _reset(client, path).status_code == 302
    client.post("/sign-out")
    before = _state(admin)
    for response in (client.get(path), _reset(client, path, "yet another passphrase")):
        assert response.status_code == 410
        assert b"already used or replaced" in response.data
    assert _state(admin) == before


def test_older_link_dies_after_a_password_change(client, make_org_admin):
    admin = make_org_admin()
    older, newer = _path(admin), _path(admin)
    assert _reset(client, newer).status_code == 302
    before = _state(admin)
    assert _reset(client, older, "yet another passphrase").status_code == 410
    assert _state(admin) == before
    assert accounts.authenticate(admin.email, NEW_PASSWORD) is not None


def test_expired_link_is_gone(client, monkeypatch, make_org_admin):
    admin = make_org_admin()
    path = _path(admin)
    later = TimestampSigner.get_timestamp(TimestampSigner("k")) + 24 * 3600 + 1
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    before = _state(admin)
    for response in (client.get(path), _reset(client, path)):
        assert response.status_code == 410
        assert b"This reset link has expired." in response.data
    assert _state(admin) == before


@pytest.mark.config(PASSWORD_RESET_TTL_HOURS=48)
def test_lifetime_follows_the_setting(client, monkeypatch, make_org_admin):
    path = _path(make_org_admin())
    later = TimestampSigner.get_timestamp(TimestampSigner("k")) + int(timedelta(hours=47).total_seconds())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert client.get(path).status_code == 200


def _flip_signature_character(path: str) -> str:
    """Change one character in the middle of the signature (the last one may only carry padding bits)."""
    head, _, signature = path.rpartition(".")
    middle = len(signature) // 2
    replacement = "A" if signature[middle] != "A" else "B"
    return f"{head}.{signature[:middle]}{replacement}{signature[middle + 1:]}"


def _tampered_paths(app, admin) -> list[str]:
    path = _path(admin)
    same_key = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=password_reset.SALT)
    return [
        _flip_signature_character(path),
        "/reset-password/garbage",
        "/reset-password/" + "x" * 5000,
        "/reset-password/" + URLSafeTimedSerializer("other secret", salt=password_reset.SALT).dumps(
            {"u": admin.id, "v": admin.auth_version}
        ),
        "/reset-password/" + URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="ecc.invitation.v1").dumps(
            {"u": admin.id, "v": admin.auth_version}
        ),
        "/reset-password/" + same_key.dumps({"u": str(admin.id), "v": admin.auth_version}),
        "/reset-password/" + same_key.dumps({"u": 987654, "v": 1}),
    ]


def test_tampered_links_are_not_found_and_change_nothing(app, client, make_org_admin):
    admin = make_org_admin()
    before = _state(admin)
    for path in _tampered_paths(app, admin):
        for response in (client.get(path), _reset(client, path)):
            assert response.status_code == 404, path
            assert b"This reset link is not valid." in response.data
    assert _state(admin) == before


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", "short", "Use at least 12 characters."),
        (NEW_PASSWORD, "something else entirely", "The two passwords do not match."),
        ("p" * 1025, "p" * 1025, "Keep it under 1024 characters."),
    ],
)
def test_bad_password_is_refused_and_link_still_works(client, make_org_admin, password, confirm, message):
    admin = make_org_admin()
    path = _path(admin)
    before = _state(admin)
    response = _reset(client, path, password, confirm)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _state(admin) == before
    assert _reset(client, path).status_code == 302


def test_password_equal_to_email_is_refused(client, make_org_admin):
    admin = make_org_admin()
    response = _reset(client, _path(admin), admin.email)
    assert response.status_code == 422 and b"must not be your email" in response.data


def test_form_without_csrf_token_is_refused(csrf_client, make_org_admin):
    admin = make_org_admin()
    before = _state(admin)
    response = _reset(csrf_client, _path(admin))
    assert response.status_code == 400 and b"Form expired" in response.data
    assert _state(admin) == before


def test_deactivated_account_gets_no_link_and_old_links_die(client, make_org_admin):
    admin = make_org_admin()
    path = _path(admin)
    accounts.deactivate_user(admin, actor=None)
    db.session.commit()
    with pytest.raises(PasswordResetError, match="deactivated"):
        password_reset.reset_url(admin)
    accounts.reactivate_user(admin, actor=None)
    db.session.commit()
    assert client.get(path).status_code == 410  # deactivation bumped auth_version


def test_service_refuses_a_second_use_even_from_a_stale_read(make_org_admin):
    admin = make_org_admin()
    token = _path(admin).rsplit("/", 1)[1]
    password_reset.reset_password(token, NEW_PASSWORD)
    db.session.commit()
    with pytest.raises(PasswordResetError) as caught:
        password_reset.reset_password(token, "yet another passphrase")
    assert caught.value.kind == password_reset.USED
