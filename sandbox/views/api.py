"""The /v1 API the console uses: delegated access, resources, userinfo, calendars, free/busy, profile revoke."""

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from sandbox import calendars, clients, delegation, profiles, scopes, tokens
from sandbox.db import session
from sandbox.errors import forbidden, not_found
from sandbox.models import Account, Domain, Member, ServiceAccount
from sandbox.views.common import body, no_store, state

bp = Blueprint("sandbox_api", __name__, url_prefix="/v1")

RESOURCE_KINDS = ("room", "equipment")


def _service_account(db):
    grant = tokens.bearer_grant(db, request.headers.get("Authorization"))
    if grant.subject_type != "service_account":
        raise forbidden("This call needs a service account token")
    return tokens.service_account_of(db, grant)


def _account(db, scope_needed=None):
    grant = tokens.bearer_grant(db, request.headers.get("Authorization"))
    if grant.subject_type != "account":
        raise forbidden("A service account cannot use its own calendars; use a delegated account token")
    account = tokens.account_of(db, grant)
    if scope_needed and not scopes.expand(account.scope) & set(scope_needed):
        raise forbidden(f"The account was not granted {' or '.join(scope_needed)}")
    return account


@bp.post("/service_account_authorizations")
def service_account_authorizations():
    """Accept single or batch delegated access requests; the outcome arrives later as a callback (§3.3)."""
    db = session()
    sa = _service_account(db)
    if not {"service_account/accounts/manage", "service_account/resources/manage"} & set(scopes.split(sa.scope)):
        raise forbidden("The service account may not manage accounts or resources")
    client, settings = clients.find(db, sa.client_id), state().settings
    if delegation.is_inline(body()):
        result = delegation.authorize_inline(db, client, sa, body(), settings.get("limits"))
        db.commit()
        return no_store(jsonify(result))
    entries = delegation.parse_entries(body())
    members = delegation.validate(db, client, sa, entries)
    delegation.enqueue(db, sa, entries, members, settings.get("limits"), settings.get("faults"))
    db.commit()
    return "", 202


def _details():
    raw = request.args.getlist("include_details") + request.args.getlist("include_details[]")
    return {word for value in raw for word in value.replace(",", " ").split()}


def _resource(member, domain, details):
    data = {"email": member.email, "name": member.name}
    if "capacity" in details and member.capacity is not None:
        data["capacity"] = member.capacity
    if "location" in details and member.building_name:
        data["location"] = {
            "building_name": member.building_name, "floor_name": member.floor_name,
            "floor_section": member.floor_section,
            "address": {"lines": [domain.street], "locality": domain.city, "region": domain.region,
                        "postal_code": domain.postal_code, "country": domain.country},
            "coordinates": {"lat": domain.lat, "long": domain.long}}
    return data


@bp.get("/resources")
def resources():
    """List the rooms and equipment (and shared mailboxes, if configured) of the SA's domain (§3.9)."""
    db = session()
    sa = _service_account(db)
    if "service_account/resources/manage" not in scopes.split(sa.scope):
        raise forbidden("The service account was not granted service_account/resources/manage")
    kinds = RESOURCE_KINDS + (("shared",) if state().config["SANDBOX_RESOURCES_INCLUDE_SHARED"] else ())
    domain = db.get(Domain, sa.domain_id)
    members = db.scalars(select(Member).where(Member.domain_id == domain.id, Member.kind.in_(kinds))
                         .order_by(Member.id))
    details = _details()
    return jsonify({"resources": [_resource(m, domain, details) for m in members]})


def _service_account_info(db, sa):
    domain = db.get(Domain, sa.domain_id)
    return {"sub": sa.id, "cronofy.type": "service_account", "email": sa.email,
            "cronofy.data": {
                "service_account": {"provider_name": sa.provider, "domain": domain.name},
                "authorization": {"scope": sa.scope, "delegated_scope": sa.delegated_scope, "status": "active"}}}


def _account_info(db, account):
    member = db.get(Member, account.member_id)
    sa = db.get(ServiceAccount, account.service_account_id)
    connected = profiles.is_connected(db, account, sa)
    shown = [] if account.profile_revoked else [
        calendars.profile(db, account, connected, profiles.relink_url(request.host_url, account))]
    return {"sub": account.id, "email": member.email, "name": member.name, "zoneinfo": "Etc/UTC",
            "cronofy.type": "account",
            "cronofy.data": {"authorization": {"scope": account.scope, "status": "active"}, "profiles": shown}}


@bp.get("/userinfo")
def userinfo():
    """Describe the service account or the account behind the token (§3.8)."""
    db = session()
    grant = tokens.bearer_grant(db, request.headers.get("Authorization"))
    if grant.subject_type == "service_account":
        return jsonify(_service_account_info(db, tokens.service_account_of(db, grant)))
    return jsonify(_account_info(db, db.get(Account, grant.subject_id)))


@bp.get("/calendars")
def list_calendars():
    """List the delegated account's calendars."""
    db = session()
    account = _account(db, ("list_calendars",))
    return jsonify({"calendars": calendars.calendars(db, account)})


@bp.get("/free_busy")
def free_busy():
    """Return the delegated account's busy blocks in Cronofy's paged shape."""
    db = session()
    account = _account(db, ("read_free_busy", "read_events"))
    start, end = calendars.date_range(request.args)
    blocks = calendars.free_busy(db, account, start, end)
    return jsonify({"pages": {"current": 1, "total": 1}, "free_busy": blocks})


@bp.post("/profiles/<profile_id>/revoke")
def revoke_profile(profile_id):
    """Drop access to one profile of the account; the authorization stays (§3.7.2)."""
    db = session()
    account = _account(db)
    if account.profile_id != profile_id:
        raise not_found("Profile not found")
    account.profile_revoked = True
    db.commit()
    return "", 202
