"""Helpers shared by the sandbox's views: request bodies and JSON responses."""

import json

from flask import current_app, g, jsonify, request

from sandbox.errors import ApiError, oauth_error, unprocessable


def state():
    """Return the SandboxState of the current app."""
    return current_app.extensions["sandbox"]


def _parse_body():
    raw = request.get_data(cache=True)
    if not raw:
        return {} if request.mimetype != "application/x-www-form-urlencoded" else request.form.to_dict()
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    if request.is_json or raw.lstrip()[:1] in (b"{", b"["):
        return json.loads(raw)
    return request.form.to_dict()


def body():
    """Return the request body as a dict from JSON or form encoding; raise ApiError when unreadable."""
    if "sandbox_body" not in g:
        try:
            g.sandbox_body = _parse_body()
        except (ValueError, UnicodeDecodeError):
            g.sandbox_body = None
    if g.sandbox_body is None:
        if request.path.startswith("/oauth/"):
            raise oauth_error("invalid_request", description="The body is not valid JSON")
        raise unprocessable({"body": [{"key": "errors.invalid_json", "description": "is not valid JSON"}]})
    return g.sandbox_body


def peek_client_id():
    """Return the client_id of a token request body without raising, or None."""
    try:
        data = body()
    except ApiError:
        return None
    value = data.get("client_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def error_response(error):
    """Render an ApiError as a JSON (or empty) response."""
    response = jsonify(error.body) if error.body is not None else current_app.response_class(status=error.status)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def no_store(response):
    """Mark a token response as not cacheable (§3.2)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
