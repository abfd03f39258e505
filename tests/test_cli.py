"""Support staff's command line: every command, idempotent demo seed, clear errors for bad input."""

from __future__ import annotations

import json
import stat
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from extensions import db
from models.audit import AuditEvent
from models.invitation import Invitation
from models.organization import Organization
from models.user import User
from services.accounts import accounts

PASSWORD = "a support passphrase"


@pytest.fixture
def instance_dir(app, tmp_path):
    """Keep files the commands write (demo credentials) out of the real instance folder."""
    app.instance_path = str(tmp_path)
    return tmp_path


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _counts() -> tuple:
    db.session.expire_all()
    return tuple(_count(model) for model in (Organization, User, Invitation, AuditEvent))


def _last_line_url(output: str) -> str:
    return output.strip().splitlines()[-1]


def _refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output


def test_org_create_prints_a_working_invitation(app, client, runner):
    result = runner.invoke(args=["org", "create", "Acme Corp", "--admin-email", "IT@Acme.example", "--data-center", "de"])
    assert result.exit_code == 0, result.output
    url = _last_line_url(result.output)
    assert url.startswith(app.config["PUBLIC_BASE_URL"] + "/invitations/")
    organization = db.session.scalar(select(Organization).where(Organization.name == "Acme Corp"))
    assert organization.data_center == "de"
    invitation = db.session.scalar(select(Invitation))
    assert (invitation.email, invitation.organization_id) == ("it@acme.example", organization.id)
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200 and b"Acme Corp" in page.data


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme", "--admin-email", "not-an-email"], "That is not a valid email address"),
        (["", "--admin-email", "it@acme.example"], "Give the organization a name."),
        (["A" * 121, "--admin-email", "it@acme.example"], "under 120 characters"),
    ],
)
def test_org_create_refuses_bad_input_and_creates_nothing(runner, args, message):
    before = _counts()
    _refused(runner.invoke(args=["org", "create", *args]), message)
    assert _counts() == before


def test_org_create_refuses_an_admin_email_that_has_an_account(runner, make_org_admin):
    admin = make_org_admin()
    before = _counts()
    _refused(runner.invoke(args=["org", "create", "Acme", "--admin-email", admin.email]), "already has an account")
    assert _counts() == before


def test_org_create_refuses_an_unknown_data_center(runner):
    before = _counts()
    result = runner.invoke(args=["org", "create", "Acme", "--admin-email", "it@acme.example", "--data-center", "mars"])
    assert result.exit_code == 2 and "'mars' is not one of" in result.output
    assert _counts() == before


def test_create_support_reads_the_password_from_stdin(runner):
    result = runner.invoke(
        args=["user", "create-support", "Helper@Vendor.example", "--name", "Helen", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    user = accounts.authenticate("helper@vendor.example", PASSWORD)
    assert user is not None and user.is_support and user.name == "Helen"


def test_create_support_prompts_twice_without_echo(runner):
    result = runner.invoke(args=["user", "create-support", "helper@vendor.example"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "Repeat the password" in result.output
    assert accounts.authenticate("helper@vendor.example", PASSWORD) is not None


def test_create_support_with_mismatched_prompts_creates_nobody(runner):
    result = runner.invoke(args=["user", "create-support", "helper@vendor.example"], input=f"{PASSWORD}\nother\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert _count(User) == 0


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("helper@vendor.example", "short", "Use at least 12 characters."),
        ("not-an-email", PASSWORD, "That is not a valid email address"),
        ("helper@vendor.example", "", "Use at least 12 characters."),
    ],
)
def test_create_support_refuses_bad_input(runner, email, password, message):
    before = _counts()
    _refused(runner.invoke(args=["user", "create-support", email, "--password-stdin"], input=password + "\n"), message)
    assert _counts() == before


def test_create_support_refuses_a_taken_email_before_asking_for_a_password(runner, make_support_user):
    taken = make_support_user()
    before = _counts()
    result = runner.invoke(args=["user", "create-support", taken.email])
    _refused(result, "already has an account")
    assert "Password" not in result.output
    assert _counts() == before


def test_reset_link_prints_a_working_link(client, runner, make_org_admin):
    admin = make_org_admin()
    result = runner.invoke(args=["user", "reset-link", admin.email])
    assert result.exit_code == 0, result.output
    page = client.get(urlsplit(_last_line_url(result.output)).path)
    assert page.status_code == 200 and admin.email.encode() in page.data


def test_reset_link_for_an_unknown_email_is_refused(runner):
    _refused(runner.invoke(args=["user", "reset-link", "nobody@customer.example"]), "No account has the email")


def test_reset_link_for_a_deactivated_account_is_refused(runner, make_org_admin):
    admin = make_org_admin(is_active=False)
    _refused(runner.invoke(args=["user", "reset-link", admin.email]), "is deactivated")


def test_deactivate_stops_sign_in_and_sessions(client, login_as, runner, make_org_admin):
    admin = login_as(make_org_admin())
    version = admin.auth_version
    result = runner.invoke(args=["user", "deactivate", admin.email])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not admin.is_active and admin.auth_version == version + 1
    assert accounts.authenticate(admin.email, "correct horse battery staple") is None
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.target_id == str(admin.id))) == "user.deactivated"


def test_deactivate_refuses_unknown_or_already_deactivated(runner, make_org_admin):
    admin = make_org_admin(is_active=False)
    _refused(runner.invoke(args=["user", "deactivate", "nobody@customer.example"]), "No account has the email")
    before = _counts()
    _refused(runner.invoke(args=["user", "deactivate", admin.email]), "already deactivated")
    assert _counts() == before


def test_reactivate_lets_the_account_sign_in_again(runner, make_org_admin):
    admin = make_org_admin(is_active=False)
    assert runner.invoke(args=["user", "reactivate", admin.email]).exit_code == 0
    assert accounts.authenticate(admin.email, "correct horse battery staple") is not None


def test_keys_generate_prints_a_new_fernet_key(runner):
    first, second = (runner.invoke(args=["keys", "generate"]).output.strip() for _ in range(2))
    assert first != second
    token = Fernet(first.encode()).encrypt(b"secret")
    assert Fernet(first.encode()).decrypt(token) == b"secret"


def _credentials(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        if "password:" in line:
            email, password = line.split()[-3], line.split()[-1]
            found[email] = password
    return found


def test_demo_seed_creates_the_demo_and_prints_working_logins(app, runner, instance_dir):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert f"Sign in at {app.config['PUBLIC_BASE_URL']}/sign-in" in result.output
    logins = _credentials(result.output)
    assert set(logins) == {"admin@demo.example", "support@demo.example", "admin@acme-demo.example"}
    acme_admin = accounts.authenticate("admin@acme-demo.example", logins["admin@acme-demo.example"])
    assert acme_admin.organization.name == "Acme (demo data)"
    assert "Acme (demo data) fills in within a minute" in result.output
    admin = accounts.authenticate("admin@demo.example", logins["admin@demo.example"])
    assert admin.organization.name == "Demo Organization" and admin.organization.data_center == "us"
    support = accounts.authenticate("support@demo.example", logins["support@demo.example"])
    assert support.is_support and support.is_vendor_admin
    stored = instance_dir / "demo_credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == logins


def test_demo_seed_is_idempotent_and_prints_the_same_logins(runner, instance_dir):
    first = runner.invoke(args=["demo", "seed"])
    before = _counts()
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0
    assert _credentials(second.output) == _credentials(first.output)
    assert _counts() == before


def test_demo_seed_restores_the_printed_password_and_reactivates(runner, instance_dir):
    logins = _credentials(runner.invoke(args=["demo", "seed"]).output)
    admin = accounts.find_user_by_email("admin@demo.example")
    admin.password_hash = accounts.hash_password("changed by someone else")
    admin.is_active = False
    db.session.commit()
    again = runner.invoke(args=["demo", "seed"])
    assert _credentials(again.output) == logins
    assert accounts.authenticate("admin@demo.example", logins["admin@demo.example"]) is not None


def test_demo_seed_on_a_fresh_database_reuses_the_stored_passwords(runner, instance_dir):
    logins = _credentials(runner.invoke(args=["demo", "seed"]).output)
    db.session.execute(AuditEvent.__table__.delete())
    db.session.execute(User.__table__.delete())
    db.session.execute(Organization.__table__.delete())
    db.session.commit()
    again = runner.invoke(args=["demo", "seed"])
    assert _credentials(again.output) == logins
    assert accounts.authenticate("support@demo.example", logins["support@demo.example"]) is not None


def test_demo_seed_refuses_a_corrupt_credentials_file(runner, instance_dir):
    (instance_dir / "demo_credentials.json").write_text("{not json")
    before = _counts()
    _refused(runner.invoke(args=["demo", "seed"]), "is not valid JSON")
    assert _counts() == before
