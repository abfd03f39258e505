"""Command-line commands for support staff and operators, registered on the app.

Commands commit; the services they call only flush. Refusals end in a one-line error
(click.ClickException), never a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from extensions import db
from models.organization import Organization
from models.user import ROLE_ORG_ADMIN, ROLE_SUPPORT, User
from services.accounts import accounts, api_keys, invitations, organizations, password_reset
from services.platform import crypto

org_cli = AppGroup("org", help="Manage customer organizations.")
user_cli = AppGroup("user", help="Manage people who sign in.")
demo_cli = AppGroup("demo", help="Demo data for trying the console.")
keys_cli = AppGroup("keys", help="Token-encryption keys.")
api_keys_cli = AppGroup("api-keys", help="Keys of the vendor's services for the JSON API.")

DEMO_ORGANIZATION = "Demo Organization"
DEMO_ADMIN_EMAIL = "admin@demo.example"
DEMO_SUPPORT_EMAIL = "support@demo.example"
DEMO_ACME_ADMIN_EMAIL = "admin@acme-demo.example"
DEMO_CREDENTIALS_FILE = "demo_credentials.json"


def _fail(exc: Exception) -> click.ClickException:
    db.session.rollback()
    return click.ClickException(str(exc))


def _user_or_fail(email: str) -> User:
    user = accounts.find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"No account has the email {email!r}.")
    return user


@org_cli.command("create")
@click.argument("name")
@click.option("--admin-email", required=True, help="Who administers the organization; gets the invitation.")
@click.option("--data-center", default="us", show_default=True, type=click.Choice(organizations.DATA_CENTER_CODES))
def create_org(name: str, admin_email: str, data_center: str) -> None:
    """Create an organization and print the invitation link for its first admin."""
    try:
        organization = organizations.create_organization(name, data_center)
        issued = invitations.create_invitation(
            email=admin_email, role=ROLE_ORG_ADMIN, organization=organization, invited_by=None
        )
    except (organizations.OrganizationError, accounts.AccountError) as exc:
        raise _fail(exc) from exc
    db.session.commit()
    click.echo(f"Created {organization.name} (data center {organization.data_center}).")
    click.echo(f"Send this invitation link to {issued.invitation.email}; it works once, until "
               f"{issued.invitation.expires_at:%Y-%m-%d %H:%M} UTC:")
    click.echo(issued.url)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")


@user_cli.command("create-support")
@click.argument("email")
@click.option("--name", default="", help="The person's name, shown in the console.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def create_support(email: str, name: str, password_stdin: bool) -> None:
    """Create a support staff account (password from a hidden prompt or standard input)."""
    try:
        email = accounts.normalize_email(email)
    except accounts.AccountError as exc:
        raise _fail(exc) from exc
    if accounts.find_user_by_email(email) is not None:
        raise click.ClickException(f"{email} already has an account.")
    password = _read_password(password_stdin)
    try:
        user = accounts.create_support_user(email, name=name, password=password)
    except accounts.AccountError as exc:
        raise _fail(exc) from exc
    db.session.commit()
    click.echo(f"Created support account {user.email}. Sign in at {_sign_in_url()}")


@user_cli.command("reset-link")
@click.argument("email")
def reset_link(email: str) -> None:
    """Print a single-use password reset link for an account."""
    user = _user_or_fail(email)
    try:
        url = password_reset.reset_url(user)
    except accounts.AccountError as exc:
        raise _fail(exc) from exc
    hours = current_app.config["PASSWORD_RESET_TTL_HOURS"]
    click.echo(f"Give this link to {user.email} only; it works once, for {hours} hours:")
    click.echo(url)


@user_cli.command("deactivate")
@click.argument("email")
def deactivate(email: str) -> None:
    """Stop an account from signing in and sign out its open sessions."""
    user = _user_or_fail(email)
    if not user.is_active:
        raise click.ClickException(f"{user.email} is already deactivated.")
    accounts.deactivate_user(user, actor=None)
    db.session.commit()
    click.echo(f"Deactivated {user.email}; their open sessions are signed out.")


@user_cli.command("reactivate")
@click.argument("email")
def reactivate(email: str) -> None:
    """Let a deactivated account sign in again."""
    user = _user_or_fail(email)
    accounts.reactivate_user(user, actor=None)
    db.session.commit()
    click.echo(f"{user.email} can sign in again.")


@user_cli.command("vendor-admin")
@click.argument("email")
@click.option("--off", is_flag=True, help="Take the flag away instead.")
def vendor_admin(email: str, off: bool) -> None:
    """Let a support account manage the vendor's API keys (or, with --off, no longer)."""
    user = _user_or_fail(email)
    if not user.is_support:
        raise click.ClickException(f"{user.email} is not support staff; only support staff can be vendor admins.")
    user.is_vendor_admin = not off
    db.session.commit()
    click.echo(f"{user.email} {'can no longer' if off else 'can now'} manage API keys (Support → API keys).")


@keys_cli.command("generate")
def generate_key() -> None:
    """Print a new Fernet key for TOKEN_ENCRYPTION_KEYS (put the newest first when rotating)."""
    click.echo(crypto.generate_key())


@keys_cli.command("rotate")
def rotate_keys() -> None:
    """Re-encrypt every stored token under the first key of TOKEN_ENCRYPTION_KEYS."""
    from services.platform import keys

    try:
        rotated = keys.rotate_all()
    except crypto.TokenDecryptionError as exc:
        raise click.ClickException(
            "A stored token cannot be decrypted with any configured key. Put the previous key back in "
            "TOKEN_ENCRYPTION_KEYS (after the new one) and run this again."
        ) from exc
    summary = ", ".join(f"{count} {name.lower()} row(s)" for name, count in rotated.items())
    click.echo(f"Re-encrypted under the newest key: {summary}. The older keys can now be removed.")


def _sign_in_url() -> str:
    return invitations.public_url("auth.sign_in")


def _credentials_path() -> Path:
    return Path(current_app.instance_path) / DEMO_CREDENTIALS_FILE


def _demo_credentials() -> dict[str, str]:
    """Return the demo passwords kept in the instance folder, creating them (mode 0600) on first seed."""
    path = _credentials_path()
    try:
        stored = json.loads(path.read_text()) if path.exists() else {}
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON; delete it to generate new demo passwords.") from exc
    if not isinstance(stored, dict):
        raise click.ClickException(f"{path} is not a JSON object; delete it to generate new demo passwords.")
    wanted = {
        email: stored[email] if isinstance(stored.get(email), str) and stored[email] else secrets.token_urlsafe(15)
        for email in (DEMO_ADMIN_EMAIL, DEMO_SUPPORT_EMAIL, DEMO_ACME_ADMIN_EMAIL)
    }
    if wanted != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(wanted, handle, indent=2)
        os.replace(temporary, path)
    os.chmod(path, 0o600)
    return wanted


def _demo_organization() -> Organization:
    existing = db.session.scalar(db.select(Organization).where(Organization.name == DEMO_ORGANIZATION))
    return existing or organizations.create_organization(DEMO_ORGANIZATION, "us")


def _ensure_demo_user(email: str, password: str, **fields) -> User:
    """Create the demo user, or bring it back to an active account with the stored password."""
    user = accounts.find_user_by_email(email)
    if user is None:
        user = User(email=email, password_hash=accounts.hash_password(password), **fields)
        db.session.add(user)
    elif not accounts.verify_password(user, password):
        user.password_hash = accounts.hash_password(password)
        user.auth_version += 1
    user.is_active = True
    db.session.flush()
    return user


@demo_cli.command("seed")
def seed() -> None:
    """Create (or repair) the demo organizations, their admins and a support user; print how to sign in.

    "Demo Organization" stays empty for walking the wizard. "Acme (demo data)" is recorded here and
    filled in by the worker once the sandbox answers (jobs/demo.py): connected, mailboxes, a finished run.
    """
    from services.demo import acme

    credentials = _demo_credentials()
    organization = _demo_organization()
    _ensure_demo_user(
        DEMO_ADMIN_EMAIL, credentials[DEMO_ADMIN_EMAIL], name="Demo Admin", role=ROLE_ORG_ADMIN, organization=organization
    )
    support = _ensure_demo_user(DEMO_SUPPORT_EMAIL, credentials[DEMO_SUPPORT_EMAIL], name="Demo Support",
                                role=ROLE_SUPPORT)
    support.is_vendor_admin = True  # so that the demo shows Support → API keys too
    acme_organization = acme.ensure_organization()
    _ensure_demo_user(DEMO_ACME_ADMIN_EMAIL, credentials[DEMO_ACME_ADMIN_EMAIL], name="Ada Acme", role=ROLE_ORG_ADMIN,
                      organization=acme_organization)
    db.session.commit()
    complete = acme.is_complete(acme_organization)
    if not complete:
        _hand_demo_to_worker(acme_organization.id)
    click.echo(f"Demo ready: {organization.name} (data center {organization.data_center}), empty for the wizard.")
    click.echo(f"Sign in at {_sign_in_url()}")
    click.echo(f"  Organization admin: {DEMO_ADMIN_EMAIL}  password: {credentials[DEMO_ADMIN_EMAIL]}")
    click.echo(f"  Support staff:      {DEMO_SUPPORT_EMAIL}  password: {credentials[DEMO_SUPPORT_EMAIL]}")
    click.echo(f"  {acme_organization.name} admin: {DEMO_ACME_ADMIN_EMAIL}  password: "
               f"{credentials[DEMO_ACME_ADMIN_EMAIL]}")
    if complete:
        click.echo(f"{acme_organization.name} is filled in: connected, mailboxes, a finished run.")
    else:
        click.echo(f"{acme_organization.name} fills in within a minute of start-up: the worker connects it through "
                   "the sandbox, imports its mailboxes and runs a bulk authorization.")
    click.echo(f"(Passwords are kept in {_credentials_path()}.)")


def _hand_demo_to_worker(organization_id: int) -> None:
    """Queue the demo's seeding; a worker that is not running yet starts it anyway when it starts."""
    from jobs import demo

    try:
        demo.start_seeding(organization_id)
    except Exception:  # noqa: BLE001 - the worker starts it at its own start; the seed must not fail for this
        current_app.logger.info("The job queue did not answer; the worker starts the demo when it starts.")


@api_keys_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              help=f"Repeat for each: {', '.join(api_keys.API_SCOPES)}.")
@click.option("--organization", "slug", default=None, help="Restrict the key to the organization with this slug.")
def create_api_key(name: str, scopes: tuple[str, ...], slug: str | None) -> None:
    """Create an API key and print it (this is the only time it is shown)."""
    organization = None
    if slug is not None:
        organization = db.session.scalar(db.select(Organization).where(Organization.slug == slug))
        if organization is None:
            raise click.ClickException(f"No organization has the slug {slug!r}.")
    try:
        issued = api_keys.create_key(name, scopes, organization=organization)
    except api_keys.ApiKeyError as exc:
        raise _fail(exc) from None
    db.session.commit()
    click.echo(issued.secret)
    restriction = f", restricted to {organization.slug}" if organization else ""
    click.echo(f"Created {issued.key.prefix}… ({issued.key.name}; {issued.key.scopes}{restriction}). "
               "Store the key now: only its hash is kept.", err=True)


@api_keys_cli.command("list")
def list_api_keys() -> None:
    """List the keys: prefix, name, scopes, organization, created, last used, revoked."""
    keys = api_keys.list_keys()
    if not keys:
        click.echo("No API keys yet. Create one with `flask api-keys create NAME --scope SCOPE`.")
        return
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        where = key.organization.slug if key.organization else "all organizations"
        click.echo(f"{key.prefix}…  {key.name}  [{key.scopes}]  {where}  created {key.created_at:%Y-%m-%d %H:%M}  "
                   f"last used {used}  {state}")


@api_keys_cli.command("revoke")
@click.argument("prefix")
def revoke_api_key(prefix: str) -> None:
    """Revoke the key that starts with PREFIX (as `list` shows it); requests with it fail at once."""
    key = api_keys.find_by_prefix(prefix.rstrip("…"))
    if key is None:
        raise click.ClickException(f"No API key starts with {prefix!r}; `flask api-keys list` shows them.")
    try:
        api_keys.revoke_key(key)
    except api_keys.ApiKeyError as exc:
        raise _fail(exc) from None
    db.session.commit()
    click.echo(f"Revoked {key.prefix}… ({key.name}).")


def init_app(app: Flask) -> None:
    """Register the console's command groups."""
    for group in (org_cli, user_cli, demo_cli, keys_cli, api_keys_cli):
        app.cli.add_command(group)
    from jobs.cli import worker_command

    app.cli.add_command(worker_command)
