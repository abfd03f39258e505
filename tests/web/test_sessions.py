"""Sessions live on the server: signing out, a new password and deactivation end them for every copy of the cookie."""

from __future__ import annotations

import base64
import json
import re
import zlib
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from extensions import db
from models.mailbox import Mailbox
from models.session import UserSession
from services.accounts import accounts, password_reset
from tests.factories import DEFAULT_PASSWORD


def _sign_in(client, user) -> None:
    response = client.post("/sign-in", data={"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302, response.data


def _cookie(client) -> str:
    return client.get_cookie("session").value


def _copy_of(app, cookie: str):
    """A second browser holding a copy of a session cookie (as an attacker with a stolen cookie would)."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def _opens_overview(client, organization_id: int) -> bool:
    return client.get(f"/orgs/{organization_id}").status_code == 200


def _records(user) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.scalars(select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)))


def _cookie_payload(cookie: str) -> str:
    """Decode Flask's signed session cookie the way anyone holding it can, without the key."""
    compressed = cookie.startswith(".")
    data = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(raw) if compressed else raw).decode()


def test_a_copied_cookie_stops_working_when_its_owner_signs_out(app, client, make_org_admin):
    admin = make_org_admin()
    _sign_in(client, admin)
    stolen = _copy_of(app, _cookie(client))
    assert _opens_overview(stolen, admin.organization_id)

    assert client.post("/sign-out").status_code == 302
    response = stolen.get(f"/orgs/{admin.organization_id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    created = stolen.post(f"/orgs/{admin.organization_id}/mailboxes/new", data={"email": "x@acme.example", "kind": "user"})
    assert created.status_code == 302 and created.headers["Location"].startswith("/sign-in")
    assert db.session.scalar(select(func.count(Mailbox.id))) == 0
    [record] = _records(admin)
    assert record.end_reason == "signed_out" and record.ended_at is not None


def test_the_cookie_holds_no_user_data_but_a_random_token(app, client, make_org_admin):
    admin = make_org_admin()
    _sign_in(client, admin)
    payload = json.loads(_cookie_payload(_cookie(client)))
    [record] = _records(admin)
    assert record.token_hash not in payload.values()
    assert len(payload["_sid"]) >= 40


def test_signing_in_again_starts_a_new_session_and_drops_what_the_cookie_carried(app, client, make_org_admin):
    admin = make_org_admin()
    with client.session_transaction() as planted:
        planted["_sid"] = "planted-by-someone-else"
        planted["issued_invitation"] = {"organization_id": admin.organization_id, "url": "http://evil/x"}
    _sign_in(client, admin)
    payload = json.loads(_cookie_payload(_cookie(client)))
    assert payload["_sid"] != "planted-by-someone-else" and "issued_invitation" not in payload


def test_a_new_password_ends_every_other_session(app, client, make_org_admin):
    admin = make_org_admin()
    _sign_in(client, admin)
    token = urlsplit(password_reset.reset_url(admin)).path.rsplit("/", 1)[1]
    other = app.test_client()
    response = other.post(f"/reset-password/{token}", data={"password": "a brand new long password", "confirm": "a brand new long password"})
    assert response.status_code == 302
    assert not _opens_overview(client, admin.organization_id)
    assert _opens_overview(other, admin.organization_id)
    first, second = _records(admin)
    assert first.end_reason == "password_changed" and second.ended_at is None


def test_deactivation_ends_the_sessions_on_the_server(app, client, make_org_admin, make_support_user):
    admin = make_org_admin()
    _sign_in(client, admin)
    accounts.deactivate_user(admin, actor=make_support_user())
    db.session.commit()
    [record] = _records(admin)
    assert record.end_reason == "deactivated"
    assert not _opens_overview(client, admin.organization_id)


@pytest.mark.parametrize("column, minutes", [("last_seen_at", 121), ("expires_at", -12 * 60 - 1)])
def test_an_idle_or_too_old_session_is_signed_out(app, client, make_org_admin, column, minutes):
    admin = make_org_admin()
    _sign_in(client, admin)
    [record] = _records(admin)
    moved = record.created_at - timedelta(minutes=minutes) if column == "last_seen_at" else \
        record.created_at + timedelta(minutes=12 * 60 + minutes)
    db.session.execute(update(UserSession).where(UserSession.id == record.id).values({column: moved}))
    db.session.commit()
    response = client.get(f"/orgs/{admin.organization_id}")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert _records(admin)[0].end_reason == "expired"


def test_activity_is_recorded_at_most_once_a_minute(app, client, make_org_admin):
    admin = make_org_admin()
    _sign_in(client, admin)
    [record] = _records(admin)
    earlier = record.last_seen_at - timedelta(minutes=5)
    db.session.execute(update(UserSession).where(UserSession.id == record.id).values(last_seen_at=earlier))
    db.session.commit()
    assert _opens_overview(client, admin.organization_id)
    seen = _records(admin)[0].last_seen_at
    assert seen > earlier
    assert _opens_overview(client, admin.organization_id)
    assert _records(admin)[0].last_seen_at == seen


def test_an_issued_invitation_link_never_travels_in_the_cookie(app, client, make_org_admin):
    admin = make_org_admin()
    _sign_in(client, admin)
    response = client.post(f"/orgs/{admin.organization_id}/admins", data={"email": "colleague@customer.example"})
    assert response.status_code == 302
    assert "/invitations/" not in _cookie_payload(_cookie(client))
    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    link = re.search(r'<input id="invitation-link"[^>]*value="([^"]+)"', page)
    assert link and "/invitations/" in link.group(1)
    token = link.group(1).rsplit("/", 1)[1]
    raw = db.session.execute(select(UserSession.__table__)).all()
    assert not any(isinstance(value, str) and token in value for row in raw for value in row)
    assert 'id="invitation-link"' not in client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
