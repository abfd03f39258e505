"""Problem documents (RFC 9457, `application/problem+json`) for every error the API answers.

Each kind of error has a stable `type`: an absolute URI naming a section of the API's problem
page (`/api/docs/problems#<slug>`), so a client can branch on it and a person can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, json, request, url_for
from werkzeug.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    explanation: str


PROBLEM_TYPES = {
    problem.slug: problem
    for problem in (
        ProblemType("unauthenticated", 401, "Missing or invalid API key",
                    "Send `Authorization: Bearer <key>` with an active key; the session cookie is never accepted."),
        ProblemType("insufficient-scope", 403, "The API key lacks a scope",
                    "The key does not carry the scope this endpoint needs; `required_scope` names it."),
        ProblemType("not-found", 404, "Not found",
                    "Nothing exists at this address, or it belongs to an organization the key cannot see."),
        ProblemType("method-not-allowed", 405, "Method not allowed", "This address does not accept that method."),
        ProblemType("unsupported-media-type", 415, "Unsupported media type", "Send the body as `application/json`."),
        ProblemType("malformed-request", 400, "Malformed request",
                    "The body is not valid JSON, or the request cannot be read."),
        ProblemType("validation-failed", 422, "The request is invalid",
                    "One or more fields are missing, of the wrong type, unknown or out of range; `errors` lists "
                    "each one with a JSON pointer to it."),
        ProblemType("invalid-cursor", 400, "Invalid cursor",
                    "The cursor is not one this API handed out; start again without it."),
        ProblemType("conflict", 409, "Conflict", "The request conflicts with what is stored (a duplicate external id)."),
        ProblemType("idempotency-key-reused", 422, "Idempotency-Key reused with another body",
                    "A request with this Idempotency-Key and a different body was made in the last 24 hours."),
        ProblemType("idempotency-in-progress", 409, "A request with this Idempotency-Key is being handled",
                    "The first request with this key has not finished; retry it in a few seconds."),
        ProblemType("restricted-key", 403, "The API key is restricted to one organization",
                    "A key restricted to one organization cannot do this."),
        ProblemType("mailbox-not-authorized", 409, "The mailbox is not authorized",
                    "Only an authorized mailbox has tokens; `mailbox_status` says where it stands."),
        ProblemType("mailbox-needs-attention", 409, "The mailbox's authorization was refused",
                    "Cronofy refused to refresh the token (revoked or lapsed); the mailbox is now needs_attention "
                    "and must be authorized again."),
        ProblemType("token-unavailable", 503, "No token just now",
                    "The token could not be refreshed in time (Cronofy did not answer, or another refresh is slow); "
                    "retry after `Retry-After` seconds."),
        ProblemType("upstream-failed", 502, "Cronofy did not confirm",
                    "Cronofy did not confirm the change (it could not be reached or refused); nothing was changed. "
                    "Retry later."),
        ProblemType("run-state", 409, "The run cannot do this now",
                    "The run's status does not allow this action (pausing a finished run, say); `detail` says why."),
        ProblemType("payload-too-large", 413, "Request too large", "The body is larger than the API accepts."),
        ProblemType("rate-limited", 429, "Too many requests",
                    "The key sent more requests than its limit allows; wait for `Retry-After` seconds."),
        ProblemType("server-error", 500, "Internal error", "The console hit an unexpected error; it has been logged."),
        ProblemType("service-unavailable", 503, "Service unavailable",
                    "The console cannot reach its database just now; retry after `Retry-After` seconds."),
    )
}
STATUS_SLUGS = {
    401: "unauthenticated", 403: "insufficient-scope", 404: "not-found", 405: "method-not-allowed",
    400: "malformed-request", 409: "conflict", 413: "payload-too-large", 415: "unsupported-media-type",
    422: "validation-failed", 429: "rate-limited", 500: "server-error", 503: "service-unavailable",
}


class ApiProblem(HTTPException):
    """Raise from a view to answer a problem document of the given type."""

    def __init__(self, slug: str, detail: str | None = None, *, headers: dict | None = None, **extra):
        kind = PROBLEM_TYPES[slug]
        super().__init__(description=detail or kind.explanation)
        self.code = kind.status
        self.slug, self.extra, self.problem_headers = slug, extra, headers or {}


def type_uri(slug: str) -> str:
    return url_for("api_docs.problems", _external=True) + "#" + slug


def problem_response(slug: str, detail: str | None = None, *, status: int | None = None,
                     headers: dict | None = None, **extra) -> Response:
    kind = PROBLEM_TYPES[slug]
    body = {"type": type_uri(slug), "title": kind.title, "status": status or kind.status,
            "detail": detail or kind.explanation, "instance": request.path, **extra}
    response = Response(json.dumps(body), status=status or kind.status, mimetype=MEDIA_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_errors(messages) -> list[dict]:
    """Turn webargs' nested messages into one entry per problem.

    A body field gets a `pointer` (RFC 6901, in the URI-fragment form RFC 9457's example uses,
    `#/entries/3/email`); a query parameter or header gets `parameter` with its name.
    """
    found = []

    def walk(node, location, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, location, [*path, str(key)])
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            found.extend(_entry(location, path, item) for item in node)
        elif isinstance(node, list):
            for item in node:
                walk(item, location, path)
        else:
            found.append(_entry(location, path, str(node)))

    for location, nested in (messages or {}).items():
        walk(nested, location, [])
    return found


def _entry(location: str, path: list[str], detail: str) -> dict:
    if location == "json":
        parts = [part for part in path if part != "_schema"]  # marshmallow's key for a whole-object error
        escaped = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)
        return {"pointer": "#" + escaped, "detail": detail}
    return {"parameter": path[0] if path else location, "in": location, "detail": detail}


def from_http_exception(exc: HTTPException) -> Response:
    """Answer any HTTP error raised under /api as a problem document."""
    if isinstance(exc, ApiProblem):
        return problem_response(exc.slug, exc.description, headers=exc.problem_headers, **exc.extra)
    status = exc.code or 500
    slug = STATUS_SLUGS.get(status, "server-error" if status >= 500 else "malformed-request")
    headers = {}
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if status == 422:
        messages = getattr(exc, "data", {}).get("messages", {})
        return problem_response(slug, errors=validation_errors(messages))
    detail = None
    if status == 400:
        detail = _bad_request_detail(exc)
    return problem_response(slug, detail, status=status, headers=headers)


def _bad_request_detail(exc: HTTPException) -> str | None:
    messages = getattr(exc, "data", {}).get("messages")
    if messages:
        return "The body is not valid JSON." if "json" in messages else None
    return None

