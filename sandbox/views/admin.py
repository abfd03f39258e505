"""Runtime admin of the sandbox: fault switches, limits, SA revocation, directory and clients (no auth: a local tool)."""

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from sandbox import admin, clients
from sandbox.db import session
from sandbox.directory import domain_counts
from sandbox.errors import field_error, unprocessable
from sandbox.runtime import FAULT_TYPES, LIMIT_TYPES, InvalidSetting, validate
from sandbox.views.common import state

bp = Blueprint("sandbox_admin", __name__, url_prefix="/sandbox/admin")

TYPES = {"faults": FAULT_TYPES, "limits": LIMIT_TYPES}


def _json_body():
    data = request.get_json(silent=True)
    return {} if data is None and not request.get_data() else data


def _update(name, changes):
    try:
        clean = validate(changes, TYPES[name])
    except InvalidSetting as exc:
        raise unprocessable(exc.errors) from None
    return _changed(name, state().settings.update(name, clean))


def _reset(name):
    return _changed(name, state().settings.reset(name))


def _changed(name, value):
    # New limits start counting afresh (in this process).
    if name == "limits":
        state().limiter.clear()
    return value


@bp.get("/")
def page():
    """Show the fault switches, limits, service accounts and queue."""
    db = session()
    return render_template("sandbox/admin.html", faults=state().settings.get("faults"),
                           limits=state().settings.get("limits"), counts=domain_counts(db),
                           queue=admin.callback_counts(db),
                           notification_queue=admin.callback_counts(db, notifications_only=True),
                           service_accounts=admin.service_accounts(db),
                           clients=clients.all_clients(db))


@bp.route("/<any(faults, limits):name>", methods=["GET", "PUT", "DELETE"])
def settings_json(name):
    """Read (GET), change (PUT, partial) or reset (DELETE) the faults or the limits."""
    if request.method == "PUT":
        return jsonify(_update(name, _json_body()))
    if request.method == "DELETE":
        return jsonify(_reset(name))
    return jsonify(state().settings.get(name))


def _form_changes(name):
    changes = {}
    for key, converter in TYPES[name].items():
        if converter.__name__ == "_boolean":
            changes[key] = key in request.form
        elif request.form.get(key, "") != "":
            changes[key] = request.form[key]
    return changes


@bp.post("/<any(faults, limits):name>/form")
def settings_form(name):
    """Apply the admin page's form, then show the page again."""
    if "reset" in request.form:
        _reset(name)
    else:
        _update(name, _form_changes(name))
    return redirect(url_for("sandbox_admin.page"))


@bp.post("/revoke-service-account")
def revoke_service_account():
    """Simulate the domain administrator removing the service account (by id, by domain, or all)."""
    db = session()
    data = request.get_json(silent=True) or request.form.to_dict()
    revoked = admin.revoke_by_domain_admin(db, data.get("service_account_id") or None, data.get("domain") or None,
                                           cascade=state().config["SANDBOX_SA_REVOKE_CASCADES"],
                                           faults=state().settings.get("faults"))
    db.commit()
    if request.is_json:
        return jsonify({"revoked": revoked})
    return redirect(url_for("sandbox_admin.page"))


@bp.get("/directory.json")
def directory_json():
    """List directory members, filtered by domain, kind and trait ("none" for members that succeed)."""
    args = request.args
    limit = min(args.get("limit", 100, type=int) or 100, 1000)
    members = admin.directory(session(), args.get("domain"), args.get("kind"), args.get("trait"), limit,
                              args.get("offset", 0, type=int) or 0)
    return jsonify({"members": members})


@bp.get("/grants.json")
def grants_json():
    """List the delegated accounts with their grant counts, filtered by email, domain and status."""
    status = request.args.get("status") or None
    if status not in (None, *admin.GRANT_STATUSES):
        raise unprocessable({"status": [field_error("invalid", "must be active or inactive")]})
    return jsonify({"accounts": admin.grants(session(), request.args.get("email"), request.args.get("domain"),
                                             status)})


@bp.get("/service-accounts.json")
def service_accounts_json():
    """List the service accounts, filtered by domain and status (active, revoked, revoked_by_admin)."""
    status = request.args.get("status") or None
    if status not in (None, *admin.SERVICE_ACCOUNT_STATUSES):
        raise unprocessable({"status": [field_error("invalid", "must be active, revoked or revoked_by_admin")]})
    limit = min(request.args.get("limit", 100, type=int) or 100, 1000)
    return jsonify({"service_accounts": admin.service_accounts(session(), request.args.get("domain"), status,
                                                               limit)})


@bp.get("/callbacks.json")
def callbacks_json():
    """Count the delegated-access callbacks and the push notifications by delivery status."""
    db = session()
    return jsonify({"callbacks": admin.callback_counts(db),
                    "notifications": admin.callback_counts(db, notifications_only=True)})


@bp.post("/clients")
def register_client():
    """Register an API client; answer its id and secret."""
    data = request.get_json(silent=True)
    uris = data.get("redirect_uris", []) if isinstance(data, dict) else None
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise unprocessable({"redirect_uris": [field_error("invalid", "must be a list of URIs")]})
    db = session()
    client, secret = clients.register_client(db, uris, bool(data.get("allow_loopback")), str(data.get("name", "")))
    db.commit()
    return jsonify({"client_id": client.client_id, "client_secret": secret, "redirect_uris": uris,
                    "allow_loopback": client.allow_loopback}), 201
