"""Invitations: the link works once, before it expires, untampered; every bad input changes nothing."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import current_app
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.base import utcnow
from models.invitation import Invitation
from models.user import ROLE_ORG_ADMIN, ROLE_SUPPORT, User
from services.accounts import accounts, invitations
from services.accounts.invitations import InvitationError
from tests.factories import DEFAULT_PASSWORD
from tests.helpers import put_signed_in

GOOD_PASSWORD = "a long enough passphrase"


def _issue(organization, inviter=None, email="new.admin@customer.example", role=ROLE_ORG_ADMIN):
    issued = invitations.create_invitation(email=email, role=role, organization=organization, invited_by=inviter)
    db.session.commit()
    return issued


def _path(issued) -> str:
    return urlsplit(issued.url).path


def _accept(client, path, name="New Admin", password=GOOD_PASSWORD, confirm=None):
    return client.post(path, data={"name": name, "password": password, "confirm": confirm or password})


def _state() -> tuple:
    """What a refused request must leave untouched: users, audit trail, invitation states."""
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(User)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
        tuple(db.session.execute(select(Invitation.id, Invitation.accepted_at, Invitation.revoked_at)).all()),
    )


@pytest.fixture
def org_with_admin(make_org_admin):
    admin = make_org_admin(name="Ada Inviter")
    return admin.organization, admin


def test_link_is_absolute_and_only_a_hash_of_its_secret_is_stored(app, org_with_admin):
    organization, admin = org_with_admin
    issued = _issue(organization, admin)
    assert issued.url.startswith(app.config["PUBLIC_BASE_URL"] + "/invitations/")
    token = _path(issued).rsplit("/", 1)[1]
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=invitations.SALT).loads(token)
    assert payload["i"] == issued.invitation.id
    assert issued.invitation.token_hash == hashlib.sha256(payload["s"].encode()).hexdigest()
    assert issued.invitation.token_hash not in issued.url
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.created"))
    assert event.actor_id == admin.id and event.organization_id == organization.id
    assert token not in str(event.details)


def test_invitation_expires_after_seven_days_by_default(org_with_admin):
    issued = _issue(org_with_admin[0])
    lifetime = issued.invitation.expires_at - utcnow()
    assert timedelta(days=7) - timedelta(minutes=1) < lifetime <= timedelta(days=7)


def test_page_says_who_invited_you_to_which_organization(client, org_with_admin):
    organization, admin = org_with_admin
    response = client.get(_path(_issue(organization, admin)))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Ada Inviter" in text and organization.name in text and "new.admin@customer.example" in text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_accepting_creates_the_account_and_signs_in(client, org_with_admin):
    organization, admin = org_with_admin
    issued = _issue(organization, admin)
    response = _accept(client, _path(issued), name="  Grace Hopper ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    user = accounts.find_user_by_email("new.admin@customer.example")
    assert (user.name, user.role, user.organization_id) == ("Grace Hopper", ROLE_ORG_ADMIN, organization.id)
    assert accounts.authenticate(user.email, GOOD_PASSWORD) == user
    assert issued.invitation.status == "accepted"
    assert db.session.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "invitation.accepted")) == user.id
    overview = client.get(f"/orgs/{organization.id}")
    assert overview.status_code == 200
    assert "Welcome, Grace Hopper." in overview.get_data(as_text=True)


def test_support_invitation_creates_a_support_account(client, make_support_user):
    issued = _issue(None, make_support_user(), email="colleague@vendor.example", role=ROLE_SUPPORT)
    assert "support staff" in client.get(_path(issued)).get_data(as_text=True)
    assert _accept(client, _path(issued)).status_code == 302
    assert accounts.find_user_by_email("colleague@vendor.example").is_support


def test_reused_link_is_gone_and_creates_nobody(client, org_with_admin):
    issued = _issue(org_with_admin[0])
    assert _accept(client, _path(issued)).status_code == 302
    client.post("/sign-out")
    before = _state()
    for response in (client.get(_path(issued)), _accept(client, _path(issued), name="Someone Else")):
        assert response.status_code == 410
        assert b"already been used" in response.data
    assert _state() == before


def test_expired_link_is_gone(client, org_with_admin):
    issued = _issue(org_with_admin[0])
    issued.invitation.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    before = _state()
    for response in (client.get(_path(issued)), _accept(client, _path(issued))):
        assert response.status_code == 410
        assert b"This invitation has expired." in response.data
    assert _state() == before


@pytest.mark.config(INVITATION_TTL_HOURS=1)
def test_lifetime_follows_the_setting(org_with_admin):
    lifetime = _issue(org_with_admin[0]).invitation.expires_at - utcnow()
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)


def _forged(app, payload) -> str:
    return "/invitations/" + URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=invitations.SALT).dumps(payload)


def _tampered_paths(app, issued) -> list[str]:
    path = _path(issued)
    head, _, signature = path.rpartition(".")
    middle = len(signature) // 2  # the last character may only carry base64 padding bits
    flipped = f"{head}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1:]}"
    foreign_key = URLSafeTimedSerializer("some other secret", salt=invitations.SALT)
    return [
        flipped,
        path[:-5],
        "/invitations/not-a-token",
        "/invitations/" + "x" * 5000,
        "/invitations/" + foreign_key.dumps({"i": issued.invitation.id, "s": "guess"}),
        _forged(app, {"i": issued.invitation.id, "s": "right key, wrong secret"}),
        _forged(app, {"i": "1", "s": "wrong types"}),
        _forged(app, ["not", "a", "dict"]),
    ]


def test_tampered_links_are_not_found_and_change_nothing(app, client, org_with_admin):
    issued = _issue(org_with_admin[0])
    before = _state()
    for path in _tampered_paths(app, issued):
        for response in (client.get(path), _accept(client, path)):
            assert response.status_code == 404, path
            assert b"This invitation link is not valid." in response.data
    assert _state() == before
    assert issued.invitation.status == "pending"


def test_link_signed_for_password_resets_is_not_an_invitation(app, client, org_with_admin):
    issued = _issue(org_with_admin[0])
    token = _path(issued).rsplit("/", 1)[1]
    other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="ecc.password-reset.v1")
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=invitations.SALT).loads(token)
    assert client.get("/invitations/" + other_salt.dumps(payload)).status_code == 404


def test_revoked_link_is_gone(client, org_with_admin):
    organization, admin = org_with_admin
    issued = _issue(organization, admin)
    invitations.revoke_invitation(issued.invitation, actor=admin)
    db.session.commit()
    assert db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "invitation.revoked")) is not None
    before = _state()
    for response in (client.get(_path(issued)), _accept(client, _path(issued))):
        assert response.status_code == 410
        assert b"This invitation was withdrawn." in response.data
    assert _state() == before


def test_new_invitation_for_the_same_person_replaces_the_old_one(client, org_with_admin, make_organization):
    organization = org_with_admin[0]
    old = _issue(organization)
    elsewhere = _issue(make_organization(), email="new.admin@customer.example")
    new = _issue(organization, email="New.Admin@CUSTOMER.example")
    assert client.get(_path(old)).status_code == 410
    assert client.get(_path(new)).status_code == 200
    assert client.get(_path(elsewhere)).status_code == 200


def test_accepted_invitation_cannot_be_revoked(org_with_admin):
    organization, admin = org_with_admin
    issued = _issue(organization)
    invitations.accept_invitation(_path(issued).rsplit("/", 1)[1], name="N", password=GOOD_PASSWORD)
    with pytest.raises(InvitationError, match="already accepted"):
        invitations.revoke_invitation(issued.invitation, actor=admin)


def test_admin_cannot_revoke_another_organizations_invitation(org_with_admin, make_org_admin):
    issued = _issue(org_with_admin[0])
    with pytest.raises(InvitationError, match="your own organization"):
        invitations.revoke_invitation(issued.invitation, actor=make_org_admin())
    assert issued.invitation.revoked_at is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "x" * 121}, "Keep it under 120 characters."),
        ({"name": ""}, "This field is required."),
        ({"password": "short", "confirm": "short"}, "Use at least 12 characters."),
        ({"password": "new.admin@customer.example", "confirm": "new.admin@customer.example"}, "must not be your email"),
        ({"password": "p" * 1025, "confirm": "p" * 1025}, "Keep it under 1024 characters."),
        ({"confirm": "a different passphrase"}, "The two passwords do not match."),
    ],
)
def test_bad_profile_is_refused_with_a_message_and_changes_nothing(client, org_with_admin, form, message):
    issued = _issue(org_with_admin[0])
    fields = {"name": "New Admin", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD, **form}
    before = _state()
    response = client.post(_path(issued), data=fields)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _state() == before
    assert issued.invitation.status == "pending"


def test_form_without_csrf_token_is_refused(csrf_client, org_with_admin):
    issued = _issue(org_with_admin[0])
    before = _state()
    response = _accept(csrf_client, _path(issued))
    assert response.status_code == 400 and b"Form expired" in response.data
    assert _state() == before


def test_email_that_got_an_account_meanwhile_cannot_accept(client, org_with_admin, make_org_admin):
    issued = _issue(org_with_admin[0])
    make_org_admin(email="new.admin@customer.example")
    before = _state()
    response = _accept(client, _path(issued))
    assert response.status_code == 410 and invitations.UNUSABLE in response.get_data(as_text=True)
    assert _state() == before


def test_service_refuses_overlong_name(org_with_admin):
    token = _path(_issue(org_with_admin[0])).rsplit("/", 1)[1]
    with pytest.raises(InvitationError, match="under 120 characters") as caught:
        invitations.accept_invitation(token, name="y" * 121, password=GOOD_PASSWORD)
    assert caught.value.kind == invitations.NAME


def test_stale_check_cannot_accept_twice(monkeypatch, org_with_admin):
    """Two requests that both saw the invitation pending: the conditional UPDATE lets one through."""
    issued = _issue(org_with_admin[0])
    token = _path(issued).rsplit("/", 1)[1]
    # The second request read the row (pending) before the first one committed.
    stale = invitations.resolve_invitation(token)
    db.session.expunge(stale)
    invitations.accept_invitation(token, name="First", password=GOOD_PASSWORD)
    db.session.commit()
    monkeypatch.setattr(invitations, "resolve_invitation", lambda _token: stale)
    monkeypatch.setattr(invitations, "find_user_by_email", lambda _email: None)
    assert stale.accepted_at is None
    with pytest.raises(InvitationError, match="already been used"):
        invitations.accept_invitation(token, name="Second", password=GOOD_PASSWORD)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == issued.invitation.email)) == 1


@pytest.mark.postgres_only
def test_two_concurrent_accepts_create_one_user(app, org_with_admin):
    token = _path(_issue(org_with_admin[0])).rsplit("/", 1)[1]
    barrier, outcomes = threading.Barrier(2), []

    def accept(name):
        with app.app_context():
            try:
                invitations.resolve_invitation(token)
                barrier.wait(timeout=10)
                invitations.accept_invitation(token, name=name, password=GOOD_PASSWORD)
                db.session.commit()
                outcomes.append("accepted")
            except InvitationError as exc:
                db.session.rollback()
                outcomes.append(exc.kind)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=accept, args=(name,)) for name in ("One", "Two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["accepted", "used"]
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "new.admin@customer.example")) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "not an email"}, "not a valid email address"),
        ({"email": "a" * 300 + "@customer.example"}, "not a valid email address"),
        ({"role": "superuser"}, "Unknown role"),
        ({"organization": None}, "must be invited to an organization"),
        ({"role": ROLE_SUPPORT}, "do not belong to an organization"),
    ],
)
def test_create_refuses_bad_input(org_with_admin, kwargs, message):
    organization, admin = org_with_admin
    fields = {"email": "x@customer.example", "role": ROLE_ORG_ADMIN, "organization": organization, "invited_by": admin}
    before = _state()
    with pytest.raises(InvitationError, match=message):
        invitations.create_invitation(**{**fields, **kwargs})
    db.session.rollback()
    assert _state() == before


def test_create_refuses_an_email_that_has_an_account(org_with_admin):
    organization, admin = org_with_admin
    with pytest.raises(InvitationError, match="already has an account"):
        invitations.create_invitation(
            email=admin.email.upper(), role=ROLE_ORG_ADMIN, organization=organization, invited_by=admin
        )


def test_admin_invites_only_into_their_own_organization(org_with_admin, make_organization):
    admin = org_with_admin[1]
    for role, organization in ((ROLE_ORG_ADMIN, make_organization()), (ROLE_SUPPORT, None)):
        with pytest.raises(InvitationError, match="your own organization"):
            invitations.create_invitation(email="x@customer.example", role=role, organization=organization, invited_by=admin)


def test_link_works_without_a_request_context(app, org_with_admin):
    """The CLI builds links outside any request; PUBLIC_BASE_URL decides the host."""
    app.config["PUBLIC_BASE_URL"] = "https://console.customer.example/"
    assert not current_app.config.get("SERVER_NAME")
    assert _issue(org_with_admin[0]).url.startswith("https://console.customer.example/invitations/")


# Accounts in other organizations stay invisible to an organization's admin


@pytest.fixture(params=["another organization's admin", "support staff"])
def account_elsewhere(request, make_org_admin, make_support_user):
    """An account that an organization's admin must not learn of."""
    if request.param == "support staff":
        return make_support_user(email="support@vendor.example")
    return make_org_admin(email="admin@demo.example")


def _account(user) -> tuple:
    """What must stay as it was of an account that someone tried to invite again."""
    db.session.expire_all()
    row = db.session.get(User, user.id)
    return (row.email, row.name, row.role, row.organization_id, row.password_hash, row.is_active, row.auth_version)


CSRF_VALUE = r'(<input[^>]*name="csrf_token"[^>]*value=")'


def _neutral(text: str, email: str) -> str:
    """Blank what differs between any two invitations: the email, CSRF tokens, the link and id, the minute."""
    text = text.replace(email, "EMAIL")
    text = re.sub(CSRF_VALUE + '[^"]+', r"\1CSRF", text)
    text = re.sub(r"/invitations/[^\"/\s<]+", "/invitations/ID", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "TIME", text)


def _invite_from_the_admins_page(browser, organization, email) -> tuple:
    """Invite email as an admin does; return what they see: the answer to the form and the page it leads to."""
    url = f"/orgs/{organization.id}/admins"
    token = re.search(CSRF_VALUE + '([^"]+)', browser.get(url).get_data(as_text=True)).group(2)
    answer = browser.post(url, data={"email": email, "csrf_token": token})
    page = browser.get(answer.headers["Location"]) if answer.status_code == 302 else answer
    return (answer.status_code, answer.headers.get("Location"), _neutral(answer.get_data(as_text=True), email),
            page.status_code, _neutral(page.get_data(as_text=True), email))


def test_inviting_an_email_with_an_account_elsewhere_looks_exactly_like_inviting_a_new_person(
    csrf_client, make_org_admin, account_elsewhere
):
    inviter, taken = make_org_admin(name="Ada Inviter"), account_elsewhere
    account = _account(taken)
    with csrf_client.session_transaction() as session:
        put_signed_in(session, inviter)

    new_person = _invite_from_the_admins_page(csrf_client, inviter.organization, "brand.new@customer.example")
    invitations.revoke_invitation(db.session.scalars(select(Invitation)).one(), actor=inviter)
    db.session.commit()
    existing = _invite_from_the_admins_page(csrf_client, inviter.organization, taken.email)

    assert existing == new_person
    assert new_person[0] == 302 and 'data-testid="invitation-link"' in new_person[4]
    assert "already has an account" not in new_person[4]
    assert _account(taken) == account


def test_an_invitation_for_an_account_elsewhere_can_neither_be_accepted_nor_take_the_account_over(
    client, org_with_admin, account_elsewhere
):
    (organization, admin), taken = org_with_admin, account_elsewhere
    issued = _issue(organization, admin, email=taken.email.upper())
    account, before = _account(taken), _state()

    opened = client.get(_path(issued))
    assert opened.status_code == 200 and 'name="password"' in opened.get_data(as_text=True)
    response = _accept(client, _path(issued), name="Mallory", password="a brand new passphrase")

    text = response.get_data(as_text=True)
    assert response.status_code == 410 and invitations.UNUSABLE in text
    assert "already has an account" not in text and organization.name not in text
    assert _state() == before and issued.invitation.status == "pending"
    assert _account(taken) == account
    assert accounts.authenticate(taken.email, "a brand new passphrase") is None
    assert accounts.authenticate(taken.email, DEFAULT_PASSWORD).id == taken.id
    assert client.get(f"/orgs/{organization.id}").status_code != 200  # nobody was signed in


def test_support_staff_still_learn_that_an_email_has_an_account(make_support_user, make_org_admin):
    taken, organization = make_org_admin(email="admin@demo.example"), make_org_admin().organization
    with pytest.raises(InvitationError, match="already has an account"):
        invitations.create_invitation(email=taken.email, role=ROLE_ORG_ADMIN, organization=organization,
                                      invited_by=make_support_user())


def test_an_admin_still_learns_that_a_colleague_already_has_an_account(org_with_admin, make_org_admin):
    organization, admin = org_with_admin
    colleague = make_org_admin(organization)
    with pytest.raises(InvitationError, match="already has an account"):
        invitations.create_invitation(email=colleague.email, role=ROLE_ORG_ADMIN, organization=organization,
                                      invited_by=admin)
