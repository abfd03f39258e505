"""Who is calling: the bearer API key (never the session cookie), its scopes, its organization, its limit."""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import time

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many

from extensions import db, limiter
from models.organization import Organization
from services.accounts import api_keys
from services.platform import audit
from blueprints.api.problems import ApiProblem

BEARER_CHALLENGE = 'Bearer realm="api"'


def _bearer_value() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def reads_in_autocommit(view_class):
    """Mark a MethodView whose usual answer only reads: until it ends the session's transaction, its statements
    (and the key's lookup) run in autocommit, which spares PostgreSQL's BEGIN and ROLLBACK round trips.

    Once the view commits or rolls back, the session is transactional again as usual; such a view must do
    that before it writes more than one statement.
    """
    view_class.autocommit_reads = True
    return view_class


def _start_in_autocommit() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(getattr(view, "view_class", None), "autocommit_reads", False) and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def authenticate_key() -> None:
    """before_request of every API blueprint: the request's key, or a 401 problem document."""
    value = _bearer_value()
    if value is None:
        raise ApiProblem("unauthenticated", "Send the API key as `Authorization: Bearer <key>`.",
                         headers={"WWW-Authenticate": BEARER_CHALLENGE})
    _start_in_autocommit()
    key = api_keys.authenticate(value)
    if key is None:
        raise ApiProblem("unauthenticated", "This API key is unknown or has been revoked.",
                         headers={"WWW-Authenticate": BEARER_CHALLENGE + ', error="invalid_token"'})
    if db.session.info.pop("api_key_used_written", False):
        db.session.commit()  # last_used_at, written at most once a minute
    g.api_key = key


def audit_as_api() -> None:
    """Mark what this request audits as done through the API, by its key (named by its prefix, never its secret)."""
    audit.set_request_context(via="api", api_key=g.api_key.prefix)


def require_scope(scope: str):
    """Refuse (403, naming the scope) a key without scope; the view's security entry in OpenAPI names it."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if scope not in g.api_key.scope_list:
                raise ApiProblem("insufficient-scope", f"This API key does not have the scope {scope}.",
                                 required_scope=scope)
            return view(*args, **kwargs)

        docs = copy.deepcopy(getattr(view, "_apidoc", {}))
        docs.setdefault("manual_doc", {})["security"] = [{"bearerAuth": [scope]}]
        wrapper._apidoc = docs
        return wrapper

    return decorate


def organization_for_key(organization_id: int) -> Organization:
    """The organization, if it exists and the key may see it; otherwise 404 (never 403: ids stay private)."""
    key = g.api_key
    organization = db.session.get(Organization, organization_id)
    if organization is None or (key.organization_id is not None and key.organization_id != organization.id):
        raise ApiProblem("not-found", "There is no organization with this id.")
    return organization


def rate_limit_key() -> str:
    """Count per key: the hash of the bearer value (a wrong key gets a bucket of its own), else the address."""
    value = _bearer_value()
    if value is None:
        return "api-anonymous:" + get_remote_address()
    return "api-key:" + hashlib.sha256(value.encode()).hexdigest()


def api_rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


@functools.lru_cache(maxsize=16)
def _limit_items(setting: str) -> list[RateLimitItem]:
    return sorted(set(parse_many(setting)))  # a limit given twice is one window: counted once


class _WindowEnds:
    """When each counted window ends, as this process last learnt it, so that RateLimit-Reset needs no read.

    A fixed window's end does not move while it lasts: the hit that opens one (count 1) knows it, and other
    processes' windows are read once from the store and then kept until they end.
    """

    MAX_KEYS = 4096

    def __init__(self) -> None:
        self._ends: dict[str, float] = {}

    def end_of(self, storage, key: str, count: int, cost: int, expiry: int) -> float:
        now = time.time()
        if count == cost:
            end = now + expiry
        else:
            end = self._ends.get(key, 0.0)
            if end <= now:
                end = storage.get_expiry(key)
        if len(self._ends) >= self.MAX_KEYS:
            self._ends = {k: v for k, v in self._ends.items() if v > now}
            if len(self._ends) >= self.MAX_KEYS:
                self._ends.clear()
        self._ends[key] = end
        return end


_window_ends = _WindowEnds()


def count_request() -> None:
    """Count the request against each of the key's limits (fixed windows, in the limiter's shared store), and
    refuse it with 429 over one. One store call per limit: the RateLimit headers come from the counts."""
    if not limiter.enabled:
        return
    storage, prefix = limiter.storage, current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    identifiers = [prefix] if prefix else []
    identifiers += [rate_limit_key(), "api"]  # one budget per key for the whole API, not per endpoint
    shown, breached = None, False
    items = _limit_items(api_rate_limit())
    keys = [item.key_for(*identifiers) for item in items]
    # The console's stores (the database, Redis with the database behind it) count every limit in one call;
    # another store (memory://) one call per limit.
    counted = (storage.incr_many([(key, item.get_expiry()) for key, item in zip(keys, items, strict=True)])
               if hasattr(storage, "incr_many") else None)
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        count = counted[index] if counted is not None else storage.incr(key, item.get_expiry(), amount=1)
        breached = count > item.amount
        if shown is None or breached:
            reset_at = _window_ends.end_of(storage, key, count, 1, item.get_expiry())
            shown = (item.amount, max(0, item.amount - count), reset_at)
        if breached:
            break
    g.api_rate_limit = shown
    if breached:
        raise ApiProblem("rate-limited")


def limit_blueprint(blueprint) -> None:
    """Count every request of blueprint first, before its key is looked up: unknown keys are counted too."""
    blueprint.record_once(
        lambda state: state.app.before_request_funcs.setdefault(state.name, []).insert(0, count_request))
    _COUNTED_HERE.add(blueprint.name)


_COUNTED_HERE: set[str] = set()


@limiter.request_filter
def _counted_by_count_request() -> bool:
    """Let Flask-Limiter skip the API's requests at once: it has no limit of theirs, count_request counts them."""
    return request.blueprint in _COUNTED_HERE


def add_rate_limit_headers(response):
    """RateLimit-Limit / -Remaining / -Reset (seconds) for the limit closest to running out, Retry-After on 429."""
    current = g.get("api_rate_limit")
    if current is None:
        return response
    amount, remaining, reset_at = current
    reset = max(0, math.ceil(reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(amount)
    response.headers["RateLimit-Remaining"] = str(remaining)
    response.headers["RateLimit-Reset"] = str(reset)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset))
    return response
