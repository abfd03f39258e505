"""Delegated access requests (§3.3): validate, decide each mailbox's outcome, queue the callbacks."""

import json
import random
import re
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from sandbox import clients, scopes
from sandbox.config import parse_delay
from sandbox.directory import find_member
from sandbox.errors import field_error, forbidden, unprocessable
from sandbox.models import Account, Callback, Domain
from sandbox.secrets_util import new_id
from sandbox.tokens import account_tokens, issue_code

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
    validate_kind(db, sa, [("", entry)])
    member, error = decide(db, sa, entry["email"], entry["scope"])
    if error:
        text = _error_text(db, sa, entry, error)
        raise unprocessable({"email": [field_error(error, text)]})
    account = _upsert_account(db, sa, member, entry["scope"])
    return account_tokens(db, client.client_id, account, entry["scope"], limits)


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


def validate(db, client, sa, entries):
    """Raise 422 for invalid entries and 403 when the service account lacks the scope for a mailbox."""
    errors = {}
    for prefix, entry in entries:
        errors.update(_entry_errors(client, sa, prefix, entry))
    errors.update(_duplicate_errors(entries))
    if errors:
        raise unprocessable(errors)
    validate_kind(db, sa, entries)


def validate_kind(db, sa, entries):
    """Raise 403 when the service account lacks the scope for the kind of a mailbox."""
    granted = set(scopes.split(sa.scope))
    for _, entry in entries:
        member = find_member(db, entry["email"])
        needed = KIND_SCOPES[member.kind if member else "user"]
        if needed not in granted:
            raise forbidden(f"The service account was not granted {needed}")


def decide(db, sa, email, scope):
    """Return (member, error key or None): the outcome the callback will report."""
    domain = db.get(Domain, sa.domain_id)
    member = find_member(db, email)
    if member is None or member.domain_id != domain.id:
        return None, "not_found"
    if member.trait in TRAIT_ERRORS:
        return member, TRAIT_ERRORS[member.trait]
    if member.trait == "free_busy_only" and not scopes.expand(scope) <= scopes.FREE_BUSY_GRANTABLE:
        return member, "unable_to_grant_scope"  # asked for more than free_busy (§3.4)
    return member, None


def _find_account(db, sa, member):
    return db.scalar(select(Account).where(Account.client_id == sa.client_id, Account.member_id == member.id))


def _upsert_account(db, sa, member, scope):
    account = _find_account(db, sa, member)
    if account is None:
        try:
            # Two requests for one mailbox may race to create its account; the loser reuses the winner's.
            with db.begin_nested():
                account = Account(id=new_id("acc"), client_id=sa.client_id, member_id=member.id,
                                  profile_id=new_id("pro"), service_account_id=sa.id, scope=scope)
                db.add(account)
        except IntegrityError:
            account = _find_account(db, sa, member)
    account.service_account_id, account.scope, account.profile_revoked = sa.id, scope, False
    db.flush()
    return account


def _error_text(db, sa, entry, error):
    domain = db.get(Domain, sa.domain_id).name
    return ERROR_TEXTS[error].format(email=entry["email"], domain=domain, scope=entry["scope"])


def _payload(db, sa, entry, due_at, limits):
    member, error = decide(db, sa, entry["email"], entry["scope"])
    result = {}
    if error:
        result = {"error": error, "error_key": error, "error_description": _error_text(db, sa, entry, error)}
    else:
        account = _upsert_account(db, sa, member, entry["scope"])
        # The code's ten minutes start when the callback is sent, not when it was requested.
        result["code"] = issue_code(db, sa.client_id, "account", account.id, entry["scope"],
                                    entry["callback_url"], limits["code_ttl"], starts_at=due_at)
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


def enqueue(db, sa, entries, limits, faults):
    """Queue one callback per entry (two when duplicate callbacks are switched on)."""
    now = time.time()
    for (_, entry), due_at in zip(entries, _due_times(len(entries), limits, faults, now)):
        body, outcome = _payload(db, sa, entry, due_at, limits)
        db.add(Callback(client_id=sa.client_id, url=entry["callback_url"], body=body, outcome=outcome,
                        due_at=due_at))
        if faults["duplicate_callbacks"]:
            db.add(Callback(client_id=sa.client_id, url=entry["callback_url"], body=body, outcome=outcome,
                            due_at=due_at + random.uniform(0.05, 0.3)))
