"""Connection and organization events, and organization.state_changed written only when the state moves."""

from __future__ import annotations

from extensions import db
from models.organization import Organization
from services.accounts.organizations import create_organization
from services.connections import connections
from services.cronofy import InvalidGrantError
from services.mailboxes.mailbox_states import transition
from services.read_models.organization_state import state_of, states_for
from tests.helpers import connect_sandbox, make_connection, make_mailbox


def test_creating_an_organization_writes_organization_created_and_announces_no_state(app, logged):
    organization = create_organization("Acme Corp", external_id="cust_1")
    db.session.commit()
    [event] = logged()
    assert (event.type, event.subject_id, event.subject_external_id) == ("organization.created", organization.id,
                                                                         "cust_1")
    assert event.data["onboarding_state"] == "not_connected" and event.data["name"] == "Acme Corp"
    assert db.session.get(Organization, organization.id).announced_state == "not_connected"


def test_connecting_writes_connection_active_and_the_state_change(app, use_sandbox, logged):
    organization = create_organization("Acme Corp")
    db.session.commit()
    connection, _ = connect_sandbox(organization, use_sandbox)
    [active] = logged("connection.active")
    assert active.subject_id == connection.id and active.data["status"] == "active"
    [changed] = logged("organization.state_changed")
    assert changed.subject_id == organization.id and changed.data["onboarding_state"] == "connected"
    assert changed.id > active.id


def test_a_state_that_does_not_move_is_not_announced_again(app, use_sandbox, logged):
    organization = create_organization("Acme Corp")
    db.session.commit()
    connect_sandbox(organization, use_sandbox)
    mailbox = make_mailbox(organization, email="x@acme.example", status="requested")
    transition(mailbox, "failed", kind="authorization_failed", error_key="not_found", error_description="gone")
    db.session.commit()
    transition(make_mailbox(organization, email="y@acme.example", status="requested"), "failed",
               kind="authorization_failed", error_key="not_found", error_description="gone")
    db.session.commit()
    states = [e.data["onboarding_state"] for e in logged("organization.state_changed")]
    assert states == ["connected", "needs_attention"]


def test_a_refused_connection_writes_needs_reauth_once_and_disconnecting_writes_revoked(app, use_sandbox, logged):
    organization = create_organization("Acme Corp")
    db.session.commit()
    connection, _ = connect_sandbox(organization, use_sandbox)
    refusal = InvalidGrantError("The refresh token was revoked.", status=400, error_key="invalid_grant")
    connections.mark_needs_reauth(connection, refusal)
    connections.mark_needs_reauth(connection, refusal)
    db.session.commit()
    [reauth] = logged("connection.needs_reauth")
    assert reauth.data["status"] == "needs_reauth"
    assert logged("organization.state_changed")[-1].data["onboarding_state"] == "needs_attention"
    connections.disconnect(connection, actor=None)
    db.session.commit()
    [revoked] = logged("connection.revoked")
    assert revoked.subject_id == connection.id and revoked.data["status"] == "revoked"


def test_the_one_statement_state_agrees_with_the_listing_state(app, make_organization):
    organization = make_organization()
    assert state_of(organization.id) == states_for([organization.id])[organization.id].state == "not_connected"
    make_connection(organization)
    for status, expected in (("new", "importing"), ("authorized", "importing"), ("failed", "needs_attention")):
        make_mailbox(organization, status=status)
        assert state_of(organization.id) == states_for([organization.id])[organization.id].state == expected
    assert state_of(10**9) is None
