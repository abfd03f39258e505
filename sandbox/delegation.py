"""Delegated access requests (§3.3): validate, decide each mailbox's outcome, queue the callbacks."""

import json
import random
import re
import time

from sqlalchemy import insert, select

from sandbox import clients, profiles, scopes
from sandbox.accounts import upsert_accounts
from sandbox.config import parse_delay
from sandbox.errors import field_error, forbidden, unprocessable
from sandbox.models import Callback, Code, Domain, Member
from sandbox.tokens import account_tokens, code_row

MAX_BATCH = 50  # "a batch of 1 to 50 access requests" (§3.3, Python SDK)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

ERROR_TEXTS = {
    "unable_to_grant_scope": "The service account was unable to grant {scope} for {email}",
    "not_found": "{email} was not found in the directory of {domain}",
    "outside_access_policy": "{email} is outside the access policy of the service account for {domain}",
    "mailbox_suspended": "The mailbox {email} is suspended",
    "license_missing": "{email} has no licence that includes a calendar",
}
TRAIT_ERRORS = {"outside_policy": "outside_access_policy", "suspended": "mailbox_suspended",
                "unlicensed": "license_missing"}
KIND_SCOPES = {"user": "service_account/accounts/manage", "shared": "service_account/accounts/manage",
               "room": "service_account/resources/manage", "equipment": "service_account/resources/manage"}


def is_inline(body):
    """Tell whether the body asks for the synchronous inline variant (§3.5)."""
    return isinstance(body, dict) and body.get("response_type") == "inline"


def authorize_inline(db, client, sa, body, limits):
    """Answer an inline request with account tokens now, or 422 naming the mailbox's error (§3.5)."""
    entry = {key: body.get(key) for key in ("email", "scope")}
    errors = _entry_errors(client, sa, "", entry, required=("email", "scope"))
    if errors:
        raise unprocessable(errors)
    members = load_members(db, [("", entry)])
    validate_kind(sa, [("", entry)], members)
    domain = db.get(Domain, sa.domain_id)
    member, error = decide(domain, member_of(members, entry), entry["scope"])
    if error:
        raise unprocessable({"email": [field_error(error, _error_text(domain, entry, error))]})
    account_id = upsert_accounts(db, sa, [(member, entry["scope"])])[member.id]
    profiles.reconnect(db, [account_id])
    return account_tokens(db, client.client_id, account_id, entry["scope"], limits)


def parse_entries(body):
    """Return [(field prefix, entry)] from the single or collection shape; raise 422 on a bad shape."""
    if not isinstance(body, dict):
        raise unprocessable({"body": [field_error("invalid", "must be a JSON object")]})
    if "service_account_authorizations" not in body:
        return [("", body)]
    batch = body["service_account_authorizations"]
    if any(field in body for field in ("email", "callback_url", "scope")):
        raise unprocessable({"service_account_authorizations": [
            field_error("invalid", "cannot be combined with a single authorization")]})
    if not isinstance(batch, list) or not batch:
        raise unprocessable({"service_account_authorizations": [field_error("required", "required")]})
    if len(batch) > MAX_BATCH:
        raise unprocessable({"service_account_authorizations": [
            field_error("too_long", f"must contain at most {MAX_BATCH} authorizations")]})
    return [(f"service_account_authorizations[{i}]", entry) for i, entry in enumerate(batch)]


def _name(prefix, field):
    return f"{prefix}[{field}]" if prefix else field


def _entry_errors(client, sa, prefix, entry, required=("email", "callback_url", "scope")):
    if not isinstance(entry, dict):
        return {prefix: [field_error("invalid", "must be an object")]}
    errors = {}
    for field in required:
        if not entry.get(field):
            errors[_name(prefix, field)] = [field_error("required", "required")]
        elif not isinstance(entry[field], str):
            errors[_name(prefix, field)] = [field_error("invalid", "must be a string")]
    if "state" in entry and not isinstance(entry["state"], str):
        errors[_name(prefix, "state")] = [field_error("invalid", "must be a string")]
    if errors:
        return errors
    if not EMAIL_RE.match(entry["email"]):
        errors[_name(prefix, "email")] = [field_error("invalid", "is not a valid email address")]
    if "callback_url" in required and not clients.callback_allowed(client, entry["callback_url"]):
        errors[_name(prefix, "callback_url")] = [field_error("invalid", "is not an allowed callback URL")]
    errors.update(_scope_errors(sa, prefix, entry["scope"]))
    return errors


def _scope_errors(sa, prefix, scope):
    unknown = scopes.unknown_delegated(scope)
    if unknown:
        return {_name(prefix, "scope"): [field_error("invalid", f"unknown scope {' '.join(unknown)}")]}
    if not scopes.within(scope, sa.delegated_scope):
        return {_name(prefix, "scope"): [field_error(
            "outside_delegated_scope", "must be within the delegated_scope granted to the service account")]}
    return {}


def _duplicate_errors(entries):
    # Entries of one batch may share anything but the email (§3.3).
    errors, seen = {}, set()
    for prefix, entry in entries:
        email = entry.get("email") if isinstance(entry, dict) else None
        if not isinstance(email, str):
            continue
        if email.strip().lower() in seen:
            errors[_name(prefix, "email")] = [field_error("taken", "appears twice in this request")]
        seen.add(email.strip().lower())
    return errors


def load_members(db, entries):
    """Return {email: member} for the entries' emails (case-insensitive), in one query."""
    emails = {_key(entry) for _, entry in entries}
    return {member.email: member for member in db.scalars(select(Member).where(Member.email.in_(emails)))}


def _key(entry):
    return entry["email"].strip().lower()


def member_of(members, entry):
    """Return the directory member an entry asks for, or None."""
    return members.get(_key(entry))


def validate(db, client, sa, entries):
    """Return the entries' members; raise 422 for invalid entries, 403 when the SA lacks a mailbox's scope."""
    errors = {}
    for prefix, entry in entries:
        errors.update(_entry_errors(client, sa, prefix, entry))
    errors.update(_duplicate_errors(entries))
    if errors:
        raise unprocessable(errors)
    members = load_members(db, entries)
    validate_kind(sa, entries, members)
    return members


def validate_kind(sa, entries, members):
    """Raise 403 when the service account lacks the scope for the kind of a mailbox."""
    granted = set(scopes.split(sa.scope))
    for _, entry in entries:
        member = member_of(members, entry)
        needed = KIND_SCOPES[member.kind if member else "user"]
        if needed not in granted:
            raise forbidden(f"The service account was not granted {needed}")


def decide(domain, member, scope):
    """Return (member, error key or None): the outcome the callback will report."""
    if member is None or member.domain_id != domain.id:
        return None, "not_found"
    if member.trait in TRAIT_ERRORS:
        return member, TRAIT_ERRORS[member.trait]
    if member.trait == "free_busy_only" and not scopes.expand(scope) <= scopes.FREE_BUSY_GRANTABLE:
        return member, "unable_to_grant_scope"  # asked for more than free_busy (§3.4)
    return member, None


def _error_text(domain, entry, error):
    return ERROR_TEXTS[error].format(email=entry["email"], domain=domain.name, scope=entry["scope"])


def _result(domain, entry, error, code):
    if error:
        result = {"error": error, "error_key": error, "error_description": _error_text(domain, entry, error)}
    else:
        result = {"code": code}
    if "state" in entry:
        result["state"] = entry["state"]
    return json.dumps({"authorization": result}), error or "code"


def _due_times(count, limits, faults, now):
    low, high = parse_delay(limits["callback_delay"])
    if not faults["out_of_order_callbacks"]:
        return [now + random.uniform(low, high) for _ in range(count)]
    # Later requests are answered first: reverse order, spaced so delivery cannot restore it.
    step = max(0.1, high - low)
    return [now + high + (count - index) * step for index in range(count)]


def enqueue(db, sa, entries, members, limits, faults):
    """Queue one callback per entry (two when duplicate callbacks are switched on), in a few statements."""
    domain = db.get(Domain, sa.domain_id)
    decisions = [decide(domain, member_of(members, entry), entry["scope"]) for _, entry in entries]
    accounts = upsert_accounts(db, sa, [(member, entry["scope"]) for (_, entry), (member, error)
                                        in zip(entries, decisions) if error is None])
    # Access granted again repairs a disconnected profile (re-linking an EC account is re-requesting it, §3.7.1).
    profiles.reconnect(db, list(accounts.values()))
    codes, callbacks = [], []
    due_times = _due_times(len(entries), limits, faults, time.time())
    for (_, entry), (member, error), due_at in zip(entries, decisions, due_times):
        code = None
        if error is None:
            # The code's ten minutes start when the callback is sent, not when it was requested.
            code, row = code_row(sa.client_id, "account", accounts[member.id], entry["scope"], entry["callback_url"],
                                 limits["code_ttl"], starts_at=due_at)
            codes.append(row)
        body, outcome = _result(domain, entry, error, code)
        callbacks.append(_callback_row(sa, entry, body, outcome, due_at))
        if faults["duplicate_callbacks"]:
            callbacks.append(_callback_row(sa, entry, body, outcome, due_at + random.uniform(0.05, 0.3)))
    if codes:
        db.execute(insert(Code.__table__), codes)
    db.execute(insert(Callback.__table__), callbacks)


def _callback_row(sa, entry, body, outcome, due_at):
    return {"client_id": sa.client_id, "url": entry["callback_url"], "body": body, "outcome": outcome,
            "due_at": due_at}
