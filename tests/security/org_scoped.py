"""Registry of org-scoped URL arguments, for the tenant-isolation and CSRF sweeps.

The sweeps visit every rule of `app.url_map` whose arguments end in `_id`. For each such
argument they need a real object of that kind in a given organization, so that a URL can be
built with *another* organization's ids. Register a factory here when you add a route whose URL
carries a new kind of id: `FACTORIES["mailbox_id"] = _mailbox_id`, where the factory takes an
`Organization`, creates the object in it (committed) and returns its id. The sweep fails, with
a message naming the rule, until every `*_id` argument it meets is registered.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import g
from sqlalchemy import select

from extensions import db
from models.base import utcnow
from models.connection import Connection
from models.mailbox import Mailbox
from models.onboarding import SetupLink, WizardSession
from models.organization import Organization
from models.selection import MailboxSelection
from tests import factories

Factory = Callable[[Organization], int]


def _org_id(organization: Organization) -> int:
    return organization.id


def _user_id(organization: Organization) -> int:
    return factories.make_org_admin(organization, password=None).id


def _invitation_id(organization: Organization) -> int:
    return factories.make_invitation(organization=organization).id


def _connection_id(organization: Organization) -> int:
    connection = Connection(
        organization_id=organization.id,
        provider="google",
        data_center=organization.data_center,
        status="active",
        domain=f"{organization.slug}.example",
    )
    db.session.add(connection)
    db.session.commit()
    return connection.id


def _wizard_id(organization: Organization) -> int:
    wizard = WizardSession(
        organization_id=organization.id, provider="google", data_center="us", checklist_done=[],
        scope="service_account/accounts/manage", delegated_scope="read_write", step="review",
    )
    db.session.add(wizard)
    db.session.commit()
    return wizard.id


def _link_id(organization: Organization) -> int:
    link = SetupLink(
        organization_id=organization.id, wizard_session_id=_wizard_id(organization),
        token_hash=secrets.token_hex(32), expires_at=utcnow() + timedelta(hours=72),
    )
    db.session.add(link)
    db.session.commit()
    return link.id


def _import_id(organization: Organization) -> int:
    """A mailbox import still in preview, with one row to add."""
    from models.mailbox_import import MailboxImport, MailboxImportRow

    mailbox_import = MailboxImport(
        organization_id=organization.id, source="csv", filename="people.csv", mode="add", row_count=1, add_count=1
    )
    db.session.add(mailbox_import)
    db.session.flush()
    db.session.add(MailboxImportRow(import_id=mailbox_import.id, row_number=2, email="new@import.example", outcome="add"))
    db.session.commit()
    return mailbox_import.id


def _mailbox_id(organization: Organization) -> int:
    address = f"probe.{secrets.token_hex(3)}@{organization.slug}.example"
    mailbox = Mailbox(organization_id=organization.id, email=address, name="Probe")
    db.session.add(mailbox)
    db.session.commit()
    return mailbox.id


def _selection_id(organization: Organization) -> int:
    selection = MailboxSelection(
        organization_id=organization.id, mode="filter", criteria={}, expires_at=utcnow() + timedelta(hours=24)
    )
    db.session.add(selection)
    db.session.commit()
    return selection.id


def _run_id(organization: Organization) -> int:
    """A running authorization run (with no attempts) through a connection of the organization."""
    from models.authorization import AuthorizationRun

    run = AuthorizationRun(organization_id=organization.id, connection_id=_connection_id(organization),
                           source="probe", scope="read_only", total=0)
    db.session.add(run)
    db.session.commit()
    return run.id


def _key_id(organization: Organization) -> int:
    """An API key restricted to the organization (the vendor settings page is support's own)."""
    from services.accounts import api_keys

    issued = api_keys.create_key("Probe", ["organizations:read"], organization=organization)
    db.session.commit()
    return issued.key.id


def _email_id(organization: Organization) -> int:
    """A failed invitation email of the organization (no body: nothing to send again)."""
    from models.outgoing_email import OutgoingEmail

    email = OutgoingEmail(organization_id=organization.id, purpose="invitation", to_address="probe@email.example",
                          subject="Probe", status="failed", failure_reason="probe", attempts=1)
    db.session.add(email)
    db.session.commit()
    return email.id


def _webhook_endpoint_id(organization: Organization) -> int:
    """A webhook endpoint filtered to the organization (a receiver on loopback, allowed in tests)."""
    from services.webhooks import endpoints

    issued = endpoints.create_endpoint("http://127.0.0.1:9/probe", organization=organization)
    db.session.commit()
    return issued.endpoint.id


def _webhook_delivery_id(organization: Organization) -> int:
    """A failed delivery of one of the organization's events to an endpoint filtered to it."""
    from models.event import Event
    from models.webhook import WebhookDelivery

    event = Event(type="organization.created", organization_id=organization.id, subject_type="organization",
                  subject_id=organization.id, data={"id": str(organization.id)})
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(endpoint_id=_webhook_endpoint_id(organization), event_id=event.id,
                               event_type=event.type, status="failed", attempt_count=1, next_attempt_at=None,
                               last_status_code=500, last_error="HTTP 500")
    db.session.add(delivery)
    db.session.commit()
    return delivery.id


FACTORIES: dict[str, Factory] = {
    "org_id": _org_id,
    "organization_id": _org_id,  # the vendor API's spelling
    "user_id": _user_id,
    "invitation_id": _invitation_id,
    "connection_id": _connection_id,
    "import_id": _import_id,
    "wizard_id": _wizard_id,
    "link_id": _link_id,
    "mailbox_id": _mailbox_id,
    "selection_id": _selection_id,
    "run_id": _run_id,
    "email_id": _email_id,
    "key_id": _key_id,
    "webhook_endpoint_id": _webhook_endpoint_id,
    "webhook_delivery_id": _webhook_delivery_id,
}

# Values for the other (non-id) arguments of such rules, e.g. `"export_format": "csv"`.
OTHER_ARGUMENTS: dict[str, object] = {}

# Endpoints that take ids but deliberately do not answer org admins with 404, and why. Keep it
# empty unless there is a reason a reviewer would accept.
NOT_TENANT_CHECKED: dict[str, str] = {}

# Routes that exist today: the sweep must find at least these, so it cannot pass by finding nothing.
KNOWN_ORG_SCOPED_ENDPOINTS = frozenset(
    {
        "organizations.overview",
        "mailboxes.import_list",
        "mailboxes.import_preview",
        "mailboxes.import_commit",
        "mailboxes.import_discard",
        "organizations.admins",
        "organizations.revoke_invitation",
        "organizations.deactivate_admin",
        "organizations.reactivate_admin",
        "support.access",
        "support.end_access",
        "runs.index",
        "runs.show",
        "runs.progress",
        "runs.cancel",
    }
)


def id_arguments(rule) -> list[str]:
    """Return the `*_id` arguments of a URL rule, sorted."""
    return sorted(name for name in rule.arguments if name.endswith("_id"))


API_PREFIX = "/api/v1/"


def org_scoped_rules(app) -> list:
    """Return every rule with an `*_id` argument, sorted by endpoint.

    The vendor API's routes are left out: they accept only an API key, never the session these sweeps
    sign in with; tests/api/test_isolation_sweep.py sweeps them with keys.
    """
    rules = [rule for rule in app.url_map.iter_rules() if id_arguments(rule) and not rule.rule.startswith(API_PREFIX)]
    return sorted(rules, key=lambda rule: (rule.endpoint, rule.rule))


def unregistered(rule) -> list[str]:
    """Return the rule's arguments that have neither a factory (ids) nor a value in OTHER_ARGUMENTS."""
    known = FACTORIES.keys() | OTHER_ARGUMENTS.keys()
    return sorted(name for name in rule.arguments if name not in known)


def require_registered(rules) -> None:
    """Fail (never skip) when a rule carries an argument the sweeps cannot fill in."""
    missing = {f"{rule.endpoint} ({rule.rule})": unregistered(rule) for rule in rules if unregistered(rule)}
    if missing:
        lines = "\n".join(f"  {where}: {', '.join(names)}" for where, names in sorted(missing.items()))
        pytest.fail(
            "The tenant-isolation sweep met URL arguments it does not know:\n"
            f"{lines}\n"
            "Register a factory for each new *_id argument in tests/security/org_scoped.py FACTORIES "
            "(it creates such an object in a given organization and returns its id), or a value for any "
            "other argument in OTHER_ARGUMENTS.",
            pytrace=False,
        )


def path_for(rule, values: dict) -> str:
    """Return the path of rule built with values."""
    return rule.build(values)[1]


def sweep_methods(rule) -> list[str]:
    """Return the methods to try on rule; Flask answers OPTIONS itself without running the view."""
    return sorted((rule.methods or set()) - {"OPTIONS"})


def user_allowed(rule, organization: Organization, support_user):
    """Return a user who may use rule for organization: support staff in the support area, else its admin."""
    if rule.endpoint.startswith("support."):
        return support_user
    return factories.make_org_admin(organization, password=None)


def switch_user(login_as, user) -> None:
    """Sign user in on the test client, also within a test that already made requests as someone else.

    The `app` fixture keeps one app context for the whole test, so Flask-Login's cached user in
    `flask.g` would otherwise outlive the switch.
    """
    login_as(user)
    g.pop("_login_user", None)


def database_snapshot() -> dict:
    """Return every row of every table, to prove that a refused request changed nothing."""
    db.session.expire_all()
    return {
        table.name: [tuple(row) for row in db.session.execute(select(table).order_by(*table.primary_key.columns))]
        for table in db.metadata.sorted_tables
    }


class IdMaker:
    """Create (once) and remember the objects whose ids go into URLs, per organization."""

    def __init__(self):
        self._made: dict[tuple[str, int], int] = {}

    def value(self, argument: str, organization: Organization) -> int:
        key = (argument, organization.id)
        if key not in self._made:
            self._made[key] = FACTORIES[argument](organization)
        return self._made[key]

    def values(self, rule, organization: Organization, *, org_id_of: Organization | None = None) -> dict:
        """Return URL values for rule from organization's objects; `org_id_of` overrides the org_id."""
        values = {name: self.value(name, organization) for name in id_arguments(rule)}
        values.update({name: OTHER_ARGUMENTS[name] for name in rule.arguments if name not in values})
        if org_id_of is not None and "org_id" in values:
            values["org_id"] = org_id_of.id
        return values
