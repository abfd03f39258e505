"""What happens around every request: rate limits, injected faults, the event log and JSON errors."""

import random
import time

from flask import current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from sandbox import tokens
from sandbox.db import session
from sandbox.errors import ApiError
from sandbox.views.common import error_response, peek_client_id

QUIET_PREFIXES = ("/sandbox/events", "/static")


def is_api_path(path):
    """Tell whether a path belongs to the emulated API (rate limited, faults apply, JSON errors)."""
    return path.startswith("/v1/") or path.startswith("/oauth/")


def _client_key():
    client_id = peek_client_id() if request.path.startswith("/oauth/") else None
    if client_id is None:
        client_id = tokens.client_of_bearer(session(), request.headers.get("Authorization"))
    g.sandbox_client = client_id
    return client_id or f"anonymous:{request.remote_addr}"


def _rate_limited(state, key):
    limits = state.settings.get("limits")
    wait = state.limiter.hit(key, limits)
    if wait is None:
        return None
    headers = {"Retry-After": str(max(1, int(wait + 0.999)))} if limits["retry_after"] else {}
    return ApiError(429, {"error": "too_many_requests",
                          "error_description": "Rate limit exceeded for this application"}, headers)


def _fault(state):
    faults = state.settings.get("faults")
    if faults["hang_seconds"] > 0:
        # Past the cap the request answers the hang's 504 at once, so that hangs never take the last threads.
        hung = state.hangs.hang(faults["hang_seconds"])
        return ApiError(504, {"error": "gateway_timeout", "error_description": "Injected hang (fault)" if hung
                              else "Injected hang (fault), answered at once: SANDBOX_MAX_HUNG_REQUESTS hang already"})
    if faults["latency_ms"] > 0:
        time.sleep(faults["latency_ms"] / 1000)
    if state.settings.take_burst():
        headers = {"Retry-After": str(faults["retry_after"])} if faults["retry_after"] else {}
        return ApiError(429, {"error": "too_many_requests", "error_description": "Injected 429 burst (fault)"},
                        headers)
    if faults["error_rate"] > 0 and random.random() < faults["error_rate"]:
        status = random.choice((500, 503))
        return ApiError(status, {"error": "server_error" if status == 500 else "service_unavailable",
                                 "error_description": "Injected server error (fault)"})
    return None


def before_request():
    """Start the clock; for API paths apply faults and the per-client rate limit."""
    g.sandbox_started = time.perf_counter()
    if not is_api_path(request.path):
        return None
    state = current_app.extensions["sandbox"]
    # Faults come before anything that opens the request's database session: a hung request holds no connection.
    problem = _fault(state)
    key = _client_key()
    problem = problem or _rate_limited(state, key)
    return error_response(problem) if problem else None


def _should_log(path, method):
    if path.startswith(QUIET_PREFIXES):
        return False
    return not (path.startswith("/sandbox/admin") and method == "GET")


def after_request(response):
    """Write the request to the event log."""
    if not _should_log(request.path, request.method):
        return response
    elapsed = (time.perf_counter() - g.get("sandbox_started", time.perf_counter())) * 1000
    try:
        client_id = g.get("sandbox_client") or (peek_client_id() if request.path.startswith("/oauth/") else None)
        current_app.extensions["sandbox"].events.record("request", request.method, request.path,
                                                        response.status_code, elapsed, client_id)
    except Exception:  # noqa: BLE001 - the log must never break a response
        current_app.logger.exception("could not record the event")
    return response


def handle_api_error(error):
    """Render an ApiError raised by a view."""
    return error_response(error)


def handle_http_error(error):
    """Answer JSON on API paths (404, 405, ...), a plain page elsewhere."""
    if is_api_path(request.path):
        name = error.name.lower().replace(" ", "_")
        response = jsonify({"error": name, "error_description": error.description})
        response.status_code = error.code
        if error.code == 405:
            response.headers["Allow"] = ", ".join(error.valid_methods or [])
        return response
    return render_template("sandbox/error.html", message=f"{error.code} {error.name}"), error.code


def handle_unexpected(error):
    """Answer a bare 500 without a stack trace, logging the cause."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    current_app.logger.exception("unexpected error", exc_info=error)
    if is_api_path(request.path):
        return jsonify({"error": "server_error"}), 500
    return render_template("sandbox/error.html", message="Something went wrong in the sandbox."), 500
