"""Admin endpoints that break tenants on purpose (disconnections, revocations, consent withdrawn, calendar
changes) and list channels and profile states; JSON in and out, or the admin page's forms."""

from flask import Blueprint, jsonify, redirect, request, url_for

from sandbox import admin, disruptions
from sandbox.db import session
from sandbox.errors import field_error, unprocessable
from sandbox.views.common import state

bp = Blueprint("sandbox_disruptions", __name__, url_prefix="/sandbox/admin")


def _data():
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise unprocessable({"body": [field_error("invalid", "must be a JSON object")]})
    return data


def _number(data, name, default=None, low=0.0, high=None):
    value = data.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number < low or (high is not None and number > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise unprocessable({name: [field_error("invalid", f"must be a number {bound}")]})
    return number


def _mailbox(data):
    return {"email": data.get("email") or None, "account_id": data.get("account_id") or None}


def _answer(payload):
    """Commit, then answer JSON to JSON callers and send the admin page's forms back to the page."""
    session().commit()
    if request.is_json:
        return jsonify(payload)
    return redirect(url_for("sandbox_admin.page"))


def _faults():
    return state().settings.get("faults")


@bp.post("/disconnect-profile")
def disconnect_profile():
    """Disconnect one mailbox's profile now (or `delay` seconds from now); `profile_disconnected` follows."""
    data = _data()
    found = disruptions.disconnect_profile(session(), _faults(), reason=data.get("reason"),
                                           delay=_number(data, "delay", 0.0), **_mailbox(data))
    return _answer({"disconnected": found})


@bp.post("/disconnect-profiles")
def disconnect_profiles():
    """Disconnect `percent` % of a domain's connected profiles, at random (seeded), within `over_seconds`."""
    data = _data()
    if not data.get("domain"):
        raise unprocessable({"domain": [field_error("required", "required")]})
    percent = _number(data, "percent", None, 0.0, 100.0)
    if percent is None:
        raise unprocessable({"percent": [field_error("required", "required")]})
    seed = _number(data, "seed")
    found, seed, candidates = disruptions.disconnect_share(
        session(), _faults(), str(data["domain"]).strip().lower(), percent,
        None if seed is None else int(seed), _number(data, "over_seconds", 0.0), data.get("reason"))
    return _answer({"disconnected": found, "seed": seed, "candidates": candidates})


@bp.post("/reconnect-profile")
def reconnect_profile():
    """Repair a mailbox's admin-made disconnection (its provider credentials work again)."""
    return _answer({"reconnected": disruptions.reconnect_profile(session(), **_mailbox(_data()))})


@bp.post("/revoke-account")
def revoke_account():
    """Revoke every authorization of a mailbox's accounts: refreshes answer invalid_grant, channels close."""
    return _answer({"revoked": disruptions.revoke_account(session(), **_mailbox(_data()))})


@bp.post("/change-calendar")
def change_calendar():
    """Change a mailbox's calendar data (its free/busy changes); `change` goes to the channels that want it."""
    data = _data()
    changed = disruptions.change_calendar(session(), _faults(), calendar_id=data.get("calendar_id") or None,
                                          **_mailbox(data))
    return _answer({"changed": changed})


@bp.post("/expire-service-account")
def expire_service_account():
    """Expire the access tokens of active service accounts (by id, by domain, or all); refreshing works."""
    data = _data()
    return _answer({"expired": disruptions.expire_service_accounts(
        session(), data.get("service_account_id") or None, data.get("domain") or None)})


@bp.post("/withdraw-consent")
def withdraw_consent():
    """Withdraw a domain's consent: its service accounts stop working and every profile disconnects."""
    data = _data()
    withdrawn = disruptions.withdraw_consent(session(), _faults(), str(data.get("domain") or "").strip().lower(),
                                             cascade=state().config["SANDBOX_SA_REVOKE_CASCADES"])
    return _answer({"withdrawn": withdrawn})


@bp.get("/channels.json")
def channels_json():
    """List notification channels, filtered by email, account_id and status (open, closed)."""
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        raise unprocessable({"status": [field_error("invalid", "must be open or closed")]})
    return jsonify({"channels": admin.channels(session(), request.args.get("email"),
                                               request.args.get("account_id"), status)})


@bp.get("/profiles.json")
def profiles_json():
    """List the delegated accounts' profiles with their connection state, filtered by domain, email, status."""
    status = request.args.get("status") or None
    if status not in (None, *admin.PROFILE_STATUSES):
        raise unprocessable({"status": [field_error("invalid", "must be connected or disconnected")]})
    return jsonify({"profiles": admin.profile_states(session(), request.args.get("domain"),
                                                     request.args.get("email"), status)})
