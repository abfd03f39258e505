"""Push notification channels and profiles of a delegated account (§3.11, §3.8), and the relink page."""

from flask import Blueprint, jsonify, render_template, request

from sandbox import calendars, channels, clients, profiles, tokens
from sandbox.db import session
from sandbox.errors import forbidden, not_found, unauthorized
from sandbox.models import Account, Member, ServiceAccount
from sandbox.views.common import body, state

bp = Blueprint("sandbox_push", __name__)


def _account(db):
    """Return the account of an account token; channels and profiles answer even while it is disconnected."""
    grant = tokens.bearer_grant(db, request.headers.get("Authorization"))
    if grant.subject_type != "account":
        raise forbidden("Notification channels and profiles need a delegated account token")
    account = db.get(Account, grant.subject_id)
    if account is None:
        raise unauthorized()
    return account


@bp.post("/v1/channels")
def create_channel():
    """Open a notification channel; a `verification` notification follows at once (§3.11)."""
    db = session()
    account = _account(db)
    callback_url, filters = channels.parse(clients.find(db, account.client_id), body())
    channel = channels.create(db, account, callback_url, filters, state().settings.get("faults"))
    db.commit()
    return jsonify({"channel": channels.as_json(channel)})


@bp.get("/v1/channels")
def list_channels():
    """List the account's open notification channels."""
    db = session()
    return jsonify({"channels": [channels.as_json(c) for c in channels.list_open(db, _account(db))]})


@bp.delete("/v1/channels/<channel_id>")
def close_channel(channel_id):
    """Close one of the account's channels: 202, as Cronofy answers; 404 for an unknown or closed one."""
    db = session()
    channels.close(db, _account(db), channel_id)
    db.commit()
    return "", 202


def _profile(db, account):
    sa = db.get(ServiceAccount, account.service_account_id)
    connected = profiles.is_connected(db, account, sa)
    shown = calendars.profile(db, account, connected, profiles.relink_url(request.host_url, account))
    shown.pop("profile_calendars")
    return shown


@bp.get("/v1/profiles")
def list_profiles():
    """List the account's calendar profiles with their connection status (none once revoked, §3.7.2)."""
    db = session()
    account = _account(db)
    return jsonify({"profiles": [] if account.profile_revoked else [_profile(db, account)]})


@bp.get("/relink/profiles/<profile_id>")
def relink(profile_id):
    """Explain how a disconnected Enterprise Connect profile is linked again (the profile_relink_url)."""
    db = session()
    account = db.query(Account).filter_by(profile_id=profile_id).one_or_none()
    if account is None:
        raise not_found("Profile not found")
    email = db.get(Member, account.member_id).email
    return render_template("sandbox/relink.html", email=email,
                           connected=profiles.is_connected(db, account))
